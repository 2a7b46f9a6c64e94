//! `make upgrade` for real: the sample DragonFly-shaped source tree (issue 4)
//! built through binarydists/Makefile, its source tree deleted, then its
//! dists installed with `binarydist install` (and updated by patches when
//! this build can make them). The subset inside the world dist must run the
//! tree's own `upgrade` target: TO_REMOVE and TO_REMOVE_LATE files go.

use crate::util::{bin, ok, tempdir};
use std::path::{Path, PathBuf};
use std::process::Command;

fn sample_dists(work: &Path) -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_binarydist"));
    let path = format!("{}:{}", exe.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/sample-dists.sh");
    ok(Command::new("sh").arg(script).arg(work).args(["1", "2"]).env("PATH", path).env_remove("MAKEFLAGS"));
    // Prove that nothing reads the source tree any more.
    for d in ["usr", "obj", "stage"] {
        let _ = std::fs::remove_dir_all(work.join(d));
    }
    work.join("dist")
}

fn find(dir: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(prefix) && n.ends_with(suffix)
        })
        .collect();
    assert_eq!(v.len(), 1, "{prefix}*{suffix} in {}: {v:?}", dir.display());
    v.pop().unwrap()
}

fn install(root: &Path) -> Command {
    let mut c = bin();
    c.arg("install").arg("--root").arg(root).args(["--make", "bmake", "--json"]);
    c
}

#[test]
fn sample_tree_dists_install_and_make_upgrade_runs_from_the_shipped_subset() {
    let t = tempdir();
    let dist = sample_dists(t.path());
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    ok(install(&root).arg(find(&dist, "DragonFly-kernel.GENERIC-", "-r1.tar.gz")));
    let out = ok(install(&root).arg(find(&dist, "DragonFly-world-", "-r1.tar.gz")));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains(" upgrade DESTDIR=") && !log.contains("BINARY_UPGRADE"), "the plain upgrade: {log}");
    assert!(root.join("etc/mail.rc").is_file() && root.join("etc/ssh/moduli").is_file(), "upgrade_etc ran: {log}");
    assert!(
        root.join("etc/resolvconf.conf").is_file() && root.join("etc/dhcpcd.conf").is_file(),
        "and installed what only it installs: {log}"
    );
    assert!(root.join("usr/bin/oldtool").is_file() && root.join("lib/libc.so.8").is_file());
    assert!(root.join("boot/kernel/kernel").is_file() && root.join("rescue").is_dir());

    // r2: by patches when this build makes them, else by full dists.
    let (world2, kernel2): (Vec<PathBuf>, Vec<PathBuf>) = if bin().args(["diff", "--help"]).output().unwrap().status.success() {
        (vec![find(&dist, "DragonFly-world-", "-r2.bdpatch")], vec![find(&dist, "DragonFly-kernel.GENERIC-", "-r2.bdpatch")])
    } else {
        (vec![find(&dist, "DragonFly-world-", "-r2.tar.gz")], vec![find(&dist, "DragonFly-kernel.GENERIC-", "-r2.tar.gz")])
    };
    let by_patch = world2[0].extension().unwrap() == "bdpatch";
    let args = |files: &[PathBuf]| -> Vec<std::ffi::OsString> {
        let mut a = Vec::new();
        if by_patch {
            a.push("--patch".into());
        }
        a.extend(files.iter().map(|f| f.as_os_str().to_owned()));
        a
    };
    let s: serde_json::Value = serde_json::from_slice(&ok(install(&root).args(args(&kernel2))).stdout).unwrap();
    assert_eq!(s["reboot_needed"], true);
    assert!(root.join("boot/kernel.old/kernel").is_file());
    let out = ok(install(&root).args(args(&world2)));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!root.join("usr/bin/oldtool").exists(), "TO_REMOVE entry still there:\n{log}");
    assert!(!root.join("lib/libc.so.8").exists(), "TO_REMOVE_LATE entry still there:\n{log}");
    assert!(root.join("lib/libc.so.9").is_file() && root.join("usr/bin/newtool").is_file());
    let whatis = std::fs::read_to_string(root.join("usr/share/man/whatis")).unwrap();
    assert!(whatis.contains("newtool(1)"), "makedb ran: {whatis}");
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["make_upgrade"], "ran");
    assert_eq!(s["reboot_needed"], true, "libc changed: {s}");
}
