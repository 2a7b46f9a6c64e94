//! The build side in /usr/src: binarydists/Makefile driven by real bmake over
//! the sample source tree (examples/src, built with real cc).
//!
//! One build of revisions 1, 2 and 3 (`make binarydist binarykernel
//! KERNCONFS="GENERIC CUSTOM"` into one DISTDIR) is shared by the tests that
//! look at its results; the `check` tests need no build.

use crate::util::{bin, ok, sh};
use binarydist::names::{DistName, PatchName};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const KERNCONFS: &str = "GENERIC CUSTOM";
/// Revision 3 is built with a `git describe`-style GITREV to see it sanitized.
const REVS: [(u32, &str); 3] = [(1, "r1"), (2, "r2"), (3, "v6.5.0-3-gabcde")];
const EPOCH: i64 = 1_790_000_000;

pub(crate) fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn binarydist_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_binarydist"))
}

/// Writes revision `rev` of the sample tree to `src`, with the fragment
/// installed as a build machine would (src/binarydists).
pub(crate) fn sample_tree(src: &Path, rev: u32) {
    ok(Command::new("sh").arg(repo().join("examples/mkrev.sh")).arg(src).arg(rev.to_string()));
    let frag = src.join("binarydists");
    let _ = std::fs::remove_dir_all(&frag);
    ok(Command::new("cp").arg("-R").arg(repo().join("binarydists")).arg(&frag));
}

/// bmake in `dir` with the environment a build machine has: binarydist
/// first in PATH, objects under `obj`, the lists from this checkout.
pub(crate) fn bmake(dir: &Path, obj: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("bmake");
    let path = format!("{}:{}", binarydist_path().parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    c.current_dir(dir)
        .env("PATH", path)
        .env("MAKEOBJDIRPREFIX", obj)
        .env_remove("MAKEFLAGS")
        .env_remove("SOURCE_DATE_EPOCH")
        .arg(format!("UPGRADE_LIST={}", repo().join("etc/upgrade-subset.conf").display()))
        .arg(format!("CRITICAL_LIST={}", repo().join("etc/critical.conf").display()))
        .args(args);
    c
}

pub(crate) struct Built {
    pub root: PathBuf,
    pub dist: PathBuf,
    /// The minisign key the fragment signed the INDEX with (no password).
    pub key: PathBuf,
}

/// Revisions 1, 2 and 3 built through the fragment into one DISTDIR, once
/// per test run, under the target directory; the INDEX is signed.
pub(crate) fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bsd-sample");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let root = root.canonicalize().unwrap();
        let (src, obj, dist, stage) = (root.join("usr/src"), root.join("obj"), root.join("dist"), root.join("stage"));
        let key = root.join("sign.key");
        ok(bin().args(["keygen", "--no-password", "--secret"]).arg(&key));
        for (rev, gitrev) in REVS {
            sample_tree(&src, rev);
            let args = [
                "binarydist".to_string(),
                "binarykernel".to_string(),
                format!("KERNCONFS={KERNCONFS}"),
                format!("DISTDIR={}", dist.display()),
                format!("STAGE={}", stage.display()),
                "BRANCH=master".to_string(),
                format!("GITREV={gitrev}"),
                format!("SOURCE_DATE_EPOCH={}", EPOCH + i64::from(rev) * 3600),
                format!("BINDIST_SIGNKEY={}", key.display()),
            ];
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ok(&mut bmake(&src, &obj, &args));
        }
        Built { root, dist, key }
    })
}

pub(crate) fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// The dists of each series, oldest first.
pub(crate) fn dists_by_series(dist: &Path) -> BTreeMap<String, Vec<DistName>> {
    let mut m: BTreeMap<String, Vec<DistName>> = BTreeMap::new();
    for f in files_with_suffix(dist, ".tar.gz") {
        let n = DistName::from_file_name(&f).unwrap_or_else(|e| panic!("{f}: {e}"));
        m.entry(n.series.to_string()).or_default().push(n);
    }
    for v in m.values_mut() {
        v.sort_by(|a, b| a.stamp.cmp(&b.stamp));
    }
    m
}

