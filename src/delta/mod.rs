//! `binarydist diff OLD NEW -o DIR`: makes the patch that turns one dist's
//! uncompressed tar into another's, byte for byte.
//!
//! Steps: scan both tars (in parallel); let the matcher choose a source for every
//! new member; cap what the applier would have to keep; then write one op per
//! new member into one zstd stream, computing the bsdiff deltas on worker threads
//! and collecting them in order, so the bytes do not depend on the thread count.
//! The ops go to a temporary file first, since the header in front of them holds
//! their size and digest; the patch appears under its final name only when whole.

pub mod matcher;
pub mod ordered;
pub mod plan;
pub mod scan;

use crate::names::{DistName, NameError, PatchName};
use crate::os;
use crate::patchfile::{self, PatchHeader, Stats, TarDigest};
use crate::tario::HashingWriter;
use matcher::{Choice, DataFrom};
use scan::{ScanError, ScannedTar};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Default cap on the old members an applier keeps in memory: 64 MiB.
pub const DEFAULT_KEEP_CAP: u64 = 64 << 20;
/// zstd level of the ops stream.
pub const DEFAULT_LEVEL: i32 = 19;

#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error("{}: cannot tell the dist name from the file name (name it, or pass --from-name/--to-name)", path.display())]
    Name { path: PathBuf, source: NameError },
    #[error("{0}")]
    Patch(NameError),
    #[error("{}", path.display())]
    Output { path: PathBuf, source: io::Error },
    #[error("{}: delta of member {member}", path.display())]
    Diff { path: PathBuf, member: String, source: io::Error },
}

pub struct DiffOptions {
    pub old: PathBuf,
    pub new: PathBuf,
    /// Dist names when the file names do not say them.
    pub old_name: Option<DistName>,
    pub new_name: Option<DistName>,
    pub out_dir: PathBuf,
    pub keep_cap: u64,
    pub level: i32,
    /// Worker threads for deltas; the output is the same for any number.
    pub threads: usize,
}

impl DiffOptions {
    pub fn new(old: impl Into<PathBuf>, new: impl Into<PathBuf>, out_dir: impl Into<PathBuf>) -> Self {
        DiffOptions {
            old: old.into(),
            new: new.into(),
            old_name: None,
            new_name: None,
            out_dir: out_dir.into(),
            keep_cap: DEFAULT_KEEP_CAP,
            level: DEFAULT_LEVEL,
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        }
    }
}

/// What `diff` made.
pub struct Diffed {
    pub patch: PathBuf,
    pub size: u64,
    pub header: PatchHeader,
}

