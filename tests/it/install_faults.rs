//! The fault campaign of install (docs/campaign.md): kill -9 at random points,
//! by step and by bytes staged, on both ways of making files durable (syncfs,
//! and the per-file fsync that the BSDs take), and a disk that fills up during
//! the commit. After each fault a rerun must leave the root equal to the new
//! dist's tree, and the kept base must still be the tar the record names.
//!
//! The suite runs BINARYDIST_FAULT_POINTS points (default 30) from a seed it
//! prints (BINARYDIST_FAULT_SEED repeats a run); `make fault-long` runs 300.
//! Kills at every step in turn, ENOSPC while staging, a read-only root, two
//! installs at once, a stale lock and a damaged state are in install_crash.rs,
//! install.rs and install_state.rs.

use crate::install::{assert_same_tree_but, fixture, install, root_with, summary, V2_UPGRADED_DIRS};
use crate::util::{ok, sh, tempdir, Tmpfs};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

/// A small xorshift generator: the points are reproducible from the seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

pub fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The kept base of the world series is the tar the installed record names.
pub fn assert_base_verifies(root: &Path) {
    assert_series_base_verifies(root, "world");
}

/// The kept base of `series` is the tar the installed record names.
pub fn assert_series_base_verifies(root: &Path, series: &str) {
    if let Err(e) = series_base_verifies(root, series) {
        panic!("{}: {series}: {e}", root.display());
    }
}

/// The same check, as a result (powerloss.rs checks hundreds of states, each
/// a line of its report), decompressed in process by flate2 rather than by
/// the installer's own gzip reader.
pub fn series_base_verifies(root: &Path, series: &str) -> Result<(), String> {
    let series = root.join("var/db/binarydist").join(series);
    let record = std::fs::read_to_string(series.join("installed")).map_err(|e| format!("the installed record: {e}"))?;
    let want =
        record.lines().find_map(|l| l.strip_prefix("tar ")).and_then(|t| t.split(' ').nth(2)).ok_or(format!("no tar line: {record}"))?;
    let gz = std::fs::File::open(series.join("base.tar.gz")).map_err(|e| format!("the kept base: {e}"))?;
    let mut tar = Vec::new();
    flate2::read::MultiGzDecoder::new(gz).read_to_end(&mut tar).map_err(|e| format!("the kept base: {e}"))?;
    let found = hex::encode(Sha256::digest(&tar));
    (found == want).then_some(()).ok_or(format!("the kept base is not the installed tar: it is {found}, the installed record names {want}"))
}

#[test]
fn kills_at_random_steps_and_bytes_converge_on_both_sync_paths() {
    let f = fixture();
    let (_t, template) = root_with(&[&f.dists[0]]);
    // How much an update stages, for the points by bytes.
    let (_u, probe) = root_with(&[&f.dists[0]]);
    let staged = summary(&ok(&mut install(&probe, &f.dists[1])))["bytes_written"].as_u64().unwrap();
    assert!(staged > 1000, "{staged}");
    let points = env_u64("BINARYDIST_FAULT_POINTS").unwrap_or(30);
    let seed = env_u64("BINARYDIST_FAULT_SEED").unwrap_or_else(|| std::process::id() as u64 * 2654435761 + 1);
    eprintln!("fault points: {points}, BINARYDIST_FAULT_SEED={seed}");
    let mut rng = Rng(seed | 1);
    let steps = ["stage", "op", "flags", "staged", "verified", "journal", "upgrade", "upgrading", "upgraded", "recorded"];
    let t = tempdir();
    let (mut killed, mut finished) = (0, 0);
    for i in 0..points {
        let point = match rng.below(3) {
            0 => format!("bytes:{}", 1 + rng.below(staged)),
            _ => {
                let step = steps[rng.below(steps.len() as u64) as usize];
                let n = if matches!(step, "stage" | "op" | "flags") { 1 + rng.below(12) } else { 1 };
                format!("{step}:{n}")
            }
        };
        let sync = if rng.below(2) == 0 { "per-file" } else { "syncfs" };
        let root = t.path().join(format!("root{i}"));
        sh(&format!("cp -a '{}' '{}'", template.display(), root.display()));
        let out = install(&root, &f.dists[1]).env("BINARYDIST_TEST_KILL_AT", &point).env("BINARYDIST_TEST_SYNC", sync).output().unwrap();
        match out.status.signal() {
            Some(9) => killed += 1,
            _ => {
                assert!(out.status.success(), "{point} ({sync}): {}", String::from_utf8_lossy(&out.stderr));
                finished += 1;
            }
        }
        ok(install(&root, &f.dists[1]).env("BINARYDIST_TEST_SYNC", sync));
        assert_same_tree_but(&root, &f.refs[1], V2_UPGRADED_DIRS);
        assert_base_verifies(&root);
        let left = sh(&format!("find '{}' -name '.bdtmp.*' -o -name journal -o -name '.base.new*'", root.display()));
        assert!(left.is_empty(), "{point} ({sync}): left behind: {left}");
        let _ = std::fs::remove_dir_all(&root);
    }
    eprintln!("fault points: {killed} killed, {finished} not reached (the install finished)");
    assert!(killed * 2 >= points, "only {killed} of {points} points were reached");
}

#[test]
fn a_disk_that_fills_during_the_commit_finishes_or_stops_in_one_line_and_a_rerun_with_room_finishes() {
    let f = fixture();
    let t = tempdir();
    let Some(fs) = Tmpfs::mount(&t.path().join("root"), "24m") else { return };
    let root = fs.0.clone();
    ok(&mut install(&root, &f.dists[0]));
    // Killed with the commit record durable and nothing renamed; then the disk
    // fills up before the rerun that finishes the commit.
    let out = install(&root, &f.dists[1]).env("BINARYDIST_TEST_KILL_AT", "op:2").output().unwrap();
    assert_eq!(out.status.signal(), Some(9));
    sh(&format!("dd if=/dev/zero of='{}/filler' bs=64k 2>/dev/null || true", root.display()));
    // The commit may still finish (each rename frees the file it replaces,
    // and the rotation of kept bases frees one); if it does not, it must stop
    // in one line, the journal kept for the next run.
    let out = install(&root, &f.dists[1]).output().unwrap();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("No space left on device"), "{err}");
        assert_eq!(err.trim().lines().filter(|l| !l.starts_with("binarydist: finishing")).count(), 1, "{err}");
        assert!(root.join("var/db/binarydist/journal").exists(), "the journal must stay for the rerun");
    }
    eprintln!("full disk during the commit: the rerun {}", if out.status.success() { "finished" } else { "stopped" });
    std::fs::remove_file(root.join("filler")).unwrap();
    let s = summary(&ok(&mut install(&root, &f.dists[1])));
    assert!(!s["dist"].is_null(), "{s}");
    assert_same_tree_but(&root, &f.refs[1], V2_UPGRADED_DIRS);
    assert_base_verifies(&root);
}