/// Extracts a dist with GNU tar and renames the critical `*.new` files into
/// place, as an install would.
fn extract(dist: &Path, root: &Path) {
    std::fs::create_dir_all(root).unwrap();
    ok(Command::new("tar").arg("-xpzf").arg(dist).arg("-C").arg(root));
    sh(&format!("cd '{}' && find . -name '*.new' | while read -r f; do mv \"$f\" \"${{f%.new}}\"; done", root.display()));
}

pub(crate) fn dist_file(b: &Built, series: &str, rev: usize) -> PathBuf {
    let m = dists_by_series(&b.dist);
    b.dist.join(m[series][rev - 1].file_name())
}

#[test]
fn bsd_three_revisions_make_dists_and_patches_that_chain() {
    let b = built();
    let by_series = dists_by_series(&b.dist);
    let series: Vec<&str> = by_series.keys().map(String::as_str).collect();
    assert_eq!(series, ["kernel.CUSTOM", "kernel.GENERIC", "world"], "one series per kernel config, and the world");
    for (s, dists) in &by_series {
        let revs: Vec<&str> = dists.iter().map(|d| d.rev.as_str()).collect();
        assert_eq!(revs, ["r1", "r2", "v6.5.0.3.gabcde"], "{s}: three builds, GITREV sanitized ('-' -> '.')");
        for d in dists {
            assert_eq!((d.arch.as_str(), d.branch.as_str()), ("x86_64", "master"));
            assert!(d.same_series(&dists[0]));
            // Each dist verifies against its sidecars and manifest.
            ok(bin().arg("verify").arg(b.dist.join(d.file_name())));
        }
        assert!(dists.windows(2).all(|w| w[0].stamp < w[1].stamp), "{s}: stamps follow SOURCE_DATE_EPOCH");
    }
    let info = ok(bin().args(["info", "--json"]).arg(dist_file(b, "world", 3)));
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["series"], "world");
    assert_eq!(info["upgrade_src"], "usr/share/binarydist/upgrade-src");
    let critical = info["critical"].to_string();
    assert!(critical.contains("lib/libc.so.9") && critical.contains("libexec/ld-elf.so.2"), "critical files: {critical}");

    let patches = files_with_suffix(&b.dist, ".bdpatch");
    // BINDIST_KEEP=3 by default: each new dist is patched from every older one.
    for (s, dists) in &by_series {
        let mut from_to: Vec<(String, String)> = patches
            .iter()
            .map(|p| PatchName::from_file_name(p).unwrap_or_else(|e| panic!("{p}: {e}")))
            .filter(|p| p.from.series.to_string() == *s)
            .map(|p| {
                assert_eq!(p.from.series, p.to.series, "a patch stays in its series");
                (p.from.rev.clone(), p.to.rev.clone())
            })
            .collect();
        from_to.sort();
        let r = |i: usize| dists[i].rev.clone();
        assert_eq!(from_to, [(r(0), r(1)), (r(0), r(2)), (r(1), r(2))], "{s}: patches");
        // The chain r1 -> r2 -> r3 is there by name.
        let chain: Vec<PathBuf> = [(0, 1), (1, 2)]
            .iter()
            .map(|&(a, z)| b.dist.join(PatchName::new(dists[a].clone(), dists[z].clone()).unwrap().file_name()))
            .collect();
        // ... and applies: r1 + (r1->r2) + (r2->r3) is r3's tar, byte for byte.
        let out = b.root.join(format!("chained-{s}.tar"));
        ok(bin().arg("patch").args(&chain).arg("--base").arg(b.dist.join(dists[0].file_name())).arg("-o").arg(&out));
        let want = sh(&format!("gunzip -c '{}' | sha256sum", b.dist.join(dists[2].file_name()).display()));
        let got = sh(&format!("sha256sum < '{}'", out.display()));
        assert_eq!(got, want, "{s}: the chain r1 -> r3 does not rebuild r3");
    }
}

