//! The nine streams of a patch as `diff` writes them: each spilled raw to an
//! unnamed temporary file while the ops are made (so memory does not grow with
//! the world), then compressed on its own, in parallel, with a dictionary no
//! larger than the stream (its size is known only then, and the applier
//! allocates all of it).

use super::ordered;
use crate::codec;
use crate::patchfile::{Codec, StreamInfo, STREAMS};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

pub struct StreamSet {
    spills: Vec<BufWriter<File>>,
    raw: Vec<u64>,
}

/// A compressed stream, ready to be copied into the patch after its header.
pub struct Packed {
    pub info: StreamInfo,
    pub file: File,
}

impl StreamSet {
    /// Spill files in `dir` (the output directory: it has room for the patch).
    pub fn new(dir: &Path) -> io::Result<StreamSet> {
        let spills = (0..STREAMS.len())
            .map(|_| tempfile::tempfile_in(dir).map(|f| BufWriter::with_capacity(256 * 1024, f)))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(StreamSet { spills, raw: vec![0; STREAMS.len()] })
    }

    pub fn put(&mut self, stream: usize, bytes: &[u8]) -> io::Result<()> {
        self.raw[stream] += bytes.len() as u64;
        self.spills[stream].write_all(bytes)
    }

    pub fn varint(&mut self, stream: usize, v: u64) -> io::Result<()> {
        let mut b = Vec::with_capacity(10);
        crate::patchfile::push_varint(&mut b, v);
        self.put(stream, &b)
    }

    /// Copies `len` bytes from `r` into a stream.
    pub fn copy_from(&mut self, stream: usize, r: impl io::Read, len: u64) -> io::Result<()> {
        let n = io::copy(&mut r.take(len), &mut self.spills[stream])?;
        if n != len {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "member data ends early"));
        }
        self.raw[stream] += n;
        Ok(())
    }

    /// Compresses every stream, on up to `threads` threads within `memory`.
    pub fn finish(self, dir: &Path, codec: Codec, level: u32, memory: u64, threads: usize) -> io::Result<Vec<Packed>> {
        let spills: Vec<File> = self.spills.into_iter().map(|w| w.into_inner().map_err(|e| e.into_error())).collect::<Result<_, _>>()?;
        // An encoder takes at most half the memory setting.
        let cap = (memory / 2).saturating_sub(4 << 20) / 12;
        let dicts: Vec<u64> = self.raw.iter().map(|&raw| codec::dict_for(codec, raw, cap.max(64 << 10))).collect();
        let costs: Vec<u64> = dicts.iter().map(|&d| codec::encoder_memory(codec, d)).collect();
        let mut packed = Vec::with_capacity(STREAMS.len());
        ordered::run_ordered(
            &costs,
            threads,
            memory,
            |i| -> io::Result<Packed> {
                let mut spill = &spills[i];
                spill.seek(SeekFrom::Start(0))?;
                let mut input = Counting { inner: BufReader::with_capacity(256 * 1024, spill), n: 0 };
                let mut file = tempfile::tempfile_in(dir)?;
                let size = {
                    let mut w = BufWriter::with_capacity(256 * 1024, &file);
                    let size = codec::encode(codec, level, dicts[i], &mut input, &mut w)?;
                    w.flush()?;
                    size
                };
                if input.n != self.raw[i] {
                    return Err(io::Error::other(format!("stream {} spilled {} bytes, read back {}", STREAMS[i], self.raw[i], input.n)));
                }
                file.seek(SeekFrom::Start(0))?;
                let info = StreamInfo { name: STREAMS[i].into(), codec, dict: dicts[i], raw_size: self.raw[i], size };
                Ok(Packed { info, file })
            },
            |_, p| {
                packed.push(p?);
                Ok::<(), io::Error>(())
            },
        )?;
        Ok(packed)
    }
}

/// Counts what passes.
struct Counting<R> {
    inner: R,
    n: u64,
}

impl<R: io::Read> io::Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}
