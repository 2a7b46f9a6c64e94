//! Step 1's second half: deciding, from the new dist's manifest (the first
//! member of the stream, so known before any content arrives), the installed
//! dist's manifest and a look at the root, what happens to every entry, and
//! refusing a hostile archive before anything is written.
//!
//! Refused: absolute paths and `..`; duplicate entries; paths through anything
//! but a real directory, whether planted earlier in the archive or already in
//! the root (a symlinked directory in the root is refused too, rather than
//! written through); hard links to anything but a regular file earlier in the
//! archive (so never outside the root); device nodes unless running as root;
//! an owner or group 4294967295, which chown(2) takes for "no change";
//! a directory in the dist where the root has something else, and the reverse.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::state::OldManifest;
use crate::errors::shown;
use crate::manifest::{self, Entry, Manifest, UPGRADE_SRC_PREFIX};
use crate::os;
use crate::tario::{check_relative, Kind, Meta};
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Where a kernel dist's kernel goes (DESTKERNDIR's default, /boot/${KERNEL}).
pub const KERNEL_DIR: &str = "boot/kernel";
/// Prefix of every name the installer stages under.
pub const TEMP_PREFIX: &str = ".bdtmp.";

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("refusing the archive: {}: {why}", shown(path))]
    Refused { path: PathBuf, why: String },
    #[error("{}", shown(path))]
    Io { path: PathBuf, source: io::Error },
}

/// True when every directory leading to `rel` under `root` is a real directory,
/// not a symlink: what a removal or `make -C` must check at the time it acts,
/// since the dist just renamed its own entries into place.
pub fn through_real_dirs(root: &Path, rel: &Path) -> bool {
    rel.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()).all(|a| fs::symlink_metadata(root.join(a)).is_ok_and(|m| m.is_dir()))
}

fn refuse(path: &Path, why: impl Into<String>) -> PlanError {
    PlanError::Refused { path: path.to_path_buf(), why: why.into() }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Written beside its final place under a temporary name, renamed at commit.
    Stage,
    /// A directory the root lacks: created in place while staging.
    CreateDir,
    /// Content, owner, mode, time and flags already right.
    Unchanged,
    /// Content right; owner, mode, time or flags set in place at commit.
    MetaOnly,
    /// Part of the kernel directory, which is staged whole under a temporary name.
    KernelTree,
}

/// Room needed on one file system.
#[derive(Debug, Clone)]
pub struct Need {
    /// An existing directory on that file system, for statvfs.
    pub probe: PathBuf,
    pub bytes: u64,
}

#[derive(Debug)]
pub struct Plan {
    /// One per manifest entry, in manifest order.
    pub actions: Vec<Action>,
    /// Whether the entry's final path existed in the root.
    pub existed: Vec<bool>,
    /// For a kernel dist: the kernel directory and where it is staged.
    pub kernel: Option<(PathBuf, PathBuf)>,
    /// Entries of the installed dist that this one drops, under the private
    /// upgrade-src prefix (the rest is `make upgrade`'s TO_REMOVE business),
    /// deepest first.
    pub removals: Vec<PathBuf>,
    /// Room needed per file system (keyed by device) for the staged entries.
    pub needs: HashMap<u64, Need>,
    /// A kernel dist, or a changed critical file (rtld, libc): reboot after.
    pub reboot: bool,
    /// Regular files about to be replaced whose content is no longer what the
    /// installed dist put there (an admin edited them), in manifest order.
    pub local_changes: Vec<PathBuf>,
}

impl Plan {
    pub fn count(&self, a: Action) -> usize {
        self.actions.iter().filter(|x| **x == a).count()
    }
}

/// Round a file's size up to what it occupies, with a block for its inode and name.
fn footprint(size: u64) -> u64 {
    size.div_ceil(4096) * 4096 + 4096
}

struct Looker<'a> {
    root: &'a Path,
    /// lstat of root paths, cached (ancestors are looked at many times).
    cache: HashMap<PathBuf, Option<fs::Metadata>>,
    devs: HashMap<PathBuf, (u64, PathBuf)>,
}

