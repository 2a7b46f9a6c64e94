//! `binarydist pack`, `verify` and `info` on a stage with every kind of entry,
//! read back by GNU tar, bsdtar and gzip.

use crate::util::*;
use rustix::fs::{mkfifoat, mknodat, FileType, Mode, CWD};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const T: i64 = 1_700_000_000;
const STAMP: &str = "20261128T103900Z";
const NAME: &str = "DragonFly-world-x86_64-master-20261128T103900Z-v6.5.0.1.gabcde";

/// A path of more than 255 bytes, in directories of legal name length.
fn long_dir() -> PathBuf {
    PathBuf::from(format!("usr/share/{}/{}/{}", "a".repeat(100), "b".repeat(100), "c".repeat(60)))
}

/// Pseudo-random but compressible data, enough for several deflate blocks.
fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|i| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            if i % 7 == 0 {
                (x >> 59) as u8 + b'a'
            } else {
                b"the quick brown fox "[i % 20]
            }
        })
        .collect()
}

enum Step {
    Dir(&'static str, u32),
    File(String, u32, Vec<u8>),
    Link(&'static str, &'static str),
    HardLink(&'static str, &'static str),
    Fifo(&'static str),
    Dev(&'static str, u64),
}

fn steps() -> Vec<Step> {
    use Step::*;
    let long = long_dir();
    vec![
        Dir("bin", 0o755),
        Dir("lib", 0o755),
        Dir("libexec", 0o755),
        Dir("usr", 0o755),
        Dir("usr/bin", 0o755),
        Dir("usr/lib", 0o755),
        Dir("usr/lib/thread", 0o755),
        Dir("usr/share", 0o755),
        Dir("tmp", 0o1777),
        Dir("var", 0o755),
        Dir("var/run", 0o755),
        Dir("dev", 0o755),
        File("bin/sh".into(), 0o555, data(1, 3 << 20)),
        File("usr/bin/passwd".into(), 0o4555, data(2, 40_000)),
        File("usr/bin/wall".into(), 0o2555, data(3, 10_000)),
        File("bin/test".into(), 0o555, data(4, 5_000)),
        HardLink("bin/test", "bin/["),
        HardLink("bin/test", "usr/bin/test"),
        File("lib/libc.so.8".into(), 0o444, data(5, 200_000)),
        File("libexec/ld-elf.so.2".into(), 0o555, data(6, 60_000)),
        File("usr/lib/thread/libthread_xu.so.2".into(), 0o444, data(7, 30_000)),
        Link("../../lib/libc.so.8", "usr/lib/libc.so"),
        Link(Box::leak(format!("../{}/target", "t".repeat(150)).into_boxed_str()), "usr/lib/longlink"),
        File(long.join("file-at-the-end-of-a-long-path").to_string_lossy().into_owned(), 0o644, data(8, 1000)),
        File("usr/share/empty".into(), 0o644, Vec::new()),
        Fifo("var/run/fifo"),
        Dev("dev/null", rustix::fs::makedev(1, 3)),
    ]
}

/// Builds the stage; `reverse` creates the entries in another order.
fn build_stage(root: &Path, reverse: bool) {
    let mut steps = steps();
    if reverse {
        steps.reverse();
    }
    fs::create_dir_all(root).unwrap();
    if !is_root() {
        // Outside CI, the rest of the test still runs without them.
        skip("the stage's device node and owners need root");
    }
    let mkparent = |p: &Path| fs::create_dir_all(p.parent().unwrap()).unwrap();
    // Hard links need their target: make those in a second round.
    for round in 0..2 {
        for s in &steps {
            match (round, s) {
                (0, Step::Dir(d, _)) => fs::create_dir_all(root.join(d)).unwrap(),
                (0, Step::File(f, _, bytes)) => {
                    mkparent(&root.join(f));
                    fs::write(root.join(f), bytes).unwrap();
                }
                (0, Step::Link(target, l)) => {
                    mkparent(&root.join(l));
                    std::os::unix::fs::symlink(target, root.join(l)).unwrap();
                }
                (1, Step::HardLink(target, l)) => fs::hard_link(root.join(target), root.join(l)).unwrap(),
                (0, Step::Fifo(f)) => {
                    mkparent(&root.join(f));
                    mkfifoat(CWD, root.join(f), Mode::from_raw_mode(0o644)).unwrap();
                }
                (0, Step::Dev(d, dev)) if is_root() => {
                    mkparent(&root.join(d));
                    mknodat(CWD, root.join(d), FileType::CharacterDevice, Mode::from_raw_mode(0o666), *dev).unwrap();
                }
                _ => {}
            }
        }
    }
    for s in &steps {
        let (p, mode) = match s {
            Step::Dir(d, m) => (root.join(d), *m),
            Step::File(f, m, _) => (root.join(f), *m),
            _ => continue,
        };
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }
    if is_root() {
        sh(&format!("chown 1001:2002 '{}'", root.join("usr/bin/wall").display()));
    }
    // Same mtimes whatever the creation order did to directories.
    sh(&format!("find '{}' -exec touch -h -d @{T} {{}} +", root.display()));
}

fn pack_cmd(stage: &Path, out: &Path) -> Command {
    let mut c = bin();
    c.args(["pack", "--series", "world", "--arch", "x86_64", "--branch", "master", "--rev", "v6.5.0.1.gabcde", "--date", STAMP]);
    c.arg("--stage").arg(stage).arg("-o").arg(out);
    c.env_remove("SOURCE_DATE_EPOCH");
    c
}

/// A temporary directory with the sample stage packed: (dir, stage, DISTDIR).
fn packed_sample() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let t = tempdir();
    let stage = t.path().join("stage");
    build_stage(&stage, false);
    let out = t.path().join("out");
    ok(&mut pack_cmd(&stage, &out));
    (t, stage, out)
}

fn dist_in(out: &Path) -> PathBuf {
    out.join(format!("{NAME}.tar.gz"))
}

#[test]
fn same_stage_gives_same_bytes_whatever_order_umask_and_tz() {
    let t = tempdir();
    build_stage(&t.path().join("a"), false);
    build_stage(&t.path().join("b"), true);
    let mut c1 = pack_cmd(&t.path().join("a"), &t.path().join("out1"));
    ok(c1.env("TZ", "UTC"));
    let mut c2 = Command::new("sh");
    c2.arg("-c").arg("umask 077; exec \"$@\"").arg("sh").arg(env!("CARGO_BIN_EXE_binarydist"));
    c2.args(["pack", "--series", "world", "--arch", "x86_64", "--branch", "master", "--rev", "v6.5.0.1.gabcde", "--date", STAMP]);
    c2.arg("--stage").arg(t.path().join("b")).arg("-o").arg(t.path().join("out2"));
    ok(c2.env("TZ", "Pacific/Chatham"));
    for suffix in [".tar.gz", ".tar.md5", ".tar.sha256"] {
        let a = fs::read(t.path().join("out1").join(format!("{NAME}{suffix}"))).unwrap();
        let b = fs::read(t.path().join("out2").join(format!("{NAME}{suffix}"))).unwrap();
        assert!(a == b, "{suffix} differs between the two packs");
    }
    // Served as plain files: world-readable.
    let mode = fs::metadata(dist_in(&t.path().join("out1"))).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644);
}

#[test]
fn gnu_tar_and_bsdtar_extract_the_same_tree_as_the_stage() {
    let (t, stage, out) = packed_sample();
    let dist = dist_in(&out);
    let (gnu, bsd) = (t.path().join("gnu"), t.path().join("bsd"));
    fs::create_dir_all(&gnu).unwrap();
    fs::create_dir_all(&bsd).unwrap();
    // The seed's manual pipeline: gunzip < dist | tar xpf -
    sh(&format!("gunzip < '{}' | tar --numeric-owner -xpf - -C '{}'", dist.display(), gnu.display()));
    sh(&format!("bsdtar --numeric-owner -xpf '{}' -C '{}'", dist.display(), bsd.display()));
    let (g, b) = (snapshot(&gnu), snapshot(&bsd));
    assert!(snapshot_diff(&g, &b).is_empty(), "GNU tar and bsdtar disagree:\n{}", snapshot_diff(&g, &b).join("\n"));

    // Against the stage: the manifest is added, critical files carry .new.
    for f in ["lib/libc.so.8", "libexec/ld-elf.so.2", "usr/lib/thread/libthread_xu.so.2"] {
        let p = gnu.join(f);
        let mut new = p.clone().into_os_string();
        new.push(".new");
        fs::rename(&new, &p).unwrap_or_else(|e| panic!("{f}.new: {e}"));
        // The rename itself touched the directory, as an install's would.
        sh(&format!("touch -d @{T} '{}'", p.parent().unwrap().display()));
    }
    fs::remove_file(gnu.join("+MANIFEST")).unwrap();
    let g = snapshot(&gnu);
    let mut s = snapshot(&stage);
    if !is_root() {
        s.remove(Path::new("dev/null"));
    }
    assert!(snapshot_diff(&s, &g).is_empty(), "extraction differs from the stage:\n{}", snapshot_diff(&s, &g).join("\n"));
    let listing = sh(&format!("tar -tvf '{}'", dist.display()));
    assert!(listing.lines().next().unwrap().ends_with(" +MANIFEST"), "manifest is not first:\n{listing}");
    assert!(listing.contains("usr/bin/test link to bin/["), "hard link not kept as a link:\n{listing}");
    assert!(listing.contains("-rwsr-xr-x") || listing.contains("-r-sr-xr-x"), "setuid lost:\n{listing}");
}

#[test]
fn gzip_accepts_it_and_sidecars_match_the_uncompressed_tar() {
    let (_t, _stage, out) = packed_sample();
    let dist = dist_in(&out);
    sh(&format!("gzip -t '{}'", dist.display()));
    let md5 = sh(&format!("gunzip -c '{}' | md5sum", dist.display()));
    let sha = sh(&format!("gunzip -c '{}' | sha256sum", dist.display()));
    let md5_side = fs::read_to_string(out.join(format!("{NAME}.tar.md5"))).unwrap();
    let sha_side = fs::read_to_string(out.join(format!("{NAME}.tar.sha256"))).unwrap();
    assert_eq!(md5_side, format!("MD5 ({NAME}.tar) = {}\n", &md5[..32]));
    assert_eq!(sha_side, format!("SHA256 ({NAME}.tar) = {}\n", &sha[..64]));
    // Several gzip blocks: the 3 MiB file cannot fit in one deflate block.
    assert!(fs::metadata(&dist).unwrap().len() > 100_000);

    let v = ok(bin().arg("verify").arg(&dist));
    assert!(String::from_utf8_lossy(&v.stdout).contains("OK"));
    let j = ok(bin().args(["info", "--json"]).arg(&dist));
    let info: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(info["name"], NAME);
    assert_eq!(info["series"], "world");
    assert_eq!(info["md5"], &md5[..32]);
    assert_eq!(info["critical"].as_array().unwrap().len(), 3);
    let entries = sh(&format!("tar -tf '{}' | wc -l", dist.display())).trim().parse::<u64>().unwrap();
    assert_eq!(info["entries"].as_u64().unwrap() + 1, entries, "manifest entry count");
}

#[test]
fn verify_catches_a_changed_dist_or_sidecar() {
    let (t, _stage, out) = packed_sample();
    let dist = dist_in(&out);
    let side = out.join(format!("{NAME}.tar.sha256"));
    let good = fs::read_to_string(&side).unwrap();
    fs::write(&side, good.replace(&good[good.len() - 9..], "00000000\n")).unwrap();
    let err = fails(bin().arg("verify").arg(&dist));
    assert!(err.contains("SHA256") && err.contains(".tar.sha256"), "{err}");
    fs::write(&side, good).unwrap();
    // A member rewritten behind the manifest's back, with a valid tar around it.
    let x = t.path().join("x");
    fs::create_dir_all(&x).unwrap();
    sh(&format!(
        "cd '{x}' && gunzip -c '{d}' | tar -xpf - && echo tampered > bin/sh && tar --format=ustar -cf - +MANIFEST var bin dev lib libexec tmp usr | gzip > '{d}'",
        x = x.display(),
        d = dist.display()
    ));
    let err = fails(bin().arg("verify").arg(&dist));
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn file_flags_are_written_as_bsdtar_writes_them() {
    let t = tempdir();
    let stage = t.path().join("stage");
    build_stage(&stage, false);
    let flagdir = t.path().join("flags");
    fs::create_dir_all(&flagdir).unwrap();
    let abs = |p: &str| stage.join(p).display().to_string();
    fs::write(
        flagdir.join("flags"),
        format!("{}\tschg\n{}\tschg,nodump\n{}\tuappnd\n", abs("lib/libc.so.8"), abs("bin/sh"), abs("usr/share/empty")),
    )
    .unwrap();
    let out = t.path().join("out");
    ok(pack_cmd(&stage, &out).env("BINARYDIST_TEST_FLAGS", &flagdir));
    let mtree = sh(&format!("bsdtar -cf - --format=mtree '@{}'", dist_in(&out).display()));
    let line =
        |p: &str| mtree.lines().find(|l| l.starts_with(&format!("./{p} "))).unwrap_or_else(|| panic!("{p} not in:\n{mtree}")).to_string();
    assert!(line("lib/libc.so.8.new").contains("flags=schg"), "{}", line("lib/libc.so.8.new"));
    assert!(line("usr/share/empty").contains("flags=uappnd"), "{}", line("usr/share/empty"));
    // schg in the stage makes a file critical, listed or not.
    assert!(line("bin/sh.new").contains("flags=schg,nodump") || line("bin/sh.new").contains("flags=nodump,schg"));
}

#[test]
fn source_date_epoch_clamps_mtimes_and_names_the_build() {
    let t = tempdir();
    let stage = t.path().join("stage");
    build_stage(&stage, false);
    sh(&format!("touch -d @{} '{}'", T + 5000, stage.join("bin/sh").display()));
    let out = t.path().join("out");
    let mut c = bin();
    c.args([
        "pack",
        "--series",
        "kernel",
        "--kernconf",
        "X86_64_GENERIC",
        "--arch",
        "x86_64",
        "--branch",
        "DragonFly_RELEASE_6_4",
        "--rev",
        "v6.4.2",
    ]);
    c.arg("--stage").arg(&stage).arg("-o").arg(&out).env("SOURCE_DATE_EPOCH", (T + 100).to_string());
    ok(&mut c);
    let name = "DragonFly-kernel.X86_64_GENERIC-x86_64-DragonFly_RELEASE_6_4-20231114T221500Z-v6.4.2";
    let dist = out.join(format!("{name}.tar.gz"));
    let listing = sh(&format!("tar --full-time -tvf '{}'", dist.display()));
    let sh_line = listing.lines().find(|l| l.ends_with(" bin/sh")).unwrap();
    assert!(sh_line.contains("2023-11-14 22:15:00"), "not clamped: {sh_line}");
    let manifest = sh(&format!("tar -xOf '{}' +MANIFEST", dist.display()));
    assert!(manifest.contains("series kernel.X86_64_GENERIC"), "{manifest}");
    ok(bin().arg("verify").arg(&dist));
}

#[test]
fn upgrade_subset_goes_under_a_private_prefix() {
    let t = tempdir();
    let stage = t.path().join("stage");
    build_stage(&stage, false);
    let src = t.path().join("src");
    for f in ["Makefile", "Makefile.inc1", "etc/Makefile", "etc/mail.rc", "share/mk/bsd.prog.mk", "usr.bin/not-listed.c"] {
        fs::create_dir_all(src.join(f).parent().unwrap()).unwrap();
        fs::write(src.join(f), f).unwrap();
    }
    let list = t.path().join("subset.conf");
    fs::write(&list, "# test list\nMakefile\nMakefile.inc1\netc\nshare/mk/*.mk\n").unwrap();
    let out = t.path().join("out");
    ok(pack_cmd(&stage, &out).arg("--upgrade-src").arg(&src).arg("--upgrade-list").arg(&list));
    let listing = sh(&format!("tar -tf '{}'", dist_in(&out).display()));
    for want in ["Makefile", "Makefile.inc1", "etc/", "etc/Makefile", "etc/mail.rc", "share/mk/bsd.prog.mk"] {
        assert!(listing.lines().any(|l| l == format!("usr/share/binarydist/upgrade-src/{want}")), "{want} missing:\n{listing}");
    }
    assert!(!listing.contains("not-listed") && !listing.contains("usr/src"), "{listing}");
    let info = sh(&format!("{} info '{}'", env!("CARGO_BIN_EXE_binarydist"), dist_in(&out).display()));
    assert!(info.contains("upgrade-src usr/share/binarydist/upgrade-src"), "{info}");
    // A listed file that the tree lacks is named.
    fs::write(&list, "Makefile\nMakefile.ssh.common\n").unwrap();
    let err = fails(pack_cmd(&stage, &t.path().join("out2")).arg("--upgrade-src").arg(&src).arg("--upgrade-list").arg(&list));
    assert!(err.contains("Makefile.ssh.common") && err.contains("missing"), "{err}");
}

/// Each bad input: one line naming the path and the problem, non-zero exit,
/// nothing left in DISTDIR.
fn assert_clean_failure(err: &str, mentions: &[&str], out: &Path) {
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    for m in mentions {
        assert!(err.contains(m), "{m:?} not in {err:?}");
    }
    let left: Vec<_> = fs::read_dir(out).map(|d| d.map(|e| e.unwrap().file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn bad_stage_and_bad_names_fail_clearly() {
    let t = tempdir();
    let out = t.path().join("out");
    let missing = t.path().join("no-such-stage");
    let err = fails(&mut pack_cmd(&missing, &out));
    assert_clean_failure(&err, &["no-such-stage", "No such file"], &out);

    let stage = t.path().join("stage");
    build_stage(&stage, false);
    for (branch, rev, mentions) in [("my branch", "v1", ["branch", "my branch"]), ("master", "v1-2", ["v1-2", "'-'"])] {
        let mut c = bin();
        c.args(["pack", "--series", "world", "--arch", "x86_64", "--branch", branch, "--rev", rev, "--date", STAMP]);
        c.arg("--stage").arg(&stage).arg("-o").arg(&out);
        assert_clean_failure(&fails(&mut c), &mentions, &out);
    }
}

#[test]
fn a_file_that_changes_or_vanishes_while_packing_is_caught() {
    let t = tempdir();
    let stage = t.path().join("stage");
    build_stage(&stage, false);
    let out = t.path().join("out");
    let victim = stage.join("usr/bin/passwd");
    for (hook, what) in [
        (format!("printf X | dd of='{}' bs=1 seek=10 conv=notrunc 2>/dev/null", victim.display()), "changed while packing"),
        (format!("echo more >> '{}'", victim.display()), "changed while packing"),
        (format!("rm '{}'", victim.display()), "vanished while packing"),
    ] {
        let err = fails(pack_cmd(&stage, &out).env("BINARYDIST_TEST_HOOK_PACK", &hook));
        assert_clean_failure(&err, &["usr/bin/passwd", what], &out);
        build_stage_file_again(&stage);
    }
}

fn build_stage_file_again(stage: &Path) {
    fs::write(stage.join("usr/bin/passwd"), data(2, 40_000)).unwrap();
}

#[test]
fn unwritable_or_full_distdir_leaves_nothing_behind() {
    let t = tempdir();
    let stage = t.path().join("stage");
    build_stage(&stage, false);
    // A DISTDIR under a regular file cannot be made.
    let file = t.path().join("file");
    fs::write(&file, "").unwrap();
    let err = fails(&mut pack_cmd(&stage, &file.join("out")));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("file/out") && err.contains("Not a directory"), "{err}");

    if !is_root() {
        return skip("read-only and full file systems need root to mount");
    }
    let Some(fs) = Tmpfs::mount(&t.path().join("mnt"), "256k") else { return };
    let mnt = fs.0.clone();
    let err = fails(&mut pack_cmd(&stage, &mnt));
    assert_clean_failure(&err, &["No space left on device", NAME], &mnt);
    fs.remount("ro");
    let err = fails(&mut pack_cmd(&stage, &mnt));
    assert_clean_failure(&err, &["Read-only file system"], &mnt);
}

#[test]
fn an_error_prints_its_chain_once_on_one_line() {
    // No message embeds its cause: main prints the chain, each cause once.
    let (t, _stage, out) = packed_sample();
    let dist = dist_in(&out);
    let sha = out.join(format!("{NAME}.tar.sha256"));
    fs::remove_file(&sha).unwrap();
    let root = t.path().join("root");
    fs::create_dir(&root).unwrap();
    let cases: [(Command, Vec<String>); 3] = [
        (
            {
                let mut c = bin();
                c.arg("verify").arg(&dist);
                c
            },
            vec![format!("binarydist: {}: No such file or directory (os error 2)", sha.display())],
        ),
        (
            {
                let mut c = bin();
                c.arg("install").arg("--root").arg(&root).arg(&dist);
                c
            },
            vec![format!("binarydist: install onto {}: {}: No such file or directory (os error 2)", root.display(), sha.display())],
        ),
        (
            {
                let mut c = bin();
                c.arg("install").arg("--root").arg(t.path().join("missing")).arg(&dist);
                c
            },
            vec!["No such file or directory (os error 2)".to_string()],
        ),
    ];
    for (mut c, wants) in cases {
        let err = fails(&mut c);
        assert_eq!(err.lines().count(), 1, "{err}");
        for want in wants {
            assert!(err.contains(&want), "{want:?} not in {err:?}");
        }
        assert_eq!(err.matches("os error").count(), 1, "a cause printed twice: {err}");
    }
}
