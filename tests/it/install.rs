//! `binarydist install`: full installs compared entry by entry with GNU tar's
//! extraction, updates that write only what changed, flags and critical-file
//! order, kernel.old, the lock, `make upgrade`. Crashes and full disks are in
//! install_crash.rs, hostile archives in install_hostile.rs. The tree comparison
//! is in install/trees.rs.

mod trees;

use crate::util::{bin, fails, is_root, ok, sh, skip, tempdir};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use trees::is_state;
pub use trees::{assert_same_tree, assert_same_tree_but, tree, tree_differences};

pub const STAMPS: [&str; 4] = ["20261128T100000Z", "20261128T110000Z", "20261128T120000Z", "20261128T130000Z"];

/// GNU tar's extraction of `dist` into `dir`, with the critical `.new` files
/// renamed into place (their directory's mtime kept, as the installer keeps it).
pub fn gnu_tar_reference(dist: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    ok(Command::new("tar").arg("-xpf").arg(dist).arg("--numeric-owner").arg("-C").arg(dir));
    let info = ok(bin().arg("info").arg("--json").arg(dist)).stdout;
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
    for pair in info["critical"].as_array().unwrap() {
        let (stored, installed) = (dir.join(pair[0].as_str().unwrap()), dir.join(pair[1].as_str().unwrap()));
        let parent = stored.parent().unwrap();
        let mtime = std::fs::metadata(parent).unwrap().mtime();
        std::fs::rename(&stored, &installed).unwrap();
        ok(Command::new("touch").arg("-m").arg("-d").arg(format!("@{mtime}")).arg(parent));
    }
}

/// `binarydist pack` with a `make upgrade` subset taken from `src`.
pub fn pack_with_upgrade(stage: &Path, out: &Path, stamp: &str, rev: &str, src: &Path) -> PathBuf {
    let list = out.join("upgrade-list");
    std::fs::create_dir_all(out).unwrap();
    std::fs::write(&list, "Makefile\n").unwrap();
    let mut c = bin();
    c.args(["pack", "--series", "world", "--arch", "x86_64", "--branch", "master", "--rev", rev, "--date", stamp]);
    c.arg("--stage").arg(stage).arg("--upgrade-src").arg(src).arg("--upgrade-list").arg(&list).arg("-o").arg(out);
    ok(&mut c);
    out.join(format!("DragonFly-world-x86_64-master-{stamp}-{rev}.tar.gz"))
}

/// An upgrade subset standing in for /usr/src: its `upgrade` target removes
/// the TO_REMOVE files under DESTDIR and logs that it ran to $UPGRADE_LOG.
pub fn upgrade_src(dir: &Path, to_remove: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut mk = String::new();
    for f in to_remove {
        mk.push_str(&format!("TO_REMOVE+={f}\n"));
    }
    mk.push_str("TO_REMOVE?=\nupgrade:\n.for f in ${TO_REMOVE}\n\trm -f ${DESTDIR}${f}\n.endfor\n");
    mk.push_str(
        "\t@if [ -n \"$${UPGRADE_LOG}\" ]; then echo \"BINARY_UPGRADE=${BINARY_UPGRADE} DESTDIR=${DESTDIR}\" >> \"$${UPGRADE_LOG}\"; fi\n",
    );
    std::fs::write(dir.join("Makefile"), mk).unwrap();
}

/// World stage, revision 1: every entry kind, a hard-link pair, set-uid and
/// non-root owners, a long name, critical rtld and libc.
const STAGE_V1: &str = r#"
set -e
cd "$1"
mkdir -p bin lib libexec usr/bin usr/lib usr/share/doc/games var/run etc
printf 'sh v1\n' > bin/sh
seq 1 50000 > bin/ls
printf 'cp and mv\n' > bin/cp && ln bin/cp bin/mv
printf 'libc 8 v1\n' > lib/libc.so.8
printf 'rtld v1\n' > libexec/ld-elf.so.2
ln -s /lib/libc.so.8 usr/lib/libc.so
printf 'old\n' > usr/bin/oldprog
printf 'su\n' > usr/bin/su && chmod 4555 usr/bin/su
printf 'doc\n' > "usr/share/doc/$(printf 'x%.0s' $(seq 1 120)).txt"
printf 'games\n' > usr/share/doc/games/fortune && chown -R 7:8 usr/share/doc/games
printf 'welcome\n' > etc/motd
mkfifo -m 600 var/run/logpipe
chmod 555 bin/sh bin/ls bin/cp libexec/ld-elf.so.2 usr/bin/oldprog
chmod 444 lib/libc.so.8
find . -depth -exec touch -h -d @1700000000 {} +
"#;

