//! The new tar on its way out: written in 1 MiB chunks that the applier fills
//! in place (from the old member, the controls, the streams), each chunk then
//! written out and handed to a hashing thread (MD5 and SHA-256) that returns it
//! for reuse, so hashing overlaps applying and nothing is allocated per member.
//! Nothing past the size the header declares is written: a patch that would
//! make more is refused at the first byte too many.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

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
                let filled = chunk.get(..n).unwrap_or(&chunk);
                md5.update(filled);
                sha.update(filled);
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
        self.buf.get_mut(self.filled..end).ok_or_else(overrun)
    }

    /// Counts the first `n` bytes of the last [`Out::spare`] as written.
    pub fn commit(&mut self, n: usize) -> Result<(), OutError> {
        if self.written + n as u64 > self.limit {
            return Err(OutError::TooLong(self.limit));
        }
        let made = self.buf.get(self.filled..self.filled + n).ok_or_else(overrun)?;
        if let Some(t) = &mut self.tee {
            t.extend_from_slice(made);
        }
        self.filled += n;
        self.written += n as u64;
        Ok(())
    }

    pub fn put(&mut self, mut bytes: &[u8]) -> Result<(), OutError> {
        while !bytes.is_empty() {
            let room = self.spare(bytes.len())?;
            let n = room.len();
            let (now, rest) = bytes.split_at_checked(n).ok_or_else(overrun)?;
            room.copy_from_slice(now);
            self.commit(n)?;
            bytes = rest;
        }
        Ok(())
    }

    fn send(&mut self) -> Result<(), OutError> {
        if self.filled == 0 {
            return Ok(());
        }
        self.inner.write_all(self.buf.get(..self.filled).ok_or_else(overrun)?).map_err(OutError::Write)?;
        let next = match self.back.try_recv() {
            Ok(b) => b,
            Err(_) if self.buffers < DEPTH + 1 => {
                self.buffers += 1;
                vec![0; CHUNK]
            }
            Err(_) => self.back.recv().map_err(|_| OutError::Write(io::Error::other("the hashing thread stopped")))?,
        };
        let full = std::mem::replace(&mut self.buf, next);
        let stopped = || OutError::Write(io::Error::other("the hashing thread stopped"));
        let tx = self.to_hasher.as_ref().ok_or_else(stopped)?;
        tx.send((full, self.filled)).map_err(|_| stopped())?;
        self.filled = 0;
        Ok(())
    }

    /// Writes what is left, flushes, and returns the size and digests.
    pub fn finish(mut self) -> Result<(W, u64, [u8; 16], [u8; 32]), OutError> {
        self.send()?;
        self.inner.flush().map_err(OutError::Write)?;
        drop(self.to_hasher.take());
        let panicked = || OutError::Write(io::Error::other("the hashing thread panicked"));
        let (md5, sha) = self.hasher.take().ok_or_else(panicked)?.join().map_err(|_| panicked())?;
        Ok((self.inner, self.written, md5, sha))
    }
}

/// Bytes committed past the room [`Out::spare`] gave: a bug of the caller's.
fn overrun() -> OutError {
    OutError::Write(io::Error::other("more bytes committed than the output buffer has room for"))
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