impl Looker<'_> {
    fn lstat(&mut self, rel: &Path) -> Result<Option<fs::Metadata>, PlanError> {
        if let Some(m) = self.cache.get(rel) {
            return Ok(m.clone());
        }
        let abs = self.root.join(rel);
        let m = match fs::symlink_metadata(&abs) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(PlanError::Io { path: abs, source: e }),
        };
        self.cache.insert(rel.to_path_buf(), m.clone());
        Ok(m)
    }

    /// The device holding `rel`'s parent, and an existing directory on it.
    fn device_of(&mut self, rel: &Path) -> Result<(u64, PathBuf), PlanError> {
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        if let Some(d) = self.devs.get(&parent) {
            return Ok(d.clone());
        }
        let mut p = parent.clone();
        let found = loop {
            if p.as_os_str().is_empty() {
                let m = fs::metadata(self.root).map_err(|e| PlanError::Io { path: self.root.into(), source: e })?;
                break (m.dev(), self.root.to_path_buf());
            }
            if let Some(m) = self.lstat(&p)? {
                if m.is_dir() {
                    break (m.dev(), self.root.join(&p));
                }
            }
            p = p.parent().unwrap_or(Path::new("")).to_path_buf();
        };
        self.devs.insert(parent, found.clone());
        Ok(found)
    }
}

fn kind_of(ft: fs::FileType) -> &'static str {
    if ft.is_dir() {
        "directory"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_file() {
        "file"
    } else {
        "special file"
    }
}

/// Whether the root's entry already has `meta`'s owner, mode, time and flags.
fn meta_matches(meta: &Meta, m: &fs::Metadata, abs: &Path) -> bool {
    let mode_ok = m.file_type().is_symlink() || m.mode() & 0o7777 == meta.mode;
    let flags_ok = crate::os::file_flags(abs).ok().flatten() == meta.flags;
    mode_ok && m.uid() == meta.uid && m.gid() == meta.gid && m.mtime() == meta.mtime && flags_ok
}

/// The SHA-256 of the regular file at `abs`, opened without following a
/// symlink (and without blocking on a fifo put there); `None` when it cannot
/// be read as one.
fn sha256_on_disk(abs: &Path) -> Option<[u8; 32]> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(abs).ok()?;
    f.metadata().ok()?.is_file().then_some(())?;
    crate::tario::hash::sha256_of(io::BufReader::with_capacity(256 * 1024, f)).ok()
}

/// Whether the root's entry `m` at `rel` already has `e`'s content.
fn content_matches(e: &Entry, m: &fs::Metadata, abs: &Path, old: Option<(&Entry, bool)>) -> bool {
    let ft = m.file_type();
    let meta = &e.meta;
    match meta.kind {
        // Files are compared through the installed manifest, never read: a
        // security update touching ten files reads and writes ten files. A
        // manifest that was not checked at its install (an older binarydist
        // wrote it) is not taken at its word: the file is read and hashed.
        Kind::File => {
            let Some((o, checked)) = old else { return false };
            let same = o.meta.kind == Kind::File && o.sha256.is_some() && o.sha256 == e.sha256 && o.meta.size == meta.size;
            ft.is_file() && m.size() == meta.size && same && (checked || sha256_on_disk(abs) == e.sha256)
        }
        Kind::Symlink => ft.is_symlink() && fs::read_link(abs).ok().as_ref() == meta.link.as_ref(),
        Kind::Fifo => ft.is_fifo(),
        Kind::CharDev | Kind::BlockDev => {
            let right_kind = if meta.kind == Kind::CharDev { ft.is_char_device() } else { ft.is_block_device() };
            right_kind && Some(crate::os::dev_split(m.rdev())) == meta.dev
        }
        Kind::Dir | Kind::HardLink => false, // decided by the caller
    }
}

pub fn make(root: &Path, new: &Manifest, old: Option<&OldManifest>) -> Result<Plan, PlanError> {
    make_with(root, new, old, false)
}

