//! Reading a tar stream member by member, front to back, from any `Read` (a pipe
//! will do), keeping the raw header bytes of each member so that a patch can
//! reproduce a tar byte for byte.
//!
//! A member is: its header blocks (PAX `x`/`g` and GNU `L`/`K` extension headers
//! included, verbatim), then `meta.size` bytes of data, then zero padding to the
//! next block. The stream ends with a zero block; what follows it (the second
//! zero block, blocking padding) is the tail.
//!
//! The input is hostile until verified: every size is bounded before anything is
//! allocated for it, header checksums are checked, padding must be zero, and no
//! malformed input panics.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::{Kind, Meta, BLOCK};
use crate::errors::shown;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Extension headers (PAX, GNU long names) larger than this are refused: no
/// legitimate path or flag list comes near it, and it bounds what a hostile
/// header can make us allocate.
pub const MAX_EXTENSION: u64 = 1 << 20;
/// All header blocks of one member together (extension headers included):
/// bounds how many extension headers a hostile stream can pile up.
pub const MAX_RAW_HEADER: u64 = 2 * MAX_EXTENSION + 8 * BLOCK as u64;
/// Bytes after the end-of-archive block that are kept as the tail.
pub const MAX_TAIL: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("read error at byte {offset}")]
    Io { offset: u64, source: io::Error },
    #[error("truncated at byte {offset}: {what}")]
    Truncated { offset: u64, what: &'static str },
    #[error("bad header checksum at byte {offset}")]
    Checksum { offset: u64 },
    #[error("bad header at byte {offset}: {what}")]
    BadHeader { offset: u64, what: String },
    #[error("\"{path}\": unsupported entry type {flag:?} at byte {offset}")]
    Unsupported { offset: u64, path: String, flag: char },
    #[error("\"{path}\": non-zero padding after its data at byte {offset}")]
    Padding { offset: u64, path: String },
    #[error("more than {MAX_TAIL} bytes after the end-of-archive block")]
    LongTail,
}

/// One member's header: its raw bytes and what they say.
#[derive(Debug, Clone)]
pub struct Member {
    /// Every header block of the member, extension headers included, verbatim.
    pub raw_header: Vec<u8>,
    pub meta: Meta,
    /// Offset of the first header block in the stream.
    pub offset: u64,
}

/// What the extension headers before a member say, overriding its ustar fields.
#[derive(Default)]
struct Extensions {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    mtime: Option<i64>,
    uid: Option<u64>,
    gid: Option<u64>,
    flags: Option<String>,
}

impl Extensions {
    /// The records of a PAX `x` header that binarydist uses.
    fn read_pax(&mut self, body: &[u8], start: u64) -> Result<(), TarError> {
        let mut records = body;
        while let Some(record) = next_pax_record(&mut records) {
            let (key, v) = record.map_err(|e| TarError::BadHeader { offset: start, what: format!("PAX record: {e}") })?;
            match key {
                b"path" => self.path = Some(v.to_vec()),
                b"linkpath" => self.link = Some(v.to_vec()),
                b"size" => self.size = Some(pax_number(v, start, "size")?),
                b"uid" => self.uid = Some(pax_number(v, start, "uid")?),
                b"gid" => self.gid = Some(pax_number(v, start, "gid")?),
                b"mtime" => self.mtime = Some(pax_time(v, start)?),
                b"SCHILY.fflags" => self.flags = Some(String::from_utf8_lossy(v).into_owned()),
                _ => {}
            }
        }
        Ok(())
    }
}

pub struct Reader<R: Read> {
    inner: R,
    offset: u64,
    /// Data bytes of the current member not yet read.
    data_left: u64,
    /// Padding after the current member's data.
    pad_left: usize,
    current_path: String,
    done: bool,
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Self {
        Reader { inner, offset: 0, data_left: 0, pad_left: 0, current_path: String::new(), done: false }
    }