pub fn diff(opts: &DiffOptions) -> Result<Diffed, DeltaError> {
    let name_of = |given: &Option<DistName>, path: &Path| match given {
        Some(n) => Ok(n.clone()),
        None => {
            let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            DistName::from_file_name(&file).map_err(|e| DeltaError::Name { path: path.into(), source: e })
        }
    };
    let from = name_of(&opts.old_name, &opts.old)?;
    let to = name_of(&opts.new_name, &opts.new)?;
    let patch_name = PatchName::new(from.clone(), to.clone()).map_err(DeltaError::Patch)?;

    let (old, new) = std::thread::scope(|s| {
        let old = s.spawn(|| scan::scan(&opts.old));
        let new = scan::scan(&opts.new);
        (old.join().expect("scan thread panicked"), new)
    });
    let (old, new) = (old?, new?);

    let chosen = matcher::choose(&old.members, &new.members);
    let choices = plan::cap_choices(&old.members, &chosen, &new.members, opts.keep_cap);
    let (keep, kept_bytes) = plan::keep_list(&old.members, &choices);

    let out_path = opts.out_dir.join(patch_name.file_name());
    let out_err = |e| DeltaError::Output { path: out_path.clone(), source: e };
    let ops_file = tempfile::Builder::new().prefix(".ops.").tempfile_in(&opts.out_dir).map_err(out_err)?;
    let hashing = HashingWriter::new(BufWriter::with_capacity(256 * 1024, ops_file.reopen().map_err(out_err)?));
    let (hashing, stats) = write_ops(&old, &new, &choices, hashing, opts)?;
    let (buffered, ops_digests) = hashing.finish();
    buffered.into_inner().map_err(|e| out_err(e.into_error()))?;

    let delta_source = |c: &Choice| if let DataFrom::Delta(k) = c.data { old.members[k].size() } else { 0 };
    let header = PatchHeader {
        format: patchfile::FORMAT_VERSION,
        from: from.to_string(),
        to: to.to_string(),
        old: TarDigest::from(&old.digests),
        old_prefix: {
            let n = patchfile::PREFIX_LEN.min(old.digests.size);
            patchfile::Prefix { size: n, sha256: hex::encode(Sha256::digest(old.read_at(0, n)?)) }
        },
        new: TarDigest::from(&new.digests),
        old_members: old.members.len() as u64,
        new_members: new.members.len() as u64,
        keep,
        kept_bytes,
        max_source: choices.iter().map(delta_source).max().unwrap_or(0),
        max_raw_header: new.members.iter().map(|m| m.raw_header.len() as u64).max().unwrap_or(0),
        max_delta: stats.1,
        tail_size: new.tail.len() as u64,
        window_log: patchfile::WINDOW_LOG,
        ops_size: ops_digests.size,
        ops_sha256: ops_digests.sha256_hex(),
        stats: stats.0,
    };
    os::write_atomically(&out_path, |f| {
        let mut w = BufWriter::new(f);
        patchfile::write_header(&mut w, &header)?;
        io::copy(&mut File::open(ops_file.path())?, &mut w)?;
        w.flush()
    })
    .map_err(out_err)?;
    let size = std::fs::metadata(&out_path).map_err(out_err)?.len();
    Ok(Diffed { patch: out_path, size, header })
}

/// New-member bytes whose deltas may be in flight at once (being computed or
/// waiting for their turn to be written).
const DELTA_BUDGET: u64 = 512 << 20;

/// Writes ops into the zstd stream, in member order.
struct Emitter<'a, W: Write> {
    z: zstd::stream::write::Encoder<'static, W>,
    old: &'a ScannedTar,
    new: &'a ScannedTar,
    choices: &'a [Choice],
    out_dir: &'a Path,
    /// The applier's cursor, as it will be: the next old member it reads.
    cursor: usize,
    /// The next op to write.
    next: usize,
    stats: Stats,
    max_delta: u64,
}

impl<W: Write> Emitter<'_, W> {
    fn out_err(&self, e: io::Error) -> DeltaError {
        DeltaError::Output { path: self.out_dir.into(), source: e }
    }

    /// Writes the ops before op `until`, none of which is a delta.
    fn until(&mut self, until: usize) -> Result<(), DeltaError> {
        while self.next < until {
            self.op(None)?;
        }
        Ok(())
    }

    /// Writes the next op; `delta` is its delta when it is one.
    fn op(&mut self, delta: Option<Vec<u8>>) -> Result<(), DeltaError> {
        let i = self.next;
        self.next += 1;
        let (c, m) = (self.choices[i], &self.new.members[i]);
        let header_op = if c.header_from.is_some() { patchfile::HDR_SAME } else { patchfile::HDR_LITERAL };
        let data_op = match c.data {
            DataFrom::None => patchfile::DATA_NONE,
            DataFrom::Copy(_) => patchfile::DATA_COPY,
            DataFrom::Delta(_) => patchfile::DATA_DELTA,
            DataFrom::Literal => patchfile::DATA_LITERAL,
        };
        let z = &mut self.z;
        let written = (|| {
            z.write_all(&[patchfile::tag(header_op, data_op)])?;
            if let Some((k, _)) = c.source() {
                patchfile::write_varint(z, patchfile::zigzag(k as i64 - self.cursor as i64))?;
                self.cursor = self.cursor.max(k + 1);
            }
            if c.header_from.is_none() {
                patchfile::write_varint(z, m.raw_header.len() as u64)?;
                z.write_all(&m.raw_header)?;
            }
            if let Some(d) = &delta {
                patchfile::write_varint(z, d.len() as u64)?;
                z.write_all(d)?;
            }
            Ok(())
        })();
        written.map_err(|e| self.out_err(e))?;
        self.stats.same_headers += c.header_from.is_some() as u64;
        match c.data {
            DataFrom::None => {}
            DataFrom::Copy(_) => {
                self.stats.copies += 1;
                self.stats.copy_bytes += m.size();
            }
            DataFrom::Delta(k) => {
                let len = delta.as_ref().map_or(0, |d| d.len() as u64);
                self.stats.deltas += 1;
                self.stats.delta_bytes += len;
                self.stats.delta_source_bytes += self.old.members[k].size();
                self.max_delta = self.max_delta.max(len);
            }
            DataFrom::Literal => {
                self.new.copy_data(i, &mut self.z)?;
                self.stats.literals += 1;
                self.stats.literal_bytes += m.size();
            }
        }
        Ok(())
    }
}

