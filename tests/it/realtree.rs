//! The build side and `make upgrade` on DragonFly's own source tree, not the
//! sample: the slice in ../shared/dragonfly-src beside this checkout, or the
//! tree named by BINARYDIST_DFLY_SRC (`BINARYDIST_DFLY_SRC=/usr/src make test`
//! on a DragonFly machine runs these on the real, current tree). The tree is
//! never written: each test works on a copy of what it needs.
//!
//! In CI (`CI` set) a missing tree fails; elsewhere each test says in one line
//! that it skipped and why.

use crate::bsd::{binarydist_path, repo};
use crate::util::{bin, ok, sh, snapshot, tempdir};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const DFLY_SRC_ENV: &str = "BINARYDIST_DFLY_SRC";
/// What a DragonFly x86_64 machine's make says (Debian's bmake says amd64,
/// and sys.mk asks sysctl for hw.platform).
const DRAGONFLY: [&str; 3] = ["MACHINE=x86_64", "MACHINE_ARCH=x86_64", "MACHINE_PLATFORM=pc64"];

/// The tree, or `None` after one line saying why the test is skipped.
fn dfly_src() -> Option<PathBuf> {
    let (path, from) = match std::env::var_os(DFLY_SRC_ENV) {
        Some(p) => (PathBuf::from(p), DFLY_SRC_ENV),
        None => (repo().join("../shared/dragonfly-src"), "the default"),
    };
    if path.join("Makefile.inc1").is_file() {
        return Some(path.canonicalize().unwrap());
    }
    let msg = format!(
        "no DragonFly source tree at {} ({from}): put the slice in ../shared/dragonfly-src beside this checkout, or set {DFLY_SRC_ENV}=/usr/src",
        path.display()
    );
    assert!(std::env::var_os("CI").is_none(), "{msg}; CI always has it");
    eprintln!("skipped: {msg}");
    None
}

/// Copies into `dest` what the fragment and `make upgrade` read of `src`
/// (the upgrade subset, Makefile.inc1 and the kernel configs), with this
/// checkout's fragment in binarydists/.
fn tree_copy(src: &Path, dest: &Path) {
    let subset = repo().join("binarydists/subset.sh");
    let list = repo().join("etc/upgrade-subset.conf");
    ok(Command::new("sh").arg(subset).arg("assemble").arg(src).arg(list).arg(dest));
    sh(&format!("cd '{}' && tar cf - Makefile.inc1 sys/config | (cd '{}' && tar xpf -)", src.display(), dest.display()));
    sh(&format!("chmod -R u+w '{0}' && cp -R '{1}' '{0}/binarydists'", dest.display(), repo().join("binarydists").display()));
}

/// bmake in `dir` as a DragonFly build machine runs it.
fn bmake(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("bmake");
    let path = format!("{}:{}", binarydist_path().parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    c.current_dir(dir).env("PATH", path).env_remove("MAKEFLAGS").env_remove("MAKEOBJDIRPREFIX");
    c.arg(format!("UPGRADE_LIST={}", repo().join("etc/upgrade-subset.conf").display())).args(DRAGONFLY).args(args);
    c
}

fn check(tree: &Path, work: &Path, extra: &[&str]) -> Output {
    let mut c = bmake(&tree.join("binarydists"), &["check", "NODIFF=yes", "BRANCH=master", "GITREV=r1"]);
    c.arg(format!("DISTDIR={}", work.join("dist").display())).arg(format!("STAGE={}", work.join("stage").display())).args(extra);
    c.output().unwrap()
}

fn problems(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr).lines().filter(|l| l.starts_with("binarydist check:")).map(String::from).collect()
}

#[test]
fn realtree_hook_line_applies_and_the_fragment_works_without_it() {
    let Some(src) = dfly_src() else { return };
    let t = tempdir();
    let tree = t.path().join("src");
    tree_copy(&src, &tree);

    // Unpatched: `make -C binarydists check' works, and finds nothing wrong.
    let out = check(&tree, t.path(), &[]);
    assert!(out.status.success() && problems(&out).is_empty(), "{:#?}", problems(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("all prerequisites found"));
    let dash_n = |tree: &Path| {
        let stage = format!("STAGE={}", t.path().join("stage").display());
        let dist = format!("DISTDIR={}", t.path().join("dist").display());
        bmake(tree, &["-n", "binarydist-check", &stage, &dist]).output().unwrap()
    };
    let out = dash_n(&tree);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("binarydist-check"), "{out:?}");

    // The one line of Makefile.patch applies to DragonFly's Makefile, and
    // `make -n binarydist-check' then shows the fragment's commands.
    ok(Command::new("patch").current_dir(&tree).arg("-p0").arg("-s").arg("-i").arg(repo().join("binarydists/Makefile.patch")));
    let out = dash_n(&tree);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && shown.contains("binarydist check: all prerequisites found") && shown.contains("subset.sh check"),
        "{shown}"
    );
}

