//! `binarydist install`: puts a dist (or a patch chain's result) onto a root
//! without ever leaving a mix that cannot boot. The steps, in order, each a
//! function named for it below or in `checks` (docs/install.md tells them for
//! an admin, with the state directory, the journal and what is durable when):
//!
//! 1. `take_lock`, `finish_or_undo_interrupted_install`, `Source::open`,
//!    `read_new_manifest`, `check_base`, `plan::make` (hostile archives are
//!    refused here), `check_free_space`;
//! 2. `stage::stage_all`: one pass over the stream, tee'd into the new base and
//!    the hashes, unchanged entries skipped;
//! 3. `verify_stream`: MD5 and SHA-256; on failure the transaction undoes itself;
//! 4. `make_staged_durable` (see `durable`), the commit record, `commit::run_ops`,
//!    `durable::commit_done`;
//! 5. `run_make_upgrade`, exactly once;
//! 6. `State::record`, journal cleared, summary.
//!
//! Obsolete files: entries that the installed dist had and the new one has not
//! are left to `make upgrade`, whose TO_REMOVE lists are how DragonFly retires
//! files (installworld never deletes either); only the installer's own upgrade-src
//! subset is pruned here, and a kernel directory is replaced whole.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod admin;
mod checks;
mod commit;
pub mod dryrun;
mod durable;
pub mod generations;
mod guard;
pub mod ids;
pub mod journal;
mod plan;
pub mod rollback;
mod source;
mod stage;
pub mod state;
mod transaction;

pub use admin::{LocalPolicy, Settings};
pub use journal::Stats;
pub use source::{Kept, Source};

