//! The whole workflow from /usr/src (issue 14): `make demo`'s own steps
//! (tools/demo.sh, run here in two halves so that the root can be looked
//! at in between), `make install`'s layout and the periodic(8) job. The
//! manuals against the program and the fragment are in manuals.rs.

use crate::bsd::{binarydist_path, repo};
use crate::mirror::{installed, mirror, root_with, WORLD};
use crate::util::{bin, ok, sh, tempdir};
use binarydist::names::{DistName, PatchName};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `sh tools/demo.sh STEP...` in `work`, with the binary under test.
fn demo(work: &Path, steps: &[&str]) -> String {
    let out = ok(Command::new("sh")
        .arg(repo().join("tools/demo.sh"))
        .args(steps)
        .env("DEMO_DIR", work)
        .env("BINARYDIST", binarydist_path())
        .env_remove("MAKEFLAGS")
        .env_remove("MAKEOBJDIRPREFIX"));
    String::from_utf8(out.stdout).unwrap()
}

pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The file names of `dir`, parsed: dists by series (oldest first) and patches.
fn published(dir: &Path) -> (BTreeMap<String, Vec<DistName>>, Vec<PatchName>) {
    let mut dists: BTreeMap<String, Vec<DistName>> = BTreeMap::new();
    let mut patches = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let f = e.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(stem) = f.strip_suffix(".tar.gz") {
            let d = DistName::parse(stem).unwrap_or_else(|e| panic!("{f}: {e}"));
            dists.entry(d.series.to_string()).or_default().push(d);
        } else if f.ends_with(".bdpatch") {
            patches.push(PatchName::from_file_name(&f).unwrap_or_else(|e| panic!("{f}: {e}")));
        } else {
            let known = ["INDEX", "INDEX.minisig", "CHECKSUM.MD5", "CHECKSUM.SHA256"];
            assert!(known.contains(&f.as_str()) || f.ends_with(".tar.md5") || f.ends_with(".tar.sha256"), "{f} in DISTDIR");
        }
    }
    dists.values_mut().for_each(|v| v.sort());
    (dists, patches)
}

fn revs(dists: &[DistName]) -> Vec<&str> {
    dists.iter().map(|d| d.rev.as_str()).collect()
}

/// A fresh root with these dists installed (kernel first), as a reference.
fn fresh_install(dir: &Path, dists: &[PathBuf]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for d in dists {
        ok(bin().arg("install").arg("--root").arg(dir).args(["--make", "bmake"]).arg(d));
    }
    dir.to_path_buf()
}