#[test]
fn realtree_check_names_what_the_subset_or_the_tree_lacks() {
    let Some(src) = dfly_src() else { return };
    let t = tempdir();
    for (gone, also_cut_from_list) in [
        ("crypto/openssh/moduli", false),
        ("contrib/dhcpcd/src/dhcpcd.conf", false),
        // In the tree but not in the list: found through the sub-make that
        // lib/libssh/Makefile.etc runs (.PATH names it, not etc/Makefile).
        ("crypto/openssh/moduli", true),
    ] {
        let tree = t.path().join("src");
        let _ = std::fs::remove_dir_all(&tree);
        tree_copy(&src, &tree);
        let mut extra = Vec::new();
        if also_cut_from_list {
            let list = t.path().join("cut.conf");
            let full = std::fs::read_to_string(repo().join("etc/upgrade-subset.conf")).unwrap();
            std::fs::write(&list, full.lines().filter(|l| *l != gone).map(|l| format!("{l}\n")).collect::<String>()).unwrap();
            extra.push(format!("UPGRADE_LIST={}", list.display()));
        } else {
            std::fs::remove_file(tree.join(gone)).unwrap();
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let out = check(&tree, t.path(), &extra);
        let lines = problems(&out);
        assert!(
            !out.status.success() && lines.iter().any(|l| l.contains(gone)),
            "{gone} (cut from the list: {also_cut_from_list}): {lines:#?}"
        );
        assert_eq!(lines.len(), 1, "one line: {lines:#?}");
    }
}

/// Lays out `root` as `make distrib-dirs' does, from the tree's mtree specs
/// (through the mtree shim).
fn distrib_dirs(tree: &Path, root: &Path) {
    for (spec, under) in [("BSD.root.dist", ""), ("BSD.var.dist", "/var"), ("BSD.usr.dist", "/usr"), ("BSD.include.dist", "/usr/include")] {
        let dir = format!("{}{under}", root.display());
        std::fs::create_dir_all(&dir).unwrap();
        ok(Command::new(repo().join("tests/shims/mtree")).args(["-deU", "-f"]).arg(tree.join("etc/mtree").join(spec)).arg("-p").arg(dir));
    }
}

/// The first file the tree's Makefile_upgrade.inc removes unconditionally.
fn first_to_remove(tree: &Path) -> String {
    let inc = std::fs::read_to_string(tree.join("Makefile_upgrade.inc")).unwrap();
    let top = inc.lines().take_while(|l| !l.starts_with(".if"));
    top.filter_map(|l| l.strip_prefix("TO_REMOVE+=")).find(|p| p.starts_with('/') && !p.contains('*')).unwrap().to_string()
}

/// lstat of each host path (existence; and size, mtime, inode for what is not
/// a directory, whose times other processes change).
fn host_state(paths: &[PathBuf]) -> BTreeMap<PathBuf, Option<(u64, i64, u64)>> {
    paths
        .iter()
        .map(|p| {
            let m = std::fs::symlink_metadata(p).ok().map(|m| if m.is_dir() { (0, 0, 0) } else { (m.size(), m.mtime(), m.ino()) });
            (p.clone(), m)
        })
        .collect()
}

#[test]
fn realtree_make_upgrade_from_the_shipped_subset_into_a_scratch_root() {
    let Some(src) = dfly_src() else { return };
    let t = tempdir();
    let work = t.path().canonicalize().unwrap();
    let tree = work.join("src");
    tree_copy(&src, &tree);
    // The fragment's own step assembles the subset; a small world carries it.
    let stage = work.join("stage");
    ok(&mut bmake(&tree.join("binarydists"), &["upgradesrc", &format!("STAGE={}", stage.display())]));
    let world = stage.join("world");
    std::fs::create_dir_all(world.join("etc/upgrade")).unwrap();
    std::fs::copy(tree.join("Makefile_upgrade.inc"), world.join("etc/upgrade/Makefile_upgrade.inc")).unwrap();
    let mut c = bin();
    c.args(["pack", "--series", "world", "--arch", "x86_64", "--branch", "master", "--rev", "r1", "--date", "20260101T000000Z"]);
    c.arg("--stage").arg(&world).arg("--upgrade-src").arg(stage.join("upgrade-src"));
    c.arg("--upgrade-list").arg(repo().join("etc/upgrade-subset.conf")).arg("-o").arg(work.join("dist"));
    ok(&mut c);
    let dist = work.join("dist/DragonFly-world-x86_64-master-20260101T000000Z-r1.tar.gz");

    // The _dhcp user's home lies outside the root: etc/Makefile's dhcpcd
    // lines `rm -rf' it without DESTDIR.
    let outside = work.join("outside/dhcpcd-chroot");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("keep"), "").unwrap();
    let obsolete = first_to_remove(&tree);
    let install = |root: &Path, log: &Path| {
        distrib_dirs(&tree, root);
        let planted = root.join(obsolete.trim_start_matches('/'));
        std::fs::create_dir_all(planted.parent().unwrap()).unwrap();
        std::fs::write(&planted, "obsolete\n").unwrap();
        let path = format!("{}:{}", repo().join("tests/shims").display(), std::env::var("PATH").unwrap_or_default());
        let mut c = bin();
        c.arg("install").arg("--root").arg(root).args(["--make", "bmake"]).arg(&dist);
        c.env("PATH", path).env("SHIM_LOG", log).env("SHIM_DHCP_HOME", &outside).env_remove("MAKEFLAGS");
        for kv in DRAGONFLY {
            let (k, v) = kv.split_once('=').unwrap();
            c.env(k, v);
        }
        ok(&mut c)
    };

    // A first run says which paths the upgrade writes; the host's copies of
    // those paths are then watched through a second run into a fresh root.
    let first = work.join("root1");
    install(&first, &work.join("shim1.log"));
    let root = work.join("root");
    distrib_dirs(&tree, &root);
    let before = snapshot(&root);
    let _ = std::fs::remove_dir_all(&root);
    let after = snapshot(&first);
    let mut written: Vec<PathBuf> = after.iter().filter(|(k, v)| before.get(*k) != Some(v)).map(|(k, _)| Path::new("/").join(k)).collect();
    written.extend(before.keys().filter(|k| !after.contains_key(*k)).map(|k| Path::new("/").join(k)));
    written.push(PathBuf::from(&obsolete));
    let host_before = host_state(&written);
    let log = work.join("shim.log");
    let out = install(&root, &log);
    let stderr = String::from_utf8_lossy(&out.stderr);

    assert!(root.join("etc/resolvconf.conf").is_file() && root.join("etc/dhcpcd.conf").is_file(), "{stderr}");
    assert!(root.join("etc/mail.rc").is_file() && root.join("etc/ssh/moduli").is_file());
    assert!(!root.join(obsolete.trim_start_matches('/')).exists(), "{obsolete} (TO_REMOVE) is still there");
    // Nothing outside the root changed: the guarded rm left the home alone,
    // ldconfig never ran, every shim was pointed inside the root, and the
    // host's copies of what the upgrade wrote are as they were.
    assert!(outside.join("keep").exists(), "make upgrade removed {}:\n{stderr}", outside.display());
    assert!(stderr.contains(&format!("guard: not removing {}", outside.display())), "{stderr}");
    assert!(stderr.contains("guard: skipped ldconfig -R"), "{stderr}");
    let shims = std::fs::read_to_string(&log).unwrap();
    let r = root.display().to_string();
    for line in shims.lines() {
        let w: Vec<&str> = line.split(' ').collect();
        let inside = |p: &str| p.starts_with(&format!("{r}/")) || p == r;
        let targets: Vec<&str> = match w[0] {
            "install" => vec![w[w.len() - 1]],
            "pw" => vec![w[2]],
            "ldconfig" => panic!("ldconfig reached the system: {line}"),
            _ => w[1..].iter().copied().filter(|a| a.starts_with('/')).collect(),
        };
        assert!(targets.iter().all(|p| inside(p)), "outside the root: {line}");
    }
    assert!(shims.lines().filter(|l| l.starts_with("install ")).count() > 20, "{shims}");
    assert_eq!(host_state(&written), host_before, "the host's copy of a path the upgrade wrote changed");
}
