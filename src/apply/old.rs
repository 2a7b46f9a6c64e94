//! The old tar on its way in: read ahead on its own thread in 1 MiB chunks and
//! hashed there (size and SHA-256: the old tar is checked by those alone; MD5,
//! a quarter of the applier's time, is kept for the result), checked against
//! the patch's prefix digest as soon as that much has passed, and refused past
//! the size the patch expects.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use sha2::{Digest, Sha256};
use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::Scope;

/// Read-ahead chunks: a pipe gives 64 KiB a read, a file more.
const CHUNK: usize = 1 << 20;
const DEPTH: usize = 2;

enum Msg {
    Data(Vec<u8>, usize),
    Failed(io::Error),
    End(u64, [u8; 32]),
}

/// What the old stream must be.
pub struct Expect {
    pub size: u64,
    pub prefix_len: u64,
    pub prefix_sha256: String,
}

pub struct OldReader {
    rx: Receiver<Msg>,
    back: SyncSender<Vec<u8>>,
    chunk: Vec<u8>,
    len: usize,
    pos: usize,
    end: Option<(u64, [u8; 32])>,
    failed: bool,
}

impl OldReader {
    pub fn spawn<'scope, 'env, R: Read + Send + 'scope>(scope: &'scope Scope<'scope, 'env>, mut input: R, expect: Expect) -> OldReader {
        let (tx, rx) = sync_channel(DEPTH);
        let (back, back_rx) = sync_channel::<Vec<u8>>(DEPTH + 2);
        scope.spawn(move || {
            let mut sha = Sha256::new();
            let mut prefix = Some(Sha256::new());
            let mut total = 0u64;
            loop {
                let mut buf = back_rx.try_recv().unwrap_or_else(|_| vec![0; CHUNK]);
                let n = match super::streams::read_full(&mut input, &mut buf) {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.send(Msg::Failed(e));
                        return;
                    }
                };
                let Some(got) = buf.get(..n) else {
                    let _ = tx.send(Msg::Failed(io::Error::other("a read returned more bytes than asked for")));
                    return;
                };
                if let Err((good, e)) = check(got, total, &expect, &mut prefix) {
                    // The bytes before the end the patch expects first, as a
                    // plain reader would give them.
                    if good > 0 && tx.send(Msg::Data(buf, good)).is_err() {
                        return;
                    }
                    let _ = tx.send(Msg::Failed(e));
                    return;
                }
                total += n as u64;
                if n == 0 {
                    let _ = tx.send(Msg::End(total, sha.finalize().into()));
                    return;
                }
                sha.update(got);
                if tx.send(Msg::Data(buf, n)).is_err() {
                    return;
                }
            }
        });
        OldReader { rx, back, chunk: Vec::new(), len: 0, pos: 0, end: None, failed: false }
    }

    /// Size and SHA-256 of the whole stream, once it has been read to its end.
    pub fn digest(&self) -> Option<(u64, [u8; 32])> {
        self.end
    }
}

/// The prefix digest and the size bound, for the `bytes` that follow `before`;
/// on a problem, how many of the bytes came before it.
fn check(bytes: &[u8], before: u64, expect: &Expect, prefix: &mut Option<Sha256>) -> Result<(), (usize, io::Error)> {
    if let Some(h) = prefix.as_mut() {
        let take = expect.prefix_len.saturating_sub(before).min(bytes.len() as u64) as usize;
        h.update(bytes.get(..take).unwrap_or(bytes));
        if before + take as u64 == expect.prefix_len {
            let Some(h) = prefix.take() else { return Ok(()) };
            let found = hex::encode(h.finalize());
            if found != expect.prefix_sha256 {
                return Err((
                    0,
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "its first {} bytes are not those of the tar the patch applies to (SHA-256 {found}, expected {}): wrong base?",
                            expect.prefix_len, expect.prefix_sha256
                        ),
                    ),
                ));
            }
        }
    }
    if before + bytes.len() as u64 > expect.size {
        let good = expect.size.saturating_sub(before) as usize;
        let e =
            io::Error::new(io::ErrorKind::InvalidData, format!("longer than the {} bytes of the tar the patch applies to", expect.size));
        return Err((good, e));
    }
    Ok(())
}

impl Read for OldReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.len {
            if self.end.is_some() || out.is_empty() {
                return Ok(0);
            }
            if self.failed {
                return Err(io::Error::other("old stream failed"));
            }
            match self.rx.recv() {
                Ok(Msg::Data(c, n)) => {
                    let used = std::mem::replace(&mut self.chunk, c);
                    if used.capacity() > 0 {
                        let _ = self.back.try_send(used);
                    }
                    (self.len, self.pos) = (n, 0);
                }
                Ok(Msg::End(size, sha)) => self.end = Some((size, sha)),
                Ok(Msg::Failed(e)) => {
                    self.failed = true;
                    return Err(e);
                }
                Err(_) => return Err(io::Error::other("the old stream's reader stopped")),
            }
        }
        let have = self.chunk.get(self.pos..self.len).unwrap_or_default();
        let n = out.len().min(have.len());
        if let (Some(o), Some(h)) = (out.get_mut(..n), have.get(..n)) {
            o.copy_from_slice(h);
        }
        self.pos += n;
        Ok(n)
    }
}