#[test]
fn workflow_demo_runs_the_whole_story_and_every_acceptance_point_holds() {
    let t = tempdir();
    let work = t.path().canonicalize().unwrap().join("demo");
    let (dist, root) = (work.join("dist"), work.join("root"));

    // First half: releases 1 to 3, a first install of 1, the update to 3.
    let said = demo(&work, &["release1", "install1", "release2", "release3", "update3", "run3", "custom"]);

    // Names parse, stay in their series and chain r1 -> r2 -> r3
    // (BINDIST_DIFFS=1: each dist is patched from the one before).
    let (dists, patches) = published(&dist);
    assert_eq!(dists.keys().collect::<Vec<_>>(), ["kernel.CUSTOM", "kernel.GENERIC", "world"]);
    for (series, d) in &dists {
        assert_eq!(revs(d), ["r1", "r2", "r3"], "{series}");
        let mut chain: Vec<(String, String)> =
            patches.iter().filter(|p| p.from.series.to_string() == *series).map(|p| (p.from.rev.clone(), p.to.rev.clone())).collect();
        chain.sort();
        assert_eq!(chain, [("r1".into(), "r2".into()), ("r2".into(), "r3".into())], "{series}");
    }
    assert!(patches.iter().all(|p| p.from.series == p.to.series), "a patch crosses series: {patches:?}");
    let log3 = read(&work.join("steps/update3.log"));
    for s in ["world", "kernel.GENERIC"] {
        assert!(
            log3.contains(&format!("-r1--DragonFly-{s}-")) && log3.contains(&format!("-r2--DragonFly-{s}-")),
            "{s}: not the chain:\n{log3}"
        );
    }

    // The update went through make: installbinary from the fragment that
    // `make install' put under share/, updatebinary from the copy the world
    // carries; the build machine's tree and stages were gone.
    let log1 = read(&work.join("steps/install1.log"));
    assert!(said.contains("target-pkg/usr/local/share/binarydist/binarydists installbinary"), "{said}");
    assert!(said.contains("root/usr/share/binarydist/upgrade-src/binarydists updatebinary"), "{said}");
    assert!(!work.join("usr/src").exists() && !work.join("stage").exists() && !root.join("usr/src").exists());

    // The root after the chain is a fresh install of revision 3.
    let fresh = fresh_install(
        &work.join("fresh-r3"),
        &[dist.join(dists["kernel.GENERIC"][2].file_name()), dist.join(dists["world"][2].file_name())],
    );
    let mut chained = crate::install::tree(&root);
    let mut reference = crate::install::tree(&fresh);
    // The kernel it replaced is kept as kernel.old (a first install has none).
    chained.retain(|p, _| !p.starts_with("boot/kernel.old"));
    // Every entry is compared (type, mode, owner, content, link, hard links)
    // and the mtime of every file the dists list; not the times of what make
    // upgrade wrote, nor of directories (make upgrade adds to and removes
    // from them at its own time, once per install).
    let mut listed = BTreeSet::new();
    for series in ["world", "kernel.GENERIC"] {
        let text = read(&root.join("var/db/binarydist").join(series).join("MANIFEST"));
        let m = binarydist::manifest::Manifest::parse(&text).unwrap();
        listed.extend(m.entries.into_iter().map(|e| e.meta.path));
    }
    // etc/Makefile installs the files of BIN1 only when missing: they are the
    // admin's once there, so the first install's stay, as a source upgrade
    // leaves them.
    let admins: Vec<PathBuf> =
        ["group", "hosts", "motd", "profile", "services", "shells"].iter().map(|f| Path::new("etc").join(f)).collect();
    assert!(read(&root.join("etc/motd")).contains("revision 1"), "make upgrade replaced the admin's /etc/motd");
    for t in [&mut chained, &mut reference] {
        t.retain(|p, _| !p.starts_with("var/db/binarydist") && !admins.contains(p));
        for (p, sig) in t.iter_mut() {
            if sig.is_dir() || !listed.contains(p) {
                sig.without_mtime();
            }
        }
    }
    assert!(listed.len() > 100, "{} entries listed", listed.len());
    let differ: Vec<String> = chained
        .keys()
        .chain(reference.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|p| chained.get(*p) != reference.get(*p))
        .map(|p| format!("{}:\n  chained {:?}\n  fresh   {:?}", p.display(), chained.get(p), reference.get(p)))
        .collect();
    assert!(differ.is_empty(), "the chained root differs from a fresh install of revision 3:\n{}", differ.join("\n"));

    // The programs run, from the root.
    let run = read(&work.join("steps/run3.out"));
    for want in ["hello from revision 2 (DragonFly sample libc 9.0)", "sysinfo: DragonFly sample libc 9.0", "revision 3", "(GENERIC)"] {
        assert!(run.contains(want), "{want:?} not in\n{run}");
    }
    let hello = ok(Command::new(root.join("bin/hello")).env("LD_LIBRARY_PATH", root.join("lib")));
    assert!(String::from_utf8_lossy(&hello.stdout).contains("libc 9.0"));

    // What revision 2 removed upstream is gone, removed by make upgrade from
    // the subset shipped in the dist (its output names each file).
    for gone in ["usr/bin/oldtool", "usr/share/man/man1/oldtool.1.gz", "lib/libc.so.8"] {
        assert!(!root.join(gone).exists(), "{gone} is still there");
        assert!(log3.lines().any(|l| l == format!("{}/{gone}", root.display())), "make upgrade did not remove {gone}:\n{log3}");
    }
    assert!(log1.contains("make upgrade: ran") && log3.contains("/usr/share/binarydist/upgrade-src upgrade DESTDIR="));

    // The custom kernel series stays apart: each root follows its own.
    let state = |r: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(r.join("var/db/binarydist"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("world") || n.starts_with("kernel"))
            .collect();
        v.sort();
        v
    };
    let custom = work.join("root-custom");
    assert_eq!(state(&root), ["kernel.GENERIC", "world"]);
    assert_eq!(state(&custom), ["kernel.CUSTOM", "world"]);
    assert!(custom.join("boot/kernel/debugfs.ko").is_file() && !root.join("boot/kernel/debugfs.ko").exists());
    // ... and a root that follows GENERIC is not switched by a KERNCONF.
    let frag = root.join("usr/share/binarydist/upgrade-src/binarydists");
    let out = Command::new("bmake")
        .arg("-C")
        .arg(&frag)
        .arg("checkbinary")
        .arg(format!("DESTDIR={}", root.display()))
        .arg("KERNCONF=CUSTOM")
        .arg(format!("BINARYDIST={}", binarydist_path().display()))
        .env_remove("MAKEFLAGS")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("the root follows kernel.GENERIC, and the command line asks for kernel.CUSTOM"), "{err}");
    // A relative key would be looked up in the fragment's directory (make -C).
    let out = Command::new("bmake")
        .arg("-C")
        .arg(&frag)
        .arg("checkbinary")
        .arg(format!("DESTDIR={}", root.display()))
        .arg("BINDIST_PUBKEY=binarydist.pub")
        .arg(format!("BINARYDIST={}", binarydist_path().display()))
        .env_remove("MAKEFLAGS")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("binarydist.pub is a relative path"), "{err}");

    // Second half: a release whose kernels did not change, the update, then
    // (below) the rollback and the summary.
    demo(&work, &["release4", "update4"]);
    let (dists, patches) = published(&dist);
    assert_eq!(revs(&dists["world"]), ["r1", "r2", "r3", "r4"]);
    for k in ["kernel.GENERIC", "kernel.CUSTOM"] {
        assert_eq!(revs(&dists[k]), ["r1", "r2", "r3"], "{k}: a release with an unchanged kernel published a new kernel dist");
        assert!(patches.iter().all(|p| p.to.series.to_string() != *k || p.to.rev != "r4"), "{k}: a patch to r4");
        assert!(read(&work.join("build-4.log")).contains(&format!(">>> {k}: the same content as {}", dists[k][2])));
    }
    let index = read(&dist.join("INDEX"));
    assert!(index.contains(&format!("dist kernel.GENERIC {} ", dists["kernel.GENERIC"][2])), "{index}");
    assert_eq!(installed(&root, "kernel.GENERIC").as_deref(), Some(dists["kernel.GENERIC"][2].to_string().as_str()));
    assert_eq!(installed(&root, WORLD).as_deref(), Some(dists["world"][3].to_string().as_str()));
    let p34 = dist.join(PatchName::new(dists["world"][2].clone(), dists["world"][3].clone()).unwrap().file_name());
    let bytes: u64 = read(&work.join("steps/update4.bytes")).trim().parse().unwrap();
    assert_eq!(bytes, std::fs::metadata(&p34).unwrap().len(), "update4 downloads the world's patch and nothing else");
    let wc = ok(&mut sh_cmd(&format!("printf 'a b\\nc\\n' | LD_LIBRARY_PATH={0}/lib {0}/usr/bin/wc", root.display())));
    assert_eq!(String::from_utf8_lossy(&wc.stdout).split_whitespace().collect::<Vec<_>>(), ["2", "3", "6"], "revision 4's wc");

    // The rollback: the world back on revision 3 and held there; the kernel left alone.
    let said = demo(&work, &["rollback", "summary"]);
    assert_eq!(installed(&root, WORLD).as_deref(), Some(dists["world"][2].to_string().as_str()), "{said}");
    assert_eq!(installed(&root, "kernel.GENERIC").as_deref(), Some(dists["kernel.GENERIC"][2].to_string().as_str()));
    assert!(root.join("var/db/binarydist/world/hold").is_file(), "{said}");
    assert!(said.contains("rolled back to ") && said.contains("held: rolled back from") && said.contains("nothing differs"), "{said}");

    // CHECKSUM files: BSD form, every dist and patch once, and md5sum -c /
    // sha256sum -c agree once converted.
    let served: BTreeSet<String> = std::fs::read_dir(&dist)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".tar.gz") || f.ends_with(".bdpatch"))
        .collect();
    for (list, tool) in [("CHECKSUM.MD5", "md5sum"), ("CHECKSUM.SHA256", "sha256sum")] {
        let text = read(&dist.join(list));
        let algo = list.trim_start_matches("CHECKSUM.");
        let listed: BTreeSet<String> = text
            .lines()
            .map(|l| {
                let rest = l.strip_prefix(&format!("{algo} (")).unwrap_or_else(|| panic!("{list}: {l:?} is not BSD form"));
                rest.split_once(") = ").unwrap().0.to_string()
            })
            .collect();
        assert_eq!(listed, served, "{list}");
        sh(&format!("cd '{}' && sed -E 's/^{algo} \\((.*)\\) = (.*)$/\\2  \\1/' {list} | {tool} -c --quiet -", dist.display()));
        // ... which would catch a changed file.
        let bad = work.join("bad");
        let _ = std::fs::remove_dir_all(&bad);
        ok(Command::new("cp").arg("-R").arg(&dist).arg(&bad));
        std::fs::write(bad.join(dists["world"][0].file_name()), "changed").unwrap();
        let out =
            sh_cmd(&format!("cd '{}' && sed -E 's/^{algo} \\((.*)\\) = (.*)$/\\2  \\1/' {list} | {tool} -c --quiet -", bad.display()))
                .output()
                .unwrap();
        assert!(!out.status.success(), "{tool} -c passed a changed file");
    }
    for want in ["is refused", "the same content as", "all verified by sha256sum -c", "minisign -V agrees"] {
        assert!(said.contains(want), "summary lacks {want:?}:\n{said}");
    }
}