/// Writes the ops stream; returns the writer, the stats and the longest delta.
fn write_ops<W: Write + Send>(
    old: &ScannedTar,
    new: &ScannedTar,
    choices: &[Choice],
    w: W,
    opts: &DiffOptions,
) -> Result<(W, (Stats, u64)), DeltaError> {
    let out_err = |e| DeltaError::Output { path: opts.out_dir.clone(), source: e };
    let mut z = zstd::stream::write::Encoder::new(w, opts.level).map_err(out_err)?;
    z.window_log(patchfile::WINDOW_LOG).map_err(out_err)?;
    z.include_checksum(true).map_err(out_err)?;
    z.include_contentsize(false).map_err(out_err)?;
    let mut e = Emitter { z, old, new, choices, out_dir: &opts.out_dir, cursor: 0, next: 0, stats: Stats::default(), max_delta: 0 };

    let jobs: Vec<(usize, usize)> =
        choices.iter().enumerate().filter_map(|(i, c)| if let DataFrom::Delta(k) = c.data { Some((i, k)) } else { None }).collect();
    let costs: Vec<u64> = jobs.iter().map(|&(i, k)| new.members[i].size() + old.members[k].size()).collect();
    ordered::run_ordered(
        &costs,
        opts.threads,
        DELTA_BUDGET,
        |j| make_delta(old, new, jobs[j].1, jobs[j].0),
        |j, delta| {
            e.until(jobs[j].0)?;
            e.op(Some(delta?))
        },
    )?;
    e.until(choices.len())?;
    let end = (|| {
        e.z.write_all(&[patchfile::TAG_END])?;
        patchfile::write_varint(&mut e.z, new.tail.len() as u64)?;
        e.z.write_all(&new.tail)?;
        e.z.finish()
    })();
    let w = end.map_err(out_err)?;
    Ok((w, (e.stats, e.max_delta)))
}

/// The bsdiff delta (bidiff's format, which bipatch reads) of new member `i`
/// against old member `k`.
fn make_delta(old: &ScannedTar, new: &ScannedTar, k: usize, i: usize) -> Result<Vec<u8>, DeltaError> {
    let older = old.data(k)?;
    let newer = new.data(i)?;
    let mut out = Vec::with_capacity(newer.len() / 4 + 64);
    bidiff::simple_diff(&older, &newer, &mut out).map_err(|e| DeltaError::Diff {
        path: new.path.clone(),
        member: new.members[i].meta.path.display().to_string(),
        source: e,
    })?;
    Ok(out)
}

/// Parses a byte size such as `64M`, `1G`, `512K` or `1000` (binary multiples).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix("iB").or_else(|| t.strip_suffix('B')).unwrap_or(t);
    let (digits, mult) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 1 << 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    digits.trim().parse::<u64>().ok().and_then(|n| n.checked_mul(mult)).ok_or_else(|| format!("{s:?} is not a size (like 64M, 1G, 4096)"))
}
