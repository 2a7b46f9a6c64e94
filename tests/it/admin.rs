//! What an admin has around an install (issue 13): rollback and its hold,
//! status, check, install --dry-run, edited files, the log and the HAMMER2
//! snapshot, on the sample tree's dists (the fragment's signed mirror,
//! bsd.rs, built once per run), with real bmake running `make upgrade`.

use crate::mirror::{cmd, installed, mirror, Mirror, KERNEL, WORLD};
use crate::util::{bin, fails, ok, snapshot, snapshot_diff};
use binarydist::manifest::Manifest;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn install(root: &Path) -> Command {
    let mut c = bin();
    c.arg("install").arg("--root").arg(root).args(["--make", "bmake", "--json", "--config", "/dev/null"]);
    c
}

fn rollback(root: &Path, series: &str) -> Command {
    let mut c = bin();
    c.arg("rollback").arg("--root").arg(root).args(["--make", "bmake", "--config", "/dev/null", "--series", series]);
    c
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// A new root under the mirror's temporary directory, with the var/log
/// every installed system has (the log is written only where it is).
fn new_root(m: &Mirror, name: &str) -> PathBuf {
    let root = m.t.path().join(name);
    std::fs::create_dir_all(root.join("var/log")).unwrap();
    root
}

/// Installs `series` rev 1 as a full dist, then each later rev by its patch.
fn walk(m: &Mirror, root: &Path, series: &str, to: usize) {
    ok(install(root).arg(m.dist_path(series, 1)));
    for r in 2..=to {
        ok(install(root).arg("--patch").arg(m.dir.join(m.patch_file(series, r - 1, r))));
    }
}

fn manifest_paths(root: &Path, series: &str) -> BTreeSet<PathBuf> {
    let text = std::fs::read_to_string(root.join("var/db/binarydist").join(series).join("MANIFEST")).unwrap();
    Manifest::parse(&text).unwrap().entries.into_iter().map(|e| e.meta.path).collect()
}

/// What a tree has at `paths` (directories without their mtime, which
/// `make upgrade` moves as it works).
fn at(root: &Path, paths: &BTreeSet<PathBuf>) -> BTreeMap<PathBuf, String> {
    let all = snapshot(root);
    paths
        .iter()
        .map(|p| {
            let v = all.get(p).cloned().unwrap_or_else(|| "absent".into());
            let v = if v.starts_with("dir ") { v.split(" mtime=").next().unwrap().to_string() } else { v };
            (p.clone(), v)
        })
        .collect()
}

/// What `make upgrade` (not the dist) made under etc/ and var/: path and
/// content, without times (each run makes them anew).
fn made_by_upgrade(root: &Path, manifests: &BTreeSet<PathBuf>) -> BTreeMap<PathBuf, String> {
    snapshot(root)
        .into_iter()
        .filter(|(p, _)| (p.starts_with("etc") || p.starts_with("var")) && !manifests.contains(p))
        .filter(|(p, _)| !p.starts_with("var/db/binarydist") && !p.starts_with("var/log"))
        .map(|(p, v)| (p, v.split(" mode=").next().unwrap().to_string()))
        .collect()
}

fn assert_same(a: &BTreeMap<PathBuf, String>, b: &BTreeMap<PathBuf, String>, what: &str) {
    let d = snapshot_diff(a, b);
    assert!(d.is_empty(), "{what}:\n{}", d.join("\n"));
}

#[test]
fn admin_rollback_twice_goes_back_to_fresh_installs_of_rev2_then_rev1_and_holds_until_unhold() {
    let m = mirror();
    let root = new_root(&m, "walked");
    walk(&m, &root, WORLD, 3);
    let r3 = manifest_paths(&root, WORLD);
    let fresh2 = new_root(&m, "fresh2");
    ok(install(&fresh2).arg(m.dist_path(WORLD, 2)));
    let fresh1 = new_root(&m, "fresh1");
    ok(install(&fresh1).arg(m.dist_path(WORLD, 1)));
    let (r2, r1) = (manifest_paths(&fresh2, WORLD), manifest_paths(&fresh1, WORLD));
    let added_by_3: Vec<&PathBuf> = r3.difference(&r2).collect();
    assert!(!added_by_3.is_empty(), "rev 3 adds entries");

    let out = ok(&mut rollback(&root, WORLD));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains(" upgrade DESTDIR="), "make upgrade ran from the older subset: {log}");
    assert_eq!(installed(&root, WORLD).unwrap(), m.dist(WORLD, 2).to_string());
    let both: BTreeSet<PathBuf> = r2.union(&r3).cloned().collect();
    assert_same(&at(&root, &both), &at(&fresh2, &both), "rolled back to rev 2 vs a fresh install of rev 2");
    // make upgrade installs some /etc files only where there are none (motd):
    // the walked root keeps the one its first install made.
    let (mine, theirs, first) = (made_by_upgrade(&root, &both), made_by_upgrade(&fresh2, &both), made_by_upgrade(&fresh1, &both));
    assert_eq!(mine.keys().collect::<Vec<_>>(), theirs.keys().collect::<Vec<_>>(), "what make upgrade made under etc/ and var/");
    for (p, v) in &mine {
        assert!(theirs[p] == *v || first.get(p) == Some(v), "{}: {v}, a fresh install of rev 2 has {}", p.display(), theirs[p]);
    }
    for p in &added_by_3 {
        assert!(std::fs::symlink_metadata(root.join(p)).is_err(), "{} (added by rev 3) is still there", p.display());
    }

    ok(&mut rollback(&root, WORLD));
    assert_eq!(installed(&root, WORLD).unwrap(), m.dist(WORLD, 1).to_string());
    let all: BTreeSet<PathBuf> = both.union(&r1).cloned().collect();
    assert_same(&at(&root, &all), &at(&fresh1, &all), "rolled back twice vs a fresh install of rev 1");
    assert_same(&made_by_upgrade(&root, &all), &made_by_upgrade(&fresh1, &all), "what make upgrade made, rev 1");
    assert!(root.join("lib/libc.so.8").is_file() && !root.join("lib/libc.so.9").exists(), "the newer libc is gone");
    assert!(!root.join("usr/bin/newtool").exists() && root.join("usr/bin/oldtool").is_file());
    let e = fails(&mut rollback(&root, WORLD));
    assert!(e.contains("no kept generation older than") && e.lines().count() == 1, "{e}");

    // Held: the mirror has rev 3, update leaves the root on rev 1.
    let srv = crate::httpd::Server::start(&m.dir);
    let s = json(&ok(bin().args(["status", "--json", "--config", "/dev/null", "--root"]).arg(&root)));
    let w = s["series"].as_array().unwrap().iter().find(|x| x["series"] == WORLD).unwrap().clone();
    assert!(w["hold"].as_str().unwrap().contains("rolled back from"), "{s}");
    assert_eq!(w["generations"].as_array().unwrap().len(), 2, "{s}");
    let out = ok(&mut cmd("update", &root, &m, &[&srv.url]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("world is held"));
    assert_eq!(installed(&root, WORLD).unwrap(), m.dist(WORLD, 1).to_string());
    ok(bin().args(["unhold", "--series", WORLD, "--root"]).arg(&root));
    ok(&mut cmd("update", &root, &m, &[&srv.url]));
    assert_eq!(installed(&root, WORLD).unwrap(), m.dist(WORLD, 3).to_string());
    let log = std::fs::read_to_string(root.join("var/log/binarydist.log")).unwrap();
    assert_eq!(log.lines().filter(|l| l.contains(" rollback ") && l.contains("outcome=ok")).count(), 2, "{log}");
    let last: Vec<&str> = log.lines().rev().take(3).collect();
    assert!(last[0].contains(" update outcome=ok ") && last[0].contains(&m.dist(WORLD, 3).to_string()), "{log}");
    assert!(last[1].contains(&format!(" install dist={} outcome=ok", m.dist(WORLD, 3))), "{log}");
    assert!(last[2].contains(" update outcome=up-to-date ") && last[2].contains("held=world"), "the held update is logged: {log}");
}

#[test]
fn admin_a_kernel_rollback_puts_the_previous_kernel_back_and_generations_are_pruned() {
    let m = mirror();
    let root = new_root(&m, "k");
    walk(&m, &root, KERNEL, 3);
    let fresh = new_root(&m, "k2");
    ok(install(&fresh).arg(m.dist_path(KERNEL, 2)));
    let kernel = |r: &Path| -> BTreeMap<PathBuf, String> {
        snapshot(&r.join("boot/kernel")).into_iter().map(|(p, v)| (p, v.split(" mtime=").next().unwrap().to_string())).collect()
    };
    let newer = kernel(&root);
    ok(&mut rollback(&root, KERNEL));
    assert_eq!(installed(&root, KERNEL).unwrap(), m.dist(KERNEL, 2).to_string());
    assert_same(&kernel(&root), &kernel(&fresh), "boot/kernel after the rollback vs rev 2's");
    let old: BTreeMap<PathBuf, String> =
        snapshot(&root.join("boot/kernel.old")).into_iter().map(|(p, v)| (p, v.split(" mtime=").next().unwrap().to_string())).collect();
    assert_same(&old, &newer, "kernel.old is the kernel rolled back from");
    // KEEP_GENERATIONS: status says what a prune would free; the next install prunes.
    let conf = m.t.path().join("keep1.conf");
    std::fs::write(&conf, "KEEP_GENERATIONS=\"1\"\n").unwrap();
    let s = json(&ok(bin().args(["status", "--json", "--root"]).arg(&root).arg("--config").arg(&conf)));
    let k = &s["series"][0];
    assert_eq!(k["generations"].as_array().unwrap().len(), 2, "{s}");
    assert_eq!(k["prune"].as_array().unwrap().len(), 1, "{s}");
    assert!(k["prune_bytes"].as_u64().unwrap() > 0, "{s}");
    let out = ok(bin().arg("install").arg("--root").arg(&root).arg("--config").arg(&conf).arg("--json").arg(m.dist_path(KERNEL, 3)));
    assert!(json(&out)["pruned_bytes"].as_u64().unwrap() > 0);
    let s = json(&ok(bin().args(["status", "--json", "--root"]).arg(&root).arg("--config").arg(&conf)));
    assert_eq!(s["series"][0]["generations"].as_array().unwrap().len(), 1, "{s}");
}

/// The tree outside the installer's own state and log.
fn system(root: &Path) -> BTreeMap<PathBuf, String> {
    snapshot(root).into_iter().filter(|(p, _)| !p.starts_with("var/db/binarydist") && !p.starts_with("var/log")).collect()
}

#[test]
fn admin_a_rollback_killed_at_any_point_converges_when_run_again() {
    let m = mirror();
    let walked = new_root(&m, "walked");
    walk(&m, &walked, WORLD, 3);
    let reference = new_root(&m, "reference");
    ok(Command::new("cp").arg("-a").arg(format!("{}/.", walked.display())).arg(&reference));
    ok(&mut rollback(&reference, WORLD));
    let paths: BTreeSet<PathBuf> = manifest_paths(&walked, WORLD).union(&manifest_paths(&reference, WORLD)).cloned().collect();
    // A point picked at random among the commit's operations, and every step.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let op = format!("op:{}", 1 + nanos % 20);
    for point in ["stage:2", "verified:1", "journal:1", &op, "upgrade:1", "upgraded:1", "recorded:1"] {
        let root = m.t.path().join(format!("kill-{}", point.replace(':', "-")));
        ok(Command::new("cp").arg("-a").arg(&walked).arg(&root));
        let st = rollback(&root, WORLD).env("BINARYDIST_TEST_KILL_AT", point).output().unwrap();
        assert!(!st.status.success(), "{point}: not killed");
        ok(&mut rollback(&root, WORLD));
        assert_eq!(installed(&root, WORLD).unwrap(), m.dist(WORLD, 2).to_string(), "{point}: one generation back, not two");
        assert_same(&at(&root, &paths), &at(&reference, &paths), &format!("killed at {point}, then run again"));
        let hold = std::fs::read_to_string(root.join("var/db/binarydist/world/hold")).unwrap();
        assert!(hold.contains(&format!("to {}", m.dist(WORLD, 2))), "{point}: {hold}");
        assert_eq!(crate::util::sh(&format!("find '{}' -name '.bdtmp.*'", root.display())), "", "{point}");
    }
}

#[test]
fn admin_check_finds_a_changed_file_mode_symlink_and_a_removed_file_and_nothing_on_a_fresh_install() {
    let m = mirror();
    let root = new_root(&m, "c");
    ok(install(&root).arg(m.dist_path(WORLD, 1)));
    let check = |full: bool| {
        let mut c = bin();
        c.args(["check", "--json", "--root"]).arg(&root);
        if full {
            c.arg("--full");
        }
        c.output().unwrap()
    };
    for full in [false, true] {
        let out = check(full);
        assert!(out.status.success(), "a fresh install plus make upgrade: {}", String::from_utf8_lossy(&out.stdout));
        assert_eq!(json(&out)["series"][0]["differences"].as_array().unwrap().len(), 0);
    }
    let link = manifest_symlink(&root);
    std::fs::write(root.join("bin/hello"), "edited\n").unwrap();
    ok(Command::new("touch").arg("-r").arg(root.join("bin/cat")).arg(root.join("bin/hello")));
    ok(Command::new("chmod").arg("0700").arg(root.join("bin/cat")));
    std::fs::remove_file(root.join(&link)).unwrap();
    std::os::unix::fs::symlink("elsewhere", root.join(&link)).unwrap();
    std::fs::remove_file(root.join("usr/bin/wc")).unwrap();
    let out = check(false);
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    let r = json(&out);
    let what: BTreeMap<String, Vec<String>> = r["series"][0]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (d["path"].as_str().unwrap().to_string(), d["what"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().into()).collect())
        })
        .collect();
    assert_eq!(what.get("bin/hello").map(|w| w.contains(&"content".to_string())), Some(true), "{what:?}");
    assert_eq!(what.get("bin/cat"), Some(&vec!["mode".to_string()]), "{what:?}");
    assert_eq!(what.get(link.to_str().unwrap()), Some(&vec!["link".to_string()]), "{what:?}");
    assert_eq!(what.get("usr/bin/wc"), Some(&vec!["missing".to_string()]), "{what:?}");
    assert_eq!(what.len(), 4, "only those: {what:?}");
    let text = String::from_utf8_lossy(&bin().args(["check", "--root"]).arg(&root).output().unwrap().stdout).into_owned();
    assert!(text.contains("/usr/bin/wc: missing differs") && text.contains("4 differ"), "{text}");
}