/// Revision 2: changed ls, libc, rtld and symlink; a new library version (a new
/// critical name); a new program; oldprog dropped (and in TO_REMOVE); motd's mode.
const STAGE_V2: &str = r#"
set -e
cd "$1"
seq 1 50001 > bin/ls
printf 'libc 8 v2\n' > lib/libc.so.8
printf 'libc 9\n' > lib/libc.so.9 && chmod 444 lib/libc.so.9
printf 'rtld v2\n' > libexec/ld-elf.so.2
ln -sf /lib/libc.so.9 usr/lib/libc.so
rm usr/bin/oldprog
printf 'new\n' > usr/bin/newprog && chmod 555 usr/bin/newprog
chmod 600 etc/motd
find . -depth -newer bin/sh -exec touch -h -d @1700000100 {} +
touch -d @1700000100 bin lib usr/bin usr/lib
"#;

/// Revision 3: one file differs (bin/sh).
const STAGE_V3: &str = r#"
set -e
cd "$1"
printf 'sh v3, a little longer\n' > bin/sh
touch -d @1700000200 bin/sh
"#;

/// Where v2's make upgrade removes a file.
pub const V2_UPGRADED_DIRS: &[&str] = &["usr/bin"];

pub struct Fixture {
    pub dir: PathBuf,
    /// World dists, revisions 1 to 3.
    pub dists: Vec<PathBuf>,
    /// GNU tar's extraction of each, with the .new renames applied.
    pub refs: Vec<PathBuf>,
}

/// Built once per test run and shared: stages, dists, references.
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("install-fixture");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut dists = Vec::new();
        let mut refs = Vec::new();
        for (i, script) in [STAGE_V1, STAGE_V2, STAGE_V3].iter().enumerate() {
            let stage = dir.join(format!("stage{}", i + 1));
            if i == 0 {
                std::fs::create_dir(&stage).unwrap();
            } else {
                sh(&format!("cp -a '{}' '{}'", dir.join(format!("stage{i}")).display(), stage.display()));
            }
            sh(&format!("sh -c '{}' sh '{}'", script.replace('\'', "'\\''"), stage.display()));
            let src = dir.join(format!("src{}", i + 1));
            upgrade_src(&src, if i == 0 { &[] } else { &["/usr/bin/oldprog"] });
            let dist = pack_with_upgrade(&stage, &dir.join("dists"), STAMPS[i], &format!("v{}", i + 1), &src);
            // The source tree is gone before anything is installed: make upgrade
            // must run from the subset inside the dist.
            std::fs::remove_dir_all(&src).unwrap();
            let r = dir.join(format!("ref{}", i + 1));
            gnu_tar_reference(&dist, &r);
            dists.push(dist);
            refs.push(r);
        }
        Fixture { dir, dists, refs }
    })
}

/// A temporary directory holding `root`, with `dists` installed into it in turn.
pub fn root_with(dists: &[&Path]) -> (tempfile::TempDir, PathBuf) {
    let t = tempdir();
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    for d in dists {
        ok(&mut install(&root, d));
    }
    (t, root)
}

pub fn install(root: &Path, dist: &Path) -> Command {
    let mut c = bin();
    c.arg("install").arg("--root").arg(root).arg("--make").arg("bmake").arg("--json").arg(dist);
    c
}

