//! `binarydist check`: every installed series' files against the manifest of
//! its installed dist (install/ids.rs), like freebsd-update's IDS; what the
//! install and its `make upgrade` left different (the baseline) is not
//! reported. Reads only: no lock, no write.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::install::ids::{self, Difference};
use crate::install::state::{State, StateError};
use crate::names::Series;
use std::path::{Path, PathBuf};

#[derive(Debug, serde::Serialize)]
pub struct SeriesCheck {
    pub series: String,
    pub dist: String,
    /// Entries of the manifest looked at.
    pub entries: usize,
    pub differences: Vec<Difference>,
}

#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub root: PathBuf,
    /// Content was hashed for every file (`--full`), not only where size or mtime differ.
    pub full: bool,
    pub series: Vec<SeriesCheck>,
}

impl Report {
    pub fn differences(&self) -> usize {
        self.series.iter().map(|s| s.differences.len()).sum()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for s in &self.series {
            for d in &s.differences {
                writeln!(f, "{}: /{}: {} differs ({})", s.series, crate::errors::shown(&d.path), d.what.join(", "), d.found)?;
            }
            writeln!(f, "{}: {}: {} entries checked, {} differ", s.series, s.dist, s.entries, s.differences.len())?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{}: the root is not a directory", .0.display())]
    Root(PathBuf),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{}: nothing installed by binarydist here", .0.display())]
    NothingInstalled(PathBuf),
    #[error("{series}: the kept manifest of {dist} is missing or does not match its record; install again to have one")]
    NoManifest { series: String, dist: String },
}

/// The series with an installed record, kernels first.
pub fn installed_series(state: &State) -> Result<Vec<Series>, StateError> {
    let mut v: Vec<Series> = Vec::new();
    for name in state.dir().names().map_err(StateError::from)? {
        if let Ok(s) = Series::parse(&name) {
            if state.installed(&s)?.is_some() {
                v.push(s);
            }
        }
    }
    v.sort_by_key(|s| (!s.is_kernel(), s.to_string()));
    Ok(v)
}

pub fn check(root: &Path, full: bool) -> Result<Report, CheckError> {
    let root = std::fs::canonicalize(root).map_err(|_| CheckError::Root(root.to_path_buf()))?;
    let state = State::open(&root, false)?.ok_or_else(|| CheckError::NothingInstalled(root.clone()))?;
    let mut report = Report { root: root.clone(), full, series: Vec::new() };
    for series in installed_series(&state)? {
        let dist = state.installed(&series)?.map(|i| i.name.to_string()).unwrap_or_default();
        let old =
            state.installed_manifest(&series).ok_or_else(|| CheckError::NoManifest { series: series.to_string(), dist: dist.clone() })?;
        let baseline = state.series(&series, false)?.map(|d| ids::read_baseline(&d)).unwrap_or_default();
        let diffs = ids::beyond_baseline(ids::compare(&root, &old.manifest, full), &baseline);
        report.series.push(SeriesCheck { series: series.to_string(), dist, entries: old.manifest.entries.len(), differences: diffs });
    }
    if report.series.is_empty() {
        return Err(CheckError::NothingInstalled(root));
    }
    Ok(report)
}
