//! The install journal, ROOT/var/db/binarydist/journal: what a killed install
//! left behind and what the next run must do about it.
//!
//! It has two phases, told apart by its second line:
//!
//! - `phase staging`: appended to as staging goes, one line per thing created
//!   *before* it is created (`staged`, `created-dir`, `staged-tree`, `state-file`),
//!   so that an interrupted staging can always be undone: nothing it lists is in
//!   use yet.
//! - `phase commit`: written atomically (temporary file, fsync, rename, fsync of
//!   the directory) once everything is staged and verified. It lists every
//!   operation of the commit in order; each is idempotent, so the next run just
//!   does them again from the last `done N` mark (ops `0..N` finished). `upgraded`
//!   records that `make upgrade` succeeded, so that it runs exactly once.
//!
//! Paths are relative to the root and escaped like the manifest's (`\ooo`).
//! A journal read back is checked like any other input before anything acts
//! on it (an undo removes what it lists): every path must be relative,
//! without `..` or NUL; what staging creates under a temporary name must have
//! one, and the new base must be in the state directory.

use super::plan::TEMP_PREFIX;
use super::state::{BASE_NEW, MANIFEST_NEW, STATE_DIR};
use crate::errors::shown;
use crate::names::DistName;
use crate::statedir::{Dir, StateDirError};
use crate::tario::check_relative;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

const MAGIC: &str = "#binarydist journal 1";
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
    #[error("{}: line {line}: {what} (remove it only if you know the install it belongs to is gone)", shown(path))]
    Syntax { path: PathBuf, line: usize, what: String },
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
    Staging(Vec<Item>),
    Commit { commit: Box<Commit>, done: usize, upgraded: bool },
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
        file.write_all(format!("{MAGIC}\nphase staging\n").as_bytes()).map_err(io_err(&path))?;
        file.sync_all().map_err(io_err(&path))?;
        state.sync()?;
        Ok(StagingLog { file, path })
    }

    /// Records `item` before it is created. One write(2) per line: a kill -9
    /// cannot tear it, and the kernel has it even if we die right after.
    pub fn record(&mut self, item: &Item) -> Result<(), JournalError> {
        let line = match item {
            Item::StateFile(p) => format!("state-file {}\n", escape(p)),
            Item::CreatedDir(p) => format!("created-dir {}\n", escape(p)),
            Item::Staged(p) => format!("staged {}\n", escape(p)),
            Item::StagedTree(p) => format!("staged-tree {}\n", escape(p)),
            Item::DirTime(p, sec, nsec) => format!("dir-time {sec} {nsec} {}\n", escape(p)),
        };
        self.file.write_all(line.as_bytes()).map_err(io_err(&self.path))
    }
}

/// Replaces the staging log by the commit record, atomically and durably.
pub fn write_commit(state: &Dir, c: &Commit) -> Result<(), JournalError> {
    let mut s = format!("{MAGIC}\nphase commit\ndist {}\n", c.dist);
    s.push_str(&format!("tar {} {} {}\n", c.tar_size, c.md5, c.sha256));
    s.push_str(&format!("manifest {}\n", c.manifest_sha256));
    if let Some(u) = &c.upgrade_src {
        s.push_str(&format!("upgrade-src {}\n", escape(u)));
    }
    s.push_str(&format!("reboot {}\n", if c.reboot { "yes" } else { "no" }));
    let st = &c.stats;
    s.push_str(&format!("stats {} {} {} {}\n", st.written, st.unchanged, st.metadata_only, st.bytes_written));
    for op in &c.ops {
        match op {
            Op::Rename { temp, path, flags } => {
                s.push_str(&format!("op rename {} {} {}\n", escape(temp), escape(path), flags.as_deref().unwrap_or("-")))
            }
            Op::Meta { path, mode, uid, gid, mtime, flags } => {
                s.push_str(&format!("op meta {} {mode:o} {uid} {gid} {mtime} {}\n", escape(path), flags.as_deref().unwrap_or("-")))
            }
            Op::KernelSwap { dir, staged } => s.push_str(&format!("op kernel-swap {} {}\n", escape(dir), escape(staged))),
            Op::Remove { path } => s.push_str(&format!("op remove {}\n", escape(path))),
        }
    }
    s.push_str("end\n");
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
}

