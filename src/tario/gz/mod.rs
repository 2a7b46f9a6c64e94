//! gzip in and out, and opening a dist whether it is `.tar` or `.tar.gz`.
//!
//! One writer serves dists (`pack`), `patch -o NAME.gz` and the base a target
//! keeps: the tar is cut into fixed-size blocks, each compressed on its own
//! into a gzip member that says its own size ([`member`]), on every core. Any
//! gzip reader sees one stream (gzip reads concatenated members as one); the
//! bytes depend only on the tar, the level and the block size, never on the
//! number of threads. The reader inflates such members side by side and falls
//! back to plain streaming for any other gzip file. docs/format.md gives the
//! layout and the measurements behind the level and block size.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod member;
pub mod read;
pub mod write;

pub use read::Reader;
pub use write::Writer;

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::Path;

/// Compression level of dists and of `patch -o` output (docs/format.md: zlib-rs
/// at level 6 is within 2% of gzip -6's size in under 40% of its time).
pub const LEVEL: u32 = 6;
/// Compression level of the base a target keeps: read once, at the next update,
/// and never served, so time matters more than size.
pub const BASE_LEVEL: u32 = 1;
/// Bytes of tar per member (docs/format.md: restarting the dictionary every
/// MiB costs 0.2% of size; smaller blocks lose more, larger ones gain little
/// and hold more memory in flight).
pub const BLOCK: usize = 1 << 20;

/// How to compress: level, block size (part of the output's definition) and
/// threads (not: any number gives the same bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub level: u32,
    pub block: usize,
    pub threads: usize,
}

impl Options {
    /// For dists and `patch -o`: [`LEVEL`], on every core.
    pub fn dist() -> Options {
        Options { level: LEVEL, block: BLOCK, threads: cores() }
    }

    /// For the base a target keeps: [`BASE_LEVEL`], on every core.
    pub fn base() -> Options {
        Options { level: BASE_LEVEL, ..Options::dist() }
    }

    /// The same, on `threads` threads when given.
    pub fn threads(self, threads: Option<usize>) -> Options {
        Options { threads: threads.unwrap_or(self.threads).max(1), ..self }
    }
}

/// The cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A gzip writer for dists ([`Options::dist`]). Call `finish`.
pub fn encoder<W: Write>(w: W) -> Writer<W> {
    Writer::new(w, &Options::dist())
}

/// A gzip writer with the given options. Call `finish`.
pub fn encoder_with<W: Write>(w: W, opts: &Options) -> Writer<W> {
    Writer::new(w, opts)
}

/// Most threads a reader inflates on: each inflates several hundred MB/s, far
/// more than what consumes a tar; more would only hold more blocks in memory.
pub const MAX_READ_THREADS: usize = 4;

/// Decompresses a gzip stream on threads of its own.
pub fn decoder<R: Read + Send + 'static>(r: R) -> Reader {
    Reader::new(r, &Options::dist().threads(Some(cores().min(MAX_READ_THREADS))))
}

/// Opens a dist or a kept base as a stream of uncompressed tar bytes. A file
/// starting with the gzip magic is decompressed (all members, as gunzip does).
pub fn open_tar(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    Ok(open_file(File::open(path)?)?.0)
}

/// The same for a file already open (the state directory opens its files
/// without following symlinks); also returns the file's size.
pub fn open_file(mut f: File) -> io::Result<(Box<dyn Read + Send>, u64)> {
    let size = f.metadata()?.len();
    let gzipped = starts_with_magic(&mut f)?;
    f.rewind()?;
    if gzipped {
        Ok((Box::new(decoder(f)), size))
    } else {
        Ok((Box::new(BufReader::with_capacity(256 * 1024, f)), size))
    }
}

/// Wraps a stream that may be gzipped (a pipe, say) into one of tar bytes.
pub fn maybe_gunzip<R: Read + Send + 'static>(mut r: R) -> io::Result<Box<dyn Read + Send>> {
    let mut magic = Vec::with_capacity(2);
    (&mut r).take(2).read_to_end(&mut magic)?;
    let gzipped = magic == [0x1f, 0x8b];
    let whole = io::Cursor::new(magic).chain(r);
    if gzipped {
        Ok(Box::new(decoder(whole)))
    } else {
        Ok(Box::new(BufReader::with_capacity(256 * 1024, whole)))
    }
}

/// Which side of a copy failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{0}")]
    Input(io::Error),
    #[error("{0}")]
    Output(io::Error),
}

/// Copies a (decompressed) stream to `out` in large chunks, as `binarydist cat`
/// does; returns the bytes copied.
pub fn copy_out(mut input: impl Read, out: impl Write) -> Result<u64, CopyError> {
    let mut out = io::BufWriter::with_capacity(1 << 20, out);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Input(e)),
        };
        // A reader returns at most the buffer's length.
        out.write_all(buf.get(..n).unwrap_or(&buf)).map_err(CopyError::Output)?;
        total += n as u64;
    }
    out.flush().map_err(CopyError::Output)?;
    Ok(total)
}

fn starts_with_magic(r: &mut impl Read) -> io::Result<bool> {
    let mut magic = Vec::with_capacity(2);
    r.take(2).read_to_end(&mut magic)?;
    Ok(magic == [0x1f, 0x8b])
}

#[cfg(test)]
mod tests;
