//! What an install does for the admin around the files themselves: the
//! settings that decide it (read from the configuration file by the command
//! line), copies of files the admin edited, and the list of /etc files whose
//! shipped version changed but which `make upgrade` left as the admin had them.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::journal::Item;
use super::transaction::Transaction;
use super::InstallError;
use crate::errors::shown;
use crate::manifest::{Manifest, UPGRADE_SRC_PREFIX};
use crate::tario::Kind;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The suffix of the copy of a file an admin edited, kept beside it.
pub const LOCAL_SUFFIX: &str = ".binarydist-local";

/// What to do with a file an admin edited that the install would replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalPolicy {
    /// Keep a copy beside it as NAME.binarydist-local (set-id bits stripped).
    Keep,
    /// Stop before anything is staged or renamed.
    Stop,
}

/// The installer's settings (KEEP_GENERATIONS, LOCAL_CHANGES, SNAPSHOT in
/// the configuration file; docs/install.md).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Previous generations kept for rollback.
    pub keep_generations: usize,
    pub local_changes: LocalPolicy,
    /// Take a HAMMER2 snapshot before the commit where the root is on HAMMER2.
    pub snapshot: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { keep_generations: super::generations::DEFAULT_KEEP, local_changes: LocalPolicy::Keep, snapshot: true }
    }
}

impl Settings {
    /// From the configuration's values (`get(NAME)`); unset ones keep their default.
    pub fn from_values(get: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let mut s = Settings::default();
        if let Some(v) = get("KEEP_GENERATIONS") {
            s.keep_generations = v.parse().map_err(|_| format!("KEEP_GENERATIONS={v:?}: not a number"))?;
        }
        if let Some(v) = get("LOCAL_CHANGES") {
            s.local_changes = match v.as_str() {
                "keep" => LocalPolicy::Keep,
                "stop" => LocalPolicy::Stop,
                _ => return Err(format!("LOCAL_CHANGES={v:?}: keep or stop")),
            };
        }
        if let Some(v) = get("SNAPSHOT") {
            s.snapshot = match v.to_ascii_lowercase().as_str() {
                "yes" | "auto" => true,
                "no" => false,
                _ => return Err(format!("SNAPSHOT={v:?}: yes (or auto) or no")),
            };
        }
        Ok(s)
    }
}

/// A free name for the copy of `rel`: NAME.binarydist-local, or with .1, .2
/// after it when an earlier copy is still there (the admin's to merge).
fn local_name(root: &Path, rel: &Path) -> PathBuf {
    let mut base = rel.as_os_str().to_os_string();
    base.push(LOCAL_SUFFIX);
    let first = PathBuf::from(&base);
    if fs::symlink_metadata(root.join(&first)).is_err() {
        return first;
    }
    let mut n = 1u64;
    loop {
        let p = PathBuf::from(format!("{}.{n}", first.display()));
        if fs::symlink_metadata(root.join(&p)).is_err() {
            return p;
        }
        n += 1;
    }
}

/// Copies each edited file beside itself before anything is renamed, the
/// copy's mode without set-id bits (a copy of an edited su must not be a
/// second set-uid program). Each copy is recorded in the transaction first,
/// so that an install undone removes it with the rest. Returns the copies.
pub fn keep_local_copies(root: &Path, tx: &mut Transaction, files: &[PathBuf]) -> Result<Vec<PathBuf>, InstallError> {
    let mut kept = Vec::new();
    for rel in files {
        let src = root.join(rel);
        let copy = local_name(root, rel);
        let dst = root.join(&copy);
        let err = |p: &Path| {
            let p = p.to_path_buf();
            move |e: io::Error| InstallError::Io { path: p.clone(), source: e }
        };
        let mut from = fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(&src).map_err(err(&src))?;
        let m = from.metadata().map_err(err(&src))?;
        tx.record(Item::Staged(copy.clone()))?;
        let mut to =
            fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(&dst).map_err(err(&dst))?;
        io::copy(&mut from, &mut to).map_err(err(&dst))?;
        let _ = std::os::unix::fs::fchown(&to, Some(m.uid()), Some(m.gid()));
        to.set_permissions(fs::Permissions::from_mode(m.mode() & 0o777)).map_err(err(&dst))?;
        to.sync_all().map_err(err(&dst))?;
        eprintln!("binarydist: {}: edited since it was installed; the edited file is kept as {}", shown(rel), shown(&copy));
        kept.push(copy);
    }
    Ok(kept)
}

/// /etc files whose shipped version (the upgrade subset's `etc/NAME`)
/// changed from `old` to `new`, for [`left_as_admin_had_them`] to look at
/// once `make upgrade` has run.
pub fn etc_shipped_changes(new: &Manifest, old: Option<&Manifest>) -> Vec<(PathBuf, [u8; 32])> {
    let Some(old) = old else { return Vec::new() };
    let prefix = Path::new(UPGRADE_SRC_PREFIX).join("etc");
    let before: HashMap<&Path, Option<[u8; 32]>> = old.entries.iter().map(|e| (e.meta.path.as_path(), e.sha256)).collect();
    new.entries
        .iter()
        .filter(|e| e.meta.kind == Kind::File)
        .filter_map(|e| {
            let rest = e.meta.path.strip_prefix(&prefix).ok()?;
            let sha = e.sha256?;
            (before.get(e.meta.path.as_path()) != Some(&Some(sha))).then(|| (Path::new("etc").join(rest), sha))
        })
        .collect()
}

/// Of the shipped /etc files that changed, those the root has with other
/// content than the new shipped one: `make upgrade` installs few of /etc
/// (mail.rc, locate.rc, the mtree files...) and leaves an admin's rc.conf or
/// motd alone, so these are the admin's to merge, as mergemaster would show.
pub fn left_as_admin_had_them(root: &Path, changed: &[(PathBuf, [u8; 32])]) -> Vec<PathBuf> {
    changed
        .iter()
        .filter(|(rel, sha)| {
            let p = root.join(rel);
            let Ok(f) = fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(&p) else { return false };
            f.metadata().is_ok_and(|m| m.is_file()) && crate::tario::hash::sha256_of(io::BufReader::new(f)).ok().as_ref() != Some(sha)
        })
        .map(|(rel, _)| rel.clone())
        .collect()
}
