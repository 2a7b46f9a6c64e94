//! What the installer keeps under ROOT/var/db/binarydist/:
//!
//! ```text
//! lock                       flock(2)ed by a running install; holds its pid
//! journal                    only while an install is under way (journal.rs)
//! <series>/MANIFEST          the dist's +MANIFEST member: every entry and its SHA-256
//! <series>/installed         name, size, MD5 and SHA-256 of the installed dist's tar
//! <series>/base.tar.gz       that tar, gzipped: the base the next patch applies to
//! <series>/base.prev.tar.gz  the one before, kept for rollback
//! <series>/.base.new.tar.gz  the next base while an install is under way
//! ```
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

use super::journal::Commit;
use crate::errors::shown;
use crate::manifest::Manifest;
use crate::names::{DistName, Series};
use crate::os;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

pub const STATE_DIR: &str = "var/db/binarydist";
pub const BASE: &str = "base.tar.gz";
pub const BASE_PREV: &str = "base.prev.tar.gz";
pub const BASE_NEW: &str = ".base.new.tar.gz";
pub const INSTALLED: &str = "installed";
pub const MANIFEST: &str = "MANIFEST";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{}", shown(path))]
    Io { path: PathBuf, source: io::Error },
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
    /// ROOT/var/db/binarydist
    dir: PathBuf,
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
    /// The state directory of `root`, created if missing (it must exist to hold the lock).
    pub fn open(root: &Path) -> Result<State, StateError> {
        let dir = root.join(STATE_DIR);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(State { root: root.to_path_buf(), dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn lock(&self, wait: bool) -> Result<Lock, StateError> {
        let path = self.dir.join("lock");
        let mut file = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&path).map_err(io_err(&path))?;
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

    pub fn journal(&self) -> PathBuf {
        super::journal::path(&self.dir)
    }

    pub fn series_dir(&self, series: &Series) -> PathBuf {
        self.dir.join(series.to_string())
    }

    /// The new base's path relative to the root, as the journal records it.
    pub fn base_new_rel(&self, series: &Series) -> PathBuf {
        Path::new(STATE_DIR).join(series.to_string()).join(BASE_NEW)
    }

    /// Where the installed dist's manifest is kept, relative to the root.
    pub fn manifest_rel(&self, series: &Series) -> PathBuf {
        Path::new(STATE_DIR).join(series.to_string()).join(MANIFEST)
    }

    pub fn base(&self, series: &Series) -> PathBuf {
        self.series_dir(series).join(BASE)
    }

    pub fn installed(&self, series: &Series) -> Result<Option<Installed>, StateError> {
        let path = self.series_dir(series).join(INSTALLED);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        parse_installed(&path, &text).map(Some)
    }

    /// The installed dist's manifest, as the dist itself installed it; `None`
    /// when there is none or it is not the recorded dist's (then nothing is
    /// trusted to be in place and every entry is written). It is `checked`
    /// when the record vouches for it (see the module's comment).
    pub fn installed_manifest(&self, series: &Series) -> Option<OldManifest> {
        let installed = self.installed(series).ok()??;
        let path = self.root.join(self.manifest_rel(series));
        let text = fs::read(path).ok()?;
        let manifest = Manifest::parse(std::str::from_utf8(&text).ok()?).ok()?;
        let checked = installed.manifest_sha256.is_some_and(|s| s == crate::tario::Digests::of(&text).sha256_hex());
        (manifest.name == installed.name).then_some(OldManifest { manifest, checked })
    }

    /// Step 6: the new base replaces the kept one (which becomes the previous
    /// base), and the installed dist is recorded. Idempotent, so that a journal
    /// replayed after a crash here converges.
    pub fn record(&self, c: &Commit) -> Result<(), StateError> {
        let series = &c.dist.series;
        let sdir = self.series_dir(series);
        fs::create_dir_all(&sdir).map_err(io_err(&sdir))?;
        let new = self.root.join(&c.base_new);
        let base = sdir.join(BASE);
        if new.exists() {
            if base.exists() {
                let prev = sdir.join(BASE_PREV);
                fs::rename(&base, &prev).map_err(io_err(&prev))?;
            }
            fs::rename(&new, &base).map_err(io_err(&base))?;
        }
        let text = format!("name {}\ntar {} {} {}\nmanifest {}\n", c.dist, c.tar_size, c.md5, c.sha256, c.manifest_sha256);
        let path = sdir.join(INSTALLED);
        crate::os::write_atomically(&path, |f| f.write_all(text.as_bytes())).map_err(io_err(&path))?;
        crate::os::sync_dir(&sdir).map_err(io_err(&sdir))
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
