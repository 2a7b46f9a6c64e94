//! The install journal, ROOT/var/db/binarydist/journal: what a killed install
//! left behind and what the next run must do about it.
//!
//! It has two phases, told apart by its first record:
//!
//! - `phase staging`: appended to as staging goes, one record per thing
//!   created *before* it is created (`staged`, `created-dir`, `staged-tree`,
//!   `state-file`, `dir-time`), so that an interrupted staging can always be
//!   undone: nothing it lists is in use yet.
//! - `phase commit`: written atomically (temporary file, fsync, rename, fsync of
//!   the directory) once everything is staged and verified. It lists every
//!   operation of the commit in order, then `end`; each is idempotent, so the
//!   next run just does them all again. The `done N` marks (ops `0..N`
//!   finished) say how far a run got; they are not synced, so after a power
//!   loss a mark can be on disk before the op it marks, and a rerun does not
//!   skip ops by them. `upgraded` records, durably, that `make upgrade`
//!   succeeded (and every op before it was on disk).
//!
//! Framing (format 2): after the line `#binarydist journal 2`, every record is
//! one line `LEN CHECK PAYLOAD`, LEN the payload's length in bytes and CHECK
//! the first 8 hex digits of its SHA-256. A write that failed half-way (a full
//! disk) or a power loss leaves a last line without its newline, or one whose
//! length or check is wrong: such a record is *damaged*, and unambiguously so.
//! A damaged staging record or mark is ignored (a staging record is written
//! before what it names is made, and a lost mark only means an op is done
//! again), and the torn tail is cut off before the next mark is appended, so
//! that a rerun after space is freed converges. The commit record itself must
//! be whole up to `end`: one cut short cannot be finished, and the message
//! says what to do. A journal of format 1 (unframed lines, binarydist before
//! 0.2) is still read, a line that does not parse after `end` taken for a torn
//! mark.
//!
//! Paths are relative to the root and escaped like the manifest's (`\ooo`).
//! A journal read back is checked like any other input before anything acts
//! on it (an undo removes what it lists): every path must be relative,
//! without `..` or NUL; what staging creates under a temporary name must have
//! one, and the next base and MANIFEST must be in the state directory. A
//! whole record that says something else is refused, never skipped.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::plan::TEMP_PREFIX;
use super::state::{BASE_NEW, MANIFEST_NEW, STATE_DIR};
use crate::errors::shown;
use crate::names::DistName;
use crate::statedir::{Dir, StateDirError};
use crate::tario::check_relative;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

const MAGIC: &str = "#binarydist journal 2";
/// Unframed lines, written by binarydist before 0.2.
const MAGIC_V1: &str = "#binarydist journal 1";
/// Its name in the state directory.
pub const NAME: &str = "journal";
/// A journal larger than this is refused unread (a world's commit record is a
/// few megabytes).
const MAX_SIZE: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{}", shown(path))]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Dir(#[from] StateDirError),
    #[error("{}: line {line}: {what}; nothing was done (binarydist writes no such line: if you know the install it belongs to is gone, move the journal aside)", shown(path))]
    Syntax { path: PathBuf, line: usize, what: String },
    #[error("{}: not a binarydist journal; nothing was done. If no install is running on this root, move it aside and run again; `find {} -name '.bdtmp.*'` lists what an interrupted install may have left staged", shown(path), shown(root_of(path)))]
    Garbage { path: PathBuf },
    #[error("{}: the commit record of {dist} is {what}, so the rest of that install cannot be known from it; nothing was done. To finish it, move the journal aside and install {dist} again in full (binarydist install --root {} {dist}.tar.gz): what it staged is replaced", shown(path), shown(root_of(path)))]
    CutShort { path: PathBuf, dist: String, what: String },
}

/// The root of a journal's path (ROOT/var/db/binarydist/journal), for messages.
fn root_of(journal: &Path) -> &Path {
    journal.ancestors().nth(4).unwrap_or(Path::new("/"))
}

/// Something staging created, undone by removing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// The next base or MANIFEST, being written in the state directory
    /// (`var/db/binarydist/<series>/<name>`).
    StateFile(PathBuf),
    /// A directory that did not exist and was created in place.
    CreatedDir(PathBuf),
    /// A file, link, fifo or device under a temporary name beside its final place.
    Staged(PathBuf),
    /// A whole directory tree staged under a temporary name (the kernel directory).
    StagedTree(PathBuf),
    /// The mtime of a directory before anything was staged in it, put back on
    /// undo so that the root is exactly as it was.
    DirTime(PathBuf, i64, i64),
}

