//! The fault campaign of `update` and `rollback` (docs/campaign.md), with the
//! harness of install_faults.rs (its Rng, BINARYDIST_FAULT_POINTS and
//! BINARYDIST_FAULT_SEED, both sync paths):
//!
//! - `update` from the fragment's signed mirror over HTTP on 127.0.0.1, a
//!   kernel and a world series from rev 1 to rev 3 (kernel first, then the
//!   world, whose install runs make upgrade), killed at random points of the
//!   downloads (by bytes fetched, or once a file is complete but not yet
//!   renamed; half the time the partial file is then damaged) and of the
//!   installs it drives (steps and bytes staged); then run again;
//! - `rollback` of the world or of the kernel, from rev 3 to rev 2, killed at
//!   random steps and bytes; then run again, as rollback(8) says; or, at a
//!   few points, followed by an update instead (the periodic job);
//! - `make fault-world` (ignored here): the long run on real worlds.
//!
//! After each, the root must be the tree of a fault-free run (never anything
//! else), every kept base must be the tar its installed record names, and
//! nothing may be left behind (staged files, journal, partial downloads).

use crate::httpd::Server;
use crate::install_faults::{assert_series_base_verifies, env_u64, Rng};
use crate::mirror::{cmd, installed, mirror, root_with, Mirror, KERNEL, WORLD};
use crate::util::{bin, ok, sh, snapshot, snapshot_diff};
use binarydist::manifest::Manifest;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The installer's steps, and how many times at most an update of the
/// sample kernel and world reaches each (a kernel dist has no make upgrade).
const UPDATE_STEPS: [(&str, u64); 11] = [
    ("stage", 16),
    ("op", 16),
    ("flags", 16),
    ("staged", 2),
    ("verified", 2),
    ("journal", 2),
    ("kernel-old", 1),
    ("upgrade", 1),
    ("upgrading", 1),
    ("upgraded", 1),
    ("recorded", 2),
];
/// Those a rollback of the sample world reaches, and of its kernel (a
/// directory swapped whole: few entries, no flags after a rename).
const WORLD_ROLLBACK_STEPS: [(&str, u64); 10] = [
    ("stage", 16),
    ("op", 16),
    ("flags", 4),
    ("staged", 1),
    ("verified", 1),
    ("journal", 1),
    ("upgrade", 1),
    ("upgrading", 1),
    ("upgraded", 1),
    ("recorded", 1),
];
const KERNEL_ROLLBACK_STEPS: [(&str, u64); 7] =
    [("stage", 4), ("op", 2), ("staged", 1), ("verified", 1), ("journal", 1), ("kernel-old", 1), ("recorded", 1)];

fn seed() -> u64 {
    env_u64("BINARYDIST_FAULT_SEED").unwrap_or_else(|| std::process::id() as u64 * 2654435761 + 1)
}

/// A kill point among the installer's: a step of `steps`, each with how
/// many times the run reaches it at most (the Nth time, over every install
/// of the run), or a number of bytes staged (over the run's first install
/// that stages that many).
fn install_point(rng: &mut Rng, steps: &[(&str, u64)], staged: u64) -> String {
    if rng.below(3) == 0 {
        return format!("bytes:{}", 1 + rng.below(staged));
    }
    let (step, times) = steps[rng.below(steps.len() as u64) as usize];
    format!("{step}:{}", 1 + rng.below(times))
}

fn copy_root(from: &Path, to: &Path) {
    ok(Command::new("cp").arg("-a").arg(from).arg(to));
}

/// The paths the installed dists of every series on these roots ship.
fn shipped(roots: &[&Path]) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for root in roots {
        for series in [WORLD, KERNEL] {
            let Ok(text) = std::fs::read_to_string(root.join("var/db/binarydist").join(series).join("MANIFEST")) else { continue };
            out.extend(Manifest::parse(&text).unwrap().entries.into_iter().map(|e| e.meta.path));
        }
    }
    out
}