#[test]
fn bsd_world_dist_runs_when_extracted_and_kernel_dists_own_boot_kernel() {
    let b = built();
    let root = b.root.join("extract-world");
    let _ = std::fs::remove_dir_all(&root);
    extract(&dist_file(b, "world", 3), &root);
    let run = |prog: &str| {
        let out = ok(Command::new(root.join(prog)).env("LD_LIBRARY_PATH", root.join("lib")));
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run("bin/hello"), "hello from revision 2 (DragonFly sample libc 9.0)\n");
    assert_eq!(run("sbin/sysinfo"), "sysinfo: DragonFly sample libc 9.0\n");
    assert!(run("libexec/ld-elf.so.2").contains("revision 3"));
    // Without its library a program does not start: the dist's libc is used.
    let bare = Command::new(root.join("bin/hello")).env_remove("LD_LIBRARY_PATH").output().unwrap();
    assert!(!bare.status.success());
    assert!(!root.join("usr/bin/oldtool").exists() && root.join("usr/bin/newtool").is_file());
    assert!(!root.join("lib/libc.so.8").exists());
    // The world leaves /boot/kernel to the kernel dists, keeps /rescue.
    assert!(root.join("boot").is_dir() && !root.join("boot/kernel").exists(), "world dist writes into /boot/kernel");
    assert!(root.join("rescue/init").is_file());

    for conf in ["GENERIC", "CUSTOM"] {
        let k = b.root.join(format!("extract-{conf}"));
        let _ = std::fs::remove_dir_all(&k);
        extract(&dist_file(b, &format!("kernel.{conf}"), 3), &k);
        let mut top: Vec<String> = std::fs::read_dir(&k).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        top.sort();
        assert_eq!(top, ["+MANIFEST", "boot"], "a kernel dist is /boot/kernel (and its manifest)");
        assert!(k.join("boot/kernel/initrd.img.gz").is_file(), "the kernel dist carries the initrd");
        assert!(!k.join("boot/kernel.old").exists() && !k.join("rescue").exists() && !k.join("boot/dloader.rc").exists());
        let out = ok(&mut Command::new(k.join("boot/kernel/kernel")));
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("({conf})")));
    }
    assert!(b.root.join("extract-CUSTOM/boot/kernel/debugfs.ko").is_file());
    assert!(!b.root.join("extract-GENERIC/boot/kernel/debugfs.ko").exists());
}

#[test]
fn bsd_make_upgrade_runs_from_the_subset_shipped_in_the_world_dist() {
    let b = built();
    let root = b.root.join("upgrade-root");
    let _ = std::fs::remove_dir_all(&root);
    let run_upgrade = |root: &Path| {
        let subset = root.join("usr/share/binarydist/upgrade-src");
        let mut c = Command::new("bmake");
        c.arg("-C").arg(&subset).arg("upgrade").arg(format!("DESTDIR={}", root.display()));
        c.env_remove("MAKEFLAGS").env_remove("MAKEOBJDIRPREFIX");
        ok(&mut c)
    };
    extract(&dist_file(b, "world", 1), &root);
    run_upgrade(&root);
    assert!(root.join("etc/mail.rc").is_file() && root.join("etc/ssh/moduli").is_file());
    assert!(root.join("etc/resolvconf.conf").is_file() && root.join("etc/dhcpcd.conf").is_file(), "the plain upgrade installs these");
    assert!(root.join("usr/bin/oldtool").is_file());
    extract(&dist_file(b, "world", 2), &root);
    assert!(root.join("lib/libc.so.8").exists());
    let out = run_upgrade(&root);
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(!root.join("usr/bin/oldtool").exists(), "TO_REMOVE entry still there:\n{log}");
    assert!(!root.join("usr/share/man/man1/oldtool.1.gz").exists());
    assert!(!root.join("lib/libc.so.8").exists(), "TO_REMOVE_LATE entry still there:\n{log}");
    assert!(root.join("lib/libc.so.9").exists());
    let whatis = std::fs::read_to_string(root.join("usr/share/man/whatis")).unwrap();
    assert!(whatis.contains("newtool(1)"), "makedb ran: {whatis}");
}

