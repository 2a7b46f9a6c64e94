//! The nine streams of a patch being applied: each decoded on its own thread,
//! ahead of the applier, in chunks that come back for reuse. A stream that
//! decodes to more than the header's raw size is refused as it happens; one
//! that ends early fails the read that needed more.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::codec;
use crate::patchfile::{PatchFile, StreamInfo, STREAMS};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::Scope;

const CHUNK: usize = 256 * 1024;
const DEPTH: usize = 2;

enum Msg {
    Data(Vec<u8>, usize),
    Failed(io::Error),
}

/// One decoded stream, read as `Read` or `BufRead`.
pub struct StreamReader {
    pub name: &'static str,
    rx: Receiver<Msg>,
    back: SyncSender<Vec<u8>>,
    chunk: Vec<u8>,
    len: usize,
    pos: usize,
    ended: bool,
    /// Bytes handed to the applier.
    pub consumed: u64,
}

/// Opens every stream of `p`, each with its decoding thread in `scope`.
pub fn open<'scope, 'env>(scope: &'scope Scope<'scope, 'env>, p: &PatchFile) -> io::Result<Vec<StreamReader>> {
    p.header.streams.iter().zip(&p.offsets).zip(STREAMS).map(|((info, &offset), name)| spawn(scope, p, info, offset, name)).collect()
}

fn spawn<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    p: &PatchFile,
    info: &StreamInfo,
    offset: u64,
    name: &'static str,
) -> io::Result<StreamReader> {
    let mut file = File::open(&p.path)?;
    file.seek(SeekFrom::Start(offset))?;
    let input = BufReader::with_capacity(64 * 1024, file.take(info.size));
    let mut decoder = codec::decoder(info.codec, info.dict, input)?;
    let raw_size = info.raw_size;
    let (tx, rx) = sync_channel(DEPTH);
    let (back, back_rx) = sync_channel::<Vec<u8>>(DEPTH + 2);
    scope.spawn(move || {
        let mut total = 0u64;
        loop {
            let mut buf = back_rx.try_recv().unwrap_or_else(|_| vec![0; CHUNK]);
            let msg = match read_full(&mut decoder, &mut buf) {
                Ok(0) => return,
                Ok(n) if total + n as u64 > raw_size => Msg::Failed(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("stream {name} decodes to more than the {raw_size} bytes the header declares"),
                )),
                Ok(n) => {
                    total += n as u64;
                    Msg::Data(buf, n)
                }
                Err(e) => Msg::Failed(io::Error::new(e.kind(), format!("stream {name}: {e}"))),
            };
            let failed = matches!(msg, Msg::Failed(_));
            if tx.send(msg).is_err() || failed {
                return;
            }
        }
    });
    Ok(StreamReader { name, rx, back, chunk: Vec::new(), len: 0, pos: 0, ended: false, consumed: 0 })
}

/// Reads until `buf` is full or the input ends.
pub(super) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while let Some(rest) = buf.get_mut(n..).filter(|rest| !rest.is_empty()) {
        match r.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl StreamReader {
    /// True when the stream has nothing more (it decoded to its end).
    pub fn at_end(&mut self) -> io::Result<bool> {
        Ok(self.fill_buf()?.is_empty())
    }
}

impl BufRead for StreamReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.len && !self.ended {
            match self.rx.recv() {
                Ok(Msg::Data(c, n)) => {
                    let used = std::mem::replace(&mut self.chunk, c);
                    if used.capacity() > 0 {
                        let _ = self.back.try_send(used);
                    }
                    (self.len, self.pos) = (n, 0);
                }
                Ok(Msg::Failed(e)) => return Err(e),
                Err(_) => self.ended = true,
            }
        }
        self.chunk.get(self.pos..self.len).ok_or_else(|| io::Error::other("stream chunk out of range"))
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        self.consumed += n as u64;
    }
}

impl Read for StreamReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let have = self.fill_buf()?;
        let n = out.len().min(have.len());
        if let (Some(o), Some(h)) = (out.get_mut(..n), have.get(..n)) {
            o.copy_from_slice(h);
        }
        self.consume(n);
        Ok(n)
    }
}