/// The system a root holds, outside the installer's state and log: every
/// entry as util::snapshot sees it, but directories without their mtime
/// (make upgrade moves them as it works), and what make upgrade made (not in
/// any dist's manifest) by content only, since each run makes it anew.
fn system(root: &Path, shipped: &BTreeSet<PathBuf>) -> BTreeMap<PathBuf, String> {
    snapshot(root)
        .into_iter()
        .filter(|(p, _)| !p.starts_with("var/db/binarydist") && !p.starts_with("var/log"))
        .map(|(p, v)| {
            let v = if v.starts_with("dir ") {
                v.split(" mtime=").next().unwrap().to_string()
            } else if !shipped.contains(&p) {
                v.split(" mode=").next().unwrap().to_string()
            } else {
                v
            };
            (p, v)
        })
        .collect()
}

fn assert_same_system(got: &Path, want: &Path, shipped: &BTreeSet<PathBuf>, what: &str) {
    let d = snapshot_diff(&system(got, shipped), &system(want, shipped));
    assert!(d.is_empty(), "{what}: the root is not the tree of a fault-free run:\n{}", d.join("\n"));
}

/// Nothing half-done is left: staged files, a journal, a new base, a partial
/// or a leftover download.
fn assert_nothing_left(root: &Path, what: &str) {
    let left = sh(&format!(
        "find '{}' -name '.bdtmp.*' -o -name journal -o -name '.base.new*' -o -path '*/downloads/*' -o -path '*/var/db/binarydist/*/rollback'",
        root.display()
    ));
    assert!(left.is_empty(), "{what}: left behind: {left}");
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Flips a byte in the middle of each partial download, as a disk or a
/// mirror might have left it: the rerun must find it out, never install it.
fn damage_partial_downloads(root: &Path) -> usize {
    let dir = root.join("var/db/binarydist/downloads");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).into_iter().flatten() {
        let p = e.unwrap().path();
        let mut data = std::fs::read(&p).unwrap();
        if p.extension().is_some_and(|x| x == "part") && !data.is_empty() {
            let i = data.len() / 2;
            data[i] ^= 0x55;
            std::fs::write(&p, &data).unwrap();
            n += 1;
        }
    }
    n
}

/// A mirror served over HTTP, a root with kernel and world rev 1 to copy for
/// each point, and the root a fault-free update made of it.
struct UpdateRig {
    m: Mirror,
    srv: Server,
    template: PathBuf,
    reference: PathBuf,
    shipped: BTreeSet<PathBuf>,
    /// The size of each file the update downloads, and the bytes it stages.
    files: Vec<u64>,
    staged: u64,
}

impl UpdateRig {
    fn new() -> UpdateRig {
        let m = mirror();
        let srv = Server::start(&m.dir);
        let template = root_with(&m, &[(KERNEL, 1), (WORLD, 1)]);
        let reference = m.t.path().join("reference");
        copy_root(&template, &reference);
        let mut rig = UpdateRig { m, srv, template, reference, shipped: BTreeSet::new(), files: vec![], staged: 0 };
        let r = json(&ok(&mut rig.update(&rig.reference, "syncfs")));
        rig.files = r["plans"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["files"].as_array().unwrap())
            .map(|f| f["size"].as_u64().unwrap())
            .collect();
        rig.staged = r["installed"].as_array().unwrap().iter().map(|s| s["bytes_written"].as_u64().unwrap()).sum();
        assert_eq!(r["installed"].as_array().unwrap().len(), 2, "a kernel and a world update: {r}");
        assert!(rig.files.iter().sum::<u64>() > 1000 && rig.staged > 1000, "{r}");
        for s in [KERNEL, WORLD] {
            assert_eq!(installed(&rig.reference, s).unwrap(), rig.m.dist(s, 3).to_string());
        }
        rig.shipped = shipped(&[&rig.template, &rig.reference]);
        rig
    }

    fn update(&self, root: &Path, sync: &str) -> Command {
        let mut c = cmd("update", root, &self.m, &[&self.srv.url]);
        c.args(["--timeout", "10", "--json"]).env("BINARYDIST_TEST_SYNC", sync);
        c
    }