use crate::errors::shown;
use crate::manifest;
use crate::names::DistName;
use crate::os;
use crate::testhooks;
use checks::{
    check_base, check_flags_changeable, check_free_space, check_root, look_before_making_state, read_new_manifest, verify_stream,
};
use journal::{Commit, Found, Item};
use plan::Plan;
use state::{State, StateError};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use transaction::Transaction;

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{}: the root is not a directory", .0.display())]
    RootNotDir(PathBuf),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error(transparent)]
    Stage(#[from] stage::StageError),
    #[error("commit")]
    Commit(#[from] commit::CommitError),
    #[error("{what}")]
    Manifest { what: String, source: manifest::ManifestError },
    #[error(transparent)]
    Source(#[from] source::SourceError),
    #[error("{}", shown(path))]
    Io { path: PathBuf, source: io::Error },
    #[error("{what}: {algo} of the tar is {found}, expected {expected} (from {from}); nothing was installed")]
    Digest { what: String, algo: &'static str, expected: String, found: String, from: String },
    #[error("{what}: the stream holds {found}, expected {expected}")]
    WrongDist { what: String, expected: String, found: String },
    #[error("this root has {installed} installed, for {arch}; the dist is for {found}")]
    WrongArch { installed: String, arch: String, found: String },
    #[error("not enough room on the file system of {}: {need} bytes needed, {free} available; nothing was installed", shown(probe))]
    NoSpace { probe: PathBuf, need: u64, free: u64 },
    #[error("{}: has {flags}, and {why}: the install would stop half-way through its commit; nothing was staged. The securelevel only goes down at a reboot: boot with kern_securelevel_enable=NO in /etc/rc.conf (or into single-user mode), then install again", shown(path))]
    FlagsLocked { path: PathBuf, flags: String, why: String },
    #[error("make upgrade in {} failed ({status}); the new binaries are in place; fix the cause and run `binarydist install` again to retry it", dir.display())]
    Upgrade { dir: PathBuf, status: String },
    #[error("{} edited since it was installed: {}; nothing was installed (LOCAL_CHANGES=\"stop\"): merge or move them aside, or set LOCAL_CHANGES=\"keep\" to keep each as NAME{}", if paths.len() == 1 { "a file was" } else { "files were" }, paths.iter().map(|p| shown(p).to_string()).collect::<Vec<_>>().join(", "), admin::LOCAL_SUFFIX)]
    LocalChanges { paths: Vec<PathBuf> },
    #[error("HAMMER2 snapshot of {} before the commit: {source}; nothing was installed (SNAPSHOT=\"no\" installs without one)", root.display())]
    Snapshot { root: PathBuf, source: io::Error },
    #[error("{series}: nothing installed to roll back")]
    NothingToRollBack { series: String },
    #[error("{series}: no kept generation older than {installed} to roll back to (KEEP_GENERATIONS keeps {keep})")]
    NoGeneration { series: String, installed: String, keep: usize },
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> InstallError + '_ {
    move |e| InstallError::Io { path: path.to_path_buf(), source: e }
}

pub struct Options {
    /// The root to install onto (`/` on a live system).
    pub root: PathBuf,
    /// What to install; `None` only finishes or undoes an interrupted install.
    pub source: Option<Source>,
    /// The make program for `make upgrade` (bmake on DragonFly, where it is `make`).
    pub make: String,
    /// Wait for another install's lock instead of refusing.
    pub wait: bool,
    pub settings: Settings,
}

/// What an install did, for the one-line summary and `--json`.
#[derive(Debug, Default, serde::Serialize)]
pub struct Summary {
    /// The dist now installed (by this run or by finishing an interrupted one).
    pub dist: Option<String>,
    /// An interrupted install found at start: `finished` or `undone`.
    pub interrupted: Option<&'static str>,
    /// The dist asked for was already installed.
    pub already_installed: bool,
    #[serde(flatten)]
    pub stats: Stats,
    /// Set-uid or set-gid files with other hard links whose set-id bits were
    /// cleared before they were replaced (each is named on stderr).
    pub setid_cleared: u64,
    /// `ran`, or `none` when the dist carries no upgrade subset (a kernel).
    pub make_upgrade: &'static str,
    pub reboot_needed: bool,
    /// `install` or `rollback`.
    pub action: &'static str,
    /// Files the admin had edited that this install replaced (or would have).
    pub local_changes: Vec<PathBuf>,
    /// Where each edited file was kept (NAME.binarydist-local).
    pub kept_local: Vec<PathBuf>,
    /// /etc files whose shipped version changed that `make upgrade` left as
    /// the admin had them: the admin's to merge.
    pub etc_to_merge: Vec<PathBuf>,
    /// Entries of the installed dist removed (a rollback's newer entries).
    pub removed: u64,
    /// The HAMMER2 snapshot taken before the commit.
    pub snapshot: Option<crate::snapshot::Snapshot>,
    /// Bytes freed by pruning generations beyond KEEP_GENERATIONS.
    pub pruned_bytes: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(dist) = &self.dist else {
            return match self.interrupted {
                Some(what) => write!(f, "an interrupted install was {what}; nothing else to do"),
                None => write!(f, "nothing to do"),
            };
        };
        if self.already_installed {
            return write!(f, "{dist} is already installed");
        }
        let s = &self.stats;
        let verb = if self.action == "rollback" { "rolled back to" } else { "installed" };
        write!(
            f,
            "{verb} {dist}: {} written ({} bytes), {} unchanged, {} metadata only; make upgrade: {}",
            s.written, s.bytes_written, s.unchanged, s.metadata_only, self.make_upgrade
        )?;
        if self.removed > 0 {
            write!(f, "; {} newer entries removed", self.removed)?;
        }
        if !self.kept_local.is_empty() {
            write!(f, "; {} edited file(s) kept as NAME{}", self.kept_local.len(), admin::LOCAL_SUFFIX)?;
        }
        if !self.etc_to_merge.is_empty() {
            let list: Vec<String> = self.etc_to_merge.iter().map(|p| format!("/{}", shown(p))).collect();
            write!(f, "; to merge by hand (make upgrade left them as they were): {}", list.join(" "))?;
        }
        if self.setid_cleared > 0 {
            write!(f, "; set-id bits cleared on {} replaced file(s) with other hard links", self.setid_cleared)?;
        }
        if self.reboot_needed {
            write!(f, "; reboot needed (new kernel or libc)")?;
        }
        Ok(())
    }
}

/// What the steps of one run share: the root, its state directory, the lock
/// held on it, and the options.
struct Run<'a> {
    root: &'a Path,
    state: &'a State,
    lock: &'a state::Lock,
    opts: &'a Options,
}

/// Installs, and appends what it did to the log (log.rs).
pub fn install(opts: &Options) -> Result<Summary, InstallError> {
    let start = std::time::Instant::now();
    let action = if matches!(opts.source, Some(Source::Kept(_))) { "rollback" } else { "install" };
    let target = opts.source.as_ref().and_then(|s| s.target_name().ok()).map(|n| n.to_string());
    let r = install_unlogged(opts);
    if let Ok(root) = check_root(&opts.root) {
        let mut fields = vec![("dist", target.unwrap_or_else(|| "-".into()))];
        match &r {
            Ok(s) => {
                let st = &s.stats;
                fields.push(("outcome", if s.already_installed { "already-installed".into() } else { "ok".into() }));
                fields.push(("written", st.written.to_string()));
                fields.push(("unchanged", st.unchanged.to_string()));
                fields.push(("metadata_only", st.metadata_only.to_string()));
                fields.push(("removed", s.removed.to_string()));
                fields.push(("bytes", st.bytes_written.to_string()));
                fields.push(("local_changes", s.local_changes.len().to_string()));
                if let Some(i) = s.interrupted {
                    fields.push(("interrupted", i.into()));
                }
            }
            Err(e) => fields.push(("outcome", format!("failed: {}", crate::errors::chain(e)))),
        }
        if opts.source.is_some() || matches!(&r, Ok(s) if s.interrupted.is_some()) {
            crate::log::append(&root, action, &fields, start.elapsed(), r.is_ok());
        }
    }
    r.map(|mut s| {
        s.action = action;
        s
    })
}

fn install_unlogged(opts: &Options) -> Result<Summary, InstallError> {
    let root = check_root(&opts.root)?;
    let state = match State::open(&root, false)? {
        Some(state) => state,
        None => {
            // No state directory: nothing is installed or interrupted here.
            // The dist is looked at first, so that a refused install leaves
            // no directory and no lock file behind.
            let Some(source) = &opts.source else { return Ok(Summary { make_upgrade: "none", ..Summary::default() }) };
            look_before_making_state(&root, source)?;
            State::create(&root)?
        }
    };
    let lock = take_lock(&state, opts.wait)?;
    let run = Run { root: &root, state: &state, lock: &lock, opts };
    let mut summary = Summary { make_upgrade: "none", ..Summary::default() };
    finish_or_undo_interrupted_install(&run, &mut summary)?;
    let Some(source) = &opts.source else {
        return Ok(summary);
    };
    let target = source.target_name()?;
    if state.installed(&target.series)?.is_some_and(|i| i.name == target) {
        // Either this run just finished it (the summary says so), or an
        // earlier one did.
        if summary.dist.as_deref() != Some(&target.to_string()) {
            summary.dist = Some(target.to_string());
            summary.already_installed = true;
            summary.stats = Stats::default();
        }
        return Ok(summary);
    }
    check_base(&state, source, &target)?;

    let series = &target.series;
    let mut tx = Transaction::begin(&root, state.dir())?;
    let base_new = state.base_new_rel(series);
    tx.record(Item::StateFile(base_new.clone()))?;
    let base_file = state.create_base_new(series)?;
    let installed = state.installed(series)?;
    let kept_path = state.base_path(series);
    let kept = if matches!(source, Source::Chain(_)) { state.base(series)?.map(|f| (f, kept_path.as_path())) } else { None };
    let mut stream = source.open(Some((base_file, &root.join(&base_new))), kept, installed.as_ref())?;
    let manifest::Member { manifest, text: manifest_text, .. } = read_new_manifest(&mut stream, &target)?;
    // The manifest member (+MANIFEST) is metadata, not a file of the system:
    // it is kept in the state directory, where the next install compares with it.
    tx.record(Item::StateFile(state.manifest_new_rel(series)))?;
    state.write_manifest_new(series, &manifest_text)?;
    let old = state.installed_manifest(series);
    let rollback = matches!(source, Source::Kept(_));
    let plan = plan::make_with(&root, &manifest, old.as_ref(), rollback)?;
    check_flags_changeable(&root, &manifest, &plan)?;
    check_free_space(&root, &plan, &state_fs(&state)?, stream.base_estimate())?;
    summary.local_changes = plan.local_changes.clone();
    if !plan.local_changes.is_empty() {
        if opts.settings.local_changes == LocalPolicy::Stop {
            return Err(InstallError::LocalChanges { paths: plan.local_changes.clone() });
        }
        summary.kept_local = admin::keep_local_copies(&root, &mut tx, &plan.local_changes)?;
    }
    let etc_changed = admin::etc_shipped_changes(&manifest, old.as_ref().map(|o| &o.manifest));

    let mut stager = stage::Stager::new(&mut tx, durable::Flusher::new())?;
    let staged = stage::stage_all(&mut stream.reader, &manifest, &plan, &mut stager)?;
    let flusher = stager.into_flusher();
    let digests = verify_stream(stream)?;
    testhooks::kill_point("verified");

    let stats = Stats {
        written: plan.count(plan::Action::Stage) as u64
            + plan.count(plan::Action::CreateDir) as u64
            + plan.count(plan::Action::KernelTree) as u64,
        unchanged: plan.count(plan::Action::Unchanged) as u64,
        metadata_only: plan.count(plan::Action::MetaOnly) as u64,
        bytes_written: staged.bytes_written + manifest_text.len() as u64,
    };
    let commit = Commit {
        dist: manifest.name.clone(),
        tar_size: digests.size,
        md5: digests.md5_hex(),
        sha256: digests.sha256_hex(),
        manifest_sha256: crate::tario::Digests::of(&manifest_text).sha256_hex(),
        upgrade_src: manifest.upgrade_src.clone(),
        reboot: plan.reboot,
        stats,
        ops: commit::build_ops(&manifest, &plan, &staged)?,
    };
    make_staged_durable(&plan, &state, series, flusher)?;
    if opts.settings.snapshot {
        summary.snapshot = take_snapshot(&root, &state, &manifest.name)?;
    }
    tx.commit(&commit)?;
    testhooks::kill_point("journal");
    summary.removed = plan.removals.len() as u64;
    finish_commit(&run, &commit, 0, false, &mut summary)?;
    if commit.upgrade_src.is_some() {
        summary.etc_to_merge = admin::left_as_admin_had_them(&root, &etc_changed);
    }
    Ok(summary)
}

/// Before the commit's first rename: a HAMMER2 snapshot named after the
/// dist, listed in `<series>/snapshots` for `status`.
fn take_snapshot(root: &Path, state: &State, dist: &DistName) -> Result<Option<crate::snapshot::Snapshot>, InstallError> {
    let label = format!("binarydist-before-{}", dist);
    let snap = crate::snapshot::take(root, &label).map_err(|e| InstallError::Snapshot { root: root.to_path_buf(), source: e })?;
    if let Some(s) = &snap {
        eprintln!("binarydist: {}", s.how_to_use());
        let dir = state.made_series(&dist.series)?;
        let mut text = dir.read_text(SNAPSHOTS).map_err(StateError::from)?.unwrap_or_default();
        text.push_str(&format!("{}\t{}\t{}\n", s.label, s.mount, s.spec));
        dir.write_atomically(SNAPSHOTS, text.as_bytes(), 0o644).map_err(StateError::from)?;
    }
    Ok(snap)
}

/// `<series>/snapshots`: LABEL, mount point and device spec of each
/// snapshot taken before an install, a line each.
pub const SNAPSHOTS: &str = "snapshots";

fn take_lock(state: &State, wait: bool) -> Result<state::Lock, InstallError> {
    Ok(state.lock(wait)?)
}

/// The state directory's file system (device, and a directory on it).
fn state_fs(state: &State) -> Result<(u64, PathBuf), InstallError> {
    #[allow(clippy::unnecessary_cast)]
    let dev = state.dir().metadata().map_err(StateError::from)?.st_dev as u64;
    Ok((dev, state.dir().path().to_path_buf()))
}

/// A journal at start: a commit record is finished, a staging log undone, so
/// that running install again at any point converges.
fn finish_or_undo_interrupted_install(run: &Run, summary: &mut Summary) -> Result<(), InstallError> {
    let state = run.state.dir();
    match journal::read(state)? {
        None => Ok(()),
        Some(Found::Empty) => {
            eprintln!("binarydist: removing an empty journal (a crash before anything was staged)");
            Ok(journal::clear(state)?)
        }
        Some(Found::Staging(items)) => {
            eprintln!("binarydist: undoing an interrupted install ({} staged items)", items.len());
            let problems = transaction::undo(run.root, state, &items);
            if let Some(p) = problems.first() {
                return Err(io_err(&journal::path(state))(io::Error::other(format!("could not undo the interrupted install: {p}"))));
            }
            journal::clear(state)?;
            summary.interrupted = Some("undone");
            Ok(())
        }
        Some(Found::Commit { commit, upgraded, .. }) => {
            eprintln!("binarydist: finishing the interrupted install of {}", commit.dist);
            summary.interrupted = Some("finished");
            // Every op again, not from the last `done` mark: marks are not
            // synced, so after a power loss one can be on disk while the
            // rename it marks is not. Once make upgrade's mark is, every op
            // was made durable before it (durable::commit_done).
            let from = if upgraded { commit.ops.len() } else { 0 };
            finish_commit(run, &commit, from, upgraded, summary)
        }
    }
}

/// Steps 4 (renames) to 6, from a commit record; shared by a fresh install and
/// a rerun after a crash.
fn finish_commit(run: &Run, c: &Commit, done: usize, upgraded: bool, summary: &mut Summary) -> Result<(), InstallError> {
    let (root, state) = (run.root, run.state);
    {
        let _quiet = os::ignore_interrupts();
        summary.setid_cleared = commit::run_ops(root, state.dir(), &c.ops, done)?;
        durable::commit_done(root, &c.ops).map_err(|(p, e)| io_err(&p)(e))?;
    }
    summary.make_upgrade = "none";
    if let Some(src) = &c.upgrade_src {
        if !upgraded {
            let started = std::time::SystemTime::now();
            run_make_upgrade(run, src)?;
            durable::upgrade_done(root, started).map_err(|(p, e)| io_err(&p)(e))?;
            journal::mark(state.dir(), "upgraded", true)?;
        }
        summary.make_upgrade = "ran";
    }
    state.record(c)?;
    testhooks::kill_point("recorded");
    record_baseline(root, state, &c.dist.series);
    summary.pruned_bytes = prune(state, &c.dist.series, run.opts.settings.keep_generations)?;
    journal::clear(state.dir())?;
    summary.dist = Some(c.dist.to_string());
    summary.stats = c.stats;
    summary.reboot_needed = c.reboot;
    Ok(())
}

/// What `check` compares with later: the entries that differ from the
/// manifest right after the install and its `make upgrade` (best effort: a
/// baseline that cannot be written makes `check` report them instead).
fn record_baseline(root: &Path, state: &State, series: &crate::names::Series) {
    let Some(old) = state.installed_manifest(series) else { return };
    let diffs = ids::compare(root, &old.manifest, false);
    if let Ok(Some(dir)) = state.series(series, false) {
        if let Err(e) = ids::write_baseline(&dir, &diffs) {
            eprintln!("binarydist: {}: {}", dir.path().join(ids::BASELINE).display(), crate::errors::chain(&e));
        }
    }
}

/// Generations beyond the setting go once the install is recorded.
fn prune(state: &State, series: &crate::names::Series, keep: usize) -> Result<u64, InstallError> {
    match state.series(series, false)? {
        Some(dir) => Ok(generations::prune(&dir, keep)?),
        None => Ok(0),
    }
}

/// Staged files, their directories and the next base reach the disk before
/// the commit record does (see `durable` for how, per system). The next base
/// was fsynced as it was closed and the next MANIFEST as it was written; the
/// series directory, and the directories above it up to the root (made by
/// the first install), are fsynced with the rest.
fn make_staged_durable(
    plan: &Plan,
    state: &State,
    series: &crate::names::Series,
    mut flusher: durable::Flusher,
) -> Result<(), InstallError> {
    let series_dir = state.dir().path().join(series.to_string());
    flusher.entry(&series_dir.join(state::BASE_NEW));
    for made in series_dir.ancestors().take_while(|d| *d != state.root()) {
        flusher.entry(made);
    }
    let mut probes: Vec<&Path> = plan.needs.values().map(|n| n.probe.as_path()).collect();
    probes.push(state.dir().path());
    // Directories created in place count in no need: the root's file system.
    probes.push(state.root());
    flusher.finish(&probes).map_err(|(p, e)| io_err(&p)(e))
}

/// Step 5: the /usr/src `upgrade` target itself, from the subset the dist
/// shipped, against the same root: the plain upgrade a source upgrade runs
/// (BINARY_UPGRADE would leave /etc/resolvconf.conf and /etc/dhcpcd.conf
/// uninstalled), guarded for another root (see guard.rs). Its output goes to
/// stderr (stdout is the summary's, which may be JSON).
///
/// make inherits the install's lock (its descriptor, without close-on-exec),
/// so that a killed install leaves its make upgrade holding it: a rerun then
/// waits for it (`--wait`) or refuses, naming its pid, instead of starting a
/// second make upgrade beside it. A running make upgrade is never killed.
fn run_make_upgrade(run: &Run, src: &Path) -> Result<(), InstallError> {
    let (root, make) = (run.root, run.opts.make.as_str());
    let dir = root.join(src);
    // Checked at plan time too; a journal read back is checked again here.
    if src != Path::new(manifest::UPGRADE_SRC_PREFIX) || !plan::through_real_dirs(root, &src.join("Makefile")) {
        return Err(io_err(&dir)(io::Error::other(format!("not the shipped upgrade subset under {}", manifest::UPGRADE_SRC_PREFIX))));
    }
    testhooks::kill_point("upgrade");
    let other_root = root != Path::new("/");
    let destdir = if other_root { root.display().to_string() } else { String::new() };
    let guards = if other_root { Some(guard::Guards::install().map_err(io_err(Path::new("the guards of make upgrade")))?) } else { None };
    let stdout = io::stderr().lock();
    let stdout = std::os::fd::AsFd::as_fd(&stdout).try_clone_to_owned().map_err(io_err(&dir))?;
    eprintln!("binarydist: {make} -C {} upgrade DESTDIR={destdir}", dir.display());
    let mut cmd = Command::new(make);
    cmd.arg("-C")
        .arg(&dir)
        .arg("upgrade")
        .arg(format!("DESTDIR={destdir}"))
        // The subset is a source tree of its own: no object directory, and
        // nothing inherited from a make that may have called us (installbinary).
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKEOBJDIRPREFIX")
        .env_remove("MAKEOBJDIR")
        .stdout(stdout);
    if let Some(g) = &guards {
        let path = std::env::var_os("PATH").unwrap_or_default();
        cmd.env("PATH", g.path(&path)).env(guard::PATH_ENV, &path).env(guard::ROOT_ENV, root);
    }
    let inherited = run.lock.inheritable().map_err(io_err(&dir))?;
    let spawned = cmd.spawn();
    drop(inherited);
    let mut child = spawned.map_err(|e| InstallError::Upgrade { dir: dir.clone(), status: format!("cannot run {make}: {e}") })?;
    run.lock.note(&format!("make-upgrade {}", child.id()));
    testhooks::kill_point("upgrading");
    let status = child.wait().map_err(|e| InstallError::Upgrade { dir: dir.clone(), status: e.to_string() })?;
    run.lock.note("");
    if !status.success() {
        return Err(InstallError::Upgrade { dir, status: status.to_string() });
    }
    testhooks::kill_point("upgraded");
    Ok(())
}