/// One step of a commit; each can be done again without harm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Clear the flags of `path`, rename `temp` over it, set `flags`.
    Rename { temp: PathBuf, path: PathBuf, flags: Option<String> },
    /// Owner, mode, times and flags of an entry already in place.
    Meta { path: PathBuf, mode: u32, uid: u32, gid: u32, mtime: i64, flags: Option<String> },
    /// `dir` becomes `dir.old` (replacing an older one), `staged` becomes `dir`.
    KernelSwap { dir: PathBuf, staged: PathBuf },
    /// Remove an entry an earlier dist had and this one has not.
    Remove { path: PathBuf },
}

/// Counts for the one-line summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Entries written under a temporary name and renamed into place.
    pub written: u64,
    /// Entries whose content and metadata were already right.
    pub unchanged: u64,
    /// Entries whose content was right but owner, mode, time or flags were not.
    pub metadata_only: u64,
    /// Bytes of file data written.
    pub bytes_written: u64,
}

/// The durable record of a verified, staged install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub dist: DistName,
    pub tar_size: u64,
    pub md5: String,
    pub sha256: String,
    /// SHA-256 of the new dist's manifest member, every entry of which was
    /// checked against the stream: recorded with the install, so that the next
    /// one trusts that manifest (and only it) to say what is in place.
    pub manifest_sha256: String,
    pub upgrade_src: Option<PathBuf>,
    pub reboot: bool,
    pub stats: Stats,
    pub ops: Vec<Op>,
}

/// What a journal found at start says.
#[derive(Debug)]
pub enum Found {
    /// An empty journal (or zeros): a crash before its first lines reached
    /// the disk, so before anything was staged. It can go.
    Empty,
    Staging(Vec<Item>),
    Commit {
        commit: Box<Commit>,
        done: usize,
        upgraded: bool,
    },
}

/// Where the journal is, for messages.
pub fn path(state: &Dir) -> PathBuf {
    state.path().join(NAME)
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> JournalError + '_ {
    move |e| JournalError::Io { path: path.to_path_buf(), source: e }
}

/// The staging phase's log, appended to line by line.
pub struct StagingLog {
    file: File,
    path: PathBuf,
}

impl StagingLog {
    /// Starts a fresh journal in the staging phase, durably: from here on a
    /// crash is undone by the next run.
    pub fn create(state: &Dir) -> Result<StagingLog, JournalError> {
        let path = path(state);
        let mut file = state.create_new(NAME, 0o644)?;
        file.write_all(format!("{MAGIC}\n{}", frame("phase staging")).as_bytes()).map_err(io_err(&path))?;
        file.sync_all().map_err(io_err(&path))?;
        state.sync()?;
        Ok(StagingLog { file, path })
    }

    /// Records `item` before it is created. One write(2) per line: a kill -9
    /// cannot tear it, and the kernel has it even if we die right after. Where
    /// files are made durable one by one (the BSDs), it is also synced before
    /// the caller creates the item: a file system may write the item's
    /// directory entry before the journal's new line, and a power loss
    /// between the two would leave a staged file that no undo knows of.
    pub fn record(&mut self, item: &Item) -> Result<(), JournalError> {
        let payload = match item {
            Item::StateFile(p) => format!("state-file {}", escape(p)),
            Item::CreatedDir(p) => format!("created-dir {}", escape(p)),
            Item::Staged(p) => format!("staged {}", escape(p)),
            Item::StagedTree(p) => format!("staged-tree {}", escape(p)),
            Item::DirTime(p, sec, nsec) => format!("dir-time {sec} {nsec} {}", escape(p)),
        };
        self.file.write_all(frame(&payload).as_bytes()).map_err(io_err(&self.path))?;
        if super::durable::per_file() {
            self.file.sync_data().map_err(io_err(&self.path))?;
        }
        Ok(())
    }
}

/// One record, framed: `LEN CHECK PAYLOAD` and a newline.
fn frame(payload: &str) -> String {
    format!("{} {} {payload}\n", payload.len(), check(payload.as_bytes()))
}

fn check(payload: &[u8]) -> String {
    let [a, b, c, d, ..] = <[u8; 32]>::from(Sha256::digest(payload));
    hex::encode([a, b, c, d])
}

/// The payload of a framed line (without its newline); `None` when the line
/// is damaged: its length or its check is not its payload's.
fn unframe(line: &str) -> Option<&str> {
    let (len, rest) = line.split_once(' ')?;
    let (sum, payload) = rest.split_once(' ')?;
    (len.parse::<usize>().ok()? == payload.len() && sum == check(payload.as_bytes())).then_some(payload)
}