pub fn summary(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn install_into_empty_root_matches_gnu_tar() {
    let f = fixture();
    let t = tempdir();
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let log = t.path().join("upgrade.log");
    let out = ok(install(&root, &f.dists[0]).env("UPGRADE_LOG", &log));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("staging"), "progress only on a terminal");
    let s = summary(&out);
    assert_eq!(s["make_upgrade"], "ran");
    assert_eq!(s["reboot_needed"], true, "libc and rtld are new");
    assert_same_tree(&root, &f.refs[0]);
    assert_eq!(
        std::fs::read(root.join("var/db/binarydist/world/MANIFEST")).unwrap(),
        std::fs::read(f.refs[0].join("+MANIFEST")).unwrap(),
        "the manifest is kept in the state directory"
    );
    assert!(!root.join("+MANIFEST").exists());
    // The plain upgrade, as a source upgrade runs it (BINARY_UPGRADE would
    // leave resolvconf.conf and dhcpcd.conf out).
    assert_eq!(std::fs::read_to_string(&log).unwrap(), format!("BINARY_UPGRADE= DESTDIR={}\n", root.display()));
    // The kept base is the dist's tar.
    let base = root.join("var/db/binarydist/world/base.tar.gz");
    assert_eq!(std::fs::read(base).unwrap(), std::fs::read(&f.dists[0]).unwrap());
    // Again: already installed, nothing written.
    let s = summary(&ok(&mut install(&root, &f.dists[0])));
    assert_eq!(s["already_installed"], true);
}

#[test]
fn update_matches_gnu_tar_and_runs_make_upgrade_once() {
    let f = fixture();
    let t = tempdir();
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let log = t.path().join("upgrade.log");
    ok(&mut install(&root, &f.dists[0]));
    let ls_before = std::fs::metadata(root.join("bin/cp")).unwrap().ino();
    let s = summary(&ok(install(&root, &f.dists[1]).env("UPGRADE_LOG", &log)));
    assert_same_tree_but(&root, &f.refs[1], V2_UPGRADED_DIRS);
    assert!(!root.join("usr/bin/oldprog").exists(), "make upgrade removed the TO_REMOVE file");
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 1, "make upgrade ran exactly once");
    assert_eq!(std::fs::metadata(root.join("bin/cp")).unwrap().ino(), ls_before, "unchanged file not rewritten");
    assert!(s["metadata_only"].as_u64().unwrap() >= 1, "motd's mode: {s}");
    let first = f.dists[0].file_name().unwrap().to_string_lossy().replace(".tar.gz", "");
    assert!(root.join(format!("var/db/binarydist/world/gen.{first}.tar.gz")).exists(), "the previous base is a kept generation");
    assert_eq!(std::fs::read(root.join("var/db/binarydist/world/base.tar.gz")).unwrap(), std::fs::read(&f.dists[1]).unwrap());
}

#[test]
fn update_of_one_file_writes_that_file_only() {
    let f = fixture();
    let (_t, root) = root_with(&[&f.dists[1]]);
    let before = tree_inodes(&root);
    let usr_bin = std::fs::metadata(root.join("usr/bin")).unwrap().mtime();
    let s = summary(&ok(&mut install(&root, &f.dists[2])));
    assert_same_tree_but(&root, &f.refs[2], V2_UPGRADED_DIRS);
    assert_eq!(std::fs::metadata(root.join("usr/bin")).unwrap().mtime(), usr_bin);
    let sh_len = std::fs::metadata(root.join("bin/sh")).unwrap().len();
    let manifest_len = std::fs::metadata(root.join("var/db/binarydist/world/MANIFEST")).unwrap().len();
    assert_eq!(s["written"], 1, "{s}");
    assert_eq!(s["bytes_written"].as_u64().unwrap(), sh_len + manifest_len, "only bin/sh and the manifest: {s}");
    let after = tree_inodes(&root);
    let rewritten: Vec<_> = before.iter().filter(|(p, i)| after.get(*p) != Some(i)).map(|(p, _)| p.clone()).collect();
    assert_eq!(rewritten, vec![PathBuf::from("bin/sh")]);
}

fn tree_inodes(root: &Path) -> BTreeMap<PathBuf, u64> {
    let out = sh(&format!("cd '{}' && find . -type f -printf '%P %i\\n'", root.display()));
    out.lines()
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(p, _)| !is_state(Path::new(p)))
        .map(|(p, i)| (PathBuf::from(p), i.parse().unwrap()))
        .collect()
}