/// As [`make`]; with `remove_dropped` (a rollback) every entry of the
/// installed dist that `new` lacks is removed after all renames, not only
/// those of the upgrade subset: going back, no `make upgrade` of the newer
/// dist knows to retire what that dist added.
pub fn make_with(root: &Path, new: &Manifest, old: Option<&OldManifest>, remove_dropped: bool) -> Result<Plan, PlanError> {
    check_upgrade_src(new)?;
    let mut planner = Planner::new(root, new, old);
    for e in &new.entries {
        planner.entry(e)?;
    }
    let Planner { actions, existed, kernel, needs, reboot, local_changes, .. } = planner;
    let mut removals = removals(new, old.map(|o| &o.manifest), remove_dropped);
    if let Some((k, _)) = &kernel {
        // The kernel directory is replaced whole.
        removals.retain(|p| !p.starts_with(k));
    }
    Ok(Plan { actions, existed, kernel, removals, needs, reboot, local_changes })
}

/// The manifest names the directory `make upgrade` runs in, as root: only the
/// dist's own subset directory will do, never a path of its choosing.
fn check_upgrade_src(new: &Manifest) -> Result<(), PlanError> {
    if let Some(src) = &new.upgrade_src {
        if src != Path::new(UPGRADE_SRC_PREFIX) || !new.entries.iter().any(|e| e.meta.path == *src && e.meta.kind == Kind::Dir) {
            return Err(refuse(src, format!("the upgrade subset must be the dist's own directory {UPGRADE_SRC_PREFIX}")));
        }
    }
    Ok(())
}

/// Entries of the installed dist that the new one drops, under the private
/// upgrade-src prefix, deepest first.
fn removals(new: &Manifest, old: Option<&Manifest>, all: bool) -> Vec<PathBuf> {
    let kept: HashSet<&Path> = new.entries.iter().map(|e| e.meta.path.as_path()).collect();
    let mut removals: Vec<PathBuf> = old
        .map(|o| {
            o.entries
                .iter()
                .map(|e| e.meta.path.clone())
                .filter(|p| (all || p.starts_with(UPGRADE_SRC_PREFIX)) && !kept.contains(p.as_path()))
                .collect()
        })
        .unwrap_or_default();
    removals.sort_by(|a, b| crate::tario::path_order(b, a));
    removals
}

/// The plan being made, entry by entry, with what earlier entries said.
struct Planner<'a> {
    root: &'a Path,
    old_by_path: HashMap<&'a Path, &'a Entry>,
    /// Whether the installed manifest was checked at its install (state.rs).
    old_checked: bool,
    /// For a kernel dist: the kernel directory and where it is staged.
    kernel: Option<(PathBuf, PathBuf)>,
    root_user: bool,
    look: Looker<'a>,
    /// Kind of each entry so far, by final path.
    seen: HashMap<PathBuf, Kind>,
    stored_seen: HashSet<PathBuf>,
    /// Paths earlier entries went through, which must be directories.
    used_as_dir: HashSet<PathBuf>,
    /// Regular files (and links to them) that are staged, not left in place.
    staged_files: HashSet<&'a Path>,
    actions: Vec<Action>,
    existed: Vec<bool>,
    needs: HashMap<u64, Need>,
    reboot: bool,
    local_changes: Vec<PathBuf>,
}

impl<'a> Planner<'a> {
    fn new(root: &'a Path, new: &'a Manifest, old: Option<&'a OldManifest>) -> Self {
        let kernel_dir =
            new.name.series.is_kernel().then(|| PathBuf::from(KERNEL_DIR)).filter(|k| new.entries.iter().any(|e| e.meta.path == *k));
        let kernel = kernel_dir.map(|k| {
            let staged = k.with_file_name(format!("{TEMP_PREFIX}{}", k.file_name().unwrap_or_default().to_string_lossy()));
            (k, staged)
        });
        Planner {
            root,
            old_by_path: old.map(|o| o.manifest.entries.iter().map(|e| (e.meta.path.as_path(), e)).collect()).unwrap_or_default(),
            old_checked: old.is_some_and(|o| o.checked),
            reboot: kernel.is_some(),
            kernel,
            root_user: os::is_root(),
            look: Looker { root, cache: HashMap::new(), devs: HashMap::new() },
            seen: HashMap::new(),
            stored_seen: HashSet::new(),
            used_as_dir: HashSet::new(),
            staged_files: HashSet::new(),
            actions: Vec::with_capacity(new.entries.len()),
            existed: Vec::with_capacity(new.entries.len()),
            needs: HashMap::new(),
            local_changes: Vec::new(),
        }
    }

