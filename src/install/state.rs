//! What the installer keeps under ROOT/var/db/binarydist/:
//!
//! ```text
//! lock                       flock(2)ed by a running install; holds its pid
//! journal                    only while an install is under way (journal.rs)
//! <series>/MANIFEST          the dist's +MANIFEST member: every entry and its SHA-256
//! <series>/installed         name, size, MD5 and SHA-256 of the installed dist's tar
//! <series>/base.tar.gz       that tar, gzipped: the base the next patch applies to
//! <series>/gen.<NAME>.*      earlier generations, kept for rollback (generations.rs)
//! <series>/.base.new.tar.gz  the next base while an install is under way
//! <series>/.MANIFEST.new     the next MANIFEST while an install is under way
//! ```
//!
//! Every one of them is reached through statedir.rs: `var`, `db`,
//! `binarydist` and `<series>` each opened `O_DIRECTORY|O_NOFOLLOW` relative
//! to the one before, every file by one name relative to its directory with
//! `O_NOFOLLOW`. A symlink or another kind of file anywhere in the way is
//! refused (whoever owns the tree of a jail or an image can plant one), and
//! nothing is created outside the root. The installer's temporary files (the
//! next base and MANIFEST) are made new with `O_EXCL` each time, whatever
//! was left under their names.
//!
//! Installed binaries are never a base: only the kept tarball is.
//!
//! `installed` holds `name NAME`, `tar SIZE MD5 SHA256` and `manifest SHA256`,
//! the digest of `MANIFEST`. Only an installer that checked every member
//! against the manifest (the content of every file against its SHA-256)
//! writes that last line; the next install trusts `MANIFEST` to say what is in
//! place only when it is there and matches. A record without it (written by
//! an older binarydist) or a `MANIFEST` that does not match is not trusted:
//! an entry it calls unchanged is hashed on disk instead (install/plan.rs).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::journal::Commit;
use crate::errors::shown;
use crate::manifest::{self, Manifest};
use crate::names::{DistName, Series};
use crate::os;
use crate::statedir::{self, Dir, StateDirError};
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

pub const STATE_DIR: &str = "var/db/binarydist";
pub const BASE: &str = "base.tar.gz";
pub const BASE_NEW: &str = ".base.new.tar.gz";
pub const INSTALLED: &str = "installed";
pub const MANIFEST: &str = "MANIFEST";
pub const MANIFEST_NEW: &str = ".MANIFEST.new";
pub const LOCK: &str = "lock";
/// Made (or opened with O_CREAT) and then not there: someone removed it meanwhile.
const GONE: &str = "missing right after it was made; is something else removing the state directory?";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{}", shown(path))]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Dir(#[from] StateDirError),
    #[error("{}: a directory where the lock file should be; nothing was done: remove it (rmdir) and run again", shown(path))]
    LockIsDir { path: PathBuf },
    #[error("another install is running on this root ({holder}, holding {}); wait for it or use --wait", shown(path))]
    Locked { path: PathBuf, holder: String },
    #[error("{}: {what}", shown(path))]
    Bad { path: PathBuf, what: String },
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> StateError + '_ {
    move |e| StateError::Io { path: path.to_path_buf(), source: e }
}

/// The installed dist of one series, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub name: DistName,
    pub tar_size: u64,
    pub md5: String,
    pub sha256: String,
    /// SHA-256 of the kept MANIFEST, recorded by an installer that checked
    /// every member against it; `None` in a record of an older binarydist.
    pub manifest_sha256: Option<String>,
}

/// The installed dist's manifest, and whether it is trusted to say what is in
/// place (see the module's comment).
pub struct OldManifest {
    pub manifest: Manifest,
    pub checked: bool,
}

pub struct State {
    root: PathBuf,
    /// ROOT/var/db/binarydist, reached without symlinks.
    dir: Dir,
}

/// Held for the whole install; the kernel releases the flock when the last
/// descriptor of it closes: when the process ends, however it ends, or, while
/// `make upgrade` runs, when make (which inherits it) ends too.
///
/// The file says who holds it: `PID`, then `PID make-upgrade MAKEPID` while
/// make upgrade runs.
pub struct Lock {
    file: File,
}

impl Lock {
    /// Rewrites what the lock file says after the holder's pid (best effort:
    /// it is only for the message of a second install).
    pub fn note(&self, what: &str) {
        let mut f = &self.file;
        let line = if what.is_empty() { format!("{}\n", std::process::id()) } else { format!("{} {what}\n", std::process::id()) };
        let _ = f.set_len(0).and_then(|_| f.rewind()).and_then(|_| f.write_all(line.as_bytes()));
    }

    /// A descriptor of the lock without close-on-exec, for a child to inherit
    /// (dropped by the caller once the child is spawned).
    pub fn inheritable(&self) -> io::Result<std::os::fd::OwnedFd> {
        Ok(rustix::io::dup(&self.file)?)
    }
}