/// A symlink the dist installs.
fn manifest_symlink(root: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root.join("var/db/binarydist/world/MANIFEST")).unwrap();
    let m = Manifest::parse(&text).unwrap();
    m.entries.iter().find(|e| e.meta.kind == binarydist::tario::Kind::Symlink).expect("the sample world has a symlink").meta.path.clone()
}

#[test]
fn admin_dry_run_counts_what_the_install_then_does_and_changes_nothing() {
    let m = mirror();
    let root = new_root(&m, "d");
    // Into a root without state: not even a state directory is made.
    let before = snapshot(&root);
    let dry = json(&ok(install(&root).arg("--dry-run").arg(m.dist_path(WORLD, 1))));
    assert_same(&before, &snapshot(&root), "the dry run made something");
    let real = json(&ok(install(&root).arg(m.dist_path(WORLD, 1))));
    for k in ["written", "bytes_written", "unchanged", "metadata_only"] {
        assert_eq!(dry[k], real[k], "{k}: dry {dry} real {real}");
    }
    assert_eq!(dry["added"].as_u64().unwrap() + dry["replaced"].as_u64().unwrap(), real["written"].as_u64().unwrap());
    // A patch onto an installed root.
    let patch = m.dir.join(m.patch_file(WORLD, 1, 2));
    let before = snapshot(&root);
    let out = ok(install(&root).arg("--dry-run").arg("--patch").arg(&patch));
    let dry = json(&out);
    assert_same(&before, &snapshot(&root), "the root after a dry run");
    let real = json(&ok(install(&root).arg("--patch").arg(&patch)));
    for k in ["written", "bytes_written", "unchanged", "metadata_only"] {
        assert_eq!(dry[k], real[k], "{k}: dry {dry} real {real}");
    }
    assert!(dry["replaced"].as_u64().unwrap() > 0 && dry["added"].as_u64().unwrap() > 0, "{dry}");
    let text = String::from_utf8_lossy(&ok(bin().args(["install", "--dry-run", "--root"]).arg(&root).arg(m.dist_path(WORLD, 3))).stdout)
        .into_owned();
    assert!(text.starts_with("would install ") && text.contains(" replaced, "), "{text}");
}