impl Marks {
    pub fn open(state: &Dir) -> Result<Marks, JournalError> {
        let path = path(state);
        let file = state.open(NAME, libc::O_WRONLY | libc::O_APPEND, 0)?.ok_or_else(|| io_err(&path)(io::ErrorKind::NotFound.into()))?;
        Ok(Marks { file, path })
    }

    /// One write(2) per mark: a kill -9 cannot tear it.
    pub fn mark(&mut self, line: &str, durable: bool) -> Result<(), JournalError> {
        self.file.write_all(format!("{line}\n").as_bytes()).map_err(io_err(&self.path))?;
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

/// Reads the journal, if there is one.
pub fn read(state: &Dir) -> Result<Option<Found>, JournalError> {
    let path = path(state);
    let path = path.as_path();
    let Some(text) = state.read(NAME, MAX_SIZE)? else { return Ok(None) };
    let text = String::from_utf8_lossy(&text);
    let syntax = |line: usize, what: &str| JournalError::Syntax { path: path.to_path_buf(), line, what: what.to_string() };
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    if lines.next().map(|(_, l)| l) != Some(MAGIC) {
        return Err(syntax(1, "not a binarydist journal"));
    }
    match lines.next().map(|(_, l)| l) {
        Some("phase staging") => {
            let mut body: Vec<(usize, &str)> = lines.collect();
            // A line cut short by a crash has no newline: its item was never created.
            if !text.ends_with('\n') {
                body.pop();
            }
            let mut items = Vec::new();
            for (no, line) in body {
                let bad = |what: &str| syntax(no, &format!("{what}: {line}"));
                let (key, value) = line.split_once(' ').ok_or_else(|| bad("no value"))?;
                if key == "dir-time" {
                    let w: Vec<&str> = value.splitn(3, ' ').collect();
                    let [sec, nsec, p] = w[..] else { return Err(bad("bad dir-time")) };
                    let (Ok(sec), Some(nsec)) = (sec.parse::<i64>(), nsec.parse::<i64>().ok().filter(|n| (0..1_000_000_000).contains(n)))
                    else {
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
            Ok(Some(Found::Staging(items)))
        }
        Some("phase commit") => parse_commit(lines, &syntax).map(Some),
        _ => Err(syntax(2, "no phase line")),
    }
}

fn parse_commit<'a>(
    lines: impl Iterator<Item = (usize, &'a str)>,
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
    for (no, line) in lines {
        let w: Vec<&str> = line.split(' ').collect();
        let bad = || syntax(no, line);
        let word = |i: usize| w.get(i).copied().ok_or_else(bad);
        let p = |i: usize| path_in_root(word(i)?).map_err(|why| syntax(no, &format!("{why}: {line}")));
        let checked = |r: Result<PathBuf, String>| r.map_err(|why| syntax(no, &format!("{why}: {line}")));
        let number = |i: usize| word(i)?.parse::<u64>().map_err(|_| bad());
        let id = |i: usize| word(i)?.parse::<u32>().map_err(|_| bad());
        let flags = |i: usize| w.get(i).filter(|f| **f != "-").map(|f| f.to_string());
        match (ended, w[0]) {
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
            (true, "done") => done = done.max(word(1)?.parse::<usize>().map_err(|_| bad())?),
            (true, "upgraded") => upgraded = true,
            (true, _) if !line.is_empty() => {} // a mark torn by a crash: ignored, its op is redone
            _ => return Err(bad()),
        }
    }
    if !ended {
        return Err(syntax(0, "commit record without its end line"));
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
    while i < b.len() {
        if b[i] == b'\\' {
            out.push(s.get(i + 1..i + 4).and_then(|o| u8::from_str_radix(o, 8).ok())?);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    if out.is_empty() {
        return None;
    }
    Some(PathBuf::from(std::ffi::OsString::from_vec(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_round_trips_and_marks_count() {
        let tmp = tempfile::tempdir().unwrap();
        let d = Dir::open_root(tmp.path()).unwrap();
        let c = Commit {
            dist: DistName::parse("DragonFly-world-x86_64-master-20261128T103900Z-v1").unwrap(),
            tar_size: 10240,
            md5: "aa".into(),
            sha256: "bb".into(),
            manifest_sha256: "cc".into(),
            upgrade_src: Some("usr/share/binarydist/upgrade-src".into()),
            reboot: true,
            stats: Stats { written: 3, unchanged: 4, metadata_only: 1, bytes_written: 99 },
            ops: vec![
                Op::KernelSwap { dir: "boot/kernel".into(), staged: "boot/.bdtmp.kernel".into() },
                Op::Rename { temp: "bin/.bdtmp.3".into(), path: "bin/a b".into(), flags: Some("schg".into()) },
                Op::Meta { path: "bin".into(), mode: 0o755, uid: 0, gid: 5, mtime: 17, flags: None },
                Op::Remove { path: "x".into() },
            ],
        };
        write_commit(&d, &c).unwrap();
        mark(&d, "done 2", false).unwrap();
        match read(&d).unwrap() {
            Some(Found::Commit { commit, done, upgraded }) => {
                assert_eq!(*commit, c);
                assert_eq!(done, 2);
                assert!(!upgraded);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn staging_log_drops_a_torn_last_line() {
        let tmp = tempfile::tempdir().unwrap();
        let d = Dir::open_root(tmp.path()).unwrap();
        let j = path(&d);
        let mut log = StagingLog::create(&d).unwrap();
        log.record(&Item::CreatedDir("usr".into())).unwrap();
        log.record(&Item::Staged("usr/.bdtmp.1".into())).unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(&j).unwrap();
        f.write_all(b"staged usr/.bd").unwrap();
        match read(&d).unwrap() {
            Some(Found::Staging(items)) => {
                assert_eq!(items, vec![Item::CreatedDir("usr".into()), Item::Staged("usr/.bdtmp.1".into())])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hostile_paths_and_numbers_are_refused_on_read() {
        let tmp = tempfile::tempdir().unwrap();
        let d = Dir::open_root(tmp.path()).unwrap();
        let j = path(&d);
        let staging = |body: &str| format!("{MAGIC}\nphase staging\n{body}\n");
        let commit = |body: &str| {
            format!(
                "{MAGIC}\nphase commit\ndist DragonFly-world-x86_64-master-20261128T103900Z-v1\ntar 1 aa bb\n\
                 base-new var/db/binarydist/world/.base.new.tar.gz\n{body}\nend\n"
            )
        };
        for text in [
            staging("staged ../outside/.bdtmp.1"),
            staging("staged /etc/.bdtmp.1"),
            staging("staged etc/passwd"),
            staging("staged etc/\\000.bdtmp.1"),
            staging("staged-tree boot/kernel"),
            staging("created-dir usr/../.."),
            staging("base-new etc/passwd"),
            staging("dir-time 1 2000000000 etc"),
            staging("dir-time 1 0 /"),
            commit("op remove ../x"),
            commit("op rename etc/passwd etc/shadow -"),
            commit("op rename etc/.bdtmp.1 /etc/passwd -"),
            commit("op meta bin 755 -1 0 0 -"),
            commit("op meta bin 17777 0 0 0 -"),
            commit("op kernel-swap boot/kernel boot/other"),
            commit("stats -1 0 0 0"),
            commit("upgrade-src ../src"),
            commit("end\ndone -3"),
        ] {
            std::fs::write(&j, &text).unwrap();
            match read(&d) {
                Err(JournalError::Syntax { .. }) => {}
                other => panic!("accepted {text:?}: {other:?}"),
            }
        }
        std::fs::write(&j, staging("dir-time 1 999999999 .\nstaged etc/.bdtmp.7")).unwrap();
        assert!(matches!(read(&d), Ok(Some(Found::Staging(items))) if items.len() == 2));
    }
}
