//! Step 2's extraction: every changed or new entry is created beside its final
//! place under a temporary name (`.bdtmp.N`, N its manifest index), with its
//! final owner, mode and mtime, by our own code: files, directories, symlinks,
//! hard links, fifos and device nodes. Nothing here follows a symlink in the
//! root (the plan refused paths through one), and nothing here replaces an
//! entry in use: that is the commit's job.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::durable::Flusher;
use super::journal::{Item, JournalError};
use super::plan::{Action, Plan, TEMP_PREFIX};
use super::transaction::Transaction;
use crate::errors::shown;
use crate::manifest::{self, Manifest};
use crate::os;
use crate::tario::{Kind, Meta, Reader, TarError};
use crate::testhooks;
use rustix::fs::OFlags;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{}", shown(path))]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("reading the tar stream")]
    Tar(#[from] TarError),
    #[error("member {index} (\"{member}\") disagrees with the manifest: {what}")]
    Member { index: usize, member: String, what: String },
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> StageError + '_ {
    move |e| StageError::Io { path: path.to_path_buf(), source: e }
}

/// What staging produced, for the commit.
pub struct Staged {
    /// Per manifest entry: where it was staged, relative to the root.
    pub temps: Vec<Option<PathBuf>>,
    pub bytes_written: u64,
}

pub struct Stager<'t, 's> {
    tx: &'t mut Transaction<'s>,
    root: PathBuf,
    /// Every entry is made and changed through directory descriptors from the root.
    beneath: os::Beneath,
    /// Directories known to exist (relative), so that each is looked at once.
    dirs: HashSet<PathBuf>,
    /// Directories whose mtime is journaled (or that we created).
    timed: HashSet<PathBuf>,
    /// Where the kernel tree is staged, so that its contents are not journaled one by one.
    tree: Option<PathBuf>,
    buf: Vec<u8>,
    bytes_written: u64,
    /// Makes what is staged durable, as it goes.
    flusher: Flusher,
}

impl<'t, 's> Stager<'t, 's> {
    pub fn new(tx: &'t mut Transaction<'s>, flusher: Flusher) -> Result<Self, StageError> {
        let root = tx.root().to_path_buf();
        let beneath = os::Beneath::open(&root).map_err(io_err(&root))?;
        let buf = vec![0; 256 * 1024];
        Ok(Stager { tx, root, beneath, dirs: HashSet::new(), timed: HashSet::new(), tree: None, buf, bytes_written: 0, flusher })
    }

    /// Ends staging; the flusher still has to make it all durable.
    pub fn into_flusher(self) -> Flusher {
        self.flusher
    }

    fn in_tree(&self, rel: &Path) -> bool {
        self.tree.as_ref().is_some_and(|t| rel.starts_with(t))
    }

    /// Owner, mode and time of the entry `rel` just made, through a
    /// descriptor or `*at` calls (os::set_attrs_at).
    fn set_attrs(&mut self, rel: &Path, attrs: &os::Attrs) -> Result<(), StageError> {
        let abs = self.root.join(rel);
        let (dir, name) = self.beneath.parent_of(rel).map_err(io_err(&abs))?;
        if !os::set_attrs_at(dir, name, &abs, attrs).map_err(io_err(&abs))? {
            return Err(io_err(&abs)(io::Error::other("changed while it was being staged")));
        }
        Ok(())
    }

