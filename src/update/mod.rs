//! `binarydist update`, `update --check` and `plan`: the only module that knows
//! the network. One run, in order, each step a function named for it:
//!
//! 0. `finish_interrupted_install` (update only): an install a kill interrupted
//!    is finished or undone, so that the plans start from what is installed;
//! 1. `streams_to_follow`: the target's own series (arch, branch, KERNCONF) from
//!    its installed state, or the one `--to` names; a held series is left alone;
//! 2. `fetch_trusted_index`: INDEX, INDEX.minisig and KEYS from the first mirror
//!    whose INDEX passes every check of trust.rs, before anything else is fetched;
//! 3. `plan_stream`: refuse a downgrade or another arch, check the kept base,
//!    `plan::make` the cheapest way;
//! 4. `download`: free space first, then every file of every plan, verified;
//! 5. `install_plan`: kernel series first, then the world (whose install runs
//!    `make upgrade`); a reboot is asked for when one is needed; then
//!    `remove_stale_downloads`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod config;
pub mod trust;

use crate::fetch::{self, FetchError, Fetcher};
use crate::index::{self, Entry, Kind};
use crate::install::{self, state::Installed, InstallError, Source};
use crate::names::{DistName, PatchName, Series};
use crate::plan::{self, Plan, PlanError, Way};
use crate::sidecar::{self, Algo};
use crate::sign;
use crate::statedir::{self, Dir, StateDirError};
use std::io::Read;
use std::path::{Path, PathBuf};
use trust::{Anchor, TrustError, Verified};