#[test]
fn admin_an_edited_file_is_reported_and_kept_or_with_stop_nothing_is_renamed() {
    let m = mirror();
    let root = new_root(&m, "l");
    ok(install(&root).arg(m.dist_path(WORLD, 1)));
    // bin/hello changes in rev 2; the admin edited it (and made it set-uid).
    std::fs::write(root.join("bin/hello"), "#!/bin/sh\necho local\n").unwrap();
    ok(Command::new("chmod").arg("4755").arg(root.join("bin/hello")));
    let stop = m.t.path().join("stop.conf");
    std::fs::write(&stop, "LOCAL_CHANGES=\"stop\"\n").unwrap();
    let before = system(&root);
    let patch = m.dir.join(m.patch_file(WORLD, 1, 2));
    let e =
        fails(bin().arg("install").arg("--root").arg(&root).arg("--config").arg(&stop).args(["--make", "bmake", "--patch"]).arg(&patch));
    assert!(e.contains("bin/hello") && e.contains("LOCAL_CHANGES") && e.trim_end().lines().count() == 1, "{e}");
    assert_same(&before, &system(&root), "nothing renamed with LOCAL_CHANGES=stop");
    assert_eq!(installed(&root, WORLD).unwrap(), m.dist(WORLD, 1).to_string());
    // The default keeps a copy, without the set-uid bit.
    let dry = json(&ok(install(&root).arg("--dry-run").arg("--patch").arg(&patch)));
    assert_eq!(dry["local_changes"], serde_json::json!(["bin/hello"]));
    let s = json(&ok(install(&root).arg("--patch").arg(&patch)));
    assert_eq!(s["local_changes"], serde_json::json!(["bin/hello"]), "{s}");
    assert_eq!(s["kept_local"], serde_json::json!(["bin/hello.binarydist-local"]), "{s}");
    let kept = root.join("bin/hello.binarydist-local");
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "#!/bin/sh\necho local\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&kept).unwrap().permissions().mode() & 0o7777, 0o755, "set-id bits stripped from the copy");
    assert_ne!(std::fs::read(root.join("bin/hello")).unwrap(), b"#!/bin/sh\necho local\n", "the new one is in place");
    let log = std::fs::read_to_string(root.join("var/log/binarydist.log")).unwrap();
    assert!(log.lines().any(|l| l.contains("outcome=failed") && l.contains("LOCAL_CHANGES")), "{log}");
    assert!(log.lines().last().unwrap().contains("local_changes=1"), "{log}");
}