    /// Bytes consumed from the underlying stream so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next member's header, after skipping whatever is left of the current
    /// one; `None` at the end-of-archive block.
    pub fn next_member(&mut self) -> Result<Option<Member>, TarError> {
        if self.done {
            return Ok(None);
        }
        self.skip_data()?;
        let start = self.offset;
        let mut raw = Vec::with_capacity(BLOCK);
        let mut ext = Extensions::default();
        loop {
            let mut block = [0u8; BLOCK];
            self.read_exact_at(&mut block, "header block")?;
            if block.iter().all(|&b| b == 0) {
                if raw.is_empty() {
                    self.done = true;
                    return Ok(None);
                }
                return Err(TarError::BadHeader {
                    offset: self.offset - BLOCK as u64,
                    what: "end of archive inside extension headers".into(),
                });
            }
            check_checksum(&block, self.offset - BLOCK as u64)?;
            raw.extend_from_slice(&block);
            self.check_raw_len(&raw, start)?;
            let header = tar::Header::from_byte_slice(&block);
            match block[156] {
                flag @ (b'x' | b'g' | b'L' | b'K') => self.read_extension(flag, header, &mut ext, &mut raw, start)?,
                flag => {
                    let meta = self.member_meta(header, flag, ext, start)?;
                    self.data_left = meta.size;
                    self.pad_left = super::write::padding(meta.size);
                    self.current_path = shown(&meta.path);
                    return Ok(Some(Member { raw_header: raw, meta, offset: start }));
                }
            }
        }
    }

    /// An extension header (PAX `x`/`g`, GNU `L`/`K`): its body is read into
    /// `raw` and what it says into `ext`, for the member header that follows.
    fn read_extension(
        &mut self,
        flag: u8,
        header: &tar::Header,
        ext: &mut Extensions,
        raw: &mut Vec<u8>,
        start: u64,
    ) -> Result<(), TarError> {
        let size = self.field_size(header)?;
        if size > MAX_EXTENSION {
            return Err(TarError::BadHeader { offset: self.offset, what: format!("extension header of {size} bytes") });
        }
        let len = usize::try_from(size)
            .map_err(|_| TarError::BadHeader { offset: self.offset, what: format!("extension header of {size} bytes") })?;
        let mut body = vec![0u8; len + super::write::padding(size)];
        self.read_exact_at(&mut body, "extension header")?;
        raw.extend_from_slice(&body);
        self.check_raw_len(raw, start)?;
        body.truncate(len);
        match flag {
            b'x' => ext.read_pax(&body, start)?,
            b'L' => ext.path = Some(trim_nul(&body).to_vec()),
            b'K' => ext.link = Some(trim_nul(&body).to_vec()),
            _ => {} // global headers: kept verbatim, their values unused
        }
        Ok(())
    }

    /// The metadata of a member from its ustar header and the extension
    /// headers before it, which override the ustar fields.
    fn member_meta(&self, header: &tar::Header, flag: u8, ext: Extensions, start: u64) -> Result<Meta, TarError> {
        let path_bytes = ext.path.unwrap_or_else(|| header.path_bytes().into_owned());
        let path_str = shown(std::ffi::OsStr::from_bytes(&path_bytes));
        let kind = match flag {
            b'0' | 0 | b'7' => Kind::File,
            b'1' => Kind::HardLink,
            b'2' => Kind::Symlink,
            b'3' => Kind::CharDev,
            b'4' => Kind::BlockDev,
            b'5' => Kind::Dir,
            b'6' => Kind::Fifo,
            f => return Err(TarError::Unsupported { offset: start, path: path_str, flag: f as char }),
        };
        // An old-style regular file whose name ends in '/' is a directory.
        let kind = if kind == Kind::File && path_bytes.ends_with(b"/") && flag == 0 { Kind::Dir } else { kind };
        let size = match ext.size {
            Some(s) => s,
            None => self.field_size(header)?,
        };
        let bad = |what: &str| TarError::BadHeader { offset: start, what: format!("{path_str}: bad {what} field") };
        let uid = match ext.uid {
            Some(u) => u,
            None => header.uid().map_err(|_| bad("uid"))?,
        };
        let gid = match ext.gid {
            Some(g) => g,
            None => header.gid().map_err(|_| bad("gid"))?,
        };
        let mtime = match ext.mtime {
            Some(t) => t,
            None => i64::try_from(header.mtime().map_err(|_| bad("mtime"))?).map_err(|_| bad("mtime"))?,
        };
        let link = match kind {
            Kind::HardLink | Kind::Symlink => {
                let l = ext.link.unwrap_or_else(|| header.link_name_bytes().map(|c| c.into_owned()).unwrap_or_default());
                // A hard link names a stored path; a symlink's target is
                // kept as written (`.` and `./x` mean something there).
                Some(bytes_path(if kind == Kind::HardLink { normalize(&l) } else { l }))
            }
            _ => None,
        };
        let dev = match kind {
            Kind::CharDev | Kind::BlockDev => {
                Some((header.device_major().ok().flatten().unwrap_or(0), header.device_minor().ok().flatten().unwrap_or(0)))
            }
            _ => None,
        };
        Ok(Meta {
            path: bytes_path(normalize(&path_bytes)),
            kind,
            mode: header.mode().map_err(|_| bad("mode"))? & 0o7777,
            uid: u32::try_from(uid).map_err(|_| bad("uid"))?,
            gid: u32::try_from(gid).map_err(|_| bad("gid"))?,
            mtime,
            // Regular files carry data, and so may a PAX hard link (POSIX
            // allows it); for the rest the size field means nothing.
            size: if matches!(kind, Kind::File | Kind::HardLink) { size } else { 0 },
            link,
            dev,
            flags: ext.flags.filter(|f| !f.is_empty()),
        })
    }