/// "pid 12" or "pid 12, make upgrade pid 34", from a lock file's text.
fn holder(text: &str) -> String {
    let mut w = text.split_whitespace();
    let pid = w.next().filter(|p| p.bytes().all(|b| b.is_ascii_digit())).unwrap_or("unknown");
    match (w.next(), w.next()) {
        (Some("make-upgrade"), Some(m)) if m.bytes().all(|b| b.is_ascii_digit()) => format!("pid {pid}, make upgrade pid {m}"),
        _ => format!("pid {pid}"),
    }
}

impl State {
    /// The state directory of `root`, reached without following a symlink;
    /// created when `create` (each missing step `mkdirat`, nothing made when
    /// a step is a symlink). `None` when it does not exist and not `create`.
    pub fn open(root: &Path, create: bool) -> Result<Option<State>, StateError> {
        Ok(statedir::open(root, create)?.map(|dir| State { root: root.to_path_buf(), dir }))
    }

    /// The state directory of `root`, made if missing.
    pub fn create(root: &Path) -> Result<State, StateError> {
        State::open(root, true)?.ok_or_else(|| StateError::Bad { path: root.join(STATE_DIR), what: GONE.into() })
    }

    /// The state directory, for `*at` calls and messages.
    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the lock, `lock` in the state directory (made if missing, never
    /// removed: a second holder could otherwise take a lock on a new file
    /// while the first holds the old one).
    pub fn lock(&self, wait: bool) -> Result<Lock, StateError> {
        let path = self.dir.path().join(LOCK);
        let mut file = match self.dir.open(LOCK, libc::O_RDWR | libc::O_CREAT, 0o644) {
            Ok(Some(f)) => f,
            Ok(None) => return Err(StateError::Bad { path, what: GONE.into() }),
            Err(StateDirError::Io { source, .. }) if source.raw_os_error() == Some(libc::EISDIR) => {
                return Err(StateError::LockIsDir { path })
            }
            Err(e) => return Err(e.into()),
        };
        if !os::try_lock(&file).map_err(io_err(&path))? {
            if !wait {
                let mut text = String::new();
                let _ = (&mut file).take(256).read_to_string(&mut text);
                return Err(StateError::Locked { path, holder: holder(&text) });
            }
            eprintln!("binarydist: waiting for the install running on {} to finish", self.root.display());
            os::lock(&file).map_err(io_err(&path))?;
        }
        let lock = Lock { file };
        lock.note("");
        Ok(lock)
    }

    /// The directory of one series, created when `create`; `None` when missing.
    pub fn series(&self, series: &Series, create: bool) -> Result<Option<Dir>, StateError> {
        Ok(self.dir.subdir(&series.to_string(), create)?)
    }

    /// The directory of `series`, made if missing.
    pub fn made_series(&self, series: &Series) -> Result<Dir, StateError> {
        let gone = || StateError::Bad { path: self.dir.path().join(series.to_string()), what: GONE.into() };
        self.series(series, true)?.ok_or_else(gone)
    }

    /// The new base's path relative to the root, as the journal records it.
    pub fn base_new_rel(&self, series: &Series) -> PathBuf {
        Path::new(STATE_DIR).join(series.to_string()).join(BASE_NEW)
    }

    /// The new MANIFEST's path relative to the root, as the journal records it.
    pub fn manifest_new_rel(&self, series: &Series) -> PathBuf {
        Path::new(STATE_DIR).join(series.to_string()).join(MANIFEST_NEW)
    }

    /// Where the kept base is, for messages.
    pub fn base_path(&self, series: &Series) -> PathBuf {
        self.dir.path().join(series.to_string()).join(BASE)
    }

    /// The kept base of `series`, open for reading; `None` when there is none.
    pub fn base(&self, series: &Series) -> Result<Option<File>, StateError> {
        match self.series(series, false)? {
            Some(d) => Ok(d.open(BASE, libc::O_RDONLY, 0)?),
            None => Ok(None),
        }
    }

    /// A fresh file for the next base of `series` (its directory made if
    /// missing), whatever a killed run or anyone else left under its name.
    pub fn create_base_new(&self, series: &Series) -> Result<File, StateError> {
        let dir = self.made_series(series)?;
        Ok(dir.create_new(BASE_NEW, 0o644)?)
    }

    /// Writes the next MANIFEST of `series`, durably (the commit record that
    /// follows must find it on disk).
    pub fn write_manifest_new(&self, series: &Series, text: &[u8]) -> Result<(), StateError> {
        let dir = self.made_series(series)?;
        let path = dir.path().join(MANIFEST_NEW);
        let mut f = dir.create_new(MANIFEST_NEW, 0o444)?;
        f.write_all(text).and_then(|_| f.sync_all()).map_err(io_err(&path))?;
        Ok(dir.sync()?)
    }

    pub fn installed(&self, series: &Series) -> Result<Option<Installed>, StateError> {
        let Some(dir) = self.series(series, false)? else { return Ok(None) };
        let Some(text) = dir.read_text(INSTALLED)? else { return Ok(None) };
        parse_installed(&dir.path().join(INSTALLED), &text).map(Some)
    }

    /// The installed dist's manifest, as the dist itself installed it; `None`
    /// when there is none or it is not the recorded dist's (then nothing is
    /// trusted to be in place and every entry is written). It is `checked`
    /// when the record vouches for it (see the module's comment).
    pub fn installed_manifest(&self, series: &Series) -> Option<OldManifest> {
        let installed = self.installed(series).ok()??;
        let text = self.series(series, false).ok()??.read(MANIFEST, manifest::MAX_SIZE).ok()??;
        let manifest = Manifest::parse(std::str::from_utf8(&text).ok()?).ok()?;
        let checked = installed.manifest_sha256.is_some_and(|s| s == crate::tario::Digests::of(&text).sha256_hex());
        (manifest.name == installed.name).then_some(OldManifest { manifest, checked })
    }

    /// Step 6: the new base replaces the kept one (which becomes a generation,
    /// generations.rs), the new MANIFEST the old, and the installed dist is
    /// recorded; a generation of the dist just installed (a rollback) leaves
    /// the list. Idempotent, so that a journal replayed after a crash here
    /// converges: each rename is made only while its source is there.
    pub fn record(&self, c: &Commit) -> Result<(), StateError> {
        use super::generations;
        let dir = self.made_series(&c.dist.series)?;
        let is_file = |name: &str| -> Result<bool, StateError> {
            match dir.stat(name)? {
                None => Ok(false),
                Some(st) if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile => Ok(true),
                Some(_) => Err(StateDirError::NotRegular { path: dir.path().join(name) }.into()),
            }
        };
        if is_file(BASE_NEW)? {
            if is_file(BASE)? {
                // The record first: a tarball without one is not a generation.
                let current = dir.read_text(INSTALLED)?.map(|t| parse_installed(&dir.path().join(INSTALLED), &t)).transpose()?;
                match current {
                    Some(i) if i.name != c.dist => {
                        let text = dir.read_text(INSTALLED)?.unwrap_or_default();
                        let name = i.name.to_string();
                        dir.write_atomically(&generations::record_name(&name), text.as_bytes(), 0o644)?;
                        dir.rename(BASE, &generations::tar_name(&name))?;
                    }
                    _ => dir.remove(BASE)?,
                }
            }
            dir.rename(BASE_NEW, BASE)?;
        }
        let this = c.dist.to_string();
        dir.remove(&generations::tar_name(&this))?;
        dir.remove(&generations::record_name(&this))?;
        if is_file(MANIFEST_NEW)? {
            dir.rename(MANIFEST_NEW, MANIFEST)?;
        }
        let text = format!("name {}\ntar {} {} {}\nmanifest {}\n", c.dist, c.tar_size, c.md5, c.sha256, c.manifest_sha256);
        dir.write_atomically(INSTALLED, text.as_bytes(), 0o644)?;
        Ok(dir.sync()?)
    }
}

/// Removes a file the installer made in the state directory (the next base or
/// MANIFEST), named by its path relative to the root as the journal has it:
/// `var/db/binarydist/<series>/<name>`, nothing else.
pub fn remove_state_file(state: &Dir, rel: &Path) -> io::Result<()> {
    let bad = || io::Error::other(format!("{}: not a file of the installer's state directory", shown(rel)));
    let rest = rel.strip_prefix(STATE_DIR).map_err(|_| bad())?;
    let parts: Vec<&str> = rest.iter().map(|c| c.to_str()).collect::<Option<_>>().ok_or_else(bad)?;
    let [series, name] = parts[..] else { return Err(bad()) };
    let gone = |e: StateDirError| match e {
        StateDirError::Io { source, .. } => source,
        e => io::Error::other(crate::errors::chain(&e)),
    };
    match state.subdir(series, false).map_err(gone)? {
        Some(d) => d.remove(name).map_err(gone),
        None => Ok(()),
    }
}

/// Parses an `installed` record (`name NAME`, `tar SIZE MD5 SHA256`,
/// `manifest SHA256` where the manifest was checked); shared
/// with `update`, which reads it through the state directory's descriptor.
pub fn parse_installed(path: &Path, text: &str) -> Result<Installed, StateError> {
    let bad = |what: &str| StateError::Bad { path: path.to_path_buf(), what: what.into() };
    let mut name = None;
    let mut tar = None;
    let mut manifest_sha256 = None;
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("name", v)) => name = Some(DistName::parse(v).map_err(|e| bad(&e.to_string()))?),
            Some(("tar", v)) => {
                let w: Vec<&str> = v.split(' ').collect();
                let [size, md5, sha] = w[..] else { return Err(bad("bad tar line")) };
                tar = Some((size.parse().map_err(|_| bad("bad tar size"))?, md5.to_string(), sha.to_string()));
            }
            Some(("manifest", v)) => manifest_sha256 = Some(v.to_string()),
            _ => {}
        }
    }
    let (name, (tar_size, md5, sha256)) = name.zip(tar).ok_or_else(|| bad("no name or tar line"))?;
    Ok(Installed { name, tar_size, md5, sha256, manifest_sha256 })
}