    fn in_kernel(&self, path: &Path) -> bool {
        self.kernel.as_ref().is_some_and(|(k, _)| path.starts_with(k))
    }

    /// Checks one entry, decides what to do with it and counts the room it needs.
    fn entry(&mut self, e: &'a Entry) -> Result<(), PlanError> {
        let path = e.meta.path.as_path();
        self.check_entry(e)?;
        self.stored_seen.insert(e.stored_path());
        self.check_ancestors(path)?;
        self.seen.insert(path.to_path_buf(), e.meta.kind);
        let in_kernel = self.in_kernel(path);
        let here = if in_kernel && Some(path) != self.kernel.as_ref().map(|k| k.0.as_path()) { None } else { self.look.lstat(path)? };
        self.existed.push(here.is_some());
        if let Some(m) = &here {
            if e.meta.kind == Kind::Dir && !m.is_dir() {
                return Err(refuse(path, format!("a directory in the dist, a {} in the root", kind_of(m.file_type()))));
            }
            if e.meta.kind != Kind::Dir && m.is_dir() {
                return Err(refuse(path, format!("a {} in the dist, a directory in the root", e.meta.kind.word())));
            }
        }
        let action = if in_kernel { Action::KernelTree } else { self.action(e, here.as_ref())? };
        if matches!(action, Action::Stage | Action::KernelTree) {
            self.count_staged(e, action)?;
        }
        self.actions.push(action);
        Ok(())
    }

    /// What an entry may not be, whatever the root holds.
    fn check_entry(&self, e: &Entry) -> Result<(), PlanError> {
        let path = e.meta.path.as_path();
        let stored = e.stored_path();
        for p in [path, stored.as_path()] {
            check_relative(p).map_err(|why| refuse(p, why.to_string()))?;
        }
        if path.as_os_str() == manifest::MEMBER || self.seen.contains_key(path) || self.stored_seen.contains(&stored) {
            return Err(refuse(path, "duplicate entry"));
        }
        if path.components().any(|c| c.as_os_str().to_string_lossy().starts_with(TEMP_PREFIX)) {
            return Err(refuse(path, format!("names starting with {TEMP_PREFIX} are the installer's temporary names")));
        }
        if path.starts_with(super::state::STATE_DIR) && path != Path::new(super::state::STATE_DIR) {
            return Err(refuse(path, "inside the installer's state directory"));
        }
        // (uid_t)-1 and (gid_t)-1 mean "leave it" to chown(2): the entry would
        // keep whatever owner it was created with.
        for (what, id) in [("uid", e.meta.uid), ("gid", e.meta.gid)] {
            if id == u32::MAX {
                return Err(refuse(path, format!("{what} {id}, which chown(2) takes for \"no change\"")));
            }
        }
        if matches!(e.meta.kind, Kind::CharDev | Kind::BlockDev) && !self.root_user {
            return Err(refuse(path, "device node, and only root may create one"));
        }
        if e.meta.kind != Kind::Dir && self.used_as_dir.contains(path) {
            return Err(refuse(path, format!("a {} in the archive, but an earlier entry goes through it", e.meta.kind.word())));
        }
        if e.meta.kind == Kind::HardLink {
            let target = e.meta.link.as_deref().unwrap_or(Path::new(""));
            check_relative(target).map_err(|why| refuse(path, format!("hard link to {}: {why}", shown(target))))?;
            if self.seen.get(target) != Some(&Kind::File) {
                return Err(refuse(path, format!("hard link to {}, which is not a regular file earlier in the archive", shown(target))));
            }
        }
        Ok(())
    }