#[test]
fn workflow_installbinary_from_usr_src_through_the_hook_reads_a_dist_directory() {
    // The shared sample build's tree has the hook line; its DISTDIR is a
    // plain directory (a mount, on a real target), signed.
    let b = crate::bsd::built();
    let t = tempdir();
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let make = |dir: &Path, args: &[String]| -> Output {
        let path = format!("{}:{}", binarydist_path().parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
        Command::new("bmake").arg("-C").arg(dir).args(args).env("PATH", path).env_remove("MAKEFLAGS").output().unwrap()
    };
    let args = |distdir: &Path| {
        vec![
            "installbinary".to_string(),
            format!("DESTDIR={}", root.display()),
            format!("DISTDIR={}", distdir.display()),
            format!("BINDIST_PUBKEY={}", b.key.with_extension("pub").display()),
            "KERNCONF=GENERIC".into(),
        ]
    };
    // A DISTDIR without an INDEX is said before anything runs.
    let out = make(&b.root.join("usr/src"), &args(t.path()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(&format!("DISTDIR {} has no INDEX", t.path().display())), "{err}");
    assert!(!root.join("var").exists());

    let out = make(&b.root.join("usr/src"), &args(&b.dist));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{said}");
    let (dists, _) = published(&b.dist);
    assert!(said.contains(&format!("--mirror {}", b.dist.display())) && said.contains("--series kernel.GENERIC"), "{said}");
    assert_eq!(installed(&root, "kernel.GENERIC"), Some(dists["kernel.GENERIC"][2].to_string()));
    assert_eq!(installed(&root, WORLD), Some(dists["world"][2].to_string()));
    assert!(said.contains("make upgrade: ran"), "{said}");

    // Run again: up to date, and no --series once the root has its own.
    let out = make(&b.root.join("usr/src"), &args(&b.dist));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && said.contains("is up to date") && !said.contains("--series"), "{said}");
}

fn sh_cmd(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(script);
    c
}

/// `make install` into a DESTDIR with `make` (GNU or BSD), without building.
fn make_install(make: &str, destdir: &Path) -> Output {
    ok(Command::new(make)
        .current_dir(repo())
        .arg("install")
        .arg(format!("DESTDIR={}", destdir.display()))
        .arg(format!("BINARY={}", binarydist_path().display()))
        // make test has built it; a rebuild here would race the other tests.
        .arg("CARGO=true")
        .env_remove("MAKEFLAGS")
        .env_remove("MAKELEVEL"))
}

#[test]
fn workflow_make_install_lays_out_a_dragonfly_system_with_gnu_make_and_bmake() {
    let t = tempdir();
    for make in ["make", "bmake"] {
        let d = t.path().join(make);
        make_install(make, &d);
        let mode = |p: &str| std::fs::metadata(d.join(p)).unwrap_or_else(|e| panic!("{make}: {p}: {e}")).permissions().mode() & 0o7777;
        assert_eq!(mode("usr/local/sbin/binarydist"), 0o555, "{make}");
        assert_eq!(mode("usr/local/etc/periodic/daily/480.binarydist"), 0o555, "{make}");
        for p in [
            "usr/local/man/man8/binarydist.8.gz",
            "usr/local/man/man7/binarydists.7.gz",
            "usr/local/etc/binarydist.conf.sample",
            "usr/local/etc/binarydist/critical.conf",
            "usr/local/etc/binarydist/upgrade-subset.conf",
        ] {
            assert!(d.join(p).is_file(), "{make}: no {p}");
        }
        for dir in ["usr/src/binarydists", "usr/local/share/binarydist/binarydists"] {
            for f in ["Makefile", "Makefile.install", "Makefile.targets", "Makefile.patch", "subset.sh"] {
                let got = std::fs::read(d.join(dir).join(f)).unwrap_or_else(|e| panic!("{make}: {dir}/{f}: {e}"));
                assert_eq!(got, std::fs::read(repo().join("binarydists").join(f)).unwrap(), "{make}: {dir}/{f}");
            }
        }
        let job = read(&d.join("usr/local/etc/periodic/daily/480.binarydist"));
        assert!(job.contains("daily_binarydist_program:=/usr/local/sbin/binarydist}") && !job.contains("@PREFIX@"), "{make}");
        // The installed manuals are the ones in man/, and lint clean.
        for (page, dir) in [("binarydist.8", "man8"), ("binarydists.7", "man7")] {
            let got = sh(&format!("gunzip -c '{}'", d.join("usr/local/man").join(dir).join(format!("{page}.gz")).display()));
            assert_eq!(got, read(&repo().join("man").join(page)), "{make}: {page}");
        }
    }
    let layout = |d: &str| -> Vec<(PathBuf, String)> {
        let cut = |v: String| v.split(" mtime=").next().unwrap().to_string();
        crate::util::snapshot(&t.path().join(d)).into_iter().map(|(p, v)| (p, cut(v))).collect()
    };
    assert_eq!(layout("make"), layout("bmake"), "GNU make and bmake lay out different trees");
}

/// The periodic job, run with sh as periodic(8) would, on a root of the
/// shared sample build, against its signed DISTDIR as a directory mirror.
fn periodic(root: &Path, m: &crate::mirror::Mirror, knobs: &[(&str, &str)]) -> (Option<i32>, String) {
    let flags = format!("--config /dev/null --mirror {} --pubkey {} --make bmake", m.dir.display(), m.pubkey.display());
    let mut c = Command::new("sh");
    c.arg(repo().join("etc/periodic/daily/480.binarydist"))
        .env("daily_binarydist_enable", "YES")
        .env("daily_binarydist_delay", "0")
        .env("daily_binarydist_root", root)
        .env("daily_binarydist_flags", flags)
        .env("daily_binarydist_program", binarydist_path())
        .env_remove("PERIODIC_IS_INTERACTIVE");
    for (k, v) in knobs {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn workflow_periodic_job_reports_fetches_ahead_and_installs_only_when_told_and_never_while_held() {
    let m = mirror();
    let root = root_with(&m, &[(crate::mirror::KERNEL, 1), (WORLD, 1)]);
    let r1 = m.dist(WORLD, 1).to_string();
    let downloads = root.join("var/db/binarydist/downloads");
    let count = |d: &Path| std::fs::read_dir(d).map(|r| r.count()).unwrap_or(0);

    let (code, said) = periodic(&root, &m, &[("daily_binarydist_enable", "NO")]);
    assert_eq!((code, said.as_str()), (Some(0), ""), "disabled: silent");

    let (code, said) = periodic(&root, &m, &[]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("update available: world") && said.contains("To install:"), "{said}");
    assert_eq!(installed(&root, WORLD).as_deref(), Some(r1.as_str()));
    assert_eq!(count(&downloads), 0, "a check downloads nothing");

    let (code, said) = periodic(&root, &m, &[("daily_binarydist_fetch", "YES")]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("update downloaded: world") && said.contains("Downloaded;"), "{said}");
    assert!(count(&downloads) > 0 && installed(&root, WORLD).as_deref() == Some(r1.as_str()), "fetched ahead, not installed");

    // Held (as rollback leaves a series): nothing is installed, and it says so.
    let hold = root.join("var/db/binarydist/world/hold");
    std::fs::write(&hold, "rolled back by the admin\n").unwrap();
    let (code, said) = periodic(&root, &m, &[("daily_binarydist_install", "YES")]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("world: rolled back by the admin") && said.contains("Nothing installed while a series is held"), "{said}");
    assert_eq!(installed(&root, WORLD).as_deref(), Some(r1.as_str()));
    assert_eq!(installed(&root, crate::mirror::KERNEL).as_deref(), Some(m.dist(crate::mirror::KERNEL, 1).to_string().as_str()));

    std::fs::remove_file(&hold).unwrap();
    let (code, said) = periodic(&root, &m, &[("daily_binarydist_install", "YES")]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("installed DragonFly-world-") && said.contains("reboot needed"), "{said}");
    assert_eq!(installed(&root, WORLD).as_deref(), Some(m.dist(WORLD, 3).to_string().as_str()));
    assert_eq!(count(&downloads), 0, "what was fetched ahead was used and removed");

    let (code, said) = periodic(&root, &m, &[("daily_binarydist_install", "YES")]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("world: DragonFly-world-") && said.contains("is up to date"), "{said}");

    let (code, said) = periodic(&root, &m, &[("daily_binarydist_delay", "soon")]);
    assert_eq!(code, Some(2), "{said}");
    let (code, _) = periodic(&root, &m, &[("daily_binarydist_program", "/nonexistent/binarydist")]);
    assert_eq!(code, Some(2));
    drop(m);
}

#[test]
fn workflow_the_periodic_job_waits_at_random_up_to_the_delay_unless_run_by_hand() {
    // A shim sleep records how long the job would wait.
    let t = tempdir();
    let shims = t.path().join("bin");
    std::fs::create_dir(&shims).unwrap();
    let rec = t.path().join("slept");
    std::fs::write(shims.join("sleep"), format!("#!/bin/sh\necho \"$1\" >> '{}'\n", rec.display())).unwrap();
    std::fs::write(shims.join("fake-binarydist"), "#!/bin/sh\necho up to date\n").unwrap();
    ok(Command::new("chmod").arg("+x").arg(shims.join("sleep")).arg(shims.join("fake-binarydist")));
    let run = |delay: &str, interactive: bool| {
        let mut c = Command::new("sh");
        c.arg(repo().join("etc/periodic/daily/480.binarydist"))
            .env("PATH", format!("{}:{}", shims.display(), std::env::var("PATH").unwrap_or_default()))
            .env("daily_binarydist_enable", "YES")
            .env("daily_binarydist_delay", delay)
            .env("daily_binarydist_root", t.path())
            .env("daily_binarydist_program", shims.join("fake-binarydist"))
            .env_remove("PERIODIC_IS_INTERACTIVE");
        if interactive {
            c.env("PERIODIC_IS_INTERACTIVE", "1");
        }
        let out = ok(&mut c);
        assert!(String::from_utf8_lossy(&out.stdout).contains("up to date"));
    };
    run("7", false);
    let slept: u32 = read(&rec).trim().parse().unwrap();
    assert!(slept <= 7, "slept {slept} for a delay of 7");
    std::fs::remove_file(&rec).unwrap();
    run("7", true);
    run("0", false);
    assert!(!rec.exists(), "slept when run by hand, or with a delay of 0");
}