#[test]
fn bsd_prune_keeps_the_newest_dists_and_drops_patches_from_the_rest() {
    let b = built();
    let work = b.root.join("prune");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let dist = work.join("dist");
    ok(Command::new("cp").arg("-R").arg(&b.dist).arg(&dist));
    let frag = b.root.join("usr/src/binarydists");
    let out = ok(&mut bmake(
        &frag,
        &b.root.join("obj"),
        &[
            "prune.world",
            "prune.kernel.GENERIC",
            "KERNCONFS=GENERIC CUSTOM",
            "BINDIST_KEEP=1",
            "BRANCH=master",
            &format!("DISTDIR={}", dist.display()),
        ],
    ));
    let log = String::from_utf8_lossy(&out.stdout);
    let by_series = dists_by_series(&dist);
    let revs = |s: &str| by_series[s].iter().map(|d| d.rev.clone()).collect::<Vec<_>>();
    assert_eq!(revs("world"), ["r2", "v6.5.0.3.gabcde"], "{log}");
    assert_eq!(revs("kernel.GENERIC"), ["r2", "v6.5.0.3.gabcde"]);
    assert_eq!(revs("kernel.CUSTOM").len(), 3, "another series is left alone");
    for side in [".tar.md5", ".tar.sha256"] {
        assert_eq!(files_with_suffix(&dist, side).len(), 7, "sidecars go with their dist");
    }
    for p in files_with_suffix(&dist, ".bdpatch") {
        let p = PatchName::from_file_name(&p).unwrap();
        assert!(dist.join(p.from.file_name()).is_file() && dist.join(p.to.file_name()).is_file(), "dangling patch {p}");
    }
}

/// A rev-1 sample tree (not built) for the `check` tests.
pub(crate) fn check_tree(name: &str) -> (tempfile::TempDir, PathBuf) {
    let t = crate::util::tempdir();
    let src = t.path().canonicalize().unwrap().join(name).join("usr/src");
    sample_tree(&src, 1);
    (t, src)
}

pub(crate) fn check_fails(src: &Path, obj: &Path, args: &[&str]) -> Vec<String> {
    let out: Output = bmake(src, obj, args).output().unwrap();
    assert!(!out.status.success(), "check passed: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).lines().filter(|l| l.starts_with("binarydist check:")).map(String::from).collect()
}

#[test]
fn bsd_check_catches_a_subset_with_a_file_removed() {
    let (t, src) = check_tree("subset");
    let root = src.parent().unwrap().parent().unwrap().to_path_buf();
    let list = root.join("upgrade-subset.conf");
    let full = std::fs::read_to_string(repo().join("etc/upgrade-subset.conf")).unwrap();
    let common = |list: &Path| {
        vec![
            format!("DISTDIR={}", root.join("dist").display()),
            format!("STAGE={}", root.join("stage").display()),
            "NODIFF=yes".to_string(),
            format!("UPGRADE_LIST={}", list.display()),
        ]
    };
    // The list as shipped passes.
    let mut args = vec!["binarydist-check".to_string(), "KERNCONFS=GENERIC".to_string()];
    args.extend(common(&repo().join("etc/upgrade-subset.conf")));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ok(&mut bmake(&src, &root.join("obj"), &argv));
    assert!(String::from_utf8_lossy(&out.stdout).contains("all prerequisites found"));

    // Without moduli (named only by the sub-make etc/Makefile runs) and
    // without pw-update.sh (named by etc/Makefile itself).
    let cut: String = full.lines().filter(|l| !l.contains("moduli") && !l.contains("pw-update")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&list, cut).unwrap();
    let mut args = vec!["binarydist-check".to_string(), "KERNCONFS=GENERIC".to_string()];
    args.extend(common(&list));
    // Command-line UPGRADE_LIST comes last and wins over bmake()'s default.
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let lines = check_fails(&src, &root.join("obj"), &argv);
    assert!(lines.iter().any(|l| l.contains("upgrade subset lacks crypto/openssh/moduli")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("upgrade subset lacks tools/pw-update.sh")), "{lines:#?}");
    assert_eq!(lines.len(), 2, "one line per missing file: {lines:#?}");

    // An optional entry (?tools/tools/chkldd/chkldd.awk) the tree lacks is a
    // note; but this tree's etc/Makefile reads it, so it is still missing.
    std::fs::remove_file(src.join("tools/tools/chkldd/chkldd.awk")).unwrap();
    let mut args = vec!["binarydist-check".to_string(), "KERNCONFS=GENERIC".to_string()];
    args.extend(common(&repo().join("etc/upgrade-subset.conf")));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = bmake(&src, &root.join("obj"), &argv).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success() && stdout.contains("note: optional upgrade-subset entry tools/tools/chkldd/chkldd.awk"), "{stdout}");
    assert!(stderr.contains("reads tools/tools/chkldd/chkldd.awk, which the source tree lacks too"), "{stderr}");
    drop(t);
}

