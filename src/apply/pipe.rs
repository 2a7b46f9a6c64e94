//! A bounded in-process pipe between two stages of a patch chain.
//!
//! Bytes travel in chunks over a bounded channel, so a fast stage waits for a
//! slow one instead of buffering the world. The writer must be closed: a reader
//! sees a clean end of stream only after [`PipeWriter::close`], so a stage that
//! fails (or panics) can never look, downstream, like a stream that ended well.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

const CHUNK: usize = 128 * 1024;
/// Chunks in flight per pipe: 1 MiB.
const DEPTH: usize = 8;

enum Msg {
    Data(Vec<u8>),
    End,
}

/// The error kind a pipe gives when the other side went away; the stage on the
/// other side has the real story.
pub const BROKEN: io::ErrorKind = io::ErrorKind::BrokenPipe;

pub fn pipe() -> (PipeWriter, PipeReader) {
    let (tx, rx) = sync_channel(DEPTH);
    (PipeWriter { tx, buf: Vec::with_capacity(CHUNK) }, PipeReader { rx, chunk: Vec::new(), pos: 0, ended: false })
}

pub struct PipeWriter {
    tx: SyncSender<Msg>,
    buf: Vec<u8>,
}

impl PipeWriter {
    fn send_buf(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
            self.tx.send(Msg::Data(chunk)).map_err(|_| io::Error::new(BROKEN, "the next stage stopped reading"))?;
        }
        Ok(())
    }

    /// Sends what is buffered and a clean end of stream.
    pub fn close(mut self) -> io::Result<()> {
        self.send_buf()?;
        self.tx.send(Msg::End).map_err(|_| io::Error::new(BROKEN, "the next stage stopped reading"))
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(data.get(..n).unwrap_or(data));
        if self.buf.len() == CHUNK {
            self.send_buf()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buf()
    }
}

pub struct PipeReader {
    rx: Receiver<Msg>,
    chunk: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            if self.ended || out.is_empty() {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Msg::Data(c)) => {
                    self.chunk = c;
                    self.pos = 0;
                }
                Ok(Msg::End) => self.ended = true,
                Err(_) => return Err(io::Error::new(BROKEN, "the previous stage failed")),
            }
        }
        let mut rest = self.chunk.get(self.pos..).unwrap_or_default();
        let n = rest.read(out)?;
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_only_when_closed() {
        let (mut w, mut r) = pipe();
        let t = std::thread::spawn(move || {
            w.write_all(&vec![5u8; 300_000]).unwrap();
            w.close().unwrap();
        });
        let mut v = Vec::new();
        r.read_to_end(&mut v).unwrap();
        assert_eq!(v.len(), 300_000);
        t.join().unwrap();

        let (mut w, mut r) = pipe();
        w.write_all(b"abc").unwrap();
        w.flush().unwrap();
        drop(w);
        let mut v = Vec::new();
        assert_eq!(r.read_to_end(&mut v).unwrap_err().kind(), BROKEN);
    }
}
