//! An install that undoes itself unless committed, in the shape of rustup's
//! `dist::component::transaction`: every thing staging creates is recorded
//! (in memory, and in the journal before it is created), and dropping the
//! transaction without `commit` removes them all, newest first. A process
//! killed before commit leaves the journal, and the next run calls [`undo`]
//! on what it lists.

use super::journal::{self, Commit, Item, JournalError, StagingLog};
use crate::statedir::Dir;
use std::fs;
use std::io;
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
fn remove_created_dir(dir: &Path) -> io::Result<()> {
    match fs::remove_dir(dir) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {
            for entry in fs::read_dir(dir)? {
                let entry = entry?;
                if entry.file_name().to_string_lossy().starts_with(super::plan::TEMP_PREFIX) {
                    if entry.file_type()?.is_dir() {
                        fs::remove_dir_all(entry.path())?;
                    } else {
                        fs::remove_file(entry.path())?;
                    }
                }
            }
            fs::remove_dir(dir)
        }
        r => r,
    }
}

/// Removes what staging created, newest first. Things already gone are fine
/// (the journal records an item before creating it). Returns what could not
/// be removed, for the caller to report.
pub fn undo(root: &Path, state: &Dir, items: &[Item]) -> Vec<String> {
    let mut problems = Vec::new();
    for item in items.iter().rev() {
        let (path, res) = match item {
            Item::Staged(p) => (p, fs::remove_file(root.join(p))),
            Item::StateFile(p) => (p, super::state::remove_state_file(state, p)),
            Item::StagedTree(p) => (p, fs::remove_dir_all(root.join(p))),
            Item::CreatedDir(p) => (p, remove_created_dir(&root.join(p))),
            Item::DirTime(p, sec, nsec) => (p, crate::os::restore_mtime(&root.join(p), *sec, *nsec)),
        };
        match res {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => problems.push(format!("{}: {e}", crate::errors::shown(root.join(path)))),
        }
    }
    problems
}