    /// Every ancestor must be a real directory: in the archive and in the root.
    fn check_ancestors(&mut self, path: &Path) -> Result<(), PlanError> {
        let in_kernel = self.in_kernel(path);
        let ancestors: Vec<&Path> = path.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()).collect();
        for anc in ancestors.into_iter().rev() {
            if let Some(k) = self.seen.get(anc) {
                if *k != Kind::Dir {
                    return Err(refuse(path, format!("goes through {}, a {} planted earlier in the archive", shown(anc), k.word())));
                }
            }
            self.used_as_dir.insert(anc.to_path_buf());
            if in_kernel && self.in_kernel(anc) {
                continue; // staged in a fresh tree, never through the root's
            }
            match self.look.lstat(anc)? {
                Some(m) if m.is_dir() => {}
                Some(m) if m.file_type().is_symlink() => {
                    let to = fs::read_link(self.root.join(anc)).map(crate::errors::shown).unwrap_or_default();
                    return Err(refuse(path, format!("goes through {}, a symlink already in the root (-> {to})", shown(anc))));
                }
                Some(m) => return Err(refuse(path, format!("goes through {}, a {} in the root", shown(anc), kind_of(m.file_type())))),
                None => {} // created while staging, as tar does
            }
        }
        Ok(())
    }

    /// Stage it, create it, leave it, or set its metadata only: by what the
    /// root has at its place (`here`) and what the installed dist said.
    fn action(&mut self, e: &Entry, here: Option<&fs::Metadata>) -> Result<Action, PlanError> {
        let path = e.meta.path.as_path();
        let abs = self.root.join(path);
        let Some(m) = here else {
            return Ok(if e.meta.kind == Kind::Dir { Action::CreateDir } else { Action::Stage });
        };
        let content_right = match e.meta.kind {
            Kind::Dir => true,
            Kind::HardLink => {
                let target = e.meta.link.as_deref().unwrap_or(Path::new(""));
                !self.staged_files.contains(target)
                    && self.look.lstat(target)?.is_some_and(|t| t.is_file() && t.dev() == m.dev() && t.ino() == m.ino())
            }
            _ => content_matches(e, m, &abs, self.old_by_path.get(path).map(|o| (*o, self.old_checked))),
        };
        Ok(if !content_right {
            self.note_local_change(e, m, &abs);
            Action::Stage
        } else if meta_matches(&e.meta, m, &abs) {
            Action::Unchanged
        } else {
            Action::MetaOnly
        })
    }

    /// A regular file about to be replaced whose content is not the installed
    /// dist's: FreeBSD's pkg overwrites those silently; here they are listed
    /// (and kept aside or refused, by the LOCAL_CHANGES setting). Only files
    /// being replaced are read.
    fn note_local_change(&mut self, e: &Entry, m: &fs::Metadata, abs: &Path) {
        let path = e.meta.path.as_path();
        let Some(old) = self.old_by_path.get(path) else { return };
        if e.meta.kind != Kind::File || old.meta.kind != Kind::File || !m.is_file() || old.sha256.is_none() {
            return;
        }
        if m.size() != old.meta.size || sha256_on_disk(abs) != old.sha256 {
            self.local_changes.push(path.to_path_buf());
        }
    }

    /// Room on the entry's file system, and whether it needs a reboot.
    fn count_staged(&mut self, e: &'a Entry, action: Action) -> Result<(), PlanError> {
        let path = e.meta.path.as_path();
        if matches!(e.meta.kind, Kind::File | Kind::HardLink) {
            self.staged_files.insert(path);
        }
        if e.critical && action == Action::Stage {
            self.reboot = true;
        }
        let (dev, probe) = self.look.device_of(path)?;
        let bytes = if e.meta.kind == Kind::File { footprint(e.meta.size) } else { 4096 };
        self.needs.entry(dev).or_insert(Need { probe, bytes: 0 }).bytes += bytes;
        Ok(())
    }
}