#[test]
fn admin_the_hammer2_snapshot_is_taken_before_the_first_rename_and_listed_in_status() {
    let m = mirror();
    let root = new_root(&m, "h");
    ok(install(&root).arg(m.dist_path(WORLD, 1)));
    let calls = m.t.path().join("calls");
    std::fs::create_dir(&calls).unwrap();
    let out = ok(install(&root)
        .env("BINARYDIST_TEST_SNAPSHOT", &calls)
        .env("BINARYDIST_TEST_FLAGS", &calls)
        .arg("--patch")
        .arg(m.dir.join(m.patch_file(WORLD, 1, 2))));
    let log = std::fs::read_to_string(calls.join("calls")).unwrap();
    let first = log.lines().position(|l| l.starts_with("snapshot\t")).unwrap_or_else(|| panic!("no snapshot: {log}"));
    let rename = log.lines().position(|l| l.starts_with("rename\t")).unwrap_or_else(|| panic!("no rename: {log}"));
    assert!(first < rename, "the snapshot after a rename:\n{log}");
    let label = format!("binarydist-before-{}", m.dist(WORLD, 2));
    assert!(log.lines().nth(first).unwrap().ends_with(&label), "{log}");
    assert_eq!(log.lines().filter(|l| l.starts_with("snapshot\t")).count(), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("vfs.root.mountfrom=hammer2:"), "how to boot it is said");
    let s = json(&ok(bin().args(["status", "--json", "--config", "/dev/null", "--root"]).arg(&root)));
    assert_eq!(s["series"][0]["snapshots"][0]["label"], label.as_str(), "{s}");
    // SNAPSHOT="no": none.
    let no = m.t.path().join("nosnap.conf");
    std::fs::write(&no, "SNAPSHOT=\"no\"\n").unwrap();
    std::fs::remove_file(calls.join("calls")).unwrap();
    ok(bin()
        .arg("install")
        .arg("--root")
        .arg(&root)
        .arg("--config")
        .arg(&no)
        .args(["--make", "bmake", "--patch"])
        .arg(m.dir.join(m.patch_file(WORLD, 2, 3)))
        .env("BINARYDIST_TEST_SNAPSHOT", &calls));
    assert!(!calls.join("calls").exists() || !std::fs::read_to_string(calls.join("calls")).unwrap().contains("snapshot"));
}
