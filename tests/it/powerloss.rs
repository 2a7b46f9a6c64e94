//! Power loss (issue 16, docs/campaign.md): a killed process keeps what it
//! wrote in the page cache, a power loss does not. Each scenario runs an
//! install once under strace on the per-file fsync path (DragonFly's), replays
//! the calls into fsmodel's inodes, checks that the replay reaches the real
//! final tree (so that the model cannot silently lose a call), and builds the
//! crash states of the bounded model: at each barrier (fsync, fdatasync,
//! syncfs, sync), everything since the previous barrier lost, and each single
//! op since then lost on its own. Each distinct state is made real at the
//! same paths, then:
//!
//! 1. `binarydist install --root R` alone (finish or undo what was
//!    interrupted) must succeed and leave the old or the new dist's tree, with
//!    a kept base that is the tar the installed record names;
//! 2. the same install again must succeed and leave the new tree, its base
//!    verified, nothing of the installer's left behind.
//!
//! make upgrade is the fixture's real one (bmake over the shipped subset,
//! removing usr/bin/oldprog), traced with the rest: its unlink is an op like
//! any other, lost unless a barrier follows it.

use crate::fsmodel::{crash_states, Fs};
use crate::fsreplay::{replay, TRACED};
use crate::fstrace::parse_log;
use crate::install::{fixture, install, root_with, tree_differences, V2_UPGRADED_DIRS};
use crate::install_crash::run_traced;
use crate::install_faults::series_base_verifies;
use crate::install_patch::{install_patches, patches};
use crate::util::{bin, sh, skip, tempdir, Tmpfs};
use std::path::Path;
use std::process::Command;

/// The process's umask, which the traced install inherits.
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:")).expect("no Umask in /proc/self/status");
    u32::from_str_radix(line.trim(), 8).unwrap()
}

/// Runs `c` under strace into `log`, from `cwd`; `false` (after a skip) without strace.
fn trace(mut c: Command, log: &Path, cwd: &Path) -> bool {
    c.current_dir(cwd);
    run_traced(&c, log, &["-f", "-y", "-qq", "-xx", "-s", "100000000", "-e", "signal=none", "-e", &format!("trace={TRACED}")])
}

struct Scenario<'a> {
    name: &'a str,
    /// A root with the old dist installed (copied, never changed).
    template: &'a Path,
    /// The install, given the root.
    command: &'a dyn Fn(&Path) -> Command,
    old: &'a Path,
    new: &'a Path,
}

fn per_file(mut c: Command) -> Command {
    c.env("BINARYDIST_TEST_SYNC", "per-file");
    c
}

/// What the installer leaves only while it runs: staged temporaries, the
/// journal, the next base, a state file's temporary.
fn leftovers(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".bdtmp.")
                || name == "journal"
                || name.starts_with(".base.new")
                || (name.starts_with('.') && name.ends_with(".tmp"))
            {
                found.push(e.path().display().to_string());
            }
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            }
        }
    }
    found
}

