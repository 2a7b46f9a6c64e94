//! The hashing tee: size, MD5 and SHA-256 of whatever passes through.
//!
//! MD5 is what DragonFly's mirrors publish and what the seed asks for; SHA-256 is
//! the one that protects anything. Both are always computed together, in one pass.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use md5::{Digest, Md5};
use sha2::Sha256;
use std::io::{self, Read, Write};

/// Size and digests of a byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Digests {
    pub size: u64,
    pub md5: [u8; 16],
    pub sha256: [u8; 32],
}

impl Digests {
    pub fn md5_hex(&self) -> String {
        hex::encode(self.md5)
    }
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
    pub fn of(bytes: &[u8]) -> Digests {
        let mut h = Hasher::default();
        h.update(bytes);
        h.finish()
    }
}

#[derive(Default, Clone)]
pub struct Hasher {
    md5: Md5,
    sha256: Sha256,
    size: u64,
}

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        self.md5.update(bytes);
        self.sha256.update(bytes);
        self.size += bytes.len() as u64;
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn finish(self) -> Digests {
        Digests { size: self.size, md5: self.md5.finalize().into(), sha256: self.sha256.finalize().into() }
    }
}

/// SHA-256 alone, for file contents in manifests.
pub fn sha256_of(mut r: impl Read) -> io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finalize().into());
        }
        // A reader returns at most the buffer's length.
        h.update(buf.get(..n).unwrap_or(&buf));
    }
}

/// A reader that hashes every byte read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader { inner, hasher: Hasher::default() }
    }
    pub fn bytes_read(&self) -> u64 {
        self.hasher.size()
    }
    pub fn finish(self) -> (R, Digests) {
        (self.inner, self.hasher.finish())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or(buf));
        Ok(n)
    }
}

/// A writer that hashes every byte written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: Hasher::default() }
    }
    pub fn bytes_written(&self) -> u64 {
        self.hasher.size()
    }
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
    pub fn finish(self) -> (W, Digests) {
        (self.inner, self.hasher.finish())
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or(buf));
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        let d = Digests::of(b"abc");
        assert_eq!(d.size, 3);
        assert_eq!(d.md5_hex(), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(d.sha256_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"ab").unwrap();
        w.write_all(b"c").unwrap();
        assert_eq!(w.finish().1, d);
    }
}
