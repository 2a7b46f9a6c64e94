//! Step 4: the commit's operations, in the order that keeps a running system
//! working, and their execution, which the next run repeats after a crash.
//!
//! Order: the kernel directory becomes kernel.old and the staged one takes its
//! place; critical files whose final name is new (a bumped library version:
//! nothing running uses it); everything else in manifest order; the remaining
//! critical files, the runtime linker and libc last and back to back; removal
//! of entries the new dist dropped; and last the directories' owners, modes and
//! times, since renaming into a directory changes its mtime.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::journal::{self, JournalError, Op};
use super::plan::{Action, Plan};
use super::stage::Staged;
use crate::errors::shown;
use crate::manifest::Manifest;
use crate::os;
use crate::tario::{Kind, Meta};
use crate::testhooks;
use rustix::fs::{AtFlags, FileType, OFlags};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("{}", shown(path))]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{}: neither staged ({}) nor in place; the journal does not match the root", shown(path), shown(temp))]
    Lost { path: PathBuf, temp: PathBuf },
    #[error("{what}; nothing was committed")]
    Mismatch { what: String },
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> CommitError + '_ {
    move |e| CommitError::Io { path: path.to_path_buf(), source: e }
}

fn meta_op(m: &Meta) -> Op {
    Op::Meta { path: m.path.clone(), mode: m.mode, uid: m.uid, gid: m.gid, mtime: m.mtime, flags: m.flags.clone() }
}

fn file_name_starts(p: &Path, prefix: &str) -> bool {
    p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix))
}

pub fn build_ops(manifest: &Manifest, plan: &Plan, staged: &Staged) -> Result<Vec<Op>, CommitError> {
    let entries = manifest.entries.len();
    if plan.actions.len() != entries || plan.existed.len() != entries || staged.temps.len() != entries {
        let what = format!(
            "the plan ({} actions) or the staging ({} entries) does not match the manifest's {entries} entries",
            plan.actions.len(),
            staged.temps.len()
        );
        return Err(CommitError::Mismatch { what });
    }
    let mut swap = Vec::new();
    let mut new_names = Vec::new();
    let mut middle = Vec::new();
    let (mut late, mut rtld, mut libc) = (Vec::new(), Vec::new(), Vec::new());
    let mut dirs = Vec::new();
    if let Some((dir, staged_tree)) = &plan.kernel {
        swap.push(Op::KernelSwap { dir: dir.clone(), staged: staged_tree.clone() });
    }
    // Renaming into, creating in or removing from a directory changes its
    // mtime: such directories get their metadata set again at the end.
    let mut touched: HashSet<&Path> = HashSet::new();
    for (e, action) in manifest.entries.iter().zip(&plan.actions) {
        if matches!(action, Action::Stage | Action::CreateDir) {
            touched.extend(e.meta.path.parent());
        }
    }
    touched.extend(plan.removals.iter().filter_map(|p| p.parent()));
    touched.extend(plan.kernel.as_ref().and_then(|k| k.0.parent()));
    // A file with staged hard links gets its flags after every rename: on BSD
    // rename(2) of a link to an schg inode fails with EPERM.
    let link_targets: HashSet<&Path> = manifest
        .entries
        .iter()
        .zip(&plan.actions)
        .filter(|(e, action)| e.meta.kind == Kind::HardLink && **action == Action::Stage)
        .filter_map(|(e, _)| e.meta.link.as_deref())
        .collect();
    let mut deferred_flags = Vec::new();
    for (((e, action), existed), temp) in manifest.entries.iter().zip(&plan.actions).zip(&plan.existed).zip(&staged.temps) {
        let m = &e.meta;
        match action {
            Action::Unchanged if m.kind == Kind::Dir && touched.contains(m.path.as_path()) => dirs.push(meta_op(m)),
            Action::Unchanged => {}
            Action::CreateDir => dirs.push(meta_op(m)),
            Action::MetaOnly if m.kind == Kind::Dir => dirs.push(meta_op(m)),
            Action::MetaOnly => middle.push(meta_op(m)),
            Action::KernelTree if m.kind == Kind::Dir => dirs.push(meta_op(m)),
            Action::KernelTree if m.flags.is_some() => middle.push(meta_op(m)),
            Action::KernelTree => {}
            Action::Stage => {
                let Some(temp) = temp.clone() else {
                    return Err(CommitError::Mismatch { what: format!("{}: planned for staging but not staged", shown(&m.path)) });
                };
                // A hard link shares its target's inode: flags are the target's.
                let flags = if m.kind == Kind::HardLink { None } else { m.flags.clone() };
                let flags = if flags.is_some() && link_targets.contains(m.path.as_path()) {
                    deferred_flags.push(meta_op(m));
                    None
                } else {
                    flags
                };
                let op = Op::Rename { temp, path: m.path.clone(), flags };
                if !e.critical {
                    middle.push(op);
                } else if !existed {
                    new_names.push(op);
                } else if file_name_starts(&m.path, "ld-elf.so") {
                    rtld.push(op);
                } else if file_name_starts(&m.path, "libc.so") {
                    libc.push(op);
                } else {
                    late.push(op);
                }
            }
        }
    }
    let removals = plan.removals.iter().map(|p| Op::Remove { path: p.clone() });
    dirs.reverse();
    Ok(swap
        .into_iter()
        .chain(new_names)
        .chain(middle)
        .chain(late)
        .chain(rtld)
        .chain(libc)
        .chain(deferred_flags)
        .chain(removals)
        .chain(dirs)
        .collect())
}

