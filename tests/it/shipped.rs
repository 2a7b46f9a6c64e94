//! The binary that ships honours no test variable. `make test` builds it
//! without features and keeps it as target/shipped/binarydist before building
//! the suite with `test-hooks`; each test here sets one variable, sees its
//! effect on the test-hooks build (so the test can fail), and sees none on the
//! shipped one.

use crate::util::{bin, fails, ok, skip, tempdir, Tmpfs};
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const STAMP: &str = "20261128T103900Z";

/// Every variable a test-hooks build reads, and the test below that covers it.
const COVERED: &[&str] = &[
    "BINARYDIST_TEST_FLAGS",
    "BINARYDIST_TEST_HOOK_META",
    "BINARYDIST_TEST_HOOK_PACK",
    "BINARYDIST_TEST_KILL_AT",
    "BINARYDIST_TEST_SECURELEVEL",
    "BINARYDIST_TEST_SKIP_SPACE_CHECK",
    "BINARYDIST_TEST_SYNC",
];

/// The shipped binary, or `None` (after [`skip`]) when `make test` did not make it.
fn shipped_path() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/shipped/binarydist");
    if !p.exists() {
        skip(&format!("{} is missing: `make test` builds it", p.display()));
        return None;
    }
    Some(p)
}

fn shipped() -> Option<Command> {
    shipped_path().map(Command::new)
}

/// Both builds: `(name, command)`, the test-hooks one first.
fn both() -> Option<[(&'static str, Command); 2]> {
    Some([("test-hooks build", bin()), ("shipped build", shipped()?)])
}

/// A small world dist of one directory and one file of `size` zero bytes.
fn small_dist(dir: &Path, size: usize) -> PathBuf {
    let stage = dir.join("stage");
    std::fs::create_dir_all(stage.join("bin")).unwrap();
    std::fs::write(stage.join("bin/sh"), vec![0u8; size]).unwrap();
    crate::util::pack(&stage, &dir.join("out"), "world", STAMP, "v1")
}

fn install_cmd(mut c: Command, root: &Path, dist: &Path) -> Command {
    std::fs::create_dir_all(root).unwrap();
    c.arg("install").arg("--root").arg(root).arg(dist);
    c
}

#[test]
fn every_test_variable_in_the_source_is_covered_here() {
    let mut found = BTreeSet::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for (i, _) in text.match_indices("BINARYDIST_TEST_") {
                    let name: String = text[i..].chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect();
                    found.insert(name.trim_end_matches('_').to_string());
                }
            }
        }
    }
    let covered: BTreeSet<String> = COVERED.iter().map(|s| s.to_string()).collect();
    assert_eq!(found, covered, "a test variable without a shipped-build test here, or one that is gone");
}

#[test]
fn the_shipped_binary_does_not_even_name_a_test_variable() {
    let Some(p) = shipped_path() else { return };
    let bytes = std::fs::read(&p).unwrap();
    assert!(!bytes.windows(16).any(|w| w == b"BINARYDIST_TEST_"), "{} names a test variable", p.display());
    let hooked = std::fs::read(env!("CARGO_BIN_EXE_binarydist")).unwrap();
    assert!(hooked.windows(16).any(|w| w == b"BINARYDIST_TEST_"), "the test-hooks build should name them");
}

#[test]
fn hook_pack_runs_a_command_only_in_the_test_build() {
    let Some(builds) = both() else { return };
    let t = tempdir();
    let stage = t.path().join("stage");
    std::fs::create_dir_all(stage.join("bin")).unwrap();
    std::fs::write(stage.join("bin/sh"), "sh\n").unwrap();
    for (i, (what, mut c)) in builds.into_iter().enumerate() {
        let marker = t.path().join(format!("ran.{i}"));
        c.args(["pack", "--series", "world", "--arch", "x86_64", "--branch", "master", "--rev", "v1", "--date", STAMP]);
        c.arg("--stage").arg(&stage).arg("-o").arg(t.path().join(format!("out.{i}")));
        c.env("BINARYDIST_TEST_HOOK_PACK", format!("touch '{}'", marker.display()));
        ok(&mut c);
        assert_eq!(marker.exists(), i == 0, "{what}: BINARYDIST_TEST_HOOK_PACK");
    }
}

#[test]
fn hook_meta_runs_a_command_only_in_the_test_build() {
    let Some(builds) = both() else { return };
    let t = tempdir();
    let dist = small_dist(t.path(), 10);
    for (i, (what, c)) in builds.into_iter().enumerate() {
        let marker = t.path().join(format!("ran.{i}"));
        let root = t.path().join(format!("root.{i}"));
        ok(install_cmd(c, &root, &dist).env("BINARYDIST_TEST_HOOK_META", format!("touch '{}'", marker.display())));
        assert_eq!(marker.exists(), i == 0, "{what}: BINARYDIST_TEST_HOOK_META");
    }
}