#[test]
fn flags_are_cleared_then_renamed_then_set_and_rtld_libc_go_last() {
    let f = fixture();
    let (t, root) = root_with(&[&f.dists[0]]);
    let flags = t.path().join("flags");
    std::fs::create_dir(&flags).unwrap();
    let libc = root.join("lib/libc.so.8");
    std::fs::write(flags.join("flags"), format!("{}\tschg\n", libc.display())).unwrap();
    ok(install(&root, &f.dists[1]).env("BINARYDIST_TEST_FLAGS", &flags));
    let calls = std::fs::read_to_string(flags.join("calls")).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    let at = |l: String| lines.iter().position(|x| *x == l).unwrap_or_else(|| panic!("no {l:?} in\n{calls}"));
    let clear = at(format!("set\t{}\t", libc.display()));
    let rename = at(format!("rename\t{}", libc.display()));
    assert_eq!(rename, clear + 1, "{calls}");
    let renames: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix("rename\t")).collect();
    let n = renames.len();
    assert!(renames[n - 2].ends_with("/libexec/ld-elf.so.2") && renames[n - 1].ends_with("/lib/libc.so.8"), "{calls}");
    let new_lib = renames.iter().position(|r| r.ends_with("/lib/libc.so.9")).unwrap();
    let ls = renames.iter().position(|r| r.ends_with("/bin/ls")).unwrap();
    assert!(new_lib < ls, "a new library name goes first: {calls}");
}

#[test]
fn flags_from_the_dist_are_set_after_the_rename() {
    let t = tempdir();
    let stage = t.path().join("stage");
    let flags = t.path().join("flags");
    std::fs::create_dir_all(stage.join("lib")).unwrap();
    std::fs::create_dir(&flags).unwrap();
    std::fs::write(stage.join("lib/libc.so.8"), "libc\n").unwrap();
    std::fs::write(flags.join("flags"), format!("{}\tschg\n", stage.join("lib/libc.so.8").display())).unwrap();
    let mut c = bin();
    c.args(["pack", "--series", "world", "--arch", "x86_64", "--branch", "master", "--rev", "v1", "--date", STAMPS[0]]);
    c.arg("--stage").arg(&stage).arg("-o").arg(t.path()).env("BINARYDIST_TEST_FLAGS", &flags);
    ok(&mut c);
    std::fs::remove_file(flags.join("flags")).unwrap();
    let dist = t.path().join(format!("DragonFly-world-x86_64-master-{}-v1.tar.gz", STAMPS[0]));
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    ok(install(&root, &dist).env("BINARYDIST_TEST_FLAGS", &flags));
    let calls = std::fs::read_to_string(flags.join("calls")).unwrap();
    let libc = root.join("lib/libc.so.8").display().to_string();
    assert!(calls.contains(&format!("rename\t{libc}\nset\t{libc}\tschg\n")), "{calls}");
}

fn kernel_stage(dir: &Path, rev: &str) {
    sh(&format!(
        "set -e; mkdir -p '{0}/boot/kernel'; printf 'kernel {1}\\n' > '{0}/boot/kernel/kernel'; \
         printf 'mod {1}\\n' > '{0}/boot/kernel/{1}.ko'; find '{0}' -exec touch -h -d @1700000000 {{}} +",
        dir.display(),
        rev
    ));
}

#[test]
fn kernel_dist_turns_the_current_kernel_into_kernel_old() {
    let t = tempdir();
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let mut dists = Vec::new();
    std::fs::create_dir(t.path().join("out")).unwrap();
    for (i, rev) in ["k1", "k2", "k3"].iter().enumerate() {
        let stage = t.path().join(rev);
        kernel_stage(&stage, rev);
        dists.push(crate::util::pack(&stage, &t.path().join("out"), "kernel.GENERIC", STAMPS[i], rev));
    }
    let s = summary(&ok(&mut install(&root, &dists[0])));
    assert_eq!(s["reboot_needed"], true);
    assert_eq!(s["make_upgrade"], "none");
    assert!(!root.join("boot/kernel.old").exists());
    ok(&mut install(&root, &dists[1]));
    ok(&mut install(&root, &dists[2]));
    assert_eq!(std::fs::read_to_string(root.join("boot/kernel/kernel")).unwrap(), "kernel k3\n");
    assert!(!root.join("boot/kernel/k2.ko").exists(), "the kernel directory is replaced whole");
    assert_eq!(std::fs::read_to_string(root.join("boot/kernel.old/kernel")).unwrap(), "kernel k2\n");
    assert!(root.join("boot/kernel.old/k2.ko").exists() && !root.join("boot/kernel.old/k1.ko").exists());
    let r = t.path().join("ref");
    gnu_tar_reference(&dists[2], &r);
    std::fs::remove_dir_all(root.join("boot/kernel.old")).unwrap();
    let m = std::fs::metadata(r.join("boot")).unwrap().mtime();
    ok(Command::new("touch").arg("-m").arg("-d").arg(format!("@{m}")).arg(root.join("boot")));
    assert_same_tree(&root, &r);
}