#[test]
fn bsd_check_says_in_one_line_each_what_is_missing() {
    let (t, src) = check_tree("bad");
    let root = src.parent().unwrap().parent().unwrap().to_path_buf();
    std::fs::write(root.join("a-file"), "").unwrap();
    let stage = root.join("stage");
    let base = |extra: &[&str]| -> Vec<String> {
        let mut v = vec![
            "binarydist".to_string(),
            "binarykernel".to_string(),
            format!("STAGE={}", stage.display()),
            format!("DISTDIR={}", root.join("dist").display()),
            "NODIFF=yes".to_string(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let obj = root.join("obj-empty");
    let run = |args: Vec<String>| {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        check_fails(&src, &obj, &argv)
    };

    let lines = run(base(&["BINARYDIST=/nonexistent/binarydist"]));
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains("/nonexistent/binarydist is not installed") && lines[0].contains("BINARYDIST="), "{lines:#?}");

    let lines = run(base(&["NOBUILD=yes"]));
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains("NOBUILD is set but there is no built world in") && lines[0].contains("make buildworld"), "{lines:#?}");

    let bad_dist = format!("DISTDIR={}", root.join("a-file/dist").display());
    let lines = run(base(&[&bad_dist]));
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains("a-file/dist is not writable"), "{lines:#?}");

    let lines = run(base(&["KERNCONFS=GENERIC NOSUCHCONF"]));
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains("kernel config NOSUCHCONF does not exist") && lines[0].contains("CUSTOM GENERIC"), "{lines:#?}");

    // Everything at once: every problem reported, each on its own line.
    let lines = run(base(&["BINARYDIST=/nonexistent/binarydist", "NOBUILD=yes", &bad_dist, "KERNCONFS=NOSUCHCONF"]));
    assert_eq!(lines.len(), 4, "{lines:#?}");

    // Nothing was built or staged.
    assert!(!stage.join("world").exists() && !obj.exists());
    drop(t);
}

