//! The patch file format, shared by the writer (`delta`) and the reader (`apply`).
//!
//! A patch is:
//!
//! ```text
//! preamble   8-byte magic "BDPATCH\n", u32 LE format version, u32 LE header length,
//!            32-byte SHA-256 of the header
//! header     JSON (PatchHeader): both dist names, size/MD5/SHA-256 of the old and new
//!            uncompressed tars, the keep list, the bounds of every allocation,
//!            size and SHA-256 of the ops stream
//! ops        ONE zstd frame (window <= 16 MiB) holding one op per new tar member and
//!            an end op with the tar's tail
//! ```
//!
//! One op, inside the zstd stream:
//!
//! ```text
//! tag        u8: bits 0-1 header (HDR_*), bits 2-3 data (DATA_*); 0xff = end
//! source     zigzag varint, old member index minus the applier's cursor
//!            (present when the header or the data comes from an old member)
//! header     varint length + raw header blocks        (HDR_LITERAL)
//! delta      varint length + bipatch stream            (DATA_DELTA)
//! data       exactly the member's data size bytes      (DATA_LITERAL)
//! end        0xff, varint tail length, tail bytes (what follows the end-of-archive block)
//! ```
//!
//! Everything read from a patch is bounded before it is allocated: the header's
//! length by [`MAX_HEADER`], every other length by a bound the header declares,
//! each declared bound by an absolute limit.

use crate::names::{DistName, PatchName, PATCH_SUFFIX};
use crate::tario::Digests;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

pub const MAGIC: &[u8; 8] = b"BDPATCH\n";
/// The format this code writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
pub const PREAMBLE_LEN: usize = 8 + 4 + 4 + 32;
/// A header longer than this is refused before it is read.
pub const MAX_HEADER: u32 = 64 << 20;
/// zstd window of the ops stream: 16 MiB gets nearly all of the shared-context
/// gain and bounds the decoder's memory. Measured on a real security update
/// (925 changed files, 108 MB): member deltas zstd-19'd one by one 4.75 MB,
/// as one stream 4.19 MB with a 16 MiB window, 4.06 MB with 128 MiB.
pub const WINDOW_LOG: u32 = 24;
/// Absolute ceiling on any single in-memory bound a header may declare
/// (an old member held for a delta, the kept set): past it a header is absurd.
pub const MAX_DECLARED_MEMORY: u64 = 16 << 30;
/// Raw header blocks of one member: extension headers up to tario's limit, twice
/// (path and link), plus a few blocks.
pub const MAX_RAW_HEADER: u64 = crate::tario::read::MAX_RAW_HEADER;

pub const HDR_LITERAL: u8 = 0;
pub const HDR_SAME: u8 = 1;
pub const DATA_NONE: u8 = 0;
pub const DATA_COPY: u8 = 1;
pub const DATA_DELTA: u8 = 2;
pub const DATA_LITERAL: u8 = 3;
pub const TAG_END: u8 = 0xff;

pub fn tag(header: u8, data: u8) -> u8 {
    header | (data << 2)
}

/// Size and digests of an uncompressed tar, as hex for the JSON header.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TarDigest {
    pub size: u64,
    pub md5: String,
    pub sha256: String,
}

impl From<&Digests> for TarDigest {
    fn from(d: &Digests) -> Self {
        TarDigest { size: d.size, md5: d.md5_hex(), sha256: d.sha256_hex() }
    }
}

impl TarDigest {
    pub fn matches(&self, d: &Digests) -> bool {
        self.size == d.size && self.md5 == d.md5_hex() && self.sha256 == d.sha256_hex()
    }
}

/// Size and SHA-256 of the first bytes of a tar.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Prefix {
    pub size: u64,
    pub sha256: String,
}

/// How much of the old tar [`Prefix`] covers, at most.
pub const PREFIX_LEN: u64 = 64 * 1024;

/// An old member the applier must keep in memory once it has read it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Keep {
    /// Index of the member in the old tar (0 = first member).
    pub index: u64,
    /// Bytes of its raw header, checked against the old stream.
    pub header_size: u64,
    /// Bytes of data to keep: its full data size, or 0 when only its header is used.
    pub data_size: u64,
    /// How many ops use it; the applier frees it after the last.
    pub uses: u64,
}