#[test]
fn a_second_install_refuses_while_one_runs_waits_with_wait_and_a_dead_lock_is_no_lock() {
    use rustix::fs::{flock, FlockOperation};
    use std::io::BufRead;
    let f = fixture();
    let t = tempdir();
    let root = t.path().join("root");
    std::fs::create_dir_all(root.join("var/db/binarydist")).unwrap();
    let lock = root.join("var/db/binarydist/lock");
    // This process holds the lock, as a running install would.
    std::fs::write(&lock, "4242\n").unwrap();
    let held = std::fs::File::open(&lock).unwrap();
    flock(&held, FlockOperation::NonBlockingLockExclusive).unwrap();
    let err = fails(&mut install(&root, &f.dists[0]));
    assert!(err.contains("another install is running") && err.contains("pid 4242"), "{err}");
    assert!(!root.join("bin").exists());

    // --wait says it waits, and does, until the lock is let go.
    let mut waiting = install(&root, &f.dists[0]).arg("--wait").stderr(std::process::Stdio::piped()).spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = waiting.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let said = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("no line from the waiting install");
    assert!(said.contains("waiting for the install running on"), "{said}");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(waiting.try_wait().unwrap().is_none(), "the install did not wait for the lock");
    assert!(!root.join("bin").exists(), "installed while the lock was held");
    drop(held);
    assert!(waiting.wait().unwrap().success());
    reader.join().unwrap();
    assert_eq!(std::fs::read_to_string(root.join("bin/sh")).unwrap(), "sh v1\n");

    // A lock file left by a process that died holds no flock: no lock at all.
    std::fs::write(&lock, "999999\n").unwrap();
    ok(&mut install(&root, &f.dists[1]));
}

#[test]
fn a_failing_make_upgrade_is_reported_and_retried_by_the_next_run() {
    let f = fixture();
    let t = tempdir();
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let mut c = bin();
    c.arg("install").arg("--root").arg(&root).args(["--make", "false"]).arg(&f.dists[0]);
    let err = fails(&mut c);
    assert!(err.contains("make upgrade") && err.contains("binaries are in place"), "{err}");
    assert!(root.join("var/db/binarydist/journal").exists());
    assert_eq!(std::fs::read_to_string(root.join("bin/sh")).unwrap(), "sh v1\n");
    let log = t.path().join("upgrade.log");
    let s = summary(&ok(install(&root, &f.dists[0]).env("UPGRADE_LOG", &log)));
    assert_eq!(s["interrupted"], "finished");
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 1);
    assert!(!root.join("var/db/binarydist/journal").exists());
    assert_same_tree(&root, &f.refs[0]);
}

#[test]
fn a_dist_that_does_not_match_its_sidecar_leaves_the_root_as_it_was() {
    let f = fixture();
    let (t, root) = root_with(&[&f.dists[0]]);
    let before = tree(&root);
    let d = t.path().join("d");
    std::fs::create_dir(&d).unwrap();
    let dist = d.join(f.dists[1].file_name().unwrap());
    std::fs::copy(&f.dists[1], &dist).unwrap();
    let name = f.dists[1].file_name().unwrap().to_str().unwrap().trim_end_matches(".gz").to_string();
    std::fs::write(d.join(format!("{name}.md5")), format!("MD5 ({name}) = {}\n", "0".repeat(32))).unwrap();
    std::fs::copy(f.dists[1].with_file_name(format!("{name}.sha256")), d.join(format!("{name}.sha256"))).unwrap();
    let err = fails(&mut install(&root, &dist));
    assert!(err.contains("MD5") && err.contains("nothing was installed"), "{err}");
    assert!(tree(&root) == before, "root changed");
    assert!(!root.join("var/db/binarydist/journal").exists());
    let leftovers = sh(&format!("find '{}' -name '.bdtmp.*' -o -name '.base.new*'", root.display()));
    assert!(leftovers.is_empty(), "{leftovers}");
}

