//! `binarydist diff OLD NEW -o DIR`: makes the patch that turns one dist's
//! uncompressed tar into another's, byte for byte.
//!
//! Steps: scan both tars (in parallel); let the matcher choose a source for every
//! new member, and `similar` one for literal members by content; cap what the
//! applier would have to keep; then write the ops and the data into the nine
//! streams of the format, computing the member deltas (window by window for
//! large members) on worker threads and collecting them in order, so the bytes
//! do not depend on the thread count; last, compress each stream on its own.
//! Memory is bounded by one setting (`--memory`, [`DEFAULT_MEMORY`]) whatever
//! the member sizes: it sizes the windows, the work in flight and the encoders.
//! The patch appears under its final name only when whole.

pub mod matcher;
pub mod ordered;
pub mod plan;
pub mod sais;
pub mod scan;
pub mod similar;
pub mod streams;

use crate::codec;
use crate::names::{DistName, NameError, PatchName};
use crate::os;
use crate::patchfile::{self, stream, Codec, PatchHeader, Stats, TarDigest};
use matcher::{Choice, DataFrom};
use scan::{ScanError, ScannedTar};
use sha2::{Digest, Sha256};
use std::io::{self, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};
use streams::StreamSet;

/// Default cap on the old members an applier keeps in memory: 64 MiB.
pub const DEFAULT_KEEP_CAP: u64 = 64 << 20;
/// Default bound on what `diff` holds in memory: 512 MiB.
pub const DEFAULT_MEMORY: u64 = 512 << 20;

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
    #[error("level {level} is out of range for {codec:?} (at most {max})")]
    Level { codec: Codec, level: u32, max: u32 },
}

pub struct DiffOptions {
    pub old: PathBuf,
    pub new: PathBuf,
    /// Dist names when the file names do not say them.
    pub old_name: Option<DistName>,
    pub new_name: Option<DistName>,
    pub out_dir: PathBuf,
    pub keep_cap: u64,
    pub codec: Codec,
    /// The codec's level; `None` for its default.
    pub level: Option<u32>,
    /// The most memory `diff` may use, about (scans and buffers aside).
    pub memory: u64,
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
            codec: Codec::Lzma2,
            level: None,
            memory: DEFAULT_MEMORY,
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
    let level = opts.level.unwrap_or(codec::default_level(opts.codec));
    if level > codec::max_level(opts.codec) {
        return Err(DeltaError::Level { codec: opts.codec, level, max: codec::max_level(opts.codec) });
    }
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

    let mut chosen = matcher::choose(&old.members, &new.members);
    let similar = similar::pair_literals(&old, &new, &chosen, opts.threads)?;
    for &(i, k) in &similar {
        chosen[i] = Choice { header_from: Some(k), data: DataFrom::Delta(k) };
    }
    plan::cap_new_copies(&mut chosen, &new.members, opts.keep_cap);
    let choices = plan::cap_choices(&old.members, &chosen, &new.members, opts.keep_cap);
    let (keep, kept_bytes) = plan::keep_list(&old.members, &choices);
    let (new_keep, new_kept_bytes) = plan::new_keep_list(&choices, &new.members);

    let out_path = opts.out_dir.join(patch_name.file_name());
    let out_err = |e| DeltaError::Output { path: out_path.clone(), source: e };
    let mut streams = StreamSet::new(&opts.out_dir).map_err(out_err)?;
    let mut stats = write_ops(&old, &new, &choices, &mut streams, opts)?;
    stats.similar = similar.iter().filter(|&&(i, k)| choices[i].data == DataFrom::Delta(k)).count() as u64;
    let packed = streams.finish(&opts.out_dir, opts.codec, level, opts.memory, opts.threads).map_err(out_err)?;

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
        new_keep,
        new_kept_bytes,
        max_source: choices.iter().map(delta_source).max().unwrap_or(0),
        max_raw_header: new.members.iter().map(|m| m.raw_header.len() as u64).max().unwrap_or(0),
        tail_size: new.tail.len() as u64,
        streams: packed.iter().map(|p| p.info.clone()).collect(),
        streams_sha256: {
            let mut h = Sha256::new();
            for p in &packed {
                io::copy(&mut &p.file, &mut HashWrite(&mut h)).map_err(out_err)?;
                (&p.file).seek(io::SeekFrom::Start(0)).map_err(out_err)?;
            }
            hex::encode(h.finalize())
        },
        stats,
    };
    os::write_atomically(&out_path, |f| {
        let mut w = BufWriter::with_capacity(256 * 1024, f);
        patchfile::write_header(&mut w, &header)?;
        for p in &packed {
            io::copy(&mut &p.file, &mut w)?;
        }
        w.flush()
    })
    .map_err(out_err)?;
    let size = std::fs::metadata(&out_path).map_err(out_err)?.len();
    Ok(Diffed { patch: out_path, size, header })
}

/// Writes the ops and member data into the streams, in member order.
struct Emitter<'a> {
    s: &'a mut StreamSet,
    old: &'a ScannedTar,
    new: &'a ScannedTar,
    choices: &'a [Choice],
    /// The applier's cursor, as it will be: the next old member it reads.
    cursor: usize,
    /// The next op to write.
    next: usize,
    /// The applier's position in the current delta's old member.
    old_pos: u64,
    stats: Stats,
}