/// Runs `ops[from..]`, marking each done in the journal. Every op can be run
/// again after a crash and ends in the same state. Returns how many set-id
/// files with other hard links it made plain before replacing them.
///
/// Every op reaches its entry through directory descriptors from the root
/// (os::Beneath): renames, removals, flags, owners, modes and times are `*at`
/// calls relative to a parent opened without following a symlink, or calls
/// on a descriptor of the entry itself (os::set_attrs_at); none goes by a path
/// that a symlink put in the way could redirect.
pub fn run_ops(root: &Path, state: &crate::statedir::Dir, ops: &[Op], from: usize) -> Result<u64, CommitError> {
    let mut marks = journal::Marks::open(state)?;
    let mut beneath = os::Beneath::open(root).map_err(io_err(root))?;
    let mut setid_cleared = 0;
    for (i, op) in ops.iter().enumerate().skip(from) {
        testhooks::kill_point("op");
        match op {
            Op::Rename { temp, path, flags } => setid_cleared += rename(&mut beneath, temp, path, flags.as_deref())? as u64,
            Op::Meta { path, mode, uid, gid, mtime, flags } => {
                let attrs = os::Attrs { owner: Some((*uid, *gid)), mode: Some(*mode), mtime: Some(*mtime), flags: Some(flags.as_deref()) };
                set_meta(&mut beneath, path, &attrs)?
            }
            Op::KernelSwap { dir, staged } => kernel_swap(&mut beneath, dir, staged)?,
            Op::Remove { path } => remove(&mut beneath, path)?,
        }
        // Only the swap is not idempotent by itself once renames follow it.
        marks.mark(&format!("done {}", i + 1), matches!(op, Op::KernelSwap { .. }))?;
    }
    Ok(setid_cleared)
}

/// Before a set-uid or set-gid file is replaced: if another hard link shares
/// its inode (a user's link to su, say), that link would keep the old, perhaps
/// vulnerable, program with its set-id bits once the name is renamed over.
/// So the bits are cleared on the old inode first, as dpkg does, through a
/// descriptor of it, and said on stderr. Returns whether it cleared them.
fn clear_setid_of_linked(dir: BorrowedFd<'_>, name: &OsStr, rel: &Path) -> Result<bool, CommitError> {
    use std::os::unix::fs::MetadataExt;
    let how = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    // Not there, or nothing we can open (a symlink): nothing set-id to keep.
    let Ok(fd) = rustix::fs::openat(dir, name, how, rustix::fs::Mode::empty()) else { return Ok(false) };
    let f = fs::File::from(fd);
    let m = f.metadata().map_err(io_err(rel))?;
    if !m.is_file() || m.mode() & 0o6000 == 0 || m.nlink() < 2 {
        return Ok(false);
    }
    f.set_permissions(fs::Permissions::from_mode(m.mode() & 0o1777)).map_err(io_err(rel))?;
    eprintln!(
        "binarydist: {}: set-id file with {} hard links: its set-id bits were cleared before it was replaced, so that no other link keeps the old program set-id",
        shown(rel),
        m.nlink()
    );
    Ok(true)
}

/// Renames `temp` over `path` (both in one directory), clearing the flags of
/// what it replaces first and setting `flags` after; returns whether it
/// cleared the set-id bits of the file it replaced ([`clear_setid_of_linked`]).
fn rename(b: &mut os::Beneath, temp: &Path, path: &Path, flags: Option<&str>) -> Result<bool, CommitError> {
    let abs = b.root().join(path);
    if temp.parent() != path.parent() {
        return Err(CommitError::Lost { path: abs, temp: temp.to_path_buf() });
    }
    let (dir, name) = b.parent_of(path).map_err(io_err(&abs))?;
    let tname = temp.file_name().unwrap_or_default();
    let mut setid_cleared = false;
    match os::stat_at(dir, tname) {
        Ok(_) => {
            if let Ok(st) = os::stat_at(dir, name) {
                if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                    if os::flags_of(&st, &abs).map_err(io_err(&abs))?.is_some() {
                        os::set_flags(os::Target::At(dir, name), &abs, None).map_err(io_err(&abs))?;
                    }
                    setid_cleared = clear_setid_of_linked(dir, name, path)?;
                }
            }
            testhooks::log_step("rename", &abs);
            rustix::fs::renameat(dir, tname, dir, name).map_err(|e| io_err(&abs)(e.into()))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Renamed before a crash; its flags may still be missing.
            if os::stat_at(dir, name).is_err() {
                return Err(CommitError::Lost { path: abs, temp: temp.to_path_buf() });
            }
        }
        Err(e) => return Err(io_err(&abs)(e)),
    }
    testhooks::kill_point("flags");
    if let Some(f) = flags {
        os::set_flags(os::Target::At(dir, name), &abs, Some(f)).map_err(io_err(&abs))?;
    }
    Ok(setid_cleared)
}

