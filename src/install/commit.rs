//! Step 4: the commit's operations, in the order that keeps a running system
//! working, and their execution, which the next run repeats after a crash.
//!
//! Order: the kernel directory becomes kernel.old and the staged one takes its
//! place; critical files whose final name is new (a bumped library version:
//! nothing running uses it); everything else in manifest order; the remaining
//! critical files, the runtime linker and libc last and back to back; removal
//! of entries the new dist dropped; and last the directories' owners, modes and
//! times, since renaming into a directory changes its mtime.

use super::journal::{self, JournalError, Op};
use super::plan::{Action, Plan};
use super::stage::Staged;
use crate::errors::shown;
use crate::manifest::Manifest;
use crate::os;
use crate::tario::{Kind, Meta};
use crate::testhooks;
use std::collections::HashSet;
use std::fs;
use std::io;
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

pub fn build_ops(manifest: &Manifest, plan: &Plan, staged: &Staged) -> Vec<Op> {
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
    for (i, e) in manifest.entries.iter().enumerate() {
        if matches!(plan.actions[i], Action::Stage | Action::CreateDir) {
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
        .enumerate()
        .filter(|(i, e)| e.meta.kind == Kind::HardLink && plan.actions[*i] == Action::Stage)
        .filter_map(|(_, e)| e.meta.link.as_deref())
        .collect();
    let mut deferred_flags = Vec::new();
    for (i, e) in manifest.entries.iter().enumerate() {
        let m = &e.meta;
        match plan.actions[i] {
            Action::Unchanged if m.kind == Kind::Dir && touched.contains(m.path.as_path()) => dirs.push(meta_op(m)),
            Action::Unchanged => {}
            Action::CreateDir => dirs.push(meta_op(m)),
            Action::MetaOnly if m.kind == Kind::Dir => dirs.push(meta_op(m)),
            Action::MetaOnly => middle.push(meta_op(m)),
            Action::KernelTree if m.kind == Kind::Dir => dirs.push(meta_op(m)),
            Action::KernelTree if m.flags.is_some() => middle.push(meta_op(m)),
            Action::KernelTree => {}
            Action::Stage => {
                let temp = staged.temps[i].clone().expect("a staged entry has a temporary name");
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
                } else if !plan.existed[i] {
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
    swap.into_iter()
        .chain(new_names)
        .chain(middle)
        .chain(late)
        .chain(rtld)
        .chain(libc)
        .chain(deferred_flags)
        .chain(removals)
        .chain(dirs)
        .collect()
}

/// Runs `ops[from..]`, marking each done in the journal. Every op can be run
/// again after a crash and ends in the same state. Returns how many set-id
/// files with other hard links it made plain before replacing them.
pub fn run_ops(root: &Path, state: &crate::statedir::Dir, ops: &[Op], from: usize) -> Result<u64, CommitError> {
    let mut marks = journal::Marks::open(state)?;
    let mut setid_cleared = 0;
    for (i, op) in ops.iter().enumerate().skip(from) {
        testhooks::kill_point("op");
        match op {
            Op::Rename { temp, path, flags } => setid_cleared += rename(root, temp, path, flags.as_deref())? as u64,
            Op::Meta { path, mode, uid, gid, mtime, flags } => set_meta(root, path, *mode, *uid, *gid, *mtime, flags.as_deref())?,
            Op::KernelSwap { dir, staged } => kernel_swap(root, dir, staged)?,
            Op::Remove { path } => remove(root, path)?,
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
/// descriptor (never a path that could be swapped), and said on stderr.
/// Returns whether it cleared them.
fn clear_setid_of_linked(p: &Path, rel: &Path) -> Result<bool, CommitError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let f = match fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY).open(p) {
        Ok(f) => f,
        // Not there, or not a file we could open (a symlink, a directory for
        // writing): nothing set-id to keep.
        Err(_) => return Ok(false),
    };
    let m = f.metadata().map_err(io_err(p))?;
    if !m.is_file() || m.mode() & 0o6000 == 0 || m.nlink() < 2 {
        return Ok(false);
    }
    f.set_permissions(fs::Permissions::from_mode(m.mode() & 0o1777)).map_err(io_err(p))?;
    eprintln!(
        "binarydist: {}: set-id file with {} hard links: its set-id bits were cleared before it was replaced, so that no other link keeps the old program set-id",
        crate::errors::shown(rel),
        m.nlink()
    );
    Ok(true)
}

/// Clears flags that forbid replacing `abs` (schg, sunlnk, ...).
fn clear_flags(abs: &Path) -> Result<(), CommitError> {
    if os::file_flags(abs).map_err(io_err(abs))?.is_some() {
        os::set_file_flags(abs, None).map_err(io_err(abs))?;
    }
    Ok(())
}

/// Renames `temp` over `path`; returns whether it first cleared the set-id
/// bits of the file it replaced (see [`clear_setid_of_linked`]).
fn rename(root: &Path, temp: &Path, path: &Path, flags: Option<&str>) -> Result<bool, CommitError> {
    let t = root.join(temp);
    let p = root.join(path);
    let mut setid_cleared = false;
    match fs::symlink_metadata(&t) {
        Ok(_) => {
            match fs::symlink_metadata(&p) {
                Ok(m) if !m.is_dir() => {
                    clear_flags(&p)?;
                    setid_cleared = clear_setid_of_linked(&p, path)?;
                }
                _ => {}
            }
            testhooks::log_step("rename", &p);
            fs::rename(&t, &p).map_err(io_err(&p))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Renamed before a crash; its flags may still be missing.
            if fs::symlink_metadata(&p).is_err() {
                return Err(CommitError::Lost { path: p, temp: t });
            }
        }
        Err(e) => return Err(io_err(&t)(e)),
    }
    testhooks::kill_point("flags");
    if let Some(f) = flags {
        os::set_file_flags(&p, Some(f)).map_err(io_err(&p))?;
    }
    Ok(setid_cleared)
}

fn set_meta(root: &Path, path: &Path, mode: u32, uid: u32, gid: u32, mtime: i64, flags: Option<&str>) -> Result<(), CommitError> {
    let p = root.join(path);
    let m = fs::symlink_metadata(&p).map_err(io_err(&p))?;
    let current = os::file_flags(&p).map_err(io_err(&p))?;
    if current.is_some() {
        os::set_file_flags(&p, None).map_err(io_err(&p))?;
    }
    os::lchown(&p, uid, gid).map_err(io_err(&p))?;
    if !m.file_type().is_symlink() {
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).map_err(io_err(&p))?;
    }
    os::set_mtime_nofollow(&p, mtime).map_err(io_err(&p))?;
    if flags.is_some() {
        os::set_file_flags(&p, flags).map_err(io_err(&p))?;
    }
    Ok(())
}

/// The current kernel directory becomes `DIR.old` (replacing an older one) and
/// the staged one becomes `DIR`. installkernel copies the running kernel into
/// `DIR.old` and installs over `DIR` in place; two renames reach the same
/// state, the old modules kept with the old kernel, without a moment when
/// `DIR` holds a mix of both. Decided by what is on disk, so that a rerun after
/// a crash anywhere in here completes it.
fn kernel_swap(root: &Path, dir: &Path, staged: &Path) -> Result<(), CommitError> {
    let d = root.join(dir);
    let s = root.join(staged);
    let mut old_name = d.file_name().unwrap_or_default().to_os_string();
    old_name.push(".old");
    let old = d.with_file_name(old_name);
    if fs::symlink_metadata(&s).is_err() {
        return Ok(()); // done before a crash
    }
    if fs::symlink_metadata(&d).is_ok() {
        if fs::symlink_metadata(&old).is_ok() {
            remove_tree(&old)?;
        }
        testhooks::log_step("rename", &d);
        fs::rename(&d, &old).map_err(io_err(&old))?;
        testhooks::kill_point("kernel-old");
    }
    testhooks::log_step("rename", &s);
    fs::rename(&s, &d).map_err(io_err(&d))?;
    os::sync_dir(d.parent().unwrap_or(root)).map_err(io_err(&d))
}

/// rm -rf that clears file flags first (installkernel and installworld set schg).
fn remove_tree(abs: &Path) -> Result<(), CommitError> {
    let m = fs::symlink_metadata(abs).map_err(io_err(abs))?;
    clear_flags(abs)?;
    if m.is_dir() {
        for e in fs::read_dir(abs).map_err(io_err(abs))? {
            remove_tree(&e.map_err(io_err(abs))?.path())?;
        }
        fs::remove_dir(abs).map_err(io_err(abs))
    } else {
        fs::remove_file(abs).map_err(io_err(abs))
    }
}

fn remove(root: &Path, path: &Path) -> Result<(), CommitError> {
    // A symlink the new dist (or an admin) put where a directory was would
    // carry the removal out of the root.
    if !super::plan::through_real_dirs(root, path) {
        return Ok(());
    }
    let p = root.join(path);
    match fs::symlink_metadata(&p) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(&p)(e)),
        Ok(m) if m.is_dir() => match fs::remove_dir(&p) {
            // Something of the admin's is in it: leave it.
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => Ok(()),
            r => r.map_err(io_err(&p)),
        },
        Ok(_) => {
            clear_flags(&p)?;
            fs::remove_file(&p).map_err(io_err(&p))
        }
    }
}