/// Replaces the staging log by the commit record, atomically and durably.
pub fn write_commit(state: &Dir, c: &Commit) -> Result<(), JournalError> {
    let st = &c.stats;
    let mut records = vec![
        "phase commit".to_string(),
        format!("dist {}", c.dist),
        format!("tar {} {} {}", c.tar_size, c.md5, c.sha256),
        format!("manifest {}", c.manifest_sha256),
    ];
    records.extend(c.upgrade_src.as_ref().map(|u| format!("upgrade-src {}", escape(u))));
    records.push(format!("reboot {}", if c.reboot { "yes" } else { "no" }));
    records.push(format!("stats {} {} {} {}", st.written, st.unchanged, st.metadata_only, st.bytes_written));
    records.extend(c.ops.iter().map(|op| match op {
        Op::Rename { temp, path, flags } => format!("op rename {} {} {}", escape(temp), escape(path), flags.as_deref().unwrap_or("-")),
        Op::Meta { path, mode, uid, gid, mtime, flags } => {
            format!("op meta {} {mode:o} {uid} {gid} {mtime} {}", escape(path), flags.as_deref().unwrap_or("-"))
        }
        Op::KernelSwap { dir, staged } => format!("op kernel-swap {} {}", escape(dir), escape(staged)),
        Op::Remove { path } => format!("op remove {}", escape(path)),
    }));
    records.push("end".into());
    let mut s = format!("{MAGIC}\n");
    for r in &records {
        s.push_str(&frame(r));
    }
    Ok(state.write_atomically(NAME, s.as_bytes(), 0o644)?)
}

/// Appends a progress mark (`done N`, `upgraded`) to a commit journal.
pub fn mark(state: &Dir, line: &str, durable: bool) -> Result<(), JournalError> {
    Marks::open(state)?.mark(line, durable)
}

/// The commit journal held open for a run of marks.
pub struct Marks {
    file: File,
    path: PathBuf,
    /// Format 2 (framed records), or 1 (a journal of binarydist before 0.2).
    framed: bool,
}

impl Marks {
    /// Opens the journal for appending marks, first cutting off a torn last
    /// line (what a write that failed half-way left), so that a mark is never
    /// glued onto it.
    pub fn open(state: &Dir) -> Result<Marks, JournalError> {
        let path = path(state);
        let mut file = state.open(NAME, libc::O_RDWR | libc::O_APPEND, 0)?.ok_or_else(|| io_err(&path)(io::ErrorKind::NotFound.into()))?;
        let mut text = Vec::new();
        (&mut file).take(MAX_SIZE).read_to_end(&mut text).map_err(io_err(&path))?;
        if !text.ends_with(b"\n") {
            let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            file.set_len(whole as u64).map_err(io_err(&path))?;
        }
        let framed = text.starts_with(format!("{MAGIC}\n").as_bytes());
        Ok(Marks { file, path, framed })
    }

    /// One write(2) per mark: a kill -9 cannot tear it (a full disk can: see
    /// the module's comment).
    pub fn mark(&mut self, line: &str, durable: bool) -> Result<(), JournalError> {
        let record = if self.framed { frame(line) } else { format!("{line}\n") };
        self.file.write_all(record.as_bytes()).map_err(io_err(&self.path))?;
        if durable {
            self.file.sync_all().map_err(io_err(&self.path))?;
        }
        Ok(())
    }
}

/// Removes the journal once the install is recorded (or undone).
pub fn clear(state: &Dir) -> Result<(), JournalError> {
    state.remove(NAME)?;
    Ok(state.sync()?)
}

/// One line of a journal after its first: its number and its payload, or
/// `None` when it is damaged (torn, or its frame does not check).
type Record<'a> = (usize, Option<&'a str>);