/// How the new members were made, for `info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub copies: u64,
    pub copy_bytes: u64,
    pub deltas: u64,
    pub delta_source_bytes: u64,
    pub delta_bytes: u64,
    pub literals: u64,
    pub literal_bytes: u64,
    pub same_headers: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PatchHeader {
    pub format: u32,
    pub from: String,
    pub to: String,
    pub old: TarDigest,
    pub new: TarDigest,
    /// The first bytes of the old tar: the applier checks them as soon as it has
    /// read them, so a wrong base is refused early (a dist starts with its manifest,
    /// which names it).
    pub old_prefix: Prefix,
    pub old_members: u64,
    pub new_members: u64,
    /// Old members to keep once read, in old-index order.
    pub keep: Vec<Keep>,
    /// Sum of the kept headers and data: the most the kept set ever holds.
    pub kept_bytes: u64,
    /// The largest old member data held in memory as a delta source.
    pub max_source: u64,
    /// The longest raw header, delta stream and tail in the ops.
    pub max_raw_header: u64,
    pub max_delta: u64,
    pub tail_size: u64,
    pub window_log: u32,
    pub ops_size: u64,
    pub ops_sha256: String,
    pub stats: Stats,
}

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("{}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: not a binarydist patch (magic {found:?}, expected {expected:?})", path.display())]
    Magic { path: PathBuf, expected: String, found: String },
    #[error("{}: patch format version {found}, this binarydist reads up to version {FORMAT_VERSION}: upgrade binarydist", path.display())]
    NewerVersion { path: PathBuf, found: u32 },
    #[error("{}: truncated: {what}", path.display())]
    Truncated { path: PathBuf, what: String },
    #[error("{}: corrupt: {what}", path.display())]
    Corrupt { path: PathBuf, what: String },
    #[error("{}: absurd header: {what}", path.display())]
    Absurd { path: PathBuf, what: String },
    #[error("{}: file name says {expected}, header says {found}", path.display())]
    NameMismatch { path: PathBuf, expected: String, found: String },
}

/// A patch whose header has been read and checked; the ops start at `ops_offset`.
#[derive(Debug, Clone)]
pub struct PatchFile {
    pub path: PathBuf,
    pub header: PatchHeader,
    pub from: DistName,
    pub to: DistName,
    pub ops_offset: u64,
}

/// Writes preamble and header; the caller writes the ops stream after it.
pub fn write_header(w: &mut impl Write, header: &PatchHeader) -> io::Result<()> {
    let json = serde_json::to_vec_pretty(header).map_err(io::Error::other)?;
    let sha: [u8; 32] = Sha256::digest(&json).into();
    w.write_all(MAGIC)?;
    w.write_all(&FORMAT_VERSION.to_le_bytes())?;
    w.write_all(&u32::try_from(json.len()).map_err(io::Error::other)?.to_le_bytes())?;
    w.write_all(&sha)?;
    w.write_all(&json)
}

/// True when the file starts with the patch magic (or is named like a patch).
pub fn looks_like_patch(path: &Path) -> bool {
    if path.to_string_lossy().ends_with(PATCH_SUFFIX) {
        return true;
    }
    let mut magic = [0u8; 8];
    File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == MAGIC
}