    /// An update of a copy of the template killed at `point`, then run again;
    /// `damage`: partial downloads are damaged in between. Returns whether
    /// the point was reached (the process was killed).
    fn kill_and_rerun(&self, i: u64, point: &str, sync: &str, damage: bool, seed: u64) -> bool {
        let root = self.m.t.path().join(format!("u{i}"));
        copy_root(&self.template, &root);
        let out = self.update(&root, sync).env("BINARYDIST_TEST_KILL_AT", point).output().unwrap();
        let what = format!("update killed at {point} ({sync}{}, seed {seed})", if damage { ", partial downloads damaged" } else { "" });
        let killed = out.status.signal() == Some(9);
        if !killed {
            assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        } else if damage {
            damage_partial_downloads(&root);
        }
        ok(&mut self.update(&root, sync));
        for s in [KERNEL, WORLD] {
            assert_eq!(installed(&root, s).unwrap(), self.m.dist(s, 3).to_string(), "{what}");
        }
        assert_same_system(&root, &self.reference, &self.shipped, &what);
        assert_series_base_verifies(&root, WORLD);
        assert_series_base_verifies(&root, KERNEL);
        assert_nothing_left(&root, &what);
        let _ = std::fs::remove_dir_all(&root);
        killed
    }
}

#[test]
fn update_faults_kills_during_downloads_and_installs_converge_when_run_again() {
    let rig = UpdateRig::new();
    let fetched: u64 = rig.files.iter().sum();
    let points = env_u64("BINARYDIST_UPDATE_FAULT_POINTS").unwrap_or(env_u64("BINARYDIST_FAULT_POINTS").unwrap_or(16));
    let seed = seed();
    eprintln!("update fault points: {points}, BINARYDIST_FAULT_SEED={seed}");
    let mut rng = Rng(seed | 1);
    let (mut killed, mut damaged) = (0, 0);
    let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    for i in 0..points {
        let (kind, point) = match rng.below(4) {
            0 => ("download-bytes", format!("fetched:{}", 1 + rng.below(fetched))),
            1 => ("download-done", format!("downloaded:{}", 1 + rng.below(rig.files.len() as u64))),
            _ => ("install", install_point(&mut rng, &UPDATE_STEPS, rig.staged)),
        };
        let sync = if rng.below(2) == 0 { "per-file" } else { "syncfs" };
        let damage = kind.starts_with("download") && rng.below(2) == 0;
        if rig.kill_and_rerun(i, &point, sync, damage, seed) {
            killed += 1;
            damaged += damage as u64;
            *by_kind.entry(kind).or_default() += 1;
        }
    }
    eprintln!(
        "update fault points: {killed} killed {by_kind:?} ({damaged} with partial downloads damaged), {} not reached",
        points - killed
    );
    assert!(killed * 2 >= points, "only {killed} of {points} points were reached");
}

/// A kill once a series' install is recorded, before update removes its
/// downloads: the rerun finds the series up to date, and used to leave the
/// downloaded patch in downloads/ for good.
#[test]
fn update_faults_a_kill_after_an_install_is_recorded_leaves_no_download_behind() {
    let rig = UpdateRig::new();
    for (i, point) in ["recorded:1", "recorded:2"].into_iter().enumerate() {
        assert!(rig.kill_and_rerun(1000 + i as u64, point, "syncfs", false, 0), "{point} not reached");
    }
}

fn rollback(root: &Path, series: &str, sync: &str) -> Command {
    let mut c = bin();
    c.arg("rollback").arg("--root").arg(root).args(["--make", "bmake", "--config", "/dev/null", "--json", "--series", series]);
    c.env("BINARYDIST_TEST_SYNC", sync);
    c
}

/// Rev 1 of each series as a full dist, then each later rev by its patch,
/// so that rev 2 is a kept generation.
fn walked(m: &Mirror, root: &Path) {
    std::fs::create_dir_all(root.join("var/log")).unwrap();
    for series in [KERNEL, WORLD] {
        let install = || {
            let mut c = bin();
            c.arg("install").arg("--root").arg(root).args(["--make", "bmake", "--config", "/dev/null"]);
            c
        };
        ok(install().arg(m.dist_path(series, 1)));
        for r in 2..=3 {
            ok(install().arg("--patch").arg(m.dir.join(m.patch_file(series, r - 1, r))));
        }
    }
}