/// Reads the journal, if there is one.
pub fn read(state: &Dir) -> Result<Option<Found>, JournalError> {
    let path = path(state);
    let path = path.as_path();
    let Some(bytes) = state.read(NAME, MAX_SIZE)? else { return Ok(None) };
    if bytes.iter().all(|&b| b == 0) {
        return Ok(Some(Found::Empty));
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.split('\n').collect();
    // What follows the last newline: nothing, or a line torn by a crash.
    let torn = lines.pop().filter(|t| !t.is_empty());
    let framed = match lines.first().copied() {
        Some(MAGIC) => true,
        Some(MAGIC_V1) => false,
        _ => return Err(JournalError::Garbage { path: path.to_path_buf() }),
    };
    let mut records: Vec<Record> =
        lines.iter().enumerate().skip(1).map(|(i, l)| (i + 1, if framed { unframe(l) } else { Some(*l) })).collect();
    records.extend(torn.map(|_| (lines.len() + 1, None)));
    let syntax = |line: usize, what: &str| JournalError::Syntax { path: path.to_path_buf(), line, what: shown(what) };
    let mut records = records.into_iter();
    match records.next() {
        Some((_, Some("phase staging"))) => parse_staging(records, &syntax).map(Some),
        Some((_, Some("phase commit"))) => parse_commit(records, framed, path, &syntax).map(Some),
        _ => Err(syntax(2, "no phase line")),
    }
}

/// The items of a staging log. A damaged record is skipped: its item was
/// never made, or (after a power loss) is a `.bdtmp.*` file left in place,
/// which is said on stderr.
fn parse_staging<'a>(
    records: impl Iterator<Item = Record<'a>>,
    syntax: &dyn Fn(usize, &str) -> JournalError,
) -> Result<Found, JournalError> {
    let mut items = Vec::new();
    let mut damaged = 0;
    for (no, line) in records {
        let Some(line) = line else {
            damaged += 1;
            continue;
        };
        let bad = |what: &str| syntax(no, &format!("{what}: {line}"));
        let (key, value) = line.split_once(' ').ok_or_else(|| bad("no value"))?;
        if key == "dir-time" {
            let w: Vec<&str> = value.splitn(3, ' ').collect();
            let [sec, nsec, p] = w[..] else { return Err(bad("bad dir-time")) };
            let (Ok(sec), Some(nsec)) = (sec.parse::<i64>(), nsec.parse::<i64>().ok().filter(|n| (0..1_000_000_000).contains(n))) else {
                return Err(bad("bad time"));
            };
            // The root itself is ".": the parent of a top-level entry.
            let p = if p == "." { PathBuf::from(".") } else { path_in_root(p).map_err(|w| bad(&w))? };
            items.push(Item::DirTime(p, sec, nsec));
            continue;
        }
        let p = path_in_root(value).map_err(|w| bad(&w))?;
        items.push(match key {
            // `base-new`: what a journal of binarydist before 0.2 calls it.
            "state-file" | "base-new" => Item::StateFile(in_state_dir(p).map_err(|w| bad(&w))?),
            "created-dir" => Item::CreatedDir(p),
            "staged" => Item::Staged(temp_name(p).map_err(|w| bad(&w))?),
            "staged-tree" => Item::StagedTree(temp_name(p).map_err(|w| bad(&w))?),
            _ => return Err(bad("unknown item")),
        });
    }
    if damaged > 0 {
        eprintln!("binarydist: the journal has {damaged} damaged line(s) (a crash while it was written): ignored; anything they named is a .bdtmp.* file left beside its place");
    }
    Ok(Found::Staging(items))
}

