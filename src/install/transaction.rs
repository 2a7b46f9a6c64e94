//! An install that undoes itself unless committed, in the shape of rustup's
//! `dist::component::transaction`: every thing staging creates is recorded
//! (in memory, and in the journal before it is created), and dropping the
//! transaction without `commit` removes them all, newest first. A process
//! killed before commit leaves the journal, and the next run calls [`undo`]
//! on what it lists.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::journal::{self, Commit, Item, JournalError, StagingLog};
use crate::errors::shown;
use crate::os;
use crate::statedir::Dir;
use rustix::fs::AtFlags;
use rustix::io::Errno;
use std::ffi::OsStr;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub struct Transaction<'s> {
    root: PathBuf,
    /// The state directory, which holds the journal.
    state: &'s Dir,
    log: StagingLog,
    items: Vec<Item>,
    committed: bool,
}

impl<'s> Transaction<'s> {
    pub fn begin(root: &Path, state: &'s Dir) -> Result<Transaction<'s>, JournalError> {
        let log = StagingLog::create(state)?;
        Ok(Transaction { root: root.to_path_buf(), state, log, items: Vec::new(), committed: false })
    }

    /// Records `item` durably enough for kill -9 *before* the caller creates it.
    pub fn record(&mut self, item: Item) -> Result<(), JournalError> {
        self.log.record(&item)?;
        self.items.push(item);
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Replaces the staging log by the commit record: from here on the install
    /// is finished, by this process or the next run, never undone.
    pub fn commit(mut self, c: &Commit) -> Result<(), JournalError> {
        journal::write_commit(self.state, c)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let problems = undo(&self.root, self.state, &self.items);
        for problem in &problems {
            eprintln!("binarydist: while undoing: {problem}");
        }
        // What could not be undone stays listed, for the next run to retry.
        if !problems.is_empty() {
            return;
        }
        if let Err(e) = journal::clear(self.state) {
            eprintln!("binarydist: while undoing: {}", crate::errors::chain(&e));
        }
    }
}

/// Removes a directory staging created. After a power loss the journal may
/// have lost the line of a temporary file in it that did reach the disk; only
/// the installer makes such names (a dist may not), so they go too.
fn remove_created_dir(b: &mut os::Beneath, rel: &Path, abs: &Path) -> io::Result<()> {
    let (dir, name) = b.parent_of(rel)?;
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Err(Errno::NOTEMPTY | Errno::EXIST) => {
            let sub = os::open_dir_beneath(dir, Path::new(name))?;
            for entry in os::names_in(sub.as_fd())? {
                if entry.as_bytes().starts_with(super::plan::TEMP_PREFIX.as_bytes()) {
                    os::remove_tree_at(sub.as_fd(), &entry, &abs.join(&entry))?;
                }
            }
            Ok(rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?)
        }
        r => Ok(r?),
    }
}

/// Removes what staging created, newest first, through directory descriptors
/// from the root (nothing is followed). Things already gone are fine (the
/// journal records an item before creating it). Returns what could not be
/// removed, for the caller to report.
pub fn undo(root: &Path, state: &Dir, items: &[Item]) -> Vec<String> {
    let mut b = match os::Beneath::open(root) {
        Ok(b) => b,
        Err(e) => return vec![format!("{}: {e}", shown(root))],
    };
    let mut problems = Vec::new();
    for item in items.iter().rev() {
        let (path, res) = match item {
            Item::Staged(p) => (p, b.parent_of(p).and_then(|(dir, name)| Ok(rustix::fs::unlinkat(dir, name, AtFlags::empty())?))),
            Item::StateFile(p) => (p, super::state::remove_state_file(state, p)),
            Item::StagedTree(p) => {
                let abs = root.join(p);
                let res = b.parent_of(p).and_then(|(dir, name)| os::remove_tree_at(dir, name, &abs));
                b.forget();
                (p, res)
            }
            Item::CreatedDir(p) => {
                let res = remove_created_dir(&mut b, p, &root.join(p));
                b.forget();
                (p, res)
            }
            Item::DirTime(p, sec, nsec) => {
                let rel = if p == Path::new(".") { Path::new("") } else { p.as_path() };
                (p, b.dir(rel).and_then(|dir| os::restore_mtime_at(dir, OsStr::new("."), *sec, *nsec)))
            }
        };
        match res {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => problems.push(format!("{}: {e}", shown(root.join(path)))),
        }
    }
    problems
}