/// Owner, mode, times and flags of an entry in place. One that is no longer
/// what it was a moment ago (swapped for a symlink by whoever owns it, in a
/// world-writable directory the dist ships) is left alone and said so: the
/// change is never steered through it.
fn set_meta(b: &mut os::Beneath, path: &Path, attrs: &os::Attrs) -> Result<(), CommitError> {
    let abs = b.root().join(path);
    let (dir, name) = if path == Path::new(".") {
        (b.dir(Path::new("")).map_err(io_err(&abs))?, OsStr::new("."))
    } else {
        b.parent_of(path).map_err(io_err(&abs))?
    };
    if !os::set_attrs_at(dir, name, &abs, attrs).map_err(io_err(&abs))? {
        eprintln!(
            "binarydist: {}: changed while its owner and mode were being set (a symlink put in its place?): not followed, left as it is",
            shown(path)
        );
    }
    Ok(())
}

/// The current kernel directory becomes `DIR.old` (replacing an older one) and
/// the staged one becomes `DIR`. installkernel copies the running kernel into
/// `DIR.old` and installs over `DIR` in place; two renames reach the same
/// state, the old modules kept with the old kernel, without a moment when
/// `DIR` holds a mix of both. Decided by what is on disk, so that a rerun after
/// a crash anywhere in here completes it.
fn kernel_swap(b: &mut os::Beneath, dir: &Path, staged: &Path) -> Result<(), CommitError> {
    let abs = b.root().join(dir);
    if staged.parent() != dir.parent() {
        return Err(CommitError::Lost { path: abs, temp: staged.to_path_buf() });
    }
    let mut old_name = dir.file_name().unwrap_or_default().to_os_string();
    old_name.push(".old");
    let old_abs = abs.with_file_name(&old_name);
    let staged_abs = b.root().join(staged);
    b.forget();
    let (parent, name) = b.parent_of(dir).map_err(io_err(&abs))?;
    let sname = staged.file_name().unwrap_or_default();
    if os::stat_at(parent, sname).is_err() {
        return Ok(()); // done before a crash
    }
    if os::stat_at(parent, name).is_ok() {
        if os::stat_at(parent, &old_name).is_ok() {
            os::remove_tree_at(parent, &old_name, &old_abs).map_err(io_err(&old_abs))?;
        }
        testhooks::log_step("rename", &abs);
        rustix::fs::renameat(parent, name, parent, &old_name).map_err(|e| io_err(&old_abs)(e.into()))?;
        testhooks::kill_point("kernel-old");
    }
    testhooks::log_step("rename", &staged_abs);
    rustix::fs::renameat(parent, sname, parent, name).map_err(|e| io_err(&abs)(e.into()))?;
    rustix::fs::fsync(parent).map_err(|e| io_err(&abs)(e.into()))?;
    b.forget();
    Ok(())
}

fn remove(b: &mut os::Beneath, path: &Path) -> Result<(), CommitError> {
    let abs = b.root().join(path);
    // A symlink the new dist (or an admin) put where a directory was would
    // carry the removal out of the root: the walk refuses it, and there is
    // nothing of ours to remove down there.
    let (dir, name) = match b.parent_of(path) {
        Ok(found) => found,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::EMLINK | libc::ENOTDIR | libc::ENOENT)) => return Ok(()),
        Err(e) => return Err(io_err(&abs)(e)),
    };
    let st = match os::stat_at(dir, name) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(&abs)(e)),
        Ok(st) => st,
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        let removed = match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
            // Something of the admin's is in it: leave it.
            Err(rustix::io::Errno::NOTEMPTY | rustix::io::Errno::EXIST) => Ok(()),
            r => r.map_err(|e| io_err(&abs)(e.into())),
        };
        b.forget();
        return removed;
    }
    if os::flags_of(&st, &abs).map_err(io_err(&abs))?.is_some() {
        os::set_flags(os::Target::At(dir, name), &abs, None).map_err(io_err(&abs))?;
    }
    rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(|e| io_err(&abs)(e.into()))
}
