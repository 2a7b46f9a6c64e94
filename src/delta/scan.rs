//! Reading a dist for diffing: one pass front to back that lists its members
//! (raw header, metadata, where the data is, SHA-256 of the data) and digests the
//! whole uncompressed tar. A gzipped dist is spilled to an unnamed temporary file
//! on the way, so that member data can then be read at random (deltas need it);
//! a plain `.tar` is read in place.

use crate::tario::{self, Digests, HashingReader, Meta, TarError};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// One member of a scanned tar.
#[derive(Debug, Clone)]
pub struct ScannedMember {
    pub raw_header: Vec<u8>,
    pub meta: Meta,
    /// Where its data starts in the uncompressed tar.
    pub data_offset: u64,
    /// SHA-256 of its data (of nothing, for members without data).
    pub content: [u8; 32],
}

impl ScannedMember {
    pub fn size(&self) -> u64 {
        self.meta.size
    }
}

/// A dist read for diffing.
pub struct ScannedTar {
    pub path: PathBuf,
    pub members: Vec<ScannedMember>,
    /// What follows the end-of-archive block.
    pub tail: Vec<u8>,
    pub digests: Digests,
    /// The uncompressed tar, readable at any offset.
    file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}", path.display())]
    Tar { path: PathBuf, source: TarError },
}

impl ScannedTar {
    /// Reads `len` bytes of the uncompressed tar at `offset`.
    pub fn read_at(&self, offset: u64, len: u64) -> Result<Vec<u8>, ScanError> {
        let len = usize::try_from(len).map_err(|_| self.io_err(io::Error::other("member too large for memory")))?;
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, offset).map_err(|e| self.io_err(e))?;
        Ok(buf)
    }

    /// The data of member `index`.
    pub fn data(&self, index: usize) -> Result<Vec<u8>, ScanError> {
        let m = &self.members[index];
        self.read_at(m.data_offset, m.size())
    }

    /// Streams the data of member `index` into `w`.
    pub fn copy_data(&self, index: usize, w: &mut impl Write) -> Result<(), ScanError> {
        let m = &self.members[index];
        let mut buf = vec![0u8; 256 * 1024];
        let mut done = 0u64;
        while done < m.size() {
            let n = (m.size() - done).min(buf.len() as u64) as usize;
            self.file.read_exact_at(&mut buf[..n], m.data_offset + done).map_err(|e| self.io_err(e))?;
            w.write_all(&buf[..n]).map_err(|e| self.io_err(e))?;
            done += n as u64;
        }
        Ok(())
    }

    /// `len` bytes of member `index`'s data from `offset` in it.
    pub fn data_range(&self, index: usize, offset: u64, len: u64) -> Result<Vec<u8>, ScanError> {
        let m = &self.members[index];
        debug_assert!(offset + len <= m.size());
        self.read_at(m.data_offset + offset, len)
    }

    /// The data of member `index` as a reader, read in place.
    pub fn member_reader(&self, index: usize) -> impl Read + '_ {
        let m = &self.members[index];
        MemberReader { file: &self.file, at: m.data_offset, left: m.size() }
    }

    pub fn io_error(&self, e: io::Error) -> ScanError {
        self.io_err(e)
    }

    fn io_err(&self, e: io::Error) -> ScanError {
        ScanError::Io { path: self.path.clone(), source: e }
    }
}

struct MemberReader<'a> {
    file: &'a File,
    at: u64,
    left: u64,
}

impl Read for MemberReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (buf.len() as u64).min(self.left) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.at)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the tar changed under binarydist"));
        }
        self.at += n as u64;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Copies every byte read through it into a writer (the spill file).
struct Tee<R, W> {
    inner: R,
    copy: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

pub fn scan(path: &Path) -> Result<ScannedTar, ScanError> {
    let io_err = |e| ScanError::Io { path: path.into(), source: e };
    let mut probe = BufReader::new(File::open(path).map_err(io_err)?);
    let head = probe.fill_buf().map_err(io_err)?;
    let gzipped = head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b;
    if gzipped {
        let spill = tempfile::tempfile().map_err(io_err)?;
        let stream = tario::gz::open_tar(path).map_err(io_err)?;
        let tee = Tee { inner: stream, copy: BufWriter::with_capacity(256 * 1024, spill.try_clone().map_err(io_err)?) };
        let (members, tail, digests, tee) = scan_stream(path, tee)?;
        tee.copy.into_inner().map_err(|e| io_err(e.into_error()))?;
        Ok(ScannedTar { path: path.into(), members, tail, digests, file: spill })
    } else {
        let file = File::open(path).map_err(io_err)?;
        let stream = BufReader::with_capacity(256 * 1024, file.try_clone().map_err(io_err)?);
        let (members, tail, digests, _) = scan_stream(path, stream)?;
        Ok(ScannedTar { path: path.into(), members, tail, digests, file })
    }
}

type Scanned<R> = (Vec<ScannedMember>, Vec<u8>, Digests, R);

fn scan_stream<R: Read>(path: &Path, stream: R) -> Result<Scanned<R>, ScanError> {
    let tar_err = |e| ScanError::Tar { path: path.into(), source: e };
    let mut reader = tario::Reader::new(HashingReader::new(stream));
    let mut members = Vec::new();
    while let Some(member) = reader.next_member().map_err(tar_err)? {
        let data_offset = reader.offset();
        let content = reader.sha256_data().map_err(tar_err)?;
        members.push(ScannedMember { raw_header: member.raw_header, meta: member.meta, data_offset, content });
    }
    let (tail, hashing) = reader.finish().map_err(tar_err)?;
    let (stream, digests) = hashing.finish();
    Ok((members, tail, digests, stream))
}