impl Emitter<'_> {
    /// Writes the ops before op `until`, none of which is a delta.
    fn until(&mut self, until: usize) -> io::Result<()> {
        while self.next < until {
            self.op()?;
        }
        Ok(())
    }

    /// Writes the next op: its tag, source, header and literal data (a delta's
    /// controls follow, from its windows).
    fn op(&mut self) -> io::Result<()> {
        let i = self.next;
        self.next += 1;
        let (c, m) = (self.choices[i], &self.new.members[i]);
        let base = c.header_from.map(|k| &self.old.members[k].raw_header);
        let header_op = match base {
            Some(b) if *b == m.raw_header => patchfile::HDR_SAME,
            Some(b) if b.len() == m.raw_header.len() => patchfile::HDR_DIFF,
            _ => patchfile::HDR_LITERAL,
        };
        let data_op = match c.data {
            DataFrom::None => patchfile::DATA_NONE,
            DataFrom::Copy(_) => patchfile::DATA_COPY,
            DataFrom::Delta(_) => patchfile::DATA_DELTA,
            DataFrom::Literal => patchfile::DATA_LITERAL,
            DataFrom::NewCopy(_) => patchfile::DATA_NEW,
        };
        self.s.put(stream::OPS, &[patchfile::tag(header_op, data_op)])?;
        if let Some((k, _)) = c.source() {
            self.s.varint(stream::OPS, patchfile::zigzag(k as i64 - self.cursor as i64))?;
            self.cursor = self.cursor.max(k + 1);
        }
        if let DataFrom::NewCopy(j) = c.data {
            self.s.varint(stream::OPS, (i - j) as u64)?;
        }
        match (header_op, base) {
            (patchfile::HDR_SAME, _) => self.stats.same_headers += 1,
            (patchfile::HDR_DIFF, Some(b)) => {
                self.stats.diff_headers += 1;
                self.s.varint(stream::OPS, m.raw_header.len() as u64)?;
                let d: Vec<u8> = m.raw_header.iter().zip(b).map(|(n, o)| n.wrapping_sub(*o)).collect();
                self.s.put(stream::HEADERS, &d)?;
            }
            _ => {
                self.s.varint(stream::OPS, m.raw_header.len() as u64)?;
                self.s.put(stream::HEADERS, &m.raw_header)?;
            }
        }
        match c.data {
            DataFrom::None => {}
            DataFrom::Copy(_) => {
                self.stats.copies += 1;
                self.stats.copy_bytes += m.size();
            }
            DataFrom::Delta(k) => {
                self.stats.deltas += 1;
                self.stats.delta_source_bytes += self.old.members[k].size();
                self.old_pos = 0;
            }
            DataFrom::Literal => {
                self.s.copy_from(stream::LITERAL, self.new.member_reader(i), m.size())?;
                self.stats.literals += 1;
                self.stats.literal_bytes += m.size();
            }
            DataFrom::NewCopy(_) => {
                self.stats.new_copies += 1;
                self.stats.new_copy_bytes += m.size();
            }
        }
        Ok(())
    }

    /// The controls and bytes of one window of the current delta.
    fn window(&mut self, d: &sais::DeltaOut) -> io::Result<()> {
        for c in &d.controls {
            self.s.varint(stream::SEEK, patchfile::zigzag(c.old_start as i64 - self.old_pos as i64))?;
            self.s.varint(stream::ADD, c.add)?;
            self.s.varint(stream::COPY, c.copy)?;
            self.old_pos = c.old_start + c.add;
        }
        self.s.put(stream::RUNS, &d.runs)?;
        self.s.put(stream::DIFF, &d.diff)?;
        self.s.put(stream::EXTRA, &d.extra)?;
        self.stats.windows += 1;
        self.stats.controls += d.controls.len() as u64;
        Ok(())
    }
}

/// One delta job: new member `new`, against old member `old`, one window.
struct Job {
    new: usize,
    old: usize,
    window: sais::Window,
}

/// Writes the ops and data of every member; returns the stats.
fn write_ops(old: &ScannedTar, new: &ScannedTar, choices: &[Choice], s: &mut StreamSet, opts: &DiffOptions) -> Result<Stats, DeltaError> {
    let out_err = |e| DeltaError::Output { path: opts.out_dir.clone(), source: e };
    let window = sais::window_for(opts.memory);
    let jobs: Vec<Job> = choices
        .iter()
        .enumerate()
        .filter_map(|(i, c)| if let DataFrom::Delta(k) = c.data { Some((i, k)) } else { None })
        .flat_map(|(i, k)| {
            sais::windows(old.members[k].size(), new.members[i].size(), window).into_iter().map(move |w| Job { new: i, old: k, window: w })
        })
        .collect();
    let costs: Vec<u64> = jobs.iter().map(|j| sais::job_cost(&j.window)).collect();
    let mut e = Emitter { s, old, new, choices, cursor: 0, next: 0, old_pos: 0, stats: Stats::default() };
    ordered::run_ordered(
        &costs,
        opts.threads,
        opts.memory,
        |j| -> Result<sais::DeltaOut, ScanError> {
            let (job, w) = (&jobs[j], &jobs[j].window);
            let older = old.data_range(job.old, w.old_start, w.old_len)?;
            let newer = new.data_range(job.new, w.new_start, w.new_len)?;
            Ok(sais::diff(&older, w.old_start, &newer))
        },
        |j, delta| {
            let delta = delta?;
            e.until(jobs[j].new).map_err(out_err)?;
            if jobs[j].window.new_start == 0 {
                e.op().map_err(out_err)?;
            }
            e.window(&delta).map_err(out_err)
        },
    )?;
    e.until(choices.len()).map_err(out_err)?;
    e.s.put(stream::OPS, &[patchfile::TAG_END]).map_err(out_err)?;
    e.s.varint(stream::OPS, new.tail.len() as u64).map_err(out_err)?;
    e.s.put(stream::OPS, &new.tail).map_err(out_err)?;
    Ok(e.stats)
}

/// Feeds what is written into a SHA-256.
struct HashWrite<'a>(&'a mut Sha256);

impl Write for HashWrite<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
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
