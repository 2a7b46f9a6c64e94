//! Getting staged files onto the disk before the commit record says they are
//! there, and the commit's renames onto it before the install is recorded.
//!
//! Two ways, one per kind of system:
//!
//! - Linux: `syncfs(2)` of every file system written. It returns once every
//!   dirty buffer of that file system is on disk, so one call is a barrier
//!   for all the staged files, far cheaper than an fsync each. Staging starts
//!   each file's writeback early (`sync_file_range`) so that little is left
//!   for it.
//! - The BSDs have no syncfs, and DragonFly's `sync(2)` schedules the writes
//!   and may return before they are done: after a power loss the journal could
//!   say "committed" while a staged libc is still empty, and the next run's
//!   renames would put it in place. There every staged file is fsynced, by a
//!   thread of its own as staging goes (the disk works while the stream is
//!   read), and every directory staged into is fsynced once staging is over (a
//!   directory fsynced earlier would not cover the entries made in it later).
//!   Symlinks, fifos and device nodes cannot be opened to be fsynced: their
//!   directory's fsync is what makes them durable.
//!
//! A test-hooks build on Linux can take the BSD path (`BINARYDIST_TEST_SYNC=per-file`),
//! so that the tests run it. What is durable when is in docs/install.md.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::journal::Op;
use crate::os;
use crate::testhooks;
use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

/// Staged files waiting for their fsync: bounds the descriptors held open.
const QUEUE: usize = 64;

/// Whether this system makes files durable one by one (the BSDs) rather than
/// with one syncfs per file system (Linux).
pub fn per_file() -> bool {
    cfg!(not(target_os = "linux")) || testhooks::per_file_sync()
}

type Failure = (PathBuf, io::Error);

/// Makes staged entries durable, the way [`per_file`] says.
pub struct Flusher {
    queue: Option<SyncSender<(PathBuf, File)>>,
    thread: Option<JoinHandle<Result<(), Failure>>>,
    /// Directories staged into (absolute), fsynced at the end.
    dirs: BTreeSet<PathBuf>,
}

impl Flusher {
    pub fn new() -> Flusher {
        if !per_file() {
            return Flusher { queue: None, thread: None, dirs: BTreeSet::new() };
        }
        let (tx, rx) = sync_channel::<(PathBuf, File)>(QUEUE);
        let thread = std::thread::spawn(move || {
            for (path, file) in rx {
                file.sync_all().map_err(|e| (path, e))?;
            }
            Ok(())
        });
        Flusher { queue: Some(tx), thread: Some(thread), dirs: BTreeSet::new() }
    }

    /// A staged file, written and given its owner, mode and times.
    pub fn file(&mut self, abs: &Path, file: File) {
        match &self.queue {
            Some(q) => {
                if let Some(parent) = abs.parent() {
                    self.dirs.insert(parent.to_path_buf());
                }
                // A send fails only when the thread stopped at an error, which
                // finish() reports.
                let _ = q.send((abs.to_path_buf(), file));
            }
            None => os::start_writeback(&file),
        }
    }

    /// Something else created in place at `abs` (a directory, symlink, hard
    /// link, fifo, device node): its directory entry is made durable.
    pub fn entry(&mut self, abs: &Path) {
        if self.queue.is_some() {
            if let Some(parent) = abs.parent() {
                self.dirs.insert(parent.to_path_buf());
            }
        }
    }

    fn join(&mut self) -> Result<(), Failure> {
        self.queue = None;
        match self.thread.take().map(JoinHandle::join) {
            None => Ok(()),
            Some(Ok(r)) => r,
            Some(Err(_)) => Err((PathBuf::new(), io::Error::other("the fsync thread panicked"))),
        }
    }

    /// Returns once everything staged is on disk: every file and directory
    /// fsynced (per file), or one syncfs per file system holding one of
    /// `probes` (existing directories: the plan's, the state directory's).
    pub fn finish(mut self, probes: &[&Path]) -> Result<(), Failure> {
        if self.thread.is_none() {
            return sync_filesystems(probes.iter().copied());
        }
        self.join()?;
        for d in std::mem::take(&mut self.dirs) {
            fsync_dir(&d)?;
        }
        Ok(())
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        // An install that fails before its commit: the thread ends with the queue.
        let _ = self.join();
    }
}

/// fsync of a directory, opened `O_DIRECTORY|O_NONBLOCK`: never anything else,
/// and never blocking on a fifo put in its place.
fn fsync_dir(dir: &Path) -> Result<(), Failure> {
    let d = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY | libc::O_NONBLOCK).open(dir);
    d.and_then(|d| d.sync_all()).map_err(|e| (dir.to_path_buf(), e))
}