    /// Creates the missing ancestors of `rel` (root-owned, 0755, as tar does),
    /// journaling each so that an undo removes it.
    fn ensure_parent(&mut self, rel: &Path) -> Result<(), StageError> {
        let ancestors: Vec<PathBuf> = rel.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()).map(Path::to_path_buf).collect();
        for anc in ancestors.into_iter().rev() {
            if self.dirs.contains(&anc) {
                continue;
            }
            let abs = self.root.join(&anc);
            let (dir, name) = self.beneath.parent_of(&anc).map_err(io_err(&abs))?;
            match os::stat_at(dir, name) {
                Ok(st) if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory => {}
                Ok(_) => return Err(io_err(&abs)(io::Error::other("not a directory"))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // The parent's time first: undo runs newest first, so the
                    // rmdir comes before the parent's mtime is put back.
                    self.keep_parent_time(&anc)?;
                    if !self.in_tree(&anc) {
                        self.tx.record(Item::CreatedDir(anc.clone()))?;
                    }
                    self.mkdir(&anc, 0o755)?;
                    self.timed.insert(anc.clone());
                }
                Err(e) => return Err(io_err(&abs)(e)),
            }
            self.dirs.insert(anc);
        }
        Ok(())
    }

    /// mkdir of `rel` with `mode` (whatever the umask).
    fn mkdir(&mut self, rel: &Path, mode: u32) -> Result<(), StageError> {
        let abs = self.root.join(rel);
        let (dir, name) = self.beneath.parent_of(rel).map_err(io_err(&abs))?;
        os::mkdir_at(dir, name).map_err(io_err(&abs))?;
        self.set_attrs(rel, &os::Attrs { mode: Some(mode), ..Default::default() })?;
        self.flusher.entry(&abs);
        Ok(())
    }

    /// Journals the mtime of `rel`'s parent before the first change in it, so
    /// that an undo leaves it exactly as it was.
    fn keep_parent_time(&mut self, rel: &Path) -> Result<(), StageError> {
        let parent = match rel.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."), // the root itself: "" cannot be journaled
        };
        if self.in_tree(rel) || self.timed.contains(parent) {
            return Ok(());
        }
        let abs = self.root.join(parent);
        let dir = self.beneath.dir(if parent == Path::new(".") { Path::new("") } else { parent }).map_err(io_err(&abs))?;
        let m = fs::File::from(dir.try_clone_to_owned().map_err(io_err(&abs))?).metadata().map_err(io_err(&abs))?;
        use std::os::unix::fs::MetadataExt;
        self.tx.record(Item::DirTime(parent.to_path_buf(), m.mtime(), m.mtime_nsec()))?;
        self.timed.insert(parent.to_path_buf());
        Ok(())
    }

    /// A directory the root lacks, created in place, private until the commit
    /// gives it its final owner and mode.
    pub fn create_dir(&mut self, rel: &Path) -> Result<(), StageError> {
        self.ensure_parent(rel)?;
        if !self.in_tree(rel) && !self.dirs.contains(rel) {
            self.keep_parent_time(rel)?;
            self.tx.record(Item::CreatedDir(rel.to_path_buf()))?;
        }
        self.timed.insert(rel.to_path_buf());
        if self.dirs.contains(rel) {
            // Created a moment ago as the ancestor of an earlier entry.
            return Ok(());
        }
        self.mkdir(rel, 0o700)?;
        self.dirs.insert(rel.to_path_buf());
        Ok(())
    }

    /// The kernel directory's stand-in: removed first if a crash left one.
    pub fn create_tree(&mut self, rel: &Path) -> Result<(), StageError> {
        self.ensure_parent(rel)?;
        self.keep_parent_time(rel)?;
        self.tx.record(Item::StagedTree(rel.to_path_buf()))?;
        self.tree = Some(rel.to_path_buf());
        let abs = self.root.join(rel);
        let (dir, name) = self.beneath.parent_of(rel).map_err(io_err(&abs))?;
        match os::remove_tree_at(dir, name, &abs) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(&abs)(e)),
            _ => {}
        }
        self.mkdir(rel, 0o700)?;
        self.dirs.insert(rel.to_path_buf());
        Ok(())
    }

    /// Journals `rel` (outside the kernel tree) and clears a leftover of an
    /// earlier run that a power loss kept out of its journal.
    fn prepare(&mut self, rel: &Path) -> Result<PathBuf, StageError> {
        self.ensure_parent(rel)?;
        if !self.in_tree(rel) {
            self.keep_parent_time(rel)?;
            self.tx.record(Item::Staged(rel.to_path_buf()))?;
        }
        let abs = self.root.join(rel);
        let (dir, name) = self.beneath.parent_of(rel).map_err(io_err(&abs))?;
        match rustix::fs::unlinkat(dir, name, rustix::fs::AtFlags::empty()) {
            Err(e) if e != rustix::io::Errno::NOENT => return Err(io_err(&abs)(e.into())),
            _ => {}
        }
        Ok(abs)
    }

    /// A regular file with `data` as its content; returns the SHA-256 of
    /// what it wrote, for the caller to check against the manifest.
    pub fn file(&mut self, rel: &Path, meta: &Meta, data: &mut dyn Read) -> Result<[u8; 32], StageError> {
        let abs = self.prepare(rel)?;
        let err = io_err(&abs);
        let (dir, name) = self.beneath.parent_of(rel).map_err(&err)?;
        let how = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut f =
            fs::File::from(rustix::fs::openat(dir, name, how, rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR).map_err(|e| err(e.into()))?);
        let mut hash = Sha256::new();
        loop {
            let n = match data.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(StageError::Io {
                        path: abs.clone(),
                        source: io::Error::new(e.kind(), format!("reading the stream: {}", crate::errors::chain(&e))),
                    })
                }
            };
            // A reader returns at most the buffer's length.
            let got = self.buf.get(..n).unwrap_or(&self.buf);
            f.write_all(got).map_err(&err)?;
            hash.update(got);
            self.bytes_written += n as u64;
            crate::testhooks::kill_at_bytes(self.bytes_written);
        }
        // Through the descriptor of the file just made.
        std::os::unix::fs::fchown(&f, Some(meta.uid), Some(meta.gid)).map_err(&err)?;
        // After chown, which clears set-id bits.
        f.set_permissions(fs::Permissions::from_mode(meta.mode)).map_err(&err)?;
        let t = epoch(meta.mtime);
        f.set_times(fs::FileTimes::new().set_accessed(t).set_modified(t)).map_err(&err)?;
        self.flusher.file(&abs, f);
        Ok(hash.finalize().into())
    }

    /// The SHA-256 of the rest of the current member's data, which is not
    /// written anywhere (its entry is unchanged).
    pub fn hash_data<R: Read>(&mut self, reader: &mut Reader<R>) -> Result<[u8; 32], StageError> {
        let mut hash = Sha256::new();
        loop {
            let n = reader.read_data(&mut self.buf)?;
            if n == 0 {
                return Ok(hash.finalize().into());
            }
            hash.update(self.buf.get(..n).unwrap_or(&self.buf));
        }
    }

    pub fn symlink(&mut self, rel: &Path, meta: &Meta) -> Result<(), StageError> {
        let abs = self.prepare(rel)?;
        let target = meta.link.as_deref().unwrap_or(Path::new(""));
        let (dir, name) = self.beneath.parent_of(rel).map_err(io_err(&abs))?;
        rustix::fs::symlinkat(target, dir, name).map_err(|e| io_err(&abs)(e.into()))?;
        self.flusher.entry(&abs);
        self.set_attrs(rel, &os::Attrs { owner: Some((meta.uid, meta.gid)), mtime: Some(meta.mtime), ..Default::default() })
    }

    /// A hard link to `target`, relative to the root: the target's staged copy
    /// when it changed, its installed self when it did not.
    pub fn hard_link(&mut self, rel: &Path, target: &Path) -> Result<(), StageError> {
        let abs = self.prepare(rel)?;
        let t = self.root.join(target);
        let tname = target.file_name().ok_or_else(|| io_err(&t)(io::Error::other("no file name")))?;
        let tdir = os::open_dir_beneath(self.beneath.root_fd(), target.parent().unwrap_or(Path::new(""))).map_err(io_err(&t))?;
        let st = os::stat_at(std::os::fd::AsFd::as_fd(&tdir), tname).map_err(io_err(&t))?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
            return Err(io_err(&t)(io::Error::other("hard link target is not a regular file")));
        }
        let (dir, name) = self.beneath.parent_of(rel).map_err(io_err(&abs))?;
        rustix::fs::linkat(&tdir, tname, dir, name, rustix::fs::AtFlags::empty()).map_err(|e| io_err(&abs)(e.into()))?;
        self.flusher.entry(&abs);
        Ok(())
    }

    pub fn special(&mut self, rel: &Path, meta: &Meta) -> Result<(), StageError> {
        let abs = self.prepare(rel)?;
        let (dir, name) = self.beneath.parent_of(rel).map_err(io_err(&abs))?;
        match meta.kind {
            Kind::Fifo => os::mkfifo_at(dir, name),
            _ => {
                let (maj, min) = meta.dev.unwrap_or((0, 0));
                os::mknod_at(dir, name, meta.kind == Kind::BlockDev, maj, min)
            }
        }
        .map_err(io_err(&abs))?;
        self.flusher.entry(&abs);
        let attrs = os::Attrs { owner: Some((meta.uid, meta.gid)), mode: Some(meta.mode), mtime: Some(meta.mtime), ..Default::default() };
        self.set_attrs(rel, &attrs)
    }

    /// Sets a directory inside the kernel tree to its final state right away:
    /// nothing renames into it later.
    pub fn finish_tree_dir(&mut self, rel: &Path, meta: &Meta) -> Result<(), StageError> {
        self.set_attrs(rel, &os::Attrs { owner: Some((meta.uid, meta.gid)), mode: Some(meta.mode), ..Default::default() })
    }
}