/// Reads and checks a patch's header: magic, version, header digest, every bound,
/// the names against the file name, and the file's length against the ops size.
/// The ops stream's SHA-256 is checked by [`verify_ops`].
pub fn read_header(path: &Path) -> Result<PatchFile, FormatError> {
    let io_err = |e| FormatError::Io { path: path.into(), source: e };
    let corrupt = |what: String| FormatError::Corrupt { path: path.into(), what };
    let absurd = |what: String| FormatError::Absurd { path: path.into(), what };
    let mut f = File::open(path).map_err(io_err)?;
    let file_len = f.metadata().map_err(io_err)?.len();
    let mut pre = [0u8; PREAMBLE_LEN];
    if (file_len as usize) < PREAMBLE_LEN {
        let mut start = Vec::new();
        f.read_to_end(&mut start).map_err(io_err)?;
        if !MAGIC.starts_with(&start[..start.len().min(8)]) || start.is_empty() {
            return Err(magic_err(path, &start));
        }
        return Err(FormatError::Truncated {
            path: path.into(),
            what: format!("{file_len} bytes, shorter than the {PREAMBLE_LEN}-byte preamble"),
        });
    }
    f.read_exact(&mut pre).map_err(io_err)?;
    if &pre[..8] != MAGIC {
        return Err(magic_err(path, &pre[..8]));
    }
    let version = u32::from_le_bytes(pre[8..12].try_into().unwrap());
    if version > FORMAT_VERSION {
        return Err(FormatError::NewerVersion { path: path.into(), found: version });
    }
    if version == 0 {
        return Err(corrupt("format version 0".into()));
    }
    let header_len = u32::from_le_bytes(pre[12..16].try_into().unwrap());
    if header_len > MAX_HEADER {
        return Err(absurd(format!("header of {header_len} bytes, the limit is {MAX_HEADER}")));
    }
    if (PREAMBLE_LEN as u64 + header_len as u64) > file_len {
        return Err(FormatError::Truncated {
            path: path.into(),
            what: format!("header of {header_len} bytes, but the file has {} after the preamble", file_len - PREAMBLE_LEN as u64),
        });
    }
    let mut json = vec![0u8; header_len as usize];
    f.read_exact(&mut json).map_err(io_err)?;
    let sha: [u8; 32] = Sha256::digest(&json).into();
    if sha[..] != pre[16..48] {
        return Err(corrupt(format!("header SHA-256 is {}, the preamble says {}", hex::encode(sha), hex::encode(&pre[16..48]))));
    }
    let header: PatchHeader = serde_json::from_slice(&json).map_err(|e| corrupt(format!("header: {e}")))?;
    if header.format != version {
        return Err(corrupt(format!("header says format {}, preamble {version}", header.format)));
    }
    let ops_offset = PREAMBLE_LEN as u64 + header_len as u64;
    let expected_len = ops_offset.checked_add(header.ops_size).ok_or_else(|| absurd(format!("ops size {}", header.ops_size)))?;
    if file_len < expected_len {
        return Err(FormatError::Truncated { path: path.into(), what: format!("{file_len} bytes, the header says {expected_len}") });
    }
    if file_len > expected_len {
        return Err(corrupt(format!("{file_len} bytes, the header says {expected_len}")));
    }
    check_bounds(&header).map_err(absurd)?;
    let from = DistName::parse(&header.from).map_err(|e| corrupt(format!("old dist name: {e}")))?;
    let to = DistName::parse(&header.to).map_err(|e| corrupt(format!("new dist name: {e}")))?;
    // A patch is refused when its name says something else than its header; a file
    // renamed to something that is no patch name at all is judged by its header.
    if let Some(file) = path.file_name().and_then(|f| f.to_str()) {
        if let Ok(named) = PatchName::from_file_name(file) {
            if named.from != from || named.to != to {
                return Err(FormatError::NameMismatch { path: path.into(), expected: named.to_string(), found: format!("{from}--{to}") });
            }
        }
    }
    Ok(PatchFile { path: path.into(), header, from, to, ops_offset })
}

fn magic_err(path: &Path, found: &[u8]) -> FormatError {
    FormatError::Magic {
        path: path.into(),
        expected: String::from_utf8_lossy(MAGIC).into_owned(),
        found: String::from_utf8_lossy(found).into_owned(),
    }
}

/// Checks every bound a header declares against absolute limits and against each
/// other, so that an allocation sized by one of them can never be absurd.
fn check_bounds(h: &PatchHeader) -> Result<(), String> {
    let over = |what: &str, v: u64, limit: u64| if v > limit { Err(format!("{what} {v} exceeds {limit}")) } else { Ok(()) };
    over("window log", h.window_log as u64, WINDOW_LOG as u64)?;
    over("largest delta source", h.max_source, MAX_DECLARED_MEMORY)?;
    over("kept set", h.kept_bytes, MAX_DECLARED_MEMORY)?;
    over("largest raw header", h.max_raw_header, MAX_RAW_HEADER)?;
    over("tail", h.tail_size, crate::tario::read::MAX_TAIL)?;
    over("old prefix", h.old_prefix.size, PREFIX_LEN.min(h.old.size))?;
    let mut sum = 0u64;
    let mut last = None;
    for k in &h.keep {
        if last.is_some_and(|l| k.index <= l) || k.index >= h.old_members {
            return Err(format!("keep list entry {} out of order or past the {} old members", k.index, h.old_members));
        }
        last = Some(k.index);
        over("kept header", k.header_size, MAX_RAW_HEADER)?;
        sum = sum.saturating_add(k.header_size).saturating_add(k.data_size);
    }
    if sum != h.kept_bytes {
        return Err(format!("keep list adds up to {sum} bytes, the header says {}", h.kept_bytes));
    }
    for (what, d) in [("old", &h.old), ("new", &h.new)] {
        if d.md5.len() != 32 || d.sha256.len() != 64 || !d.md5.bytes().chain(d.sha256.bytes()).all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{what} tar digests are not hex"));
        }
    }
    Ok(())
}