/// Steps 1 and 2 of the module's comment on a state made real at `root`;
/// `Ok(true)` when step 1 left the old tree.
fn converges(s: &Scenario, root: &Path) -> Result<bool, String> {
    let out = per_file(bin()).arg("install").arg("--root").arg(root).args(["--make", "bmake"]).output().unwrap();
    if !out.status.success() {
        return Err(format!("finishing or undoing failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let (to_new, to_old) = (tree_differences(root, s.new, V2_UPGRADED_DIRS), tree_differences(root, s.old, V2_UPGRADED_DIRS));
    if !to_new.is_empty() && !to_old.is_empty() {
        return Err(format!(
            "neither the old nor the new tree:\n  to the new: {}\n  to the old: {}",
            to_new.join("\n    "),
            to_old.join("\n    ")
        ));
    }
    series_base_verifies(root, "world").map_err(|e| format!("after step 1: {e}"))?;
    let out = per_file((s.command)(root)).output().unwrap();
    if !out.status.success() {
        return Err(format!("the rerun failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let d = tree_differences(root, s.new, V2_UPGRADED_DIRS);
    if !d.is_empty() {
        return Err(format!("the rerun did not give the new tree:\n  {}", d.join("\n  ")));
    }
    series_base_verifies(root, "world").map_err(|e| format!("after the rerun: {e}"))?;
    let left = leftovers(root);
    if !left.is_empty() {
        return Err(format!("left behind: {}", left.join(" ")));
    }
    Ok(to_old.is_empty())
}

/// Traces the scenario, checks the model, and checks every distinct crash
/// state; returns a line of figures.
fn check(s: &Scenario) -> Option<String> {
    let start = std::time::Instant::now();
    let t = tempdir();
    // On a tmpfs: its syncs cost nothing, and the model, not the disk, says
    // what a power loss keeps.
    let fs = Tmpfs::mount(&t.path().join("top"), "64m")?;
    let top = std::fs::canonicalize(&fs.0).unwrap();
    let root = top.join("root");
    sh(&format!("cp -a '{}' '{}'", s.template.display(), root.display()));
    let seed = Fs::scan(&top);
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let log = outside.join("strace.log");
    if !trace(per_file((s.command)(&root)), &log, &outside) {
        return None;
    }
    let calls = parse_log(&std::fs::read_to_string(&log).unwrap());
    let r = replay(seed.clone(), &calls, &std::fs::canonicalize(&outside).unwrap(), umask());

    // The self-check: every op replayed gives the real tree.
    let real = Fs::scan(&top);
    let d = r.fs.differences(&real);
    assert!(d.is_empty(), "{}: replaying the trace does not give the real tree:\n{}", s.name, d.join("\n"));
    let d = tree_differences(&root, s.new, V2_UPGRADED_DIRS);
    assert!(d.is_empty(), "{}: the traced install is not the new tree:\n{}", s.name, d.join("\n"));
    // Nothing durable lives outside the root: only make upgrade's guards
    // (a temporary directory of scripts, removed after it) and /dev/null.
    for p in &r.outside {
        let tmp = std::env::temp_dir().join("binarydist-guard.");
        assert!(p.starts_with(&*tmp.to_string_lossy()) || p.starts_with("/dev/"), "{}: the install changed {p}, outside its root", s.name);
    }

    let (states, counts) = crash_states(&seed, &r.events);
    let mut undone = 0;
    let mut failed = Vec::new();
    for (i, state) in states.iter().enumerate() {
        state.fs.materialize();
        let what = format!("{} state {i} ({})", s.name, state.what);
        match converges(s, &root) {
            Ok(old_first) => undone += usize::from(old_first),
            Err(e) => failed.push(format!("{what}: {e}")),
        }
    }
    assert!(failed.is_empty(), "{} of {} states did not converge:\n{}", failed.len(), states.len(), failed.join("\n"));
    Some(format!(
        "{}: {} barriers, {} ops, {} states built ({} ops dropped with the one they followed), {} distinct, all converged ({} to the old tree first); {:.0} s",
        s.name,
        counts.barriers,
        counts.ops,
        counts.built,
        counts.dependants,
        states.len(),
        undone,
        start.elapsed().as_secs_f64()
    ))
}

#[test]
fn every_power_loss_state_of_a_full_install_and_of_a_patch_update_converges() {
    if !crate::util::is_root() {
        return skip("the crash states are made with their owners: root only");
    }
    let f = fixture();
    let (_t1, v1) = root_with(&[&f.dists[0]]);
    let full = |root: &Path| install(root, &f.dists[1]);
    let [p12, _] = patches();
    let patch = |root: &Path| install_patches(root, &[p12]);
    for s in [
        Scenario { name: "full install v1 -> v2", template: &v1, command: &full, old: &f.refs[0], new: &f.refs[1] },
        Scenario { name: "patch update v1 -> v2", template: &v1, command: &patch, old: &f.refs[0], new: &f.refs[1] },
    ] {
        let Some(line) = check(&s) else { return };
        eprintln!("power loss: {line}");
    }
}
