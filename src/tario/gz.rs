//! gzip in and out, and opening a dist whether it is `.tar` or `.tar.gz`.
//!
//! The gzip header is fixed (no name, mtime 0, OS "unknown") so that the same tar
//! always compresses to the same bytes; flate2 is single-threaded here, which
//! keeps the output independent of the number of cores.

use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

/// Compression level for dists: gzip's default, a fair trade on a build machine.
pub const LEVEL: u32 = 6;

pub fn encoder<W: Write>(w: W) -> GzEncoder<W> {
    GzBuilder::new().mtime(0).operating_system(255).write(w, Compression::new(LEVEL))
}

/// Opens a dist or a kept base as a stream of uncompressed tar bytes. A file
/// starting with the gzip magic is decompressed (all members, as gunzip does).
pub fn open_tar(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    Ok(open_file(File::open(path)?)?.0)
}

/// The same for a file already open; also returns its size.
pub fn open_file(file: File) -> io::Result<(Box<dyn Read + Send>, u64)> {
    let size = file.metadata()?.len();
    let mut f = BufReader::with_capacity(256 * 1024, file);
    let magic = {
        use std::io::BufRead;
        let b = f.fill_buf()?;
        b.len() >= 2 && b[0] == 0x1f && b[1] == 0x8b
    };
    if magic {
        Ok((Box::new(BufReader::with_capacity(256 * 1024, flate2::bufread::MultiGzDecoder::new(f))), size))
    } else {
        Ok((Box::new(f), size))
    }
}

/// Wraps a stream that may be gzipped (a pipe, say) into one of tar bytes.
pub fn maybe_gunzip<R: Read + Send + 'static>(r: R) -> io::Result<Box<dyn Read + Send>> {
    use std::io::BufRead;
    let mut b = BufReader::with_capacity(256 * 1024, r);
    let buf = b.fill_buf()?;
    if buf.len() >= 2 && buf[0] == 0x1f && buf[1] == 0x8b {
        Ok(Box::new(BufReader::with_capacity(256 * 1024, flate2::bufread::MultiGzDecoder::new(b))))
    } else {
        Ok(Box::new(b))
    }
}