/// Reads the whole ops stream once and checks its SHA-256 against the header, so
/// that a truncated or bit-flipped patch is refused before any byte is applied.
pub fn verify_ops(p: &PatchFile) -> Result<(), FormatError> {
    use std::io::{Seek, SeekFrom};
    let io_err = |e| FormatError::Io { path: p.path.clone(), source: e };
    let mut f = File::open(&p.path).map_err(io_err)?;
    f.seek(SeekFrom::Start(p.ops_offset)).map_err(io_err)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut left = p.header.ops_size;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = f.read(&mut buf[..want]).map_err(io_err)?;
        if n == 0 {
            return Err(FormatError::Truncated { path: p.path.clone(), what: format!("ops stream ends {left} bytes early") });
        }
        h.update(&buf[..n]);
        left -= n as u64;
    }
    let found = hex::encode(h.finalize());
    if found != p.header.ops_sha256 {
        return Err(FormatError::Corrupt {
            path: p.path.clone(),
            what: format!("ops SHA-256 is {found}, the header says {}", p.header.ops_sha256),
        });
    }
    Ok(())
}

pub fn write_varint(w: &mut impl Write, mut v: u64) -> io::Result<()> {
    let mut buf = [0u8; 10];
    let mut n = 0;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            buf[n] = byte;
            n += 1;
            break;
        }
        buf[n] = byte | 0x80;
        n += 1;
    }
    w.write_all(&buf[..n])
}

pub fn read_varint(r: &mut impl Read) -> io::Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let mut b = [0u8];
        r.read_exact(&mut b)?;
        v |= ((b[0] & 0x7f) as u64) << shift;
        if b[0] & 0x80 == 0 {
            if shift == 63 && b[0] > 1 {
                break;
            }
            return Ok(v);
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidData, "varint longer than 64 bits"))
}

pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

impl std::fmt::Display for PatchFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = &self.header;
        let s = &h.stats;
        writeln!(f, "patch       {}", self.path.display())?;
        writeln!(f, "format      {}", h.format)?;
        writeln!(f, "from        {}", h.from)?;
        writeln!(f, "to          {}", h.to)?;
        writeln!(f, "old tar     {} bytes, {} members", h.old.size, h.old_members)?;
        writeln!(f, "old MD5     {}", h.old.md5)?;
        writeln!(f, "old SHA256  {}", h.old.sha256)?;
        writeln!(f, "new tar     {} bytes, {} members", h.new.size, h.new_members)?;
        writeln!(f, "new MD5     {}", h.new.md5)?;
        writeln!(f, "new SHA256  {}", h.new.sha256)?;
        writeln!(f, "ops         {} bytes zstd (window 2^{}), SHA256 {}", h.ops_size, h.window_log, h.ops_sha256)?;
        writeln!(f, "keeps       {} old members, {} bytes", h.keep.len(), h.kept_bytes)?;
        writeln!(f, "memory      largest delta source {} bytes, kept set {} bytes", h.max_source, h.kept_bytes)?;
        writeln!(f, "copies      {} ({} bytes)", s.copies, s.copy_bytes)?;
        writeln!(f, "deltas      {} ({} bytes of delta against {} bytes of source)", s.deltas, s.delta_bytes, s.delta_source_bytes)?;
        writeln!(f, "literals    {} ({} bytes)", s.literals, s.literal_bytes)?;
        writeln!(f, "headers     {} same as the old member's, {} sent", s.same_headers, h.new_members - s.same_headers.min(h.new_members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_reject_overlong() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            write_varint(&mut b, v).unwrap();
            assert_eq!(read_varint(&mut &b[..]).unwrap(), v);
        }
        assert!(read_varint(&mut &[0xffu8; 11][..]).is_err());
        assert!(read_varint(&mut &[0x80u8][..]).is_err());
        for v in [0i64, 1, -1, 1000, -1000, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_varint_round_trips(v in any::<u64>(), i in any::<i64>()) {
                let mut b = Vec::new();
                write_varint(&mut b, v).unwrap();
                prop_assert!(b.len() <= 10);
                prop_assert_eq!(read_varint(&mut &b[..]).unwrap(), v);
                prop_assert_eq!(unzigzag(zigzag(i)), i);
            }

            #[test]
            fn no_bytes_make_a_varint_read_panic_or_run_past_ten_bytes(b in proptest::collection::vec(any::<u8>(), 0..16)) {
                let mut r = &b[..];
                if read_varint(&mut r).is_ok() {
                    prop_assert!(b.len() - r.len() <= 10);
                }
            }
        }
    }
}