#[test]
fn bsd_the_sample_tree_carries_the_hook_line_of_makefile_patch() {
    // The one line Makefile.patch adds (its test on DragonFly's own Makefile
    // is in realtree.rs) ends the sample's top-level Makefile too.
    let patch = std::fs::read_to_string(repo().join("binarydists/Makefile.patch")).unwrap();
    let added: Vec<&str> = patch.lines().filter_map(|l| l.strip_prefix('+')).filter(|l| !l.starts_with("++")).collect();
    assert_eq!(added, [r#".sinclude "${.CURDIR}/binarydists/Makefile.targets""#]);
    let sample = std::fs::read_to_string(repo().join("examples/src/Makefile")).unwrap();
    assert_eq!(sample.lines().last(), Some(added[0]));
}

#[test]
fn bsd_diff_step_patches_the_new_dist_from_the_last_bindist_keep_dists() {
    // The diff step alone, over revision 3 of the shared build, with a stub
    // `binarydist diff` that records its calls: this checks the fragment's
    // choice of bases (and pruning) without the cost of real diffs.
    let b = built();
    let work = b.root.join("diffstep");
    let _ = std::fs::remove_dir_all(&work);
    let dist = work.join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    for f in files_with_suffix(&b.dist, ".tar.gz") {
        std::fs::copy(b.dist.join(&f), dist.join(&f)).unwrap();
    }
    let calls = work.join("calls");
    let stub = work.join("binarydist");
    std::fs::write(
        &stub,
        format!(
            "#!/bin/sh\nif [ \"$1\" = diff ]; then\n\t[ \"$2\" = --help ] && exit 0\n\
             \to=$(basename \"$2\" .tar.gz) n=$(basename \"$3\" .tar.gz)\n\
             \t[ \"$4\" = -o ] || exit 2\n\techo \"$o--$n\" >> '{}'\n\t: > \"$5/$o--$n.bdpatch\"\n\texit 0\nfi\n\
             exec '{}' \"$@\"\n",
            calls.display(),
            binarydist_path().display()
        ),
    )
    .unwrap();
    ok(Command::new("chmod").arg("+x").arg(&stub));
    let frag = b.root.join("usr/src/binarydists");
    let (rev, gitrev) = REVS[2];
    let diff = |keep: u32| {
        ok(&mut bmake(
            &frag,
            &b.root.join("obj"),
            &[
                "diff.world",
                "diff.kernel.CUSTOM",
                &format!("KERNCONFS={KERNCONFS}"),
                &format!("BINARYDIST={}", stub.display()),
                "BRANCH=master",
                &format!("GITREV={gitrev}"),
                &format!("SOURCE_DATE_EPOCH={}", EPOCH + i64::from(rev) * 3600),
                &format!("BINDIST_KEEP={keep}"),
                &format!("DISTDIR={}", dist.display()),
            ],
        ));
    };
    let patched = || -> Vec<(String, String, String)> {
        files_with_suffix(&dist, ".bdpatch")
            .iter()
            .map(|p| PatchName::from_file_name(p).unwrap())
            .map(|p| (p.from.series.to_string(), p.from.rev, p.to.rev))
            .collect()
    };
    let r3 = "v6.5.0.3.gabcde".to_string();
    diff(1);
    assert_eq!(
        patched(),
        [("kernel.CUSTOM".into(), "r2".into(), r3.clone()), ("world".into(), "r2".into(), r3.clone())],
        "BINDIST_KEEP=1: from the newest older dist only"
    );
    diff(3);
    assert_eq!(patched().len(), 4, "BINDIST_KEEP=3 adds the patches from r1: {:?}", patched());
    let calls = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(calls.lines().count(), 4, "a patch already made is not made again:\n{calls}");
}

/// Members of a dist as `tar -tv` shows them: path -> (is a directory, mode,
/// owner and time).
fn members(dist: &Path) -> BTreeMap<String, (bool, String)> {
    let out = ok(Command::new("tar").arg("-tvzf").arg(dist).arg("--numeric-owner").env("TZ", "UTC"));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let path = f[5].trim_end_matches('/').to_string();
            (path, (f[0].starts_with('d'), format!("{} {} {} {}", f[0], f[1], f[3], f[4])))
        })
        .collect()
}

#[test]
fn bsd_no_file_is_in_two_series_and_shared_directories_agree() {
    // A target installs the world and one kernel series (its KERNCONF's):
    // those two must not both carry a file, and the directories both carry
    // (boot) must be the same in each, or installing one would undo the other.
    let b = built();
    for rev in 1..=3 {
        let world = members(&dist_file(b, "world", rev));
        for conf in ["GENERIC", "CUSTOM"] {
            let kernel = members(&dist_file(b, &format!("kernel.{conf}"), rev));
            for (path, meta) in &kernel {
                assert!(
                    path == "+MANIFEST" || path == "boot" || path == "boot/kernel" || path.starts_with("boot/kernel/"),
                    "kernel.{conf} r{rev} has {path}"
                );
                match world.get(path) {
                    Some(w) if path != "+MANIFEST" => {
                        assert!(meta.0 && w.0, "r{rev}: {path} is in the world and in kernel.{conf}");
                        assert_eq!(meta, w, "r{rev}: directory {path} differs between the world and kernel.{conf}");
                    }
                    _ => {}
                }
            }
            assert!(kernel.contains_key("boot") && world.contains_key("boot"), "boot is in both");
        }
    }
}
