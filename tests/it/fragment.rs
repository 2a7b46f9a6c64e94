//! binarydists/Makefile on its own, without a build: the directories it
//! refuses before any rm, `check` on a git checkout, the NOBUILD check of
//! the real kernel file names, and subset.sh never evaluating what
//! `make -n` printed.

use crate::bsd::{bmake, check_tree};
use crate::util::sh;
use std::path::Path;

/// bmake in `dir` with `args`; returns (success, stdout, stderr).
fn run(dir: &Path, obj: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut c = bmake(dir, obj, args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `binarydist-check` for one kernel config, with DISTDIR and STAGE under `root`.
fn check_args(root: &Path, extra: &[&str]) -> Vec<String> {
    let mut v = vec![
        "binarydist-check".to_string(),
        "KERNCONFS=GENERIC".to_string(),
        format!("DISTDIR={}", root.join("dist").display()),
        format!("STAGE={}", root.join("stage").display()),
        "NODIFF=yes".to_string(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

#[test]
fn fragment_refuses_an_empty_relative_or_root_distdir_or_stage_before_any_rm() {
    let (t, src) = check_tree("dirs");
    let frag = src.join("binarydists");
    let obj = t.path().join("obj");
    // Before the fix, an empty DISTDIR made prune `cd' to $HOME and remove
    // the dists it found there beyond the newest BINDIST_KEEP+1.
    let home = t.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let decoys: Vec<String> = (1..=3).map(|i| format!("DragonFly-world-x86_64-master-2026010{i}T000000Z-r{i}.tar.gz")).collect();
    for d in &decoys {
        std::fs::write(home.join(d), "").unwrap();
    }
    let home_s = home.display().to_string();
    for (var, value, target, why) in [
        ("DISTDIR", "", "prune.world", "must be one absolute path"),
        ("DISTDIR", "/", "prune.world", "is the root directory"),
        ("DISTDIR", "//usr/..", "prune.world", "is the root directory"),
        ("DISTDIR", "dist", "prune.world", "must be one absolute path"),
        ("STAGE", "/", "check", "is the root directory"),
        ("STAGE", "", "clean", "must be one absolute path"),
    ] {
        let arg = format!("{var}={value}");
        let (okay, _, err) = run(&frag, &obj, &[target, &arg, "BINDIST_KEEP=0", "BRANCH=master"], &[("HOME", &home_s)]);
        assert!(!okay && err.contains(&format!("{var}='{value}' {why}")), "{var}='{value}' make {target}:\n{err}");
        for d in &decoys {
            assert!(home.join(d).exists(), "{var}='{value}' make {target} removed {d}");
        }
    }
}

#[test]
fn fragment_check_never_evaluates_what_make_n_printed() {
    // A sub-make whose argument holds a command substitution: make -n
    // prints it as text; before the fix, check ran it through eval.
    let (t, src) = check_tree("noeval");
    let marker = t.path().join("evaluated");
    let mk = src.join("etc/Makefile");
    let text = std::fs::read_to_string(&mk).unwrap().replace(
        "\tcd ${.CURDIR}/../lib/libssh; ${MAKE} -f Makefile.etc install\n",
        &format!("\tcd ${{.CURDIR}}/../lib/libssh; ${{MAKE}} -f Makefile.etc install X=`touch {}`\n", marker.display()),
    );
    assert!(text.contains("X=`touch"), "the sample's etc/Makefile changed: mend this test");
    std::fs::write(&mk, text).unwrap();
    let root = t.path().canonicalize().unwrap();
    let args = check_args(&root, &[]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, out, err) = run(&src, &root.join("obj"), &argv, &[]);
    assert!(out.contains("all prerequisites found"), "{out}\n{err}");
    assert!(!marker.exists(), "check ran a command from make -n output");
}

#[test]
fn fragment_nobuild_check_takes_the_file_names_of_a_real_kernel_build() {
    let (t, src) = check_tree("kernels");
    let root = t.path().canonicalize().unwrap();
    let (world, kobj) = (root.join("world"), root.join("kobj"));
    std::fs::create_dir_all(&world).unwrap();
    let check = |what: &str| {
        let _ = std::fs::remove_dir_all(&kobj);
        std::fs::create_dir_all(kobj.join("GENERIC")).unwrap();
        std::fs::write(kobj.join("GENERIC").join(what), "").unwrap();
        let args = [
            "check".to_string(),
            "KERNCONFS=GENERIC".to_string(),
            "NOBUILD=yes".to_string(),
            "NODIFF=yes".to_string(),
            format!("WORLDDEST={}", world.display()),
            format!("KRNLOBJDIR={}", kobj.display()),
            format!("DISTDIR={}", root.join("dist").display()),
            format!("STAGE={}", root.join("stage").display()),
        ];
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&src.join("binarydists"), &root.join("obj"), &argv, &[])
    };
    // kern.pre.mk: kernel.debug with DEBUG, kernel.nodebug without; kernel.stripped always.
    for name in ["kernel.debug", "kernel.nodebug", "kernel.stripped", "kernel"] {
        let (okay, _, err) = check(name);
        assert!(okay, "{name}: {err}");
    }
    let (okay, _, err) = check(".buildkernel_run");
    assert!(!okay && err.contains("the build of kernel GENERIC") && err.contains("did not finish"), "{err}");
}

#[test]
fn fragment_check_on_a_git_checkout_says_what_git_cannot_tell_it() {
    let (t, src) = check_tree("git");
    let root = t.path().canonicalize().unwrap();
    let git = |args: &str| sh(&format!("cd '{}' && git -c user.name=t -c user.email=t@t {args} 2>&1", src.display()));
    // Upstream's Makefile has no hook; the build machine adds it by hand.
    let mk = src.join("Makefile");
    let hooked = std::fs::read_to_string(&mk).unwrap();
    let plain: String = hooked.lines().filter(|l| !l.contains("Makefile.targets")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&mk, &plain).unwrap();
    git("init -q -b main . && git add -A && git -c user.name=t -c user.email=t@t commit -q -m r1");
    std::fs::write(&mk, &hooked).unwrap();
    let args = check_args(&root, &["GITREV=r1"]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (okay, out, err) = run(&src, &root.join("obj"), &argv, &[]);
    assert!(okay && out.contains("note:") && out.contains("carries the binarydist hook as a local change"), "{out}\n{err}");

    // Upstream changed Makefile since (seen by the last fetch): the pull will refuse.
    let up = root.join("upstream");
    sh(&format!("git clone -q '{}' '{}' 2>&1", src.display(), up.display()));
    sh(&format!("cd '{}' && echo '# upstream' >> Makefile && git -c user.name=t -c user.email=t@t commit -q -am r2", up.display()));
    git(&format!("remote add origin '{}' && git fetch -q origin && git branch -q -u origin/main", up.display()));
    let (okay, out, _) = run(&src, &root.join("obj"), &argv, &[]);
    assert!(okay && out.contains("upstream has changed Makefile since: the next git pull will refuse"), "{out}");

    // A detached HEAD has no branch to name dists after.
    git("checkout -q --detach");
    let (okay, _, err) = run(&src, &root.join("obj"), &argv, &[]);
    assert!(!okay && err.contains("detached HEAD") && err.contains("set BRANCH"), "{err}");
    git("checkout -q main");

    // Without git on PATH (it is not in DragonFly's base), the names would be
    // local/unknown/now: refused, unless BRANCH and GITREV are given.
    let nogit = root.join("nogit");
    std::fs::create_dir(&nogit).unwrap();
    sh(&format!(
        "for f in /usr/local/bin/* /usr/bin/* /bin/*; do n=${{f##*/}}; [ \"$n\" = git ] || [ -e '{0}'/\"$n\" ] || ln -s \"$f\" '{0}'/\"$n\"; done",
        nogit.display()
    ));
    let path = format!("{}:{}", crate::bsd::binarydist_path().parent().unwrap().display(), nogit.display());
    let no_rev: Vec<&str> = argv.iter().copied().filter(|a| !a.starts_with("GITREV=")).collect();
    let (okay, _, err) = run(&src, &root.join("obj"), &no_rev, &[("PATH", &path)]);
    assert!(!okay && err.contains("is a git checkout but git is not installed") && err.contains("BRANCH GITREV"), "{err}");
    let given: Vec<&str> = no_rev.iter().copied().chain(["BRANCH=main", "GITREV=r1", "SOURCE_DATE_EPOCH=1790000000"]).collect();
    let (okay, _, err) = run(&src, &root.join("obj"), &given, &[("PATH", &path)]);
    assert!(okay, "{err}");
}
