//! Generations: the bases of dists installed before the current one, kept so
//! that `rollback` can go back to them without the network, as
//! freebsd-update keeps its previous installs and OpenBSD's syspatch its
//! rollback tarballs. In `<series>/`:
//!
//! ```text
//! gen.<NAME>.tar.gz     the dist NAME's tar, gzipped (the base it was)
//! gen.<NAME>.installed  its installed record (name, tar size, MD5, SHA-256)
//! ```
//!
//! `State::record` turns the current base into a generation when a new one
//! takes its place (the record first, then the tarball, so a generation
//! without its record is an interrupted one and is ignored), and takes the
//! dist just installed out of the list when it was one (a rollback).
//! `prune` keeps the newest `keep` (the KEEP_GENERATIONS setting, 2 by
//! default) after a successful install.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::state::{parse_installed, Installed, StateError};
use crate::names::Series;
use crate::statedir::Dir;

pub const PREFIX: &str = "gen.";
pub const TAR_SUFFIX: &str = ".tar.gz";
pub const RECORD_SUFFIX: &str = ".installed";
/// How many previous generations are kept when the setting says nothing.
pub const DEFAULT_KEEP: usize = 2;

/// One kept generation of a series.
#[derive(Debug, Clone)]
pub struct Generation {
    pub installed: Installed,
    /// Size of the gzipped tar on disk.
    pub bytes: u64,
}

impl Generation {
    pub fn tar_name(&self) -> String {
        tar_name(&self.installed.name.to_string())
    }
    pub fn record_name(&self) -> String {
        record_name(&self.installed.name.to_string())
    }
}

pub fn tar_name(dist: &str) -> String {
    format!("{PREFIX}{dist}{TAR_SUFFIX}")
}

pub fn record_name(dist: &str) -> String {
    format!("{PREFIX}{dist}{RECORD_SUFFIX}")
}

/// The complete generations of a series directory (record and tarball both
/// there), oldest first.
pub fn list(dir: &Dir) -> Result<Vec<Generation>, StateError> {
    let mut out = Vec::new();
    for name in dir.names()? {
        let Some(dist) = name.strip_prefix(PREFIX).and_then(|n| n.strip_suffix(RECORD_SUFFIX)) else { continue };
        let Some(text) = dir.read_text(&name)? else { continue };
        let installed = parse_installed(&dir.path().join(&name), &text)?;
        if installed.name.to_string() != dist {
            continue;
        }
        let Some(st) = dir.stat(&tar_name(dist))? else { continue };
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
            continue;
        }
        out.push(Generation { installed, bytes: st.st_size as u64 });
    }
    out.sort_by(|a, b| a.installed.name.stamp.cmp(&b.installed.name.stamp));
    Ok(out)
}

/// The generation a rollback goes to: the newest one older than `current`.
pub fn previous<'g>(gens: &'g [Generation], current: &crate::names::DistName) -> Option<&'g Generation> {
    gens.iter().rev().find(|g| g.installed.name.stamp < current.stamp)
}

/// The generations a prune to `keep` would remove (all but the newest `keep`).
pub fn beyond(gens: &[Generation], keep: usize) -> &[Generation] {
    gens.get(..gens.len().saturating_sub(keep)).unwrap_or_default()
}

/// Removes the generations beyond the newest `keep`; returns the bytes freed.
pub fn prune(dir: &Dir, keep: usize) -> Result<u64, StateError> {
    let gens = list(dir)?;
    let mut freed = 0;
    for g in beyond(&gens, keep) {
        // The tarball first: a record without its tarball is ignored.
        dir.remove(&g.tar_name())?;
        dir.remove(&g.record_name())?;
        freed += g.bytes;
    }
    if freed > 0 {
        dir.sync()?;
    }
    Ok(freed)
}

/// The generations of `series` under the state directory `state`.
pub fn of_series(state: &Dir, series: &Series) -> Result<Vec<Generation>, StateError> {
    match state.subdir(&series.to_string(), false)? {
        Some(d) => list(&d),
        None => Ok(Vec::new()),
    }
}