#[test]
fn update_faults_rollbacks_killed_at_random_steps_and_bytes_converge_when_run_again() {
    let m = mirror();
    let template = m.t.path().join("walked");
    walked(&m, &template);
    let mut refs = BTreeMap::new();
    for series in [WORLD, KERNEL] {
        let reference = m.t.path().join(format!("reference-{series}"));
        copy_root(&template, &reference);
        let s = json(&ok(&mut rollback(&reference, series, "syncfs")));
        let staged = s["bytes_written"].as_u64().unwrap();
        assert_eq!(installed(&reference, series).unwrap(), m.dist(series, 2).to_string());
        let shipped = shipped(&[&template, &reference]);
        refs.insert(series, (reference, staged, shipped));
    }
    let points = env_u64("BINARYDIST_ROLLBACK_FAULT_POINTS").unwrap_or(env_u64("BINARYDIST_FAULT_POINTS").unwrap_or(12));
    let seed = seed();
    eprintln!("rollback fault points: {points}, BINARYDIST_FAULT_SEED={seed}");
    let mut rng = Rng(seed | 1);
    let (mut killed, mut finished) = (0, 0);
    for i in 0..points {
        let series = if rng.below(3) == 0 { KERNEL } else { WORLD };
        let (reference, staged, shipped) = &refs[series];
        let steps: &[(&str, u64)] = if series == KERNEL { &KERNEL_ROLLBACK_STEPS } else { &WORLD_ROLLBACK_STEPS };
        let point = install_point(&mut rng, steps, (*staged).max(1));
        let sync = if rng.below(2) == 0 { "per-file" } else { "syncfs" };
        let what = format!("rollback of {series} killed at {point} ({sync}, seed {seed})");
        let root = m.t.path().join(format!("r{i}"));
        copy_root(&template, &root);
        let out = rollback(&root, series, sync).env("BINARYDIST_TEST_KILL_AT", &point).output().unwrap();
        // Killed, it is run again (rollback(8)); finished, it is not: run
        // again, it would go one more generation back.
        match out.status.signal() {
            Some(9) => {
                killed += 1;
                ok(&mut rollback(&root, series, sync));
            }
            _ => {
                assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
                finished += 1;
            }
        }
        assert_eq!(installed(&root, series).unwrap(), m.dist(series, 2).to_string(), "{what}: one generation back, not two");
        assert_same_system(&root, reference, shipped, &what);
        for s in [WORLD, KERNEL] {
            assert_series_base_verifies(&root, s);
        }
        let hold = std::fs::read_to_string(root.join("var/db/binarydist").join(series).join("hold")).unwrap();
        assert!(hold.contains(&format!("to {}", m.dist(series, 2))), "{what}: {hold}");
        assert_nothing_left(&root, &what);
        let _ = std::fs::remove_dir_all(&root);
    }
    eprintln!("rollback fault points: {killed} killed, {finished} not reached");
    assert!(killed * 2 >= points, "only {killed} of {points} points were reached");
}