pub const DOWNLOADS: &str = "downloads";

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("{}: the root is not a directory", .0.display())]
    Root(PathBuf),
    #[error(transparent)]
    State(#[from] StateDirError),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Install(#[from] InstallError),
    #[error(transparent)]
    Index(#[from] index::IndexError),
    #[error("no mirror has an INDEX that can be trusted ({})", .0.join("; "))]
    NoTrustedIndex(Vec<String>),
    #[error("nothing is installed on {}: name the series to install with --series (world, kernel.X86_64_GENERIC) or a dist with --to", .0.display())]
    NothingInstalled(PathBuf),
    #[error("{series}: the INDEX has dists of several branches for {arch} ({}): choose one with --branch", branches.join(", "))]
    WhichBranch { series: String, arch: String, branches: Vec<String> },
    #[error("{series}: the INDEX has no dist for {arch} on branch {branch}")]
    NoStream { series: String, arch: String, branch: String },
    #[error("{target} is older than the installed {installed}: a downgrade; refused (--allow-downgrade overrides)")]
    Downgrade { target: String, installed: String },
    #[error("{target} is for {found}, this machine runs {arch}; refused (--allow-other-arch overrides)")]
    OtherArch { target: String, found: String, arch: String },
    #[error("{}: {what}", path.display())]
    Local { path: PathBuf, what: String },
    #[error("another update is running on this root (holding {}); wait for it", .0.display())]
    Busy(PathBuf),
}

pub struct Options {
    pub root: PathBuf,
    pub mirrors: Vec<String>,
    pub fetch: fetch::Options,
    /// The mirror's public key, used when the state has none pinned yet.
    pub pubkey: Option<PathBuf>,
    /// Key ids or public keys never to trust.
    pub revoked: Vec<String>,
    pub to: Option<DistName>,
    /// Series to install that are not installed yet (a first install).
    pub series: Vec<Series>,
    pub branch: Option<String>,
    /// This machine's arch.
    pub arch: String,
    pub allow: trust::Allow,
    pub allow_downgrade: bool,
    pub allow_other_arch: bool,
    pub make: String,
    pub wait: bool,
    /// The installer's settings (generations kept, local changes, snapshots).
    pub settings: install::Settings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only say whether an update is available.
    Check,
    /// Print the plan.
    Plan,
    /// Download what the update needs into `downloads/`, verified, and stop
    /// (the periodic job's fetch-ahead; the next update installs from there).
    Fetch,
    Update,
}

impl Mode {
    /// Keeps state: creates the state directory, takes the lock, remembers the INDEX.
    fn writes(self) -> bool {
        matches!(self, Mode::Fetch | Mode::Update)
    }
}

#[derive(Debug, Default, serde::Serialize)]
pub struct Report {
    pub serial: u64,
    pub mirror: String,
    pub plans: Vec<Plan>,
    /// Held series and why.
    pub held: Vec<(String, String)>,
    pub installed: Vec<install::Summary>,
    pub reboot_needed: bool,
}

impl Report {
    /// Some series has an update to take.
    pub fn update_available(&self) -> bool {
        self.plans.iter().any(|p| p.way != Way::UpToDate)
    }
}

/// One series the target follows.
struct Stream {
    series: Series,
    arch: String,
    branch: Option<String>,
    installed: Option<Installed>,
}

/// Runs `mode`; an update appends what it did to the log (log.rs), after
/// the lines of the installs it made.
pub fn run(opts: &Options, mode: Mode) -> Result<Report, UpdateError> {
    let start = std::time::Instant::now();
    let r = run_unlogged(opts, mode);
    if let (Mode::Update, Ok(root)) = (mode, std::fs::canonicalize(&opts.root)) {
        let fields = match &r {
            Ok(rep) => vec![
                ("outcome", if rep.update_available() { "ok".to_string() } else { "up-to-date".to_string() }),
                ("serial", rep.serial.to_string()),
                ("mirror", rep.mirror.clone()),
                ("installed", rep.installed.iter().filter_map(|s| s.dist.clone()).collect::<Vec<_>>().join(",")),
                ("held", rep.held.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>().join(",")),
            ],
            Err(e) => vec![("outcome", format!("failed: {}", crate::errors::chain(e)))],
        };
        crate::log::append(&root, "update", &fields, start.elapsed(), r.is_ok());
    }
    r
}

fn run_unlogged(opts: &Options, mode: Mode) -> Result<Report, UpdateError> {
    let root = std::fs::canonicalize(&opts.root).map_err(|_| UpdateError::Root(opts.root.clone()))?;
    if !root.is_dir() {
        return Err(UpdateError::Root(opts.root.clone()));
    }
    // Checking and planning change nothing on the root; an update keeps state.
    let state = statedir::open(&root, mode.writes())?;
    let _lock = match &state {
        Some(s) if mode.writes() => Some(take_update_lock(s)?),
        _ => None,
    };
    let mut report = Report::default();
    if mode == Mode::Update && state.is_some() {
        finish_interrupted_install(&root, opts, &mut report)?;
    }
    let streams = streams_to_follow(&root, state.as_ref(), opts, &mut report)?;
    let anchor = trust::load(state.as_ref(), opts.pubkey.as_deref(), &opts.revoked)?;
    let fetcher = Fetcher::new(&opts.mirrors, opts.fetch.clone())?;
    let (verified, mirror) = fetch_trusted_index(&fetcher, &anchor, &opts.allow)?;
    report.serial = verified.index.serial;
    report.mirror = mirror;
    if let Some(s) = state.as_ref().filter(|_| mode.writes()) {
        trust::persist(s, &anchor, &verified)?;
    }
    for stream in &streams {
        report.plans.push(plan_stream(&verified, stream, state.as_ref(), opts)?);
    }
    if !mode.writes() || !report.update_available() {
        if let Some(s) = state.as_ref().filter(|_| mode == Mode::Update) {
            remove_stale_downloads(s, &report.plans)?;
        }
        return Ok(report);
    }
    let Some(state) = state else { return Err(made_but_missing(root.join(statedir::STATE_DIR))) };
    let downloads = state.subdir(DOWNLOADS, true)?.ok_or_else(|| made_but_missing(state.path().join(DOWNLOADS)))?;
    download(&fetcher, &downloads, &report.plans)?;
    if mode == Mode::Fetch {
        return Ok(report);
    }
    for p in report.plans.clone() {
        if p.way == Way::UpToDate {
            continue;
        }
        let summary = install_plan(&root, &downloads, &p, opts)?;
        report.reboot_needed |= summary.reboot_needed;
        report.installed.push(summary);
        if opts.to.is_some() {
            statedir::clear_hold(&state, &p.series)?;
        }
        for e in &p.files {
            downloads.remove(&e.file)?;
            if let Kind::Dist(name) = &e.kind {
                downloads.remove(&format!("{name}{}", crate::names::MD5_SUFFIX))?;
                downloads.remove(&format!("{name}{}", crate::names::SHA256_SUFFIX))?;
            }
        }
    }
    remove_stale_downloads(&state, &report.plans)?;
    Ok(report)
}

/// A directory or file made (or opened with O_CREAT) and then not there:
/// something removed it meanwhile.
fn made_but_missing(path: PathBuf) -> UpdateError {
    UpdateError::Local { path, what: "missing right after it was made".into() }
}

/// Once every series planned is installed: what an interrupted run
/// downloaded for a series whose install a later run finished (killed after
/// the install was recorded, before its files were removed) would otherwise
/// stay in downloads/ for good, since that series is now up to date.
fn remove_stale_downloads(state: &Dir, plans: &[Plan]) -> Result<(), UpdateError> {
    let Some(dir) = state.subdir(DOWNLOADS, false)? else { return Ok(()) };
    for name in dir.names()? {
        let Some(series) = series_of_download(&name) else { continue };
        if plans.iter().any(|p| p.to_name.series == series) {
            dir.remove(&name)?;
        }
    }
    Ok(())
}

/// The series of a file in downloads/: a dist, one of its sidecars or a
/// patch, whole or still `.part`; None for any other name.
fn series_of_download(name: &str) -> Option<Series> {
    let file = name.strip_suffix(".part").unwrap_or(name);
    if let Ok(patch) = PatchName::from_file_name(file) {
        return Some(patch.to.series);
    }
    let sidecar = [crate::names::MD5_SUFFIX, crate::names::SHA256_SUFFIX].iter().find_map(|s| file.strip_suffix(s));
    let dist = match sidecar {
        Some(base) => DistName::parse(base),
        None => DistName::from_file_name(file),
    };
    dist.ok().map(|d| d.series)
}

/// An install that a kill interrupted is finished (or undone) first, as
/// rollback does, so that the plans start from what is really installed: an
/// install killed once it was recorded would otherwise keep its journal for
/// as long as its series stays up to date.
fn finish_interrupted_install(root: &Path, opts: &Options, report: &mut Report) -> Result<(), UpdateError> {
    let summary = install::install(&install_options(root, None, opts))?;
    install::rollback::hold_finished_rollbacks(root)?;
    if summary.dist.is_some() {
        report.reboot_needed |= summary.reboot_needed;
        report.installed.push(summary);
    }
    Ok(())
}

/// flock(2) on `update.lock`: two updates would write the same partial files.
fn take_update_lock(state: &Dir) -> Result<std::fs::File, UpdateError> {
    let path = state.path().join("update.lock");
    let f = state.open("update.lock", libc::O_RDWR | libc::O_CREAT, 0o644)?.ok_or_else(|| made_but_missing(path.clone()))?;
    match crate::os::try_lock(&f) {
        Ok(true) => Ok(f),
        Ok(false) => Err(UpdateError::Busy(path)),
        Err(source) => Err(UpdateError::Local { what: crate::errors::chain(&source), path }),
    }
}

/// The installed records of every series under the state directory.
fn installed_series(state: Option<&Dir>) -> Result<Vec<Installed>, UpdateError> {
    let Some(state) = state else { return Ok(vec![]) };
    let mut out = Vec::new();
    for name in state.names()? {
        if Series::parse(&name).is_err() {
            continue;
        }
        let Some(dir) = state.subdir(&name, false)? else { continue };
        if let Some(text) = dir.read_text(install::state::INSTALLED)? {
            let path = dir.path().join(install::state::INSTALLED);
            let i =
                install::state::parse_installed(&path, &text).map_err(|e| UpdateError::Local { path, what: crate::errors::chain(&e) })?;
            out.push(i);
        }
    }
    Ok(out)
}

/// Step 1. Kernel series first, then the world.
fn streams_to_follow(root: &Path, state: Option<&Dir>, opts: &Options, report: &mut Report) -> Result<Vec<Stream>, UpdateError> {
    let installed = installed_series(state)?;
    let find = |s: &Series| installed.iter().find(|i| i.name.series == *s).cloned();
    let mut streams = Vec::new();
    if let Some(to) = &opts.to {
        streams.push(Stream {
            series: to.series.clone(),
            arch: to.arch.clone(),
            branch: Some(to.branch.clone()),
            installed: find(&to.series),
        });
    } else {
        for i in &installed {
            let series = i.name.series.to_string();
            if let Some(why) = state.map(|s| statedir::hold(s, &series)).transpose()?.flatten() {
                eprintln!("binarydist: {series} is held ({why}); left as it is until `update --to NAME` or unhold");
                report.held.push((series, why));
                continue;
            }
            let branch = opts.branch.clone().unwrap_or_else(|| i.name.branch.clone());
            streams.push(Stream {
                series: i.name.series.clone(),
                arch: i.name.arch.clone(),
                branch: Some(branch),
                installed: Some(i.clone()),
            });
        }
        for s in &opts.series {
            if installed.iter().all(|i| i.name.series != *s) {
                streams.push(Stream { series: s.clone(), arch: opts.arch.clone(), branch: opts.branch.clone(), installed: None });
            }
        }
        if streams.is_empty() && report.held.is_empty() {
            return Err(UpdateError::NothingInstalled(root.to_path_buf()));
        }
    }
    streams.sort_by_key(|s| !s.series.is_kernel());
    Ok(streams)
}

/// Step 2. The first mirror whose INDEX passes; the others' faults are said on
/// the way, and in the error if none passes.
fn fetch_trusted_index(fetcher: &Fetcher, anchor: &Anchor, allow: &trust::Allow) -> Result<(Verified, String), UpdateError> {
    let mut faults = Vec::new();
    for m in fetcher.order() {
        let label = fetcher.label(m).to_string();
        let got = (|| -> Result<Verified, String> {
            let text = fetcher.small(m, index::FILE, index::MAX_SIZE)?.ok_or("no INDEX")?;
            let sig = fetcher.small(m, &format!("{}{}", index::FILE, index::SIG_SUFFIX), sign::MAX_SIG_SIZE)?;
            let sig = sig.ok_or_else(|| TrustError::NoSignature.to_string())?;
            let keys = fetcher.small(m, sign::KEYS_FILE, sign::MAX_KEYS_SIZE)?;
            trust::check(anchor, &text, &sig, keys.as_deref(), allow, index::now()).map_err(|e| crate::errors::chain(&e))
        })();
        match got {
            Ok(v) => return Ok((v, label)),
            Err(why) => {
                eprintln!("binarydist: {label}: {why}; trying the next mirror");
                fetcher.mark_bad(m);
                faults.push(format!("{label}: {why}"));
            }
        }
    }
    Err(UpdateError::NoTrustedIndex(faults))
}

fn probe(series: &Series, arch: &str, branch: &str) -> Option<DistName> {
    DistName::new(series.clone(), arch, branch, "19700101T000000Z", "probe").ok()
}

/// Step 3, for one series.
fn plan_stream(v: &Verified, s: &Stream, state: Option<&Dir>, opts: &Options) -> Result<Plan, UpdateError> {
    let index = &v.index;
    let series = s.series.to_string();
    let branch = match &s.branch {
        Some(b) => b.clone(),
        None => {
            let mut branches: Vec<String> =
                index.dists().filter(|(d, _)| d.series == s.series && d.arch == s.arch).map(|(d, _)| d.branch.clone()).collect();
            branches.sort();
            branches.dedup();
            match &branches[..] {
                [one] => one.clone(),
                [] => return Err(UpdateError::NoStream { series, arch: s.arch.clone(), branch: "any".into() }),
                _ => return Err(UpdateError::WhichBranch { series, arch: s.arch.clone(), branches }),
            }
        }
    };
    let target = match &opts.to {
        Some(t) => t.clone(),
        None => probe(&s.series, &s.arch, &branch).and_then(|p| plan::newest(index, &p)).ok_or_else(|| UpdateError::NoStream {
            series: series.clone(),
            arch: s.arch.clone(),
            branch: branch.clone(),
        })?,
    };
    let arch = s.installed.as_ref().map_or(opts.arch.as_str(), |i| i.name.arch.as_str());
    if target.arch != arch && !opts.allow_other_arch {
        return Err(UpdateError::OtherArch { target: target.to_string(), found: target.arch.clone(), arch: arch.to_string() });
    }
    if let Some(i) = &s.installed {
        if target.stamp < i.name.stamp && !opts.allow_downgrade {
            return Err(UpdateError::Downgrade { target: target.to_string(), installed: i.name.to_string() });
        }
    }
    let base_ok = match (&s.installed, state) {
        (Some(i), Some(st)) if i.name != target => kept_base_verifies(st, i)?,
        _ => true,
    };
    let have = plan::Have { installed: s.installed.as_ref().map(|i| &i.name), base_ok };
    Ok(plan::make(index, &have, &target)?)
}

/// The kept base is the tar the installed record names (size and SHA-256),
/// read through the state directory without following symlinks.
fn kept_base_verifies(state: &Dir, i: &Installed) -> Result<bool, UpdateError> {
    let Some(dir) = state.subdir(&i.name.series.to_string(), false)? else { return Ok(false) };
    let file = match dir.open(install::state::BASE, libc::O_RDONLY, 0) {
        Ok(Some(f)) => f,
        Ok(None) | Err(StateDirError::NotRegular { .. }) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let Ok(tar) = crate::tario::gz::maybe_gunzip(file) else { return Ok(false) };
    let mut h = crate::tario::HashingReader::new(tar);
    if std::io::copy(&mut (&mut h as &mut dyn Read), &mut std::io::sink()).is_err() {
        return Ok(false);
    }
    let (_, d) = h.finish();
    Ok(d.size == i.tar_size && d.sha256_hex() == i.sha256)
}

/// Step 4: room for everything first, then every file, verified.
fn download(fetcher: &Fetcher, dir: &Dir, plans: &[Plan]) -> Result<(), UpdateError> {
    let files: Vec<&Entry> = plans.iter().flat_map(|p| &p.files).collect();
    let mut need = 0;
    for e in &files {
        let have = [e.file.clone(), format!("{}.part", e.file)]
            .iter()
            .filter_map(|n| dir.open(n, libc::O_RDONLY, 0).ok().flatten())
            .filter_map(|f| f.metadata().ok())
            .map(|m| m.len().min(e.size))
            .max()
            .unwrap_or(0);
        need += e.size - have;
    }
    Fetcher::check_space(dir, need)?;
    for e in files {
        fetcher.file(dir, &e.file, e.size, &e.sha256)?;
    }
    Ok(())
}

/// Step 5, for one series: the verified files become an install source.
fn install_plan(root: &Path, dir: &Dir, p: &Plan, opts: &Options) -> Result<install::Summary, UpdateError> {
    let path = |e: &Entry| dir.path().join(&e.file);
    let patches: Vec<PathBuf> = p.files.iter().filter(|e| matches!(e.kind, Kind::Patch(_))).map(path).collect();
    let source = match (p.way, p.files.first()) {
        (Way::Patches, _) => Source::Chain(patches),
        (Way::Full, Some(d)) => {
            write_sidecars(dir, d)?;
            Source::Dist(path(d))
        }
        (Way::FullThenPatches, Some(d)) => Source::DistThenChain { dist: path(d), patches },
        _ => return Err(UpdateError::Local { path: dir.path().to_path_buf(), what: format!("no file to install {} from", p.series) }),
    };
    Ok(install::install(&install_options(root, Some(source), opts))?)
}

/// The installer's options for `root`, from update's own: `source` None only
/// finishes (or undoes) an interrupted install.
fn install_options(root: &Path, source: Option<Source>, opts: &Options) -> install::Options {
    install::Options { root: root.to_path_buf(), source, make: opts.make.clone(), wait: opts.wait, settings: opts.settings.clone() }
}

/// The sidecars the installer reads beside a full dist, from the signed INDEX
/// (not from the mirror, whose sidecars nothing signs).
fn write_sidecars(dir: &Dir, e: &Entry) -> Result<(), UpdateError> {
    let Kind::Dist(name) = &e.kind else { return Ok(()) };
    for (suffix, algo, hex) in [(crate::names::MD5_SUFFIX, "MD5", &e.tar.md5), (crate::names::SHA256_SUFFIX, "SHA256", &e.tar.sha256)] {
        dir.write_atomically(&format!("{name}{suffix}"), format!("{algo} ({name}.tar) = {hex}\n").as_bytes(), 0o644)?;
    }
    Ok(())
}

/// `binarydist install --index INDEX`: the INDEX beside the local files passes
/// the same checks as a mirror's, and every file must be the one it lists.
pub fn verify_local(
    root: &Path,
    index_path: &Path,
    files: &[PathBuf],
    pubkey: Option<&Path>,
    revoked: &[String],
    allow: &trust::Allow,
) -> Result<Verified, UpdateError> {
    let read = |p: &Path, max: u64| -> Result<Option<Vec<u8>>, UpdateError> {
        match std::fs::File::open(p) {
            Ok(f) => {
                let mut v = Vec::new();
                f.take(max + 1).read_to_end(&mut v).map_err(|e| UpdateError::Local { path: p.into(), what: e.to_string() })?;
                if v.len() as u64 > max {
                    return Err(UpdateError::Local { path: p.into(), what: format!("larger than {max} bytes; refused") });
                }
                Ok(Some(v))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(UpdateError::Local { path: p.into(), what: e.to_string() }),
        }
    };
    let sig_path = PathBuf::from(format!("{}{}", index_path.display(), index::SIG_SUFFIX));
    let text = read(index_path, index::MAX_SIZE)?.ok_or_else(|| UpdateError::Local { path: index_path.into(), what: "missing".into() })?;
    let sig = read(&sig_path, sign::MAX_SIG_SIZE)?.ok_or(TrustError::NoSignature)?;
    let keys = read(&index_path.with_file_name(sign::KEYS_FILE), sign::MAX_KEYS_SIZE)?;
    let root = std::fs::canonicalize(root).map_err(|_| UpdateError::Root(root.to_path_buf()))?;
    let state = statedir::open(&root, true)?.ok_or_else(|| made_but_missing(root.join(statedir::STATE_DIR)))?;
    let anchor = trust::load(Some(&state), pubkey, revoked)?;
    let v = trust::check(&anchor, &text, &sig, keys.as_deref(), allow, index::now())?;
    for f in files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let e = v.index.entries.iter().find(|e| e.file == name).ok_or_else(|| UpdateError::Local {
            path: f.clone(),
            what: format!("not listed in {} (serial {})", index_path.display(), v.index.serial),
        })?;
        let (size, sha) = index::file_sum(f)?;
        if size != e.size || sha != e.sha256 {
            return Err(UpdateError::Local {
                path: f.clone(),
                what: format!("{size} bytes with SHA-256 {sha}, the INDEX says {} bytes with {}; refused", e.size, e.sha256),
            });
        }
        if let Kind::Dist(d) = &e.kind {
            for (algo, want) in [(Algo::Md5, &e.tar.md5), (Algo::Sha256, &e.tar.sha256)] {
                let (side, hex) =
                    sidecar::read(f, d, algo).map_err(|x| UpdateError::Local { path: f.clone(), what: crate::errors::chain(&x) })?;
                if hex != *want {
                    return Err(UpdateError::Local { path: side, what: format!("says {hex}, the INDEX says {want}; refused") });
                }
            }
        }
    }
    trust::persist(&state, &anchor, &v)?;
    Ok(v)
}