/// One syncfs per file system among `dirs`.
fn sync_filesystems<'a>(dirs: impl Iterator<Item = &'a Path>) -> Result<(), Failure> {
    let mut seen = HashSet::new();
    for d in dirs {
        let dev = std::fs::metadata(d).map_err(|e| (d.to_path_buf(), e))?.dev();
        if seen.insert(dev) {
            os::sync_filesystem(d).map_err(|e| (d.to_path_buf(), e))?;
        }
    }
    Ok(())
}

/// After the commit's operations, before the install is recorded (and its
/// journal removed): the renames, removals and metadata changes are on disk.
/// Per file: every directory an operation changed, and every regular file or
/// directory whose metadata it set; else one syncfs per file system touched.
pub fn commit_done(root: &Path, ops: &[Op]) -> Result<(), Failure> {
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    let mut inodes: BTreeSet<PathBuf> = BTreeSet::new();
    for op in ops {
        match op {
            Op::Rename { path, .. } | Op::Remove { path } => dirs.extend(root.join(path).parent().map(Path::to_path_buf)),
            Op::KernelSwap { dir, .. } => dirs.extend(root.join(dir).parent().map(Path::to_path_buf)),
            Op::Meta { path, .. } => {
                inodes.insert(root.join(path));
            }
        }
    }
    if !per_file() {
        let probes: Vec<&Path> = dirs.iter().map(PathBuf::as_path).chain([root]).filter(|d| d.is_dir()).collect();
        return sync_filesystems(probes.into_iter());
    }
    for p in &inodes {
        dirs.extend(p.parent().map(Path::to_path_buf));
        // Only what can be opened without side effects: a fifo would block, a
        // device node could do anything. The others go with their directory.
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => {
                dirs.insert(p.clone());
            }
            Ok(m) if m.is_file() => fsync_file(p)?,
            _ => {}
        }
    }
    for d in dirs.iter().filter(|d| d.is_dir()) {
        fsync_dir(d)?;
    }
    Ok(())
}

/// fsyncs a regular file found in the root, without following a symlink
/// swapped in since it was looked at, nor blocking on a fifo.
fn fsync_file(p: &Path) -> Result<(), Failure> {
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(p);
    f.and_then(|f| f.sync_all()).map_err(|e| (p.to_path_buf(), e))
}

/// After `make upgrade`, before its `upgraded` mark: what make wrote is on
/// disk. Without this a power loss could keep the mark (the journal is
/// fsynced) and lose make's changes, and the rerun would not run make again.
/// Make says nothing of what it wrote, so: else one syncfs per file system
/// of the root, `etc`, `var` and `usr`; per file, every regular file and
/// directory under those whose status changed since `since` (make's start,
/// less a second for coarse timestamps), and its directory. The state
/// directory is ours and synced by the journal's own steps.
pub fn upgrade_done(root: &Path, since: std::time::SystemTime) -> Result<(), Failure> {
    let tops: Vec<PathBuf> = ["", "etc", "var", "usr"].iter().map(|d| root.join(d)).filter(|d| d.is_dir()).collect();
    if !per_file() {
        return sync_filesystems(tops.iter().map(PathBuf::as_path));
    }
    let since = since.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64 - 1);
    let skip = root.join(super::state::STATE_DIR);
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    let mut todo: Vec<PathBuf> = tops.into_iter().skip(1).collect();
    while let Some(dir) = todo.pop() {
        if dir == skip {
            continue;
        }
        let meta = std::fs::symlink_metadata(&dir).map_err(|e| (dir.clone(), e))?;
        if meta.ctime() >= since || meta.mtime() >= since {
            dirs.insert(dir.clone());
        }
        let entries = std::fs::read_dir(&dir).map_err(|e| (dir.clone(), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| (dir.clone(), e))?;
            let path = entry.path();
            let m = match std::fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // removed meanwhile
                Err(e) => return Err((path, e)),
            };
            if m.is_dir() {
                todo.push(path);
            } else if m.ctime() >= since {
                dirs.insert(dir.clone());
                if m.is_file() {
                    fsync_file(&path)?;
                }
            }
        }
    }
    // A directory make created is reached through its parent's entry.
    let parents: Vec<PathBuf> = dirs.iter().filter_map(|d| d.parent().map(Path::to_path_buf)).filter(|p| p.starts_with(root)).collect();
    dirs.extend(parents);
    for d in &dirs {
        fsync_dir(d)?;
    }
    Ok(())
}