/// A rollback killed once its commit record is durable, and then, before
/// the admin runs it again, an update (the periodic job): the update
/// finishes the rollback, and leaves it held where the admin put it instead
/// of updating it away in the same run.
#[test]
fn update_faults_an_update_after_a_killed_rollback_finishes_it_and_keeps_it_held() {
    let m = mirror();
    let srv = Server::start(&m.dir);
    let template = m.t.path().join("walked");
    walked(&m, &template);
    let reference = m.t.path().join("reference");
    copy_root(&template, &reference);
    ok(&mut rollback(&reference, WORLD, "syncfs"));
    let shipped = shipped(&[&template, &reference]);
    for point in ["journal:1", "op:3", "recorded:1"] {
        let what = format!("rollback killed at {point}, then update");
        let root = m.t.path().join(format!("k-{}", point.replace(':', "-")));
        copy_root(&template, &root);
        let out = rollback(&root, WORLD, "syncfs").env("BINARYDIST_TEST_KILL_AT", point).output().unwrap();
        assert_eq!(out.status.signal(), Some(9), "{what}: not killed");
        let out = ok(&mut cmd("update", &root, &m, &[&srv.url]));
        assert!(String::from_utf8_lossy(&out.stderr).contains("world is held"), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(installed(&root, WORLD).unwrap(), m.dist(WORLD, 2).to_string(), "{what}: updated away");
        let hold = std::fs::read_to_string(root.join("var/db/binarydist/world/hold")).unwrap();
        assert!(hold.contains(&format!("to {}", m.dist(WORLD, 2))), "{what}: {hold}");
        assert_same_system(&root, &reference, &shipped, &what);
        assert_series_base_verifies(&root, WORLD);
        assert_nothing_left(&root, &what);
    }
}

/// `make fault-world`: the long run on real worlds (../shared/bench/worlds.sh,
/// BINARYDIST_FAULT_WORLDS, default /var/tmp/binarydist-worlds), packed once
/// into world-1 and world-2 dists and the patch between them, signed, in
/// BINARYDIST_FAULT_WORK (default /var/tmp/binarydist-fault-world). One root on
/// tmpfs (BINARYDIST_FAULT_ROOT, default /dev/shm/binarydist-fault-world; a
/// kill -9 keeps the page cache, so tmpfs loses nothing a disk would keep)
/// goes back and forth: `update --to` world-2 from the signed directory (the
/// patch is downloaded, then installed), then `rollback` to world-1, and so
/// on, each killed at a random point (bytes downloaded, a download complete,
/// steps, bytes staged; syncfs or per-file fsync) and run again. After each,
/// the root must list exactly as GNU tar's extraction of the dists does
/// (world-1, or world-2 over world-1: files that world-2 dropped stay), by
/// find(1) and md5sum, not by binarydist's own code; the kept base must be
/// the tar of the dist installed, and no journal, staged file or download may
/// be left. The dists carry no make upgrade subset.
#[test]
#[ignore = "the long run over real worlds: make fault-world"]
fn fault_world_long_run() {
    let env_path = |name: &str, default: &str| PathBuf::from(std::env::var(name).unwrap_or_else(|_| default.into()));
    let worlds = env_path("BINARYDIST_FAULT_WORLDS", "/var/tmp/binarydist-worlds");
    let work = env_path("BINARYDIST_FAULT_WORK", "/var/tmp/binarydist-fault-world");
    let root = env_path("BINARYDIST_FAULT_ROOT", "/dev/shm/binarydist-fault-world");
    let w = World::prepare(&worlds, &work);
    let points = env_u64("BINARYDIST_FAULT_POINTS").unwrap_or(300);
    let seed = seed();
    eprintln!("fault-world: {points} points, BINARYDIST_FAULT_SEED={seed}, root {}", root.display());
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    ok(bin().arg("install").arg("--root").arg(&root).args(["--make", "true", "--config", "/dev/null"]).arg(w.dist(1)));
    w.assert_converged(&root, 1, "the first install");
    // A fault-free round trip: the sizes and counts the points are drawn from.
    let fwd = json(&ok(&mut w.update(&root, "syncfs")))["installed"][0].clone();
    w.assert_converged(&root, 2, "a fault-free update");
    let back = json(&ok(&mut w.rollback(&root, "syncfs")));
    w.assert_converged(&root, 1, "a fault-free rollback");
    let count = |s: &serde_json::Value, k: &str| s[k].as_u64().unwrap();
    let patch = std::fs::metadata(&w.patch).unwrap().len();
    let mut rng = Rng(seed | 1);
    let start = std::time::Instant::now();
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    let (mut killed, mut unreached) = (0, 0);
    let mut at = 1;
    for i in 0..points {
        let s = if at == 1 { &fwd } else { &back };
        let (written, all) = (count(s, "written"), count(s, "written") + count(s, "unchanged") + count(s, "metadata_only"));
        let point = match rng.below(if at == 1 { 6 } else { 4 }) {
            0 => format!("bytes:{}", 1 + rng.below(count(s, "bytes_written"))),
            1 => format!("{}:{}", ["stage", "flags"][rng.below(2) as usize], 1 + rng.below(written)),
            2 => format!("op:{}", 1 + rng.below(all)),
            3 => format!("{}:1", ["staged", "verified", "journal", "recorded"][rng.below(4) as usize]),
            4 => format!("fetched:{}", 1 + rng.below(patch)),
            _ => "downloaded:1".to_string(),
        };
        let sync = if rng.below(2) == 0 { "per-file" } else { "syncfs" };
        let what = format!("point {i}: {} killed at {point} ({sync}, seed {seed})", if at == 1 { "update" } else { "rollback" });
        let run = |kill: bool| {
            let mut c = if at == 1 { w.update(&root, sync) } else { w.rollback(&root, sync) };
            if kill {
                c.env("BINARYDIST_TEST_KILL_AT", &point);
            }
            c.output().unwrap()
        };
        let out = run(true);
        let kind = point.split(':').next().unwrap().to_string();
        if out.status.signal() == Some(9) {
            killed += 1;
            *kinds.entry(kind).or_default() += 1;
            let again = run(false);
            assert!(again.status.success(), "{what}: the rerun failed: {}", String::from_utf8_lossy(&again.stderr));
        } else {
            assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
            unreached += 1;
        }
        at = 3 - at;
        w.assert_converged(&root, at, &what);
        if (i + 1) % 10 == 0 {
            eprintln!("fault-world: {} points, {killed} killed {kinds:?}, {unreached} not reached, {} s", i + 1, start.elapsed().as_secs());
        }
    }
    eprintln!(
        "fault-world: done: {points} points, {killed} killed {kinds:?}, {unreached} not reached, all converged; {} s, seed {seed}",
        start.elapsed().as_secs()
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// The long run's dists, mirror and expected listings.
struct World {
    dir: PathBuf,
    names: [String; 2],
    patch: PathBuf,
    pubkey: PathBuf,
    /// find(1) and md5sum listings of GNU tar's extractions: world-1, and
    /// world-2 over world-1.
    expected: [String; 2],
    /// The SHA-256 of each dist's tar, from pack's sidecar, and of a kept
    /// base.tar.gz already found to gunzip to it (a cheaper check next time).
    tar_sha256: [String; 2],
    known_gz: std::cell::RefCell<[Option<String>; 2]>,
}

impl World {
    fn prepare(worlds: &Path, work: &Path) -> World {
        let dir = work.join("dists");
        std::fs::create_dir_all(&dir).unwrap();
        let names =
            ["DragonFly-world-x86_64-master-20260101T000000Z-w1", "DragonFly-world-x86_64-master-20260102T000000Z-w2"].map(String::from);
        for (i, n) in names.iter().enumerate() {
            if !dir.join(format!("{n}.tar.gz")).exists() {
                let stamp = &n[30..46];
                ok(bin()
                    .arg("pack")
                    .arg("--stage")
                    .arg(worlds.join(format!("world-{}", i + 1)))
                    .args(["--series", "world", "--arch", "x86_64", "--branch", "master", "--rev", &format!("w{}", i + 1), "--date", stamp])
                    .arg("-o")
                    .arg(&dir));
            }
        }
        let patch = dir.join(format!("{}--{}.bdpatch", names[0], names[1]));
        if !patch.exists() {
            ok(bin()
                .args(["diff", "--compress", "zstd", "-o"])
                .arg(&dir)
                .arg(dir.join(format!("{}.tar.gz", names[0])))
                .arg(dir.join(format!("{}.tar.gz", names[1]))));
        }
        let key = work.join("keys/fault.key");
        if !key.exists() {
            std::fs::create_dir_all(key.parent().unwrap()).unwrap();
            ok(bin().args(["keygen", "--no-password", "--secret"]).arg(&key));
        }
        ok(bin().arg("index").arg(&dir));
        ok(bin().args(["sign", "--no-password", "--key"]).arg(&key).arg(dir.join("INDEX")));
        let tar_sha256 = names.clone().map(|n| {
            let text = std::fs::read_to_string(dir.join(format!("{n}.tar.sha256"))).unwrap();
            text.trim().rsplit(' ').next().unwrap().to_string()
        });
        // The expected trees, from GNU tar, then only their listings kept.
        let x = work.join("extracted");
        let _ = std::fs::remove_dir_all(&x);
        std::fs::create_dir_all(&x).unwrap();
        let mut expected = [String::new(), String::new()];
        for (i, n) in names.iter().enumerate() {
            ok(Command::new("tar").args(["-xpf"]).arg(dir.join(format!("{n}.tar.gz"))).args(["--numeric-owner", "-C"]).arg(&x));
            expected[i] = listing(&x);
        }
        std::fs::remove_dir_all(&x).unwrap();
        World { dir, names, patch, pubkey: key.with_extension("pub"), expected, tar_sha256, known_gz: Default::default() }
    }

    fn dist(&self, rev: usize) -> PathBuf {
        self.dir.join(format!("{}.tar.gz", self.names[rev - 1]))
    }

    fn update(&self, root: &Path, sync: &str) -> Command {
        let mut c = bin();
        c.arg("update").arg("--root").arg(root).arg("--pubkey").arg(&self.pubkey).args([
            "--config",
            "/dev/null",
            "--make",
            "true",
            "--json",
        ]);
        c.arg("--mirror").arg(&self.dir).args(["--to", &self.names[1]]).env("BINARYDIST_TEST_SYNC", sync);
        c
    }

    fn rollback(&self, root: &Path, sync: &str) -> Command {
        let mut c = bin();
        c.arg("rollback").arg("--root").arg(root).args(["--make", "true", "--config", "/dev/null", "--json", "--series", "world"]);
        c.env("BINARYDIST_TEST_SYNC", sync);
        c
    }

    fn assert_converged(&self, root: &Path, rev: usize, what: &str) {
        assert_eq!(installed(root, WORLD).as_deref(), Some(self.names[rev - 1].as_str()), "{what}");
        let got = listing(root);
        if got != self.expected[rev - 1] {
            let (a, b) = (root.with_extension("got"), root.with_extension("want"));
            std::fs::write(&a, &got).unwrap();
            std::fs::write(&b, &self.expected[rev - 1]).unwrap();
            let d = Command::new("diff").arg(&b).arg(&a).output().unwrap();
            panic!("{what}: the root is not world-{rev}'s tree (diff want got):\n{}", String::from_utf8_lossy(&d.stdout));
        }
        let base = root.join("var/db/binarydist/world/base.tar.gz");
        let gz = sh(&format!("sha256sum < '{}'", base.display())).split(' ').next().unwrap().to_string();
        if self.known_gz.borrow()[rev - 1].as_deref() != Some(gz.as_str()) {
            let tar = sh(&format!("gzip -dc < '{}' | sha256sum", base.display())).split(' ').next().unwrap().to_string();
            assert_eq!(tar, self.tar_sha256[rev - 1], "{what}: the kept base is not world-{rev}'s tar");
            self.known_gz.borrow_mut()[rev - 1] = Some(gz);
        }
        let state = root.join("var/db/binarydist");
        let left = sh(&format!(
            "find '{}' -name journal -o -name '.base.new*' -o -path '*/downloads/*' -o -path '*/world/rollback'",
            state.display()
        ));
        assert!(left.is_empty(), "{what}: left behind: {left}");
    }
}

/// A tree as find(1) and md5sum see it, outside binarydist's state and log:
/// type, path, mode, owner, and for files size, links and mtime (seconds), for
/// symlinks the target; then the MD5 of every file. Directories without
/// their mtime (an extraction and an install touch them differently), and
/// not var/db itself, which the state directory may have made.
fn listing(root: &Path) -> String {
    let prune = "\\( -path ./var/db/binarydist -o -path ./var/log/binarydist.log -o -path ./+MANIFEST \\) -prune -o -path ./var/db -o";
    sh(&format!(
        "cd '{}' && find . -mindepth 1 {prune} \\( -type d -printf 'd %p %m %U %G\\n' -o -type f -printf 'f %p %m %U %G %s %n %T@\\n' \
         -o -type l -printf 'l %p %U %G %l\\n' -o -printf '%y %p %m %U %G\\n' \\) | sed '/^f /s/\\.[0-9]*$//' | LC_ALL=C sort && \
         find . -mindepth 1 {prune} -type f -print0 | LC_ALL=C sort -z | xargs -0 -r md5sum",
        root.display()
    ))
}
