//! `binarydist diff OLD NEW -o DIR`: makes the patch that turns one dist's
//! uncompressed tar into another's, byte for byte.
//!
//! Steps: scan both tars (in parallel); let the matcher choose a source for every
//! new member; cap what the applier would have to keep; then write one op per
//! new member into one zstd stream, computing the bsdiff deltas on worker threads
//! and collecting them in order, so the bytes do not depend on the thread count.
//! The ops go to a temporary file first, since the header in front of them holds
//! their size and digest; the patch appears under its final name only when whole.

pub mod format;
pub mod matcher;
pub mod plan;
pub mod scan;

use crate::names::{DistName, NameError, PatchName};
use crate::os;
use crate::tario::HashingWriter;
use format::{PatchHeader, Stats, TarDigest};
use matcher::{Choice, DataFrom};
use scan::{ScanError, ScannedTar};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};

/// Default cap on the old members an applier keeps in memory: 64 MiB.
pub const DEFAULT_KEEP_CAP: u64 = 64 << 20;
/// zstd level of the ops stream.
pub const DEFAULT_LEVEL: i32 = 19;

#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error("{}: cannot tell the dist name from the file name ({source}); name it, or pass --from-name/--to-name", path.display())]
    Name { path: PathBuf, source: NameError },
    #[error("{0}")]
    Patch(NameError),
    #[error("{}: {source}", path.display())]
    Output { path: PathBuf, source: io::Error },
    #[error("{}: delta of member {member}: {source}", path.display())]
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
        format: format::FORMAT_VERSION,
        from: from.to_string(),
        to: to.to_string(),
        old: TarDigest::from(&old.digests),
        old_prefix: {
            let n = format::PREFIX_LEN.min(old.digests.size);
            format::Prefix { size: n, sha256: hex::encode(Sha256::digest(old.read_at(0, n)?)) }
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
        window_log: format::WINDOW_LOG,
        ops_size: ops_digests.size,
        ops_sha256: ops_digests.sha256_hex(),
        stats: stats.0,
    };
    os::write_atomically(&out_path, |f| {
        let mut w = BufWriter::new(f);
        format::write_header(&mut w, &header)?;
        io::copy(&mut File::open(ops_file.path())?, &mut w)?;
        w.flush()
    })
    .map_err(out_err)?;
    let size = std::fs::metadata(&out_path).map_err(out_err)?.len();
    Ok(Diffed { patch: out_path, size, header })
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
    z.window_log(format::WINDOW_LOG).map_err(out_err)?;
    z.include_checksum(true).map_err(out_err)?;
    z.include_contentsize(false).map_err(out_err)?;

    let jobs: Vec<(usize, usize)> =
        choices.iter().enumerate().filter_map(|(i, c)| if let DataFrom::Delta(k) = c.data { Some((i, k)) } else { None }).collect();
    let threads = opts.threads.max(1);
    // Each worker may run this many jobs ahead of the writer: bounds the deltas in memory.
    let window = 2 * threads;
    let next_job = AtomicUsize::new(0);
    let (permit_tx, permit_rx) = mpsc::sync_channel::<()>(window);
    let permit_rx = Mutex::new(permit_rx);
    let (result_tx, result_rx) = mpsc::channel::<(usize, Result<Vec<u8>, DeltaError>)>();
    for _ in 0..window {
        permit_tx.send(()).expect("permit channel open");
    }

    std::thread::scope(|s| {
        for _ in 0..threads.min(jobs.len()) {
            let result_tx = result_tx.clone();
            let (next_job, permit_rx, jobs) = (&next_job, &permit_rx, &jobs);
            s.spawn(move || loop {
                if permit_rx.lock().expect("permit lock").recv().is_err() {
                    return;
                }
                let j = next_job.fetch_add(1, Ordering::SeqCst);
                let Some(&(i, k)) = jobs.get(j) else { return };
                if result_tx.send((j, make_delta(old, new, k, i))).is_err() {
                    return;
                }
            });
        }
        drop(result_tx);
        let mut stats = Stats::default();
        let mut max_delta = 0u64;
        let mut done: BTreeMap<usize, Result<Vec<u8>, DeltaError>> = BTreeMap::new();
        let mut next_result = 0usize;
        let mut cursor = 0usize;
        let result: Result<(Stats, u64), DeltaError> = (|| {
            for (i, c) in choices.iter().enumerate() {
                let m = &new.members[i];
                let header_op = if c.header_from.is_some() { format::HDR_SAME } else { format::HDR_LITERAL };
                let data_op = match c.data {
                    DataFrom::None => format::DATA_NONE,
                    DataFrom::Copy(_) => format::DATA_COPY,
                    DataFrom::Delta(_) => format::DATA_DELTA,
                    DataFrom::Literal => format::DATA_LITERAL,
                };
                z.write_all(&[format::tag(header_op, data_op)]).map_err(out_err)?;
                if let Some((k, _)) = c.source() {
                    format::write_varint(&mut z, format::zigzag(k as i64 - cursor as i64)).map_err(out_err)?;
                    cursor = cursor.max(k + 1);
                }
                if c.header_from.is_some() {
                    stats.same_headers += 1;
                } else {
                    format::write_varint(&mut z, m.raw_header.len() as u64).map_err(out_err)?;
                    z.write_all(&m.raw_header).map_err(out_err)?;
                }
                match c.data {
                    DataFrom::None => {}
                    DataFrom::Copy(_) => {
                        stats.copies += 1;
                        stats.copy_bytes += m.size();
                    }
                    DataFrom::Delta(k) => {
                        let delta = loop {
                            if let Some(d) = done.remove(&next_result) {
                                break d?;
                            }
                            let (j, d) = result_rx.recv().expect("delta workers stopped early");
                            done.insert(j, d);
                        };
                        next_result += 1;
                        let _ = permit_tx.send(());
                        format::write_varint(&mut z, delta.len() as u64).map_err(out_err)?;
                        z.write_all(&delta).map_err(out_err)?;
                        stats.deltas += 1;
                        stats.delta_bytes += delta.len() as u64;
                        stats.delta_source_bytes += old.members[k].size();
                        max_delta = max_delta.max(delta.len() as u64);
                    }
                    DataFrom::Literal => {
                        new.copy_data(i, &mut z)?;
                        stats.literals += 1;
                        stats.literal_bytes += m.size();
                    }
                }
            }
            z.write_all(&[format::TAG_END]).map_err(out_err)?;
            format::write_varint(&mut z, new.tail.len() as u64).map_err(out_err)?;
            z.write_all(&new.tail).map_err(out_err)?;
            Ok((stats, max_delta))
        })();
        // Stop the workers whatever happened: no more permits.
        drop(permit_tx);
        let stats = result?;
        let w = z.finish().map_err(out_err)?;
        Ok((w, stats))
    })
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
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?} is not a size (like 64M, 1G, 4096)"))
}