pub fn epoch(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// `DIR/.bdtmp.TAG` beside `path`.
pub fn temp_beside(path: &Path, tag: &str) -> PathBuf {
    path.with_file_name(format!("{TEMP_PREFIX}{tag}"))
}

/// Where an entry of the kernel directory goes inside its staged stand-in.
fn in_staged_tree(path: &Path, kernel: &(PathBuf, PathBuf)) -> PathBuf {
    let rest = path.strip_prefix(&kernel.0).unwrap_or(Path::new(""));
    if rest.as_os_str().is_empty() {
        kernel.1.clone()
    } else {
        kernel.1.join(rest)
    }
}

/// Streams every member after the manifest and stages what the plan says.
/// Each member must be exactly what the manifest says it is, header and
/// content: a regular file's data is hashed whether it is written or not
/// (unchanged), so that the manifest kept for the next install only lists
/// digests that were checked.
pub fn stage_all<R: Read>(
    reader: &mut Reader<R>,
    manifest: &Manifest,
    plan: &Plan,
    stager: &mut Stager<'_, '_>,
) -> Result<Staged, StageError> {
    let progress = io::stderr().is_terminal();
    let total = manifest.entries.len();
    // Where each staged regular file is now, for hard links to it.
    let mut location: HashMap<&Path, PathBuf> = HashMap::new();
    let mut temps = Vec::with_capacity(total);

    if let Some(k) = &plan.kernel {
        stager.create_tree(&k.1)?;
    }
    for (index, (entry, expected)) in manifest.entries.iter().zip(manifest.member_metas()).enumerate() {
        testhooks::kill_point("stage");
        if progress && index % 512 == 0 {
            eprint!("\rbinarydist: staging {index}/{total}");
        }
        let bad = |member: String, what: String| StageError::Member { index: index + 1, member, what };
        let member = reader.next_member()?.ok_or_else(|| bad("end of archive".into(), format!("{} entries missing", total - index)))?;
        manifest::check_member(&member.meta, &expected).map_err(|why| bad(shown(&member.meta.path), why))?;
        let path = entry.meta.path.as_path();
        let meta = &entry.meta;
        let check_content = |found: [u8; 32]| match entry.sha256 {
            Some(listed) if listed == found => Ok(()),
            listed => Err(bad(
                shown(&member.meta.path),
                format!(
                    "its content has SHA-256 {}, the manifest lists {}",
                    hex::encode(found),
                    listed.map_or("none".to_string(), hex::encode)
                ),
            )),
        };
        let Some(action) = plan.actions.get(index) else {
            return Err(bad(shown(&member.meta.path), "not in the install plan".into()));
        };
        let dest = match action {
            Action::Unchanged | Action::MetaOnly => {
                if meta.kind == Kind::File {
                    check_content(stager.hash_data(reader)?)?;
                }
                temps.push(None);
                continue;
            }
            Action::CreateDir => {
                stager.create_dir(path)?;
                temps.push(None);
                continue;
            }
            Action::KernelTree => match &plan.kernel {
                Some(kernel) => in_staged_tree(path, kernel),
                None => return Err(bad(shown(&member.meta.path), "in a kernel tree the install plan does not have".into())),
            },
            Action::Stage => temp_beside(path, &index.to_string()),
        };
        match meta.kind {
            Kind::Dir => {
                if plan.kernel.as_ref().is_none_or(|k| dest != k.1) {
                    stager.create_dir(&dest)?;
                }
                stager.finish_tree_dir(&dest, meta)?;
            }
            Kind::File => {
                check_content(stager.file(&dest, meta, &mut reader.data())?)?;
                location.insert(path, dest.clone());
            }
            Kind::Symlink => stager.symlink(&dest, meta)?,
            Kind::HardLink => {
                let target = meta.link.as_deref().unwrap_or(Path::new(""));
                let at = location.get(target).cloned().unwrap_or_else(|| target.to_path_buf());
                stager.hard_link(&dest, &at)?;
                location.insert(path, dest.clone());
            }
            Kind::Fifo | Kind::CharDev | Kind::BlockDev => stager.special(&dest, meta)?,
        }
        temps.push(Some(dest));
    }
    if let Some(extra) = reader.next_member()? {
        return Err(StageError::Member { index: total + 1, member: shown(&extra.meta.path), what: "not in the manifest".into() });
    }
    if progress {
        eprintln!("\rbinarydist: staged {total}/{total}");
    }
    testhooks::kill_point("staged");
    Ok(Staged { temps, bytes_written: stager.bytes_written })
}
