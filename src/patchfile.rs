//! The patch file format, shared by the writer (`delta`) and the reader (`apply`).
//!
//! A patch (format 2) is:
//!
//! ```text
//! preamble   8-byte magic "BDPATCH\n", u32 LE format version, u32 LE header length,
//!            32-byte SHA-256 of the header
//! header     JSON (PatchHeader): both dist names, size/MD5/SHA-256 of the old and new
//!            uncompressed tars, the keep lists, the bounds of every allocation, and
//!            for each stream its codec, dictionary, raw and packed size, and the
//!            SHA-256 of all the streams
//! streams    the nine STREAMS, in that order, each compressed on its own (raw LZMA2,
//!            or one zstd frame), each in its own context: what each holds compresses
//!            best beside its own kind (measured: research for issue 15, README)
//! ```
//!
//! The `ops` stream holds one op per new tar member, then an end op:
//!
//! ```text
//! tag        u8: bits 0-1 header (HDR_*), bits 2-4 data (DATA_*); 0xff = end
//! source     zigzag varint, old member index minus the applier's cursor (present
//!            when the header or the data comes from an old member: HDR_SAME,
//!            HDR_DIFF, DATA_COPY, DATA_DELTA)
//! back       varint, this member's index minus an earlier new member's (DATA_NEW)
//! header     varint length (HDR_LITERAL, HDR_DIFF); the bytes are in `headers`:
//!            raw, or bytewise differences from the source's raw header (HDR_DIFF)
//! end        0xff, varint tail length, tail bytes (what follows the end-of-archive block)
//! ```
//!
//! Member data comes from the other streams: DATA_LITERAL's `size` bytes from
//! `literal`; DATA_DELTA's from controls until `size` bytes are made, each control
//! being `seek` (zigzag varint: moves the old position), `add` (varint: that many
//! old bytes plus as many difference bytes) and `copy` (varint: that many bytes of
//! `extra`). The difference bytes, mostly zero, are run-length coded: `runs` holds
//! varint pairs (zero run, non-zero run) and `diff` the non-zero runs' bytes; both
//! continue from one control, one member, to the next.
//!
//! Everything read from a patch is bounded before it is allocated: the header's
//! length by [`MAX_HEADER`], every other length by a bound the header declares,
//! each declared bound by an absolute limit ([`check_bounds`]).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::names::{DistName, PatchName, PATCH_SUFFIX};
use crate::tario::Digests;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

pub const MAGIC: &[u8; 8] = b"BDPATCH\n";
/// The format this code writes, and the only one it reads: format 1 (one
/// interleaved zstd stream of bsdiff deltas) was never released, and reading it
/// would keep a second applier and bipatch for patches that a mirror can remake.
pub const FORMAT_VERSION: u32 = 2;
pub const PREAMBLE_LEN: usize = 8 + 4 + 4 + 32;
/// A header longer than this is refused before it is read.
pub const MAX_HEADER: u32 = 64 << 20;
/// The largest dictionary (LZMA2) or window (zstd) of a stream: 16 MiB gets
/// nearly all of the gain (measured: 12% from one shared context at 16 MiB,
/// 3% more at 128 MiB) and bounds the applier's memory to 9 x 16 MiB.
pub const MAX_DICT: u64 = 16 << 20;
/// Absolute ceiling on any single in-memory bound a header may declare
/// (an old member held for a delta, the kept set): past it a header is absurd.
pub const MAX_DECLARED_MEMORY: u64 = 16 << 30;
/// Raw header blocks of one member: extension headers up to tario's limit, twice
/// (path and link), plus a few blocks.
pub const MAX_RAW_HEADER: u64 = crate::tario::read::MAX_RAW_HEADER;

/// The streams of a patch, in file order.
pub const STREAMS: [&str; 9] = ["ops", "headers", "literal", "seek", "add", "copy", "runs", "diff", "extra"];
/// Indexes into [`STREAMS`].
pub mod stream {
    pub const OPS: usize = 0;
    pub const HEADERS: usize = 1;
    pub const LITERAL: usize = 2;
    pub const SEEK: usize = 3;
    pub const ADD: usize = 4;
    pub const COPY: usize = 5;
    pub const RUNS: usize = 6;
    pub const DIFF: usize = 7;
    pub const EXTRA: usize = 8;
}