    /// Reads data of the current member; 0 at its end.
    pub fn read_data(&mut self, buf: &mut [u8]) -> Result<usize, TarError> {
        if self.data_left == 0 {
            self.check_padding()?;
            return Ok(0);
        }
        let want = buf.len().min(self.data_left.min(usize::MAX as u64) as usize);
        let room = buf.get_mut(..want).ok_or_else(|| past_buffer(self.offset))?;
        let n = self.inner.read(room).map_err(|e| TarError::Io { offset: self.offset, source: e })?;
        if n == 0 {
            return Err(TarError::Truncated { offset: self.offset, what: "member data" });
        }
        self.offset += n as u64;
        self.data_left -= n as u64;
        Ok(n)
    }

    /// The current member's data as a `Read`, for `io::copy` and friends.
    pub fn data(&mut self) -> DataReader<'_, R> {
        DataReader { reader: self }
    }

    /// Reads the rest of the current member's data, returning its SHA-256.
    pub fn sha256_data(&mut self) -> Result<[u8; 32], TarError> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = self.read_data(&mut buf)?;
            if n == 0 {
                return Ok(h.finalize().into());
            }
            h.update(buf.get(..n).ok_or_else(|| past_buffer(self.offset))?);
        }
    }

    /// Reads all of the current member's data into memory. The caller bounds the
    /// size (it knows `meta.size` before calling).
    pub fn read_data_to_vec(&mut self) -> Result<Vec<u8>, TarError> {
        // Grown as data arrives: a size field alone reserves no more than 1 MiB.
        let mut v = Vec::with_capacity(self.data_left.min(1 << 20) as usize);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = self.read_data(&mut buf)?;
            if n == 0 {
                return Ok(v);
            }
            v.extend_from_slice(buf.get(..n).ok_or_else(|| past_buffer(self.offset))?);
        }
    }

    /// After `next_member` returned `None`: reads what follows the end-of-archive
    /// block to the end of the stream and returns it with the stream.
    pub fn finish(mut self) -> Result<(Vec<u8>, R), TarError> {
        while self.next_member()?.is_some() {}
        let mut tail = Vec::new();
        let n = (&mut self.inner).take(MAX_TAIL + 1).read_to_end(&mut tail).map_err(|e| TarError::Io { offset: self.offset, source: e })?;
        if n as u64 > MAX_TAIL {
            return Err(TarError::LongTail);
        }
        Ok((tail, self.inner))
    }

    fn check_raw_len(&self, raw: &[u8], start: u64) -> Result<(), TarError> {
        if raw.len() as u64 > MAX_RAW_HEADER {
            return Err(TarError::BadHeader { offset: start, what: format!("member header over {MAX_RAW_HEADER} bytes") });
        }
        Ok(())
    }

    fn skip_data(&mut self) -> Result<(), TarError> {
        let mut buf = [0u8; 64 * 1024];
        while self.read_data(&mut buf)? > 0 {}
        Ok(())
    }

    fn check_padding(&mut self) -> Result<(), TarError> {
        if self.pad_left > 0 {
            let n = self.pad_left;
            let mut pad = vec![0u8; n];
            self.pad_left = 0;
            self.read_exact_at(&mut pad, "padding")?;
            if pad.iter().any(|&b| b != 0) {
                return Err(TarError::Padding { offset: self.offset - n as u64, path: self.current_path.clone() });
            }
        }
        Ok(())
    }

    fn field_size(&self, header: &tar::Header) -> Result<u64, TarError> {
        header.entry_size().map_err(|_| TarError::BadHeader { offset: self.offset, what: "bad size field".into() })
    }

    fn read_exact_at(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), TarError> {
        let mut rest = buf;
        while !rest.is_empty() {
            match self.inner.read(rest) {
                Ok(0) => return Err(TarError::Truncated { offset: self.offset, what }),
                Ok(n) => {
                    rest = std::mem::take(&mut rest).get_mut(n..).ok_or_else(|| past_buffer(self.offset))?;
                    self.offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TarError::Io { offset: self.offset, source: e }),
            }
        }
        Ok(())
    }
}

