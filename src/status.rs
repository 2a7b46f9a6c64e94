//! `binarydist status`: per series (kernels first, then the world) the
//! installed dist and when it was installed, a hold, the kept generations and
//! their sizes (and what a prune to KEEP_GENERATIONS would free), the
//! HAMMER2 snapshots taken before installs; then any unfinished journal and
//! the disk used by the state directory. Reads only. The `--json` form is
//! documented in docs/status.md.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::check::installed_series;
use crate::install::journal::{self, Found};
use crate::install::state::{State, StateError, BASE, INSTALLED};
use crate::install::{generations, SNAPSHOTS};
use crate::statedir;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, serde::Serialize)]
pub struct Generation {
    pub dist: String,
    pub bytes: u64,
}

#[derive(Debug, serde::Serialize)]
pub struct Snapshot {
    pub label: String,
    pub mount: String,
    pub spec: String,
}

#[derive(Debug, serde::Serialize)]
pub struct SeriesStatus {
    pub series: String,
    pub installed: String,
    /// When it was installed (its record written), YYYYMMDDTHHMMSSZ.
    pub installed_at: String,
    /// Why the series is held (`update` leaves it alone), or null.
    pub hold: Option<String>,
    /// Bytes of the kept base of the installed dist.
    pub base_bytes: u64,
    /// Previous generations, oldest first.
    pub generations: Vec<Generation>,
    /// Of those, what a prune to `keep_generations` would remove.
    pub prune: Vec<Generation>,
    pub prune_bytes: u64,
    pub snapshots: Vec<Snapshot>,
}

#[derive(Debug, serde::Serialize)]
pub struct Status {
    pub root: PathBuf,
    pub keep_generations: usize,
    pub series: Vec<SeriesStatus>,
    /// An unfinished install: `staging` (the next run undoes it), `commit`
    /// (the next run finishes it), `empty`; null when there is none.
    pub journal: Option<String>,
    /// The dist an unfinished commit is installing.
    pub journal_dist: Option<String>,
    /// Disk used by ROOT/var/db/binarydist, in bytes.
    pub state_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("{}: the root is not a directory", .0.display())]
    Root(PathBuf),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
}

fn du(p: &Path) -> u64 {
    let Ok(m) = std::fs::symlink_metadata(p) else { return 0 };
    let mut n = m.blocks() * 512;
    if m.is_dir() {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            n += du(&e.path());
        }
    }
    n
}

pub fn status(root: &Path, keep_generations: usize) -> Result<Status, StatusError> {
    let root = std::fs::canonicalize(root).map_err(|_| StatusError::Root(root.to_path_buf()))?;
    let mut out = Status { root: root.clone(), keep_generations, series: Vec::new(), journal: None, journal_dist: None, state_bytes: 0 };
    let Some(state) = State::open(&root, false)? else { return Ok(out) };
    for series in installed_series(&state)? {
        let name = series.to_string();
        // Listed because it has a record; one removed since is not shown.
        let (Some(dir), Some(installed)) = (state.series(&series, false)?, state.installed(&series)?) else { continue };
        #[allow(clippy::unnecessary_cast)]
        let at = dir.stat(INSTALLED).map_err(StateError::from)?.map(|st| st.st_mtime as i64).unwrap_or(0);
        let base_bytes = dir.stat(BASE).map_err(StateError::from)?.map(|st| st.st_size as u64).unwrap_or(0);
        let gens = generations::list(&dir)?;
        let g = |x: &generations::Generation| Generation { dist: x.installed.name.to_string(), bytes: x.bytes };
        let prune: Vec<Generation> = generations::beyond(&gens, keep_generations).iter().map(g).collect();
        let snapshots = dir
            .read_text(SNAPSHOTS)
            .map_err(StateError::from)?
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut w = l.split('\t');
                Some(Snapshot { label: w.next()?.into(), mount: w.next()?.into(), spec: w.next()?.into() })
            })
            .collect();
        out.series.push(SeriesStatus {
            series: name.clone(),
            installed: installed.name.to_string(),
            installed_at: crate::names::stamp_from_epoch(at),
            hold: statedir::hold(state.dir(), &name).map_err(StateError::from)?,
            base_bytes,
            prune_bytes: prune.iter().map(|p| p.bytes).sum(),
            prune,
            generations: gens.iter().map(g).collect(),
            snapshots,
        });
    }
    match journal::read(state.dir())? {
        None => {}
        Some(Found::Empty) => out.journal = Some("empty".into()),
        Some(Found::Staging(_)) => out.journal = Some("staging".into()),
        Some(Found::Commit { commit, .. }) => {
            out.journal = Some("commit".into());
            out.journal_dist = Some(commit.dist.to_string());
        }
    }
    out.state_bytes = du(state.dir().path());
    Ok(out)
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.series.is_empty() {
            writeln!(f, "{}: nothing installed by binarydist", self.root.display())?;
        }
        for s in &self.series {
            writeln!(f, "{}: {} (installed {})", s.series, s.installed, s.installed_at)?;
            if let Some(h) = &s.hold {
                writeln!(f, "  held: {h}; `binarydist unhold --series {}` or `update --to NAME` lifts it", s.series)?;
            }
            writeln!(f, "  base: {} bytes", s.base_bytes)?;
            for g in &s.generations {
                writeln!(f, "  generation: {} ({} bytes)", g.dist, g.bytes)?;
            }
            if !s.prune.is_empty() {
                writeln!(f, "  a prune to {} generations would free {} bytes", self.keep_generations, s.prune_bytes)?;
            }
            for sn in &s.snapshots {
                writeln!(f, "  HAMMER2 snapshot: {} of {} (boot: vfs.root.mountfrom=hammer2:{})", sn.label, sn.mount, sn.spec)?;
            }
        }
        match (&self.journal, &self.journal_dist) {
            (Some(j), Some(d)) => writeln!(f, "unfinished install of {d} ({j}): the next `binarydist install` finishes it")?,
            (Some(j), None) => writeln!(f, "unfinished install ({j}): the next `binarydist install` undoes it")?,
            _ => {}
        }
        write!(f, "state directory: {} bytes", self.state_bytes)
    }
}