pub const HDR_LITERAL: u8 = 0;
pub const HDR_SAME: u8 = 1;
pub const HDR_DIFF: u8 = 2;
pub const DATA_NONE: u8 = 0;
pub const DATA_COPY: u8 = 1;
pub const DATA_DELTA: u8 = 2;
pub const DATA_LITERAL: u8 = 3;
pub const DATA_NEW: u8 = 4;
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

    /// The check of an old tar: size and SHA-256 (MD5 adds nothing to SHA-256
    /// and cost a quarter of the applier's time).
    pub fn matches_sha256(&self, size: u64, sha256: &[u8; 32]) -> bool {
        self.size == size && self.sha256 == hex::encode(sha256)
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

/// A new member whose data later new members repeat (DATA_NEW): the applier
/// keeps a copy of its data as it writes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewKeep {
    pub index: u64,
    pub size: u64,
    pub uses: u64,
}

/// How a stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// Raw LZMA2 (no .xz container: 60 bytes a stream saved), dictionary `dict`.
    Lzma2,
    /// One zstd frame, window at most `dict`.
    Zstd,
}

/// One stream of a patch, as the header describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamInfo {
    pub name: String,
    pub codec: Codec,
    /// LZMA2 dictionary or zstd window, in bytes.
    pub dict: u64,
    /// Bytes once decoded.
    pub raw_size: u64,
    /// Bytes in the file.
    pub size: u64,
}

/// How the new members were made, for `info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub copies: u64,
    pub copy_bytes: u64,
    pub deltas: u64,
    pub delta_source_bytes: u64,
    /// Of the deltas, those against an old member found by content alone.
    pub similar: u64,
    /// Delta jobs: one per member, or one per window of a large member.
    pub windows: u64,
    pub controls: u64,
    pub literals: u64,
    pub literal_bytes: u64,
    /// Members whose data repeats an earlier new member's.
    pub new_copies: u64,
    pub new_copy_bytes: u64,
    pub same_headers: u64,
    pub diff_headers: u64,
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
    /// New members to keep once written, in index order, and their sum.
    pub new_keep: Vec<NewKeep>,
    pub new_kept_bytes: u64,
    /// The largest old member data held in memory as a delta source.
    pub max_source: u64,
    /// The longest raw header and tail in the ops.
    pub max_raw_header: u64,
    pub tail_size: u64,
    /// The nine streams, in [`STREAMS`] order, and the SHA-256 of all of them
    /// as they are in the file (one digest: the body is checked in one pass).
    pub streams: Vec<StreamInfo>,
    pub streams_sha256: String,
    pub stats: Stats,
}

impl PatchHeader {
    /// Bytes of the stream decoders' dictionaries: what decoding costs in memory.
    pub fn dict_bytes(&self) -> u64 {
        self.streams.iter().map(|s| s.dict).sum()
    }

    /// Bytes of all streams in the file.
    pub fn streams_size(&self) -> u64 {
        self.streams.iter().map(|s| s.size).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("{}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: not a binarydist patch (magic {found:?}, expected {expected:?})", path.display())]
    Magic { path: PathBuf, expected: String, found: String },
    #[error("{}: patch format version {found}, this binarydist reads version {FORMAT_VERSION} only: upgrade binarydist", path.display())]
    NewerVersion { path: PathBuf, found: u32 },
    #[error("{}: patch format version {found}, this binarydist reads version {FORMAT_VERSION} only: remake the patch with this binarydist (binarydist diff)", path.display())]
    OlderVersion { path: PathBuf, found: u32 },
    #[error("{}: truncated: {what}", path.display())]
    Truncated { path: PathBuf, what: String },
    #[error("{}: corrupt: {what}", path.display())]
    Corrupt { path: PathBuf, what: String },
    #[error("{}: absurd header: {what}", path.display())]
    Absurd { path: PathBuf, what: String },
    #[error("{}: file name says {expected}, header says {found}", path.display())]
    NameMismatch { path: PathBuf, expected: String, found: String },
}

