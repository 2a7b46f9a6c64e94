//! The new tar on its way out: written in 1 MiB chunks that the applier fills
//! in place (from the old member, the controls, the streams), each chunk then
//! written out and handed to a hashing thread (MD5 and SHA-256) that returns it
//! for reuse, so hashing overlaps applying and nothing is allocated per member.
//! Nothing past the size the header declares is written: a patch that would
//! make more is refused at the first byte too many.

use md5::Md5;
use sha2::{Digest, Sha256};
use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

pub const CHUNK: usize = 1 << 20;
/// Chunks in flight to the hasher, beside the one being filled.
const DEPTH: usize = 3;

pub struct Out<'scope, W: Write> {
    inner: W,
    buf: Vec<u8>,
    filled: usize,
    written: u64,
    limit: u64,
    to_hasher: Option<SyncSender<(Vec<u8>, usize)>>,
    back: Receiver<Vec<u8>>,
    buffers: usize,
    hasher: Option<ScopedJoinHandle<'scope, ([u8; 16], [u8; 32])>>,
    /// A copy of what is written, while a new member is kept for later.
    pub tee: Option<Vec<u8>>,
}

/// What failed: the output itself, or the patch that would pass the limit.
#[derive(Debug)]
pub enum OutError {
    Write(io::Error),
    TooLong(u64),
}

impl<'scope, W: Write> Out<'scope, W> {
    pub fn new<'env>(scope: &'scope Scope<'scope, 'env>, inner: W, limit: u64) -> Self {
        let (tx, rx) = sync_channel::<(Vec<u8>, usize)>(DEPTH);
        let (back_tx, back) = sync_channel::<Vec<u8>>(DEPTH + 1);
        let hasher = scope.spawn(move || {
            let (mut md5, mut sha) = (Md5::new(), Sha256::new());
            for (chunk, n) in rx {
                md5.update(&chunk[..n]);
                sha.update(&chunk[..n]);
                let _ = back_tx.try_send(chunk);
            }
            (md5.finalize().into(), sha.finalize().into())
        });
        Out {
            inner,
            buf: vec![0; CHUNK],
            filled: 0,
            written: 0,
            limit,
            to_hasher: Some(tx),
            back,
            buffers: 1,
            hasher: Some(hasher),
            tee: None,
        }
    }

    /// Room for up to `want` bytes, at least one (a full chunk is sent first).
    pub fn spare(&mut self, want: usize) -> Result<&mut [u8], OutError> {
        if self.filled == CHUNK {
            self.send()?;
        }
        let end = CHUNK.min(self.filled + want);
        Ok(&mut self.buf[self.filled..end])
    }

    /// Counts the first `n` bytes of the last [`Out::spare`] as written.
    pub fn commit(&mut self, n: usize) -> Result<(), OutError> {
        if self.written + n as u64 > self.limit {
            return Err(OutError::TooLong(self.limit));
        }
        if let Some(t) = &mut self.tee {
            t.extend_from_slice(&self.buf[self.filled..self.filled + n]);
        }
        self.filled += n;
        self.written += n as u64;
        Ok(())
    }

    pub fn put(&mut self, mut bytes: &[u8]) -> Result<(), OutError> {
        while !bytes.is_empty() {
            let room = self.spare(bytes.len())?;
            let n = room.len();
            room.copy_from_slice(&bytes[..n]);
            self.commit(n)?;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    fn send(&mut self) -> Result<(), OutError> {
        if self.filled == 0 {
            return Ok(());
        }
        self.inner.write_all(&self.buf[..self.filled]).map_err(OutError::Write)?;
        let next = match self.back.try_recv() {
            Ok(b) => b,
            Err(_) if self.buffers < DEPTH + 1 => {
                self.buffers += 1;
                vec![0; CHUNK]
            }
            Err(_) => self.back.recv().map_err(|_| OutError::Write(io::Error::other("the hashing thread stopped")))?,
        };
        let full = std::mem::replace(&mut self.buf, next);
        let tx = self.to_hasher.as_ref().expect("open until finish");
        tx.send((full, self.filled)).map_err(|_| OutError::Write(io::Error::other("the hashing thread stopped")))?;
        self.filled = 0;
        Ok(())
    }

    /// Writes what is left, flushes, and returns the size and digests.
    pub fn finish(mut self) -> Result<(W, u64, [u8; 16], [u8; 32]), OutError> {
        self.send()?;
        self.inner.flush().map_err(OutError::Write)?;
        drop(self.to_hasher.take());
        let (md5, sha) = self.hasher.take().expect("joined once").join().expect("the hashing thread panicked");
        Ok((self.inner, self.written, md5, sha))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_hashes_and_refuses_past_the_limit() {
        let data: Vec<u8> = (0..3 * CHUNK + 777).map(|i| (i % 251) as u8).collect();
        std::thread::scope(|s| {
            let mut out = Out::new(s, Vec::new(), data.len() as u64);
            out.put(&data[..1000]).unwrap();
            out.tee = Some(Vec::new());
            out.put(&data[1000..CHUNK + 5]).unwrap();
            assert_eq!(out.tee.take().unwrap(), &data[1000..CHUNK + 5]);
            out.put(&data[CHUNK + 5..]).unwrap();
            assert!(matches!(out.put(b"x"), Err(OutError::TooLong(_))));
            let (w, n, md5, sha) = out.finish().unwrap();
            assert!(w == data);
            assert_eq!(n, data.len() as u64);
            assert_eq!(md5, <[u8; 16]>::from(Md5::digest(&data)));
            assert_eq!(sha, <[u8; 32]>::from(Sha256::digest(&data)));
        });
    }
}