fn parse_commit<'a>(
    records: impl Iterator<Item = Record<'a>>,
    framed: bool,
    path: &Path,
    syntax: &dyn Fn(usize, &str) -> JournalError,
) -> Result<Found, JournalError> {
    let mut dist = None;
    let (mut tar_size, mut md5, mut sha256) = (0, String::new(), String::new());
    let mut manifest_sha256 = String::new();
    let mut upgrade_src = None;
    let mut reboot = false;
    let mut stats = Stats::default();
    let mut ops = Vec::new();
    let mut ended = false;
    let mut done = 0;
    let mut upgraded = false;
    let cut_short = |dist: &Option<DistName>, what: String| JournalError::CutShort {
        path: path.to_path_buf(),
        dist: dist.as_ref().map_or("an unknown dist".to_string(), |d| d.to_string()),
        what,
    };
    for (no, line) in records {
        let line = match line {
            Some(l) => l,
            // A mark torn by a crash or a full disk: ignored, its op is redone.
            None if ended => continue,
            None => return Err(cut_short(&dist, format!("cut short or damaged at line {no}"))),
        };
        let w: Vec<&str> = line.split(' ').collect();
        let bad = || syntax(no, line);
        let word = |i: usize| w.get(i).copied().ok_or_else(bad);
        let p = |i: usize| path_in_root(word(i)?).map_err(|why| syntax(no, &format!("{why}: {line}")));
        let checked = |r: Result<PathBuf, String>| r.map_err(|why| syntax(no, &format!("{why}: {line}")));
        let number = |i: usize| word(i)?.parse::<u64>().map_err(|_| bad());
        let id = |i: usize| word(i)?.parse::<u32>().map_err(|_| bad());
        let flags = |i: usize| w.get(i).filter(|f| **f != "-").map(|f| f.to_string());
        match (ended, word(0)?) {
            (false, "dist") => dist = Some(DistName::parse(word(1)?).map_err(|_| bad())?),
            (false, "tar") => {
                tar_size = number(1)?;
                md5 = word(2)?.to_string();
                sha256 = word(3)?.to_string();
            }
            (false, "manifest") => manifest_sha256 = word(1)?.to_string(),
            // Written by binarydist before 0.2; the names are fixed (state.rs).
            (false, "base-new") => {
                checked(in_state_dir(p(1)?))?;
            }
            (false, "upgrade-src") => upgrade_src = Some(p(1)?),
            (false, "reboot") => reboot = w.get(1) == Some(&"yes"),
            (false, "stats") => {
                stats = Stats { written: number(1)?, unchanged: number(2)?, metadata_only: number(3)?, bytes_written: number(4)? }
            }
            (false, "op") => ops.push(match w.get(1).copied() {
                Some("rename") => Op::Rename { temp: checked(temp_name(p(2)?))?, path: p(3)?, flags: flags(4) },
                Some("meta") => Op::Meta {
                    path: p(2)?,
                    mode: u32::from_str_radix(word(3)?, 8).ok().filter(|m| *m <= 0o7777).ok_or_else(bad)?,
                    uid: id(4)?,
                    gid: id(5)?,
                    mtime: word(6)?.parse::<i64>().map_err(|_| bad())?,
                    flags: flags(7),
                },
                Some("kernel-swap") => Op::KernelSwap { dir: p(2)?, staged: checked(temp_name(p(3)?))? },
                Some("remove") => Op::Remove { path: p(2)? },
                _ => return Err(bad()),
            }),
            (false, "end") => ended = true,
            (true, "done") => match word(1).ok().and_then(|n| n.parse::<usize>().ok()).filter(|n| *n <= ops.len()) {
                Some(n) => done = done.max(n),
                // Unframed (format 1), a torn mark glued to the next looks so.
                None if !framed => {}
                None => return Err(bad()),
            },
            (true, "upgraded") => upgraded = true,
            (true, _) if !framed => {} // format 1: a torn mark, ignored
            _ => return Err(bad()),
        }
    }
    if !ended {
        return Err(cut_short(&dist, "cut short (no end line)".into()));
    }
    let dist = dist.ok_or_else(|| syntax(0, "no dist line"))?;
    Ok(Found::Commit {
        commit: Box::new(Commit { dist, tar_size, md5, sha256, manifest_sha256, upgrade_src, reboot, stats, ops }),
        done,
        upgraded,
    })
}

/// A path read from the journal, checked: relative, no `..`, no NUL.
fn path_in_root(s: &str) -> Result<PathBuf, String> {
    let p = unescape(s).ok_or("bad escape or empty path")?;
    if p.as_os_str().as_bytes().contains(&0) {
        return Err("path with a NUL byte".into());
    }
    check_relative(&p).map_err(|e| e.to_string())?;
    Ok(p)
}

/// Something staging created under one of the installer's temporary names.
fn temp_name(p: PathBuf) -> Result<PathBuf, String> {
    match p.file_name() {
        Some(n) if n.as_bytes().starts_with(TEMP_PREFIX.as_bytes()) => Ok(p),
        _ => Err(format!("not a temporary name ({TEMP_PREFIX}*)")),
    }
}

/// One of the installer's temporary files in a series directory:
/// `var/db/binarydist/<series>/.base.new.tar.gz` or `.../.MANIFEST.new`.
fn in_state_dir(p: PathBuf) -> Result<PathBuf, String> {
    let rest = p.strip_prefix(STATE_DIR).map_err(|_| format!("not in {STATE_DIR}"))?;
    let parts: Vec<_> = rest.iter().collect();
    match parts[..] {
        [_, name] if name == BASE_NEW || name == MANIFEST_NEW => Ok(p),
        _ => Err(format!("not the next base or MANIFEST of a series in {STATE_DIR}")),
    }
}

pub fn escape(p: &Path) -> String {
    let mut s = String::new();
    for &b in p.as_os_str().as_bytes() {
        if b.is_ascii_graphic() && b != b'\\' {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\{b:03o}"));
        }
    }
    s
}

pub fn unescape(s: &str) -> Option<PathBuf> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'\\' {
            out.push(s.get(i + 1..i + 4).and_then(|o| u8::from_str_radix(o, 8).ok())?);
            i += 4;
        } else {
            out.push(c);
            i += 1;
        }
    }
    if out.is_empty() {
        return None;
    }
    Some(PathBuf::from(std::ffi::OsString::from_vec(out)))
}

#[cfg(test)]
mod tests;