/// A patch whose header has been read and checked; stream `i` starts at
/// `offsets[i]` in the file.
#[derive(Debug, Clone)]
pub struct PatchFile {
    pub path: PathBuf,
    pub header: PatchHeader,
    pub from: DistName,
    pub to: DistName,
    pub offsets: Vec<u64>,
}

/// Writes preamble and header; the caller writes the streams after it.
pub fn write_header(w: &mut impl Write, header: &PatchHeader) -> io::Result<()> {
    let json = serde_json::to_vec(header).map_err(io::Error::other)?;
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
/// the names against the file name, and the file's length against the streams.
/// The streams' SHA-256 are checked by [`verify_streams`].
pub fn read_header(path: &Path) -> Result<PatchFile, FormatError> {
    let io_err = |e| FormatError::Io { path: path.into(), source: e };
    let corrupt = |what: String| FormatError::Corrupt { path: path.into(), what };
    let absurd = |what: String| FormatError::Absurd { path: path.into(), what };
    let mut f = File::open(path).map_err(io_err)?;
    let file_len = f.metadata().map_err(io_err)?.len();
    if (file_len as usize) < PREAMBLE_LEN {
        let mut start = Vec::new();
        f.read_to_end(&mut start).map_err(io_err)?;
        if start.is_empty() || !start.iter().zip(MAGIC).all(|(a, b)| a == b) {
            return Err(magic_err(path, &start));
        }
        return Err(FormatError::Truncated {
            path: path.into(),
            what: format!("{file_len} bytes, shorter than the {PREAMBLE_LEN}-byte preamble"),
        });
    }
    let (mut magic, mut version, mut header_len, mut header_sha) = ([0u8; 8], [0u8; 4], [0u8; 4], [0u8; 32]);
    for field in [&mut magic[..], &mut version, &mut header_len, &mut header_sha] {
        f.read_exact(field).map_err(io_err)?;
    }
    if &magic != MAGIC {
        return Err(magic_err(path, &magic));
    }
    let version = u32::from_le_bytes(version);
    if version > FORMAT_VERSION {
        return Err(FormatError::NewerVersion { path: path.into(), found: version });
    }
    if version == 0 {
        return Err(corrupt("format version 0".into()));
    }
    if version < FORMAT_VERSION {
        return Err(FormatError::OlderVersion { path: path.into(), found: version });
    }
    let header_len = u32::from_le_bytes(header_len);
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
    if sha != header_sha {
        return Err(corrupt(format!("header SHA-256 is {}, the preamble says {}", hex::encode(sha), hex::encode(header_sha))));
    }
    let header: PatchHeader = serde_json::from_slice(&json).map_err(|e| corrupt(format!("header: {e}")))?;
    if header.format != version {
        return Err(corrupt(format!("header says format {}, preamble {version}", header.format)));
    }
    check_bounds(&header).map_err(absurd)?;
    let mut offsets = Vec::with_capacity(STREAMS.len());
    let mut at = PREAMBLE_LEN as u64 + header_len as u64;
    for s in &header.streams {
        offsets.push(at);
        at = at.checked_add(s.size).ok_or_else(|| absurd(format!("stream {} of {} bytes", s.name, s.size)))?;
    }
    if file_len < at {
        return Err(FormatError::Truncated { path: path.into(), what: format!("{file_len} bytes, the header says {at}") });
    }
    if file_len > at {
        return Err(corrupt(format!("{file_len} bytes, the header says {at}")));
    }
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
    Ok(PatchFile { path: path.into(), header, from, to, offsets })
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
    over("largest delta source", h.max_source, MAX_DECLARED_MEMORY)?;
    over("kept set", h.kept_bytes, MAX_DECLARED_MEMORY)?;
    over("kept new set", h.new_kept_bytes, MAX_DECLARED_MEMORY)?;
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
    let (mut sum, mut last) = (0u64, None);
    for k in &h.new_keep {
        if last.is_some_and(|l| k.index <= l) || k.index >= h.new_members {
            return Err(format!("new keep list entry {} out of order or past the {} new members", k.index, h.new_members));
        }
        last = Some(k.index);
        sum = sum.saturating_add(k.size);
    }
    if sum != h.new_kept_bytes {
        return Err(format!("new keep list adds up to {sum} bytes, the header says {}", h.new_kept_bytes));
    }
    if h.streams.len() != STREAMS.len() || h.streams.iter().zip(STREAMS).any(|(s, name)| s.name != name) {
        let names: Vec<&str> = h.streams.iter().map(|s| s.name.as_str()).collect();
        return Err(format!("streams {names:?}, expected {STREAMS:?}"));
    }
    for s in &h.streams {
        over(&format!("stream {} dictionary", s.name), s.dict, MAX_DICT)?;
        over(&format!("stream {} raw size", s.name), s.raw_size, MAX_DECLARED_MEMORY.saturating_mul(64))?;
    }
    if h.streams_sha256.len() != 64 || !h.streams_sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("streams SHA-256 is not hex".into());
    }
    for (what, d) in [("old", &h.old), ("new", &h.new)] {
        if d.md5.len() != 32 || d.sha256.len() != 64 || !d.md5.bytes().chain(d.sha256.bytes()).all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{what} tar digests are not hex"));
        }
    }
    Ok(())
}

