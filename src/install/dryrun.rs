//! `binarydist install --dry-run`: what an install would do, from the same
//! plan (plan::make) on the same verified stream, with nothing written: no
//! state directory, no lock, no staged file, no next base, so it needs no
//! write access to the root. The counts are those the install then reports.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::plan::{self, Action};
use super::state::State;
use super::{check_base, check_root, read_new_manifest, verify_stream, InstallError, Options, Source};
use crate::tario::Kind;
use std::path::PathBuf;

#[derive(Debug, Default, serde::Serialize)]
pub struct DryRun {
    pub dist: String,
    /// Entries the root lacks: created.
    pub added: u64,
    /// Entries whose content would be replaced.
    pub replaced: u64,
    /// Entries whose content is right; owner, mode, time or flags set in place.
    pub metadata_only: u64,
    pub unchanged: u64,
    /// Entries of the installed dist removed at the commit.
    pub removed: u64,
    /// As the install's summary counts them: entries staged or created.
    pub written: u64,
    /// Bytes of file content (and the manifest kept in the state) to write.
    pub bytes_written: u64,
    /// Files the admin edited that the install would replace.
    pub local_changes: Vec<PathBuf>,
    /// The dist is already installed: nothing would be done.
    pub already_installed: bool,
}

impl std::fmt::Display for DryRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.already_installed {
            return write!(f, "{} is already installed; nothing would be done", self.dist);
        }
        write!(
            f,
            "would install {}: {} added, {} replaced, {} metadata only, {} unchanged, {} removed; {} written ({} bytes)",
            self.dist, self.added, self.replaced, self.metadata_only, self.unchanged, self.removed, self.written, self.bytes_written
        )?;
        for p in &self.local_changes {
            write!(f, "\nedited since installed (would be kept as NAME{}): {}", super::admin::LOCAL_SUFFIX, crate::errors::shown(p))?;
        }
        Ok(())
    }
}

pub fn dry_run(opts: &Options) -> Result<DryRun, InstallError> {
    let root = check_root(&opts.root)?;
    let Some(source) = &opts.source else { return Ok(DryRun::default()) };
    let target = source.target_name()?;
    let state = State::open(&root, false)?;
    let installed = state.as_ref().map(|s| s.installed(&target.series)).transpose()?.flatten();
    if installed.as_ref().is_some_and(|i| i.name == target) {
        return Ok(DryRun { dist: target.to_string(), already_installed: true, ..DryRun::default() });
    }
    let kept_path = state.as_ref().map(|s| s.base_path(&target.series)).unwrap_or_default();
    match &state {
        Some(s) => check_base(s, source, &target)?,
        None => source.check_base(None, &kept_path, false)?,
    }
    let kept = match (&state, source) {
        (Some(s), Source::Chain(_)) => s.base(&target.series)?.map(|f| (f, kept_path.as_path())),
        _ => None,
    };
    let mut stream = source.open(None, kept, installed.as_ref())?;
    let member = read_new_manifest(&mut stream, &target)?;
    let old = state.as_ref().and_then(|s| s.installed_manifest(&target.series));
    let rollback = matches!(source, Source::Kept(_));
    let plan = plan::make_with(&root, &member.manifest, old.as_ref(), rollback)?;
    verify_stream(stream)?;
    let mut d = DryRun { dist: target.to_string(), local_changes: plan.local_changes.clone(), ..DryRun::default() };
    let mut actions = plan.actions.clone();
    if state.is_none() {
        // The install makes its state directory before it plans: by then the
        // directories on the way to it exist, and only their metadata is set.
        for (a, e) in actions.iter_mut().zip(&member.manifest.entries) {
            if *a == Action::CreateDir && std::path::Path::new(super::state::STATE_DIR).starts_with(&e.meta.path) {
                *a = Action::MetaOnly;
            }
        }
    }
    let count = |x: Action| actions.iter().filter(|a| **a == x).count() as u64;
    // The plan has one action and one `existed` per manifest entry.
    for ((e, &action), &existed) in member.manifest.entries.iter().zip(&actions).zip(&plan.existed) {
        match action {
            Action::Stage | Action::CreateDir | Action::KernelTree if !existed => d.added += 1,
            Action::Stage | Action::KernelTree => d.replaced += 1,
            Action::MetaOnly => d.metadata_only += 1,
            Action::Unchanged | Action::CreateDir => d.unchanged += 1,
        }
        if matches!(action, Action::Stage | Action::KernelTree) && e.meta.kind == Kind::File {
            d.bytes_written += e.meta.size;
        }
    }
    d.written = count(Action::Stage) + count(Action::CreateDir) + count(Action::KernelTree);
    d.bytes_written += member.text.len() as u64;
    d.removed = plan.removals.len() as u64;
    Ok(d)
}