#[test]
fn fake_flags_are_used_only_in_the_test_build() {
    let Some(builds) = both() else { return };
    let t = tempdir();
    let dist = small_dist(t.path(), 10);
    for (i, (what, c)) in builds.into_iter().enumerate() {
        let flags = t.path().join(format!("flags.{i}"));
        std::fs::create_dir(&flags).unwrap();
        let root = t.path().join(format!("root.{i}"));
        ok(install_cmd(c, &root, &dist).env("BINARYDIST_TEST_FLAGS", &flags));
        let calls = std::fs::read_to_string(flags.join("calls")).unwrap_or_default();
        assert_eq!(calls.contains("rename\t"), i == 0, "{what}: BINARYDIST_TEST_FLAGS, calls: {calls:?}");
        assert_eq!(std::fs::read(root.join("bin/sh")).unwrap().len(), 10, "{what}");
    }
}

#[test]
fn kill_points_kill_only_the_test_build() {
    let Some(builds) = both() else { return };
    let t = tempdir();
    let dist = small_dist(t.path(), 10);
    for (i, (what, c)) in builds.into_iter().enumerate() {
        let root = t.path().join(format!("root.{i}"));
        let out = install_cmd(c, &root, &dist).env("BINARYDIST_TEST_KILL_AT", "verified:1").output().unwrap();
        let killed = out.status.signal() == Some(9);
        assert_eq!(killed, i == 0, "{what}: BINARYDIST_TEST_KILL_AT: {:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
        if !killed {
            assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

#[test]
fn the_space_check_is_skipped_only_in_the_test_build() {
    let Some(builds) = both() else { return };
    let t = tempdir();
    // 4 MiB of zeros gzips to almost nothing, and does not fit a 2 MiB root.
    let dist = small_dist(t.path(), 4 << 20);
    for (i, (what, c)) in builds.into_iter().enumerate() {
        let Some(fs) = Tmpfs::mount(&t.path().join(format!("root.{i}")), "2m") else { return };
        let err = fails(install_cmd(c, &fs.0, &dist).env("BINARYDIST_TEST_SKIP_SPACE_CHECK", "1"));
        let skipped = err.contains("No space left on device");
        assert_eq!(skipped, i == 0, "{what}: BINARYDIST_TEST_SKIP_SPACE_CHECK: {err}");
        if !skipped {
            assert!(err.contains("not enough room"), "{what}: {err}");
        }
    }
}

#[test]
fn per_file_sync_is_chosen_only_in_the_test_build() {
    let Some(builds) = both() else { return };
    let t = tempdir();
    let dist = small_dist(t.path(), 10);
    for (i, (what, c)) in builds.into_iter().enumerate() {
        let root = t.path().join(format!("root.{i}"));
        let mut c = install_cmd(c, &root, &dist);
        c.env("BINARYDIST_TEST_SYNC", "per-file");
        let Some(calls) = crate::install_crash::durability_calls(&c, &t.path().join(format!("strace.{i}"))) else { return };
        let syncfs = calls.iter().any(|l| l.contains("syncfs("));
        assert_eq!(syncfs, i == 1, "{what}: BINARYDIST_TEST_SYNC: {calls:#?}");
    }
}

#[test]
fn a_pretended_securelevel_refuses_only_in_the_test_build() {
    let Some(builds) = both() else { return };
    let t = tempdir();
    let dist = small_dist(t.path(), 10);
    for (i, (what, c)) in builds.into_iter().enumerate() {
        let root = t.path().join(format!("root.{i}"));
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::write(root.join("bin/sh"), "old\n").unwrap();
        // The flags need the fake backend, which only the test build has: on
        // the shipped build this shows the securelevel is not pretended either
        // way, since Linux has neither.
        let flags = t.path().join(format!("flags.{i}"));
        std::fs::create_dir(&flags).unwrap();
        std::fs::write(flags.join("flags"), format!("{}\tschg\n", root.join("bin/sh").display())).unwrap();
        let mut c = install_cmd(c, &root, &dist);
        c.env("BINARYDIST_TEST_FLAGS", &flags).env("BINARYDIST_TEST_SECURELEVEL", "1");
        let out = c.output().unwrap();
        assert_eq!(!out.status.success(), i == 0, "{what}: BINARYDIST_TEST_SECURELEVEL: {}", String::from_utf8_lossy(&out.stderr));
    }
}
