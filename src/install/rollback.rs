//! `binarydist rollback`: back to the previous generation of a series
//! (generations.rs), through the same staged, journaled install as any
//! other, from the kept tarball (its digests from its installed record), so
//! that a kill at any point converges as an install does. Entries the newer
//! dist added are removed after all renames (plan::make_with), `make upgrade`
//! runs from the older dist's own subset, and a kernel's directory is swapped
//! whole, the rolled-back one becoming kernel.old. A hold is then set on the
//! series, so that `update` and the periodic job leave it where the admin put
//! it until `update --to NAME` or `binarydist unhold`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::generations;
use super::source::{Kept, Source};
use super::state::State;
use super::{install, InstallError, Options, Summary};
use crate::names::Series;
use crate::statedir;
use std::path::Path;
use std::sync::Mutex;

/// Rolls `series` back one generation. `opts.source` is ignored.
pub fn rollback(opts: &Options, series: &Series) -> Result<Summary, InstallError> {
    let root = std::fs::canonicalize(&opts.root).map_err(super::io_err(&opts.root))?;
    let name = series.to_string();
    let Some(state) = State::open(&root, false)? else { return Err(InstallError::NothingToRollBack { series: name }) };
    // An interrupted install (or rollback) is finished or undone first, so
    // that the generation chosen is the one before what is really installed.
    let finish = Options { root: root.clone(), source: None, make: opts.make.clone(), wait: opts.wait, settings: opts.settings.clone() };
    let finished = install(&finish)?;
    let Some(installed) = state.installed(series)? else { return Err(InstallError::NothingToRollBack { series: name }) };
    // A rollback killed after its commit record was just finished: it is
    // done, not to be taken one generation further.
    if hold_if_rolled_back(&state, series)? {
        return Ok(Summary { action: "rollback", ..finished });
    }
    let gens = generations::of_series(state.dir(), series)?;
    let Some(generation) = generations::previous(&gens, &installed.name) else {
        return Err(InstallError::NoGeneration {
            series: name,
            installed: installed.name.to_string(),
            keep: opts.settings.keep_generations,
        });
    };
    let dir = state.series(series, false)?.ok_or_else(|| InstallError::NothingToRollBack { series: name.clone() })?;
    let tar = generation.tar_name();
    let file = dir.open(&tar, libc::O_RDONLY, 0).map_err(super::StateError::from)?;
    let file = file.ok_or_else(|| InstallError::NothingToRollBack { series: name.clone() })?;
    let kept = Kept { installed: generation.installed.clone(), path: dir.path().join(&tar), file: Mutex::new(Some(file)) };
    let run = Options {
        root: root.clone(),
        source: Some(Source::Kept(Box::new(kept))),
        make: opts.make.clone(),
        wait: opts.wait,
        settings: opts.settings.clone(),
    };
    let (from, to) = (installed.name.to_string(), generation.installed.name.to_string());
    dir.write_atomically(MARKER, format!("{from} {to}\n").as_bytes(), 0o644).map_err(super::StateError::from)?;
    let summary = install(&run)?;
    hold(&state, &name, &from, &to)?;
    dir.remove(MARKER).map_err(super::StateError::from)?;
    Ok(summary)
}

/// `<series>/rollback`: `FROM TO` while a rollback is under way, so that a
/// rerun after a kill knows whether the install it finished was that rollback.
const MARKER: &str = "rollback";

/// A rollback of `series` whose commit a later run finished (this rollback
/// run again, or an update) is completed as the rollback would have: the
/// hold set, the marker removed. Returns whether there was one.
fn hold_if_rolled_back(state: &State, series: &Series) -> Result<bool, InstallError> {
    let e = super::StateError::from;
    let (Some(dir), Some(installed)) = (state.series(series, false)?, state.installed(series)?) else { return Ok(false) };
    let Some(text) = dir.read_text(MARKER).map_err(e)? else { return Ok(false) };
    let mut w = text.split_whitespace();
    let (from, to) = (w.next().unwrap_or_default(), w.next().unwrap_or_default());
    if to != installed.name.to_string() {
        return Ok(false);
    }
    hold(state, &series.to_string(), from, to)?;
    dir.remove(MARKER).map_err(e)?;
    Ok(true)
}

/// For `update`, once it has finished an interrupted install: a rollback it
/// finished stays where the admin put it (held), instead of being updated
/// away by the same run.
pub fn hold_finished_rollbacks(root: &Path) -> Result<(), InstallError> {
    let root = std::fs::canonicalize(root).map_err(super::io_err(root))?;
    let Some(state) = State::open(&root, false)? else { return Ok(()) };
    for name in state.dir().names().map_err(super::StateError::from)? {
        if let Ok(series) = Series::parse(&name) {
            hold_if_rolled_back(&state, &series)?;
        }
    }
    Ok(())
}

fn hold(state: &State, series: &str, from: &str, to: &str) -> Result<(), InstallError> {
    let why = format!("rolled back from {from} to {to} on {}", now_stamp());
    statedir::set_hold(state.dir(), series, &why).map_err(super::StateError::from)?;
    Ok(())
}

/// `binarydist unhold`: `update` follows the series again. Returns whether
/// there was a hold.
pub fn unhold(root: &Path, series: &Series) -> Result<bool, InstallError> {
    let root = std::fs::canonicalize(root).map_err(super::io_err(root))?;
    let e = super::StateError::from;
    let Some(state) = statedir::open(&root, false).map_err(e)? else { return Ok(false) };
    let name = series.to_string();
    let held = statedir::hold(&state, &name).map_err(e)?.is_some();
    statedir::clear_hold(&state, &name).map_err(e)?;
    Ok(held)
}

fn now_stamp() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    crate::names::stamp_from_epoch(secs)
}