#[test]
fn device_nodes_are_made_when_root() {
    if !is_root() {
        return skip("device nodes need root");
    }
    let t = tempdir();
    let stage = t.path().join("stage");
    std::fs::create_dir_all(stage.join("dev")).unwrap();
    if !Command::new("mknod").arg(stage.join("dev/zero")).args(["c", "1", "5"]).status().unwrap().success() {
        return skip("mknod is not allowed here");
    }
    let dist = crate::util::pack(&stage, t.path(), "world", STAMPS[0], "v1");
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    ok(&mut install(&root, &dist));
    let r = t.path().join("ref");
    gnu_tar_reference(&dist, &r);
    assert_same_tree(&root, &r);
}

#[test]
fn a_plain_tar_dist_installs_and_its_base_is_kept_gzipped() {
    let f = fixture();
    let t = tempdir();
    let gz = &f.dists[0];
    let stem = gz.file_name().unwrap().to_str().unwrap().trim_end_matches(".gz");
    let tar = t.path().join(stem);
    sh(&format!("gzip -dc '{}' > '{}'", gz.display(), tar.display()));
    for side in [".md5", ".sha256"] {
        std::fs::copy(gz.with_file_name(format!("{stem}{side}")), t.path().join(format!("{stem}{side}"))).unwrap();
    }
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    ok(&mut install(&root, &tar));
    assert_same_tree(&root, &f.refs[0]);
    let base = root.join("var/db/binarydist/world/base.tar.gz");
    assert_eq!(&std::fs::read(&base).unwrap()[..2], &[0x1f, 0x8b]);
    let same = Command::new("sh").arg("-c").arg(format!("gzip -dc '{}' | cmp -s - '{}'", base.display(), tar.display())).status().unwrap();
    assert!(same.success(), "the kept base is the dist's tar");
}

#[test]
fn a_dist_for_another_arch_is_refused() {
    let f = fixture();
    let (t, root) = root_with(&[&f.dists[0]]);
    let before = tree(&root);
    let mut c = bin();
    c.args(["pack", "--series", "world", "--arch", "aarch64", "--branch", "master", "--rev", "a1", "--date", STAMPS[3]]);
    c.arg("--stage").arg(f.dir.join("stage1")).arg("-o").arg(t.path());
    ok(&mut c);
    let dist = t.path().join(format!("DragonFly-world-aarch64-master-{}-a1.tar.gz", STAMPS[3]));
    let err = fails(&mut install(&root, &dist));
    assert!(err.contains("arch") && err.contains("x86_64") && err.contains("aarch64"), "{err}");
    assert!(tree(&root) == before);
}

#[test]
fn a_root_that_is_not_a_directory_is_refused() {
    let f = fixture();
    let t = tempdir();
    let not_dir = t.path().join("file");
    std::fs::write(&not_dir, "x").unwrap();
    let err = fails(&mut install(&not_dir, &f.dists[0]));
    assert!(err.contains("the root is not a directory"), "{err}");
    let err = fails(&mut install(&t.path().join("missing"), &f.dists[0]));
    assert!(err.contains("No such file or directory"), "{err}");
}

#[test]
fn progress_is_shown_on_a_terminal() {
    let f = fixture();
    let t = tempdir();
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    // script(1) gives the install a pseudo-terminal.
    let cmd = format!("'{}' install --root '{}' --make bmake '{}'", env!("CARGO_BIN_EXE_binarydist"), root.display(), f.dists[0].display());
    let Ok(out) = Command::new("script").args(["-qec", &cmd, "/dev/null"]).output() else {
        return skip("no script(1)");
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("staging 0/") && text.contains("staged"), "{text}");
}