/// Reads every stream once and checks their SHA-256 against the header, so that
/// a truncated or bit-flipped patch is refused before any byte is applied.
pub fn verify_streams(p: &PatchFile) -> Result<(), FormatError> {
    use std::io::{Seek, SeekFrom};
    let io_err = |e| FormatError::Io { path: p.path.clone(), source: e };
    let mut f = File::open(&p.path).map_err(io_err)?;
    f.seek(SeekFrom::Start(p.offsets.first().copied().unwrap_or(0))).map_err(io_err)?;
    let mut h = Sha256::new();
    let size = p.header.streams_size();
    let read = io::copy(&mut io::BufReader::with_capacity(256 * 1024, f).take(size), &mut h).map_err(io_err)?;
    if read < size {
        return Err(FormatError::Truncated { path: p.path.clone(), what: format!("streams end {} bytes early", size - read) });
    }
    let found = hex::encode(h.finalize());
    if found != p.header.streams_sha256 {
        return Err(FormatError::Corrupt {
            path: p.path.clone(),
            what: format!("streams SHA-256 is {found}, the header says {}", p.header.streams_sha256),
        });
    }
    Ok(())
}

pub fn write_varint(w: &mut impl Write, v: u64) -> io::Result<()> {
    let mut buf = Vec::with_capacity(10);
    push_varint(&mut buf, v);
    w.write_all(&buf)
}

/// [`write_varint`] into a vector, which cannot fail.
pub fn push_varint(v: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        v.push((n as u8) | 0x80);
        n >>= 7;
    }
    v.push(n as u8);
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
        for st in &h.streams {
            let codec = match st.codec {
                Codec::Lzma2 => "lzma2",
                Codec::Zstd => "zstd",
            };
            writeln!(
                f,
                "stream      {:8} {:>11} bytes from {:>11} ({codec}, dictionary {} KiB)",
                st.name,
                st.size,
                st.raw_size,
                st.dict >> 10
            )?;
        }
        writeln!(
            f,
            "keeps       {} old members, {} bytes; {} new members, {} bytes",
            h.keep.len(),
            h.kept_bytes,
            h.new_keep.len(),
            h.new_kept_bytes
        )?;
        writeln!(f, "memory      largest delta source {} bytes, dictionaries {} bytes", h.max_source, h.dict_bytes())?;
        writeln!(
            f,
            "copies      {} ({} bytes), {} of earlier new members ({} bytes)",
            s.copies, s.copy_bytes, s.new_copies, s.new_copy_bytes
        )?;
        writeln!(
            f,
            "deltas      {} against {} bytes of source ({} found by content), {} windows, {} controls",
            s.deltas, s.delta_source_bytes, s.similar, s.windows, s.controls
        )?;
        writeln!(f, "literals    {} ({} bytes)", s.literals, s.literal_bytes)?;
        writeln!(
            f,
            "headers     {} same as the old member's, {} as differences, {} whole",
            s.same_headers,
            s.diff_headers,
            h.new_members.saturating_sub(s.same_headers + s.diff_headers)
        )
    }
}

#[cfg(test)]
mod tests;