pub struct DataReader<'a, R: Read> {
    reader: &'a mut Reader<R>,
}

impl<R: Read> Read for DataReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read_data(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

fn check_checksum(block: &[u8; BLOCK], offset: u64) -> Result<(), TarError> {
    let field = &block[148..156];
    let text: Vec<u8> = field.iter().copied().filter(|b| (b'0'..=b'7').contains(b)).collect();
    let stored = std::str::from_utf8(&text).ok().and_then(|s| u32::from_str_radix(s, 8).ok());
    let unsigned: u32 = block.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { b as u32 }).sum();
    // Some old writers summed signed chars; accept either, as GNU tar does.
    let signed: i64 = block.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { b as i8 as i64 }).sum();
    match stored {
        Some(s) if s == unsigned || s as i64 == signed => Ok(()),
        _ => Err(TarError::Checksum { offset }),
    }
}

/// A reader that said it read more than it was given room for.
fn past_buffer(offset: u64) -> TarError {
    TarError::Io { offset, source: io::Error::other("a read returned more bytes than asked for") }
}

fn trim_nul(b: &[u8]) -> &[u8] {
    b.split(|&c| c == 0).next().unwrap_or(b)
}

/// Strips `./` prefixes and trailing slashes: `./usr/bin/` -> `usr/bin`.
fn normalize(mut p: &[u8]) -> Vec<u8> {
    while let Some(rest) = p.strip_prefix(b"./") {
        p = rest;
    }
    while let Some(rest) = p.strip_suffix(b"/").filter(|r| !r.is_empty()) {
        p = rest;
    }
    if p == b"." {
        p = b"";
    }
    p.to_vec()
}

fn bytes_path(b: Vec<u8>) -> PathBuf {
    PathBuf::from(std::ffi::OsStr::from_bytes(&b))
}

/// A PAX record's key and value.
type PaxRecord<'a> = (&'a [u8], &'a [u8]);

/// The next PAX record of `body` (`"<len> <key>=<value>\n"`, len counting the
/// whole record), cut by its length as POSIX defines it: a value may hold a
/// newline, as a file name may, which the tar crate's line-splitting parser
/// refuses.
fn next_pax_record<'a>(body: &mut &'a [u8]) -> Option<Result<PaxRecord<'a>, &'static str>> {
    let b: &'a [u8] = body;
    if b.is_empty() {
        return None;
    }
    *body = &[];
    let Some(space) = b.iter().position(|&c| c == b' ') else { return Some(Err("no length")) };
    let (digits, _) = b.split_at(space);
    let len = std::str::from_utf8(digits).ok().and_then(|s| s.parse::<usize>().ok());
    let Some(len) = len.filter(|&l| l > space + 1) else { return Some(Err("bad length")) };
    let Some((record, rest)) = b.get(space + 1..).and_then(|r| r.split_at_checked(len - space - 1)) else { return Some(Err("bad length")) };
    let Some(record) = record.strip_suffix(b"\n") else { return Some(Err("bad length")) };
    let Some(eq) = record.iter().position(|&c| c == b'=') else { return Some(Err("no '='")) };
    let (key, value) = record.split_at(eq);
    *body = rest;
    Some(Ok((key, value.get(1..).unwrap_or_default())))
}

fn pax_number(v: &[u8], offset: u64, what: &str) -> Result<u64, TarError> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| TarError::BadHeader { offset, what: format!("PAX {what} \"{}\"", shown(std::ffi::OsStr::from_bytes(v))) })
}

/// PAX times may carry a fraction; whole seconds are what we keep.
fn pax_time(v: &[u8], offset: u64) -> Result<i64, TarError> {
    let s = std::str::from_utf8(v).unwrap_or("");
    let whole = s.split('.').next().unwrap_or("");
    whole.parse().map_err(|_| TarError::BadHeader { offset, what: format!("PAX mtime {s:?}") })
}

#[cfg(test)]
mod tests;
