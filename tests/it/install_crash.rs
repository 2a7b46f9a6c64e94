//! Interrupted installs: kill -9 at every step (through the test-only
//! BINARYDIST_TEST_KILL_AT hook, which makes the process SIGKILL itself), a
//! full disk, a read-only root. The next run must converge on the new dist's
//! tree, or the root must be as it was.

use crate::install::{
    assert_same_tree, assert_same_tree_but, fixture, gnu_tar_reference, install, root_with, tree, STAMPS, V2_UPGRADED_DIRS,
};
use crate::util::{bin, fails, ok, sh, tempdir, Tmpfs};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `install` with the kill hook at `point`; true if it died by SIGKILL,
/// false if it never reached the point and finished normally.
fn killed_at(root: &Path, dist: &Path, point: &str) -> bool {
    let out = install(root, dist).env("BINARYDIST_TEST_KILL_AT", point).output().unwrap();
    match out.status.signal() {
        Some(9) => true,
        _ => {
            assert!(out.status.success(), "{point}: {}", String::from_utf8_lossy(&out.stderr));
            false
        }
    }
}

fn assert_no_leftovers(root: &Path) {
    let found = sh(&format!("find '{}' -name '.bdtmp.*' -o -name journal -o -name '.base.new*'", root.display()));
    assert!(found.is_empty(), "left behind: {found}");
}

/// For each point: a copy of `template`, an install of `dist` killed there,
/// a plain rerun, and a check against `reference`. Points with a count run
/// from 1 up until the install no longer reaches them. Returns how many
/// kills there were.
fn crash_everywhere(
    template: &Path,
    dist: &Path,
    reference: &Path,
    points: &[&str],
    counted: &[(&str, usize)],
    upgraded: &[&str],
) -> usize {
    let t = tempdir();
    let mut kills = 0;
    let mut run = |point: String| -> bool {
        let root = t.path().join("root");
        let _ = Command::new("rm").arg("-rf").arg(&root).status();
        sh(&format!("cp -a '{}' '{}'", template.display(), root.display()));
        let killed = killed_at(&root, dist, &point);
        if killed {
            kills += 1;
            let out = ok(&mut install(&root, dist));
            let again = crate::install::summary(&out);
            assert!(!again["dist"].is_null(), "{point}: {again}");
        }
        assert_no_leftovers(&root);
        let (g, w) = (&root, reference);
        if upgraded.is_empty() {
            assert_same_tree(g, w);
        } else {
            assert_same_tree_but(g, w, upgraded);
        }
        killed
    };
    for p in points {
        assert!(run(p.to_string()), "{p} was never reached");
    }
    for (step, stride) in counted {
        let mut n = 1;
        while run(format!("{step}:{n}")) {
            n += stride;
        }
        assert!(n > 1, "{step} was never reached");
    }
    kills
}

#[test]
fn crash_during_an_update_at_every_step_converges() {
    let f = fixture();
    let (_t, template) = root_with(&[&f.dists[0]]);
    let kills = crash_everywhere(
        &template,
        &f.dists[1],
        &f.refs[1],
        &["staged:1", "verified:1", "journal:1", "upgrade:1", "upgrading:1", "upgraded:1", "recorded:1"],
        &[("stage", 2), ("op", 1), ("flags", 3)],
        V2_UPGRADED_DIRS,
    );
    assert!(kills >= 30, "only {kills} kill points");
    eprintln!("{kills} kill points");
}

#[test]
fn crash_during_a_first_install_converges() {
    let f = fixture();
    let t = tempdir();
    let empty = t.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let kills = crash_everywhere(&empty, &f.dists[0], &f.refs[0], &["journal:1", "upgrade:1"], &[("stage", 5), ("op", 4)], &[]);
    assert!(kills >= 8, "only {kills} kill points");
}

#[test]
fn crash_during_a_kernel_swap_converges() {
    let t = tempdir();
    let mut dists = Vec::new();
    std::fs::create_dir(t.path().join("out")).unwrap();
    for (i, rev) in ["k1", "k2"].iter().enumerate() {
        let stage = t.path().join(rev);
        sh(&format!(
            "set -e; mkdir -p '{0}/boot/kernel'; printf 'kernel {1}\\n' > '{0}/boot/kernel/kernel'; \
             printf 'mod {1}\\n' > '{0}/boot/kernel/{1}.ko'; find '{0}' -exec touch -h -d @1700000000 {{}} +",
            stage.display(),
            rev
        ));
        dists.push(crate::util::pack(&stage, &t.path().join("out"), "kernel.GENERIC", STAMPS[i], rev));
    }
    let (_tt, template) = root_with(&[&dists[0]]);
    // The reference: a clean install of k1 then k2, kernel.old and all.
    let (_tr, reference) = root_with(&[&dists[0], &dists[1]]);
    let kills = crash_everywhere(&template, &dists[1], &reference, &["kernel-old:1", "journal:1"], &[("stage", 1), ("op", 1)], &[]);
    assert!(kills >= 6, "only {kills} kill points");
    assert!(reference.join("boot/kernel.old/k1.ko").exists());
    let r = t.path().join("gnutar");
    gnu_tar_reference(&dists[1], &r);
    assert_eq!(std::fs::read(reference.join("boot/kernel/kernel")).unwrap(), std::fs::read(r.join("boot/kernel/kernel")).unwrap());
}

#[test]
fn a_rerun_without_a_dist_finishes_a_committed_install() {
    let f = fixture();
    let (_t, root) = root_with(&[&f.dists[0]]);
    assert!(killed_at(&root, &f.dists[1], "op:3"));
    let out = ok(bin().arg("install").arg("--root").arg(&root).args(["--make", "bmake", "--json"]));
    let s = crate::install::summary(&out);
    assert_eq!(s["interrupted"], "finished");
    assert_eq!(s["dist"], f.dists[1].file_name().unwrap().to_str().unwrap().trim_end_matches(".tar.gz"));
    assert_same_tree_but(&root, &f.refs[1], V2_UPGRADED_DIRS);
    // And one killed while staging is undone: the root is v2 still.
    let before = tree(&root);
    assert!(killed_at(&root, &f.dists[2], "stage:3"));
    let s = crate::install::summary(&ok(bin().arg("install").arg("--root").arg(&root).arg("--json")));
    assert_eq!(s["interrupted"], "undone");
    assert!(tree(&root) == before);
    assert_no_leftovers(&root);
}

#[test]
fn a_full_disk_is_refused_up_front_or_undone_while_staging_and_a_rerun_finishes() {
    let f = fixture();
    let t = tempdir();
    // v1 plus a file that does not fit.
    let stage = t.path().join("stage");
    sh(&format!("cp -a '{}' '{}' && seq 1 600000 > '{}/usr/share/big'", f.dir.join("stage1").display(), stage.display(), stage.display()));
    let dist = crate::install::pack_with_upgrade(&stage, &t.path().join("out"), STAMPS[3], "big", &{
        let src = t.path().join("src");
        crate::install::upgrade_src(&src, &[]);
        src
    });
    let reference = t.path().join("ref");
    gnu_tar_reference(&dist, &reference);
    let Some(fs) = Tmpfs::mount(&t.path().join("root"), "2m") else { return };
    let root = fs.0.clone();
    ok(&mut install(&root, &f.dists[0]));
    let before = tree(&root);

    let err = fails(&mut install(&root, &dist));
    assert!(err.contains("not enough room") && err.contains("nothing was installed"), "{err}");
    assert!(tree(&root) == before);
    assert_no_leftovers(&root);

    let err = fails(install(&root, &dist).env("BINARYDIST_TEST_SKIP_SPACE_CHECK", "1"));
    assert!(err.contains("No space left on device"), "{err}");
    assert!(tree(&root) == before, "ENOSPC while staging must leave the root as it was");
    assert_no_leftovers(&root);

    fs.remount("size=16m");
    ok(&mut install(&root, &dist));
    assert_same_tree(&root, &reference);
}

#[test]
fn a_read_only_root_is_refused_and_left_alone() {
    let f = fixture();
    let t = tempdir();
    let Some(fs) = Tmpfs::mount(&t.path().join("root"), "16m") else { return };
    let root = fs.0.clone();
    ok(&mut install(&root, &f.dists[0]));
    let before = tree(&root);
    fs.remount("ro");
    let err = fails(&mut install(&root, &f.dists[1]));
    assert!(err.contains("Read-only file system"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(tree(&root) == before);
    fs.remount("rw");
    ok(&mut install(&root, &f.dists[1]));
    assert_same_tree_but(&root, &f.refs[1], V2_UPGRADED_DIRS);
}

/// The calls of a run of `c` that make things durable (fsync, syncfs) or move
/// them into place (renames), as strace prints them with file descriptors
/// resolved to paths; `None` (after a skip) without strace.
pub fn durability_calls(c: &Command, log: &Path) -> Option<Vec<String>> {
    traced_calls(c, log, "fsync,fdatasync,syncfs,rename,renameat,renameat2")
}

/// The calls in `trace` (strace's list) of a run of `c`, as `durability_calls`.
fn traced_calls(c: &Command, log: &Path, trace: &str) -> Option<Vec<String>> {
    if !run_traced(c, log, &["-f", "-qq", "-y", "-e", "signal=none", "-e", &format!("trace={trace}")]) {
        return None;
    }
    Some(std::fs::read_to_string(log).unwrap().lines().map(str::to_string).collect())
}

/// Runs `c` (its environment and directory kept) under `strace OPTS -o LOG`,
/// which must succeed; `false` (after a skip) without strace.
pub fn run_traced(c: &Command, log: &Path, opts: &[&str]) -> bool {
    let mut s = Command::new("strace");
    s.args(opts).arg("-o").arg(log);
    s.arg("--").arg(c.get_program()).args(c.get_args());
    if let Some(d) = c.get_current_dir() {
        s.current_dir(d);
    }
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => s.env(k, v),
            None => s.env_remove(k),
        };
    }
    match s.output() {
        Ok(out) => assert!(out.status.success(), "{s:?}: {}", String::from_utf8_lossy(&out.stderr)),
        Err(_) => {
            crate::util::skip("no strace");
            return false;
        }
    }
    true
}

/// Index of the first call that renames something onto `to`, by its path or
/// relative to a descriptor of its directory (`renameat(3</dir>, "a", 3</dir>, "b")`).
fn renamed_onto(calls: &[String], to: &Path) -> usize {
    let want = format!("\"{}\"", to.display());
    let at = format!("<{}>, \"{}\")", to.parent().unwrap().display(), to.file_name().unwrap().to_str().unwrap());
    calls
        .iter()
        .position(|l| l.contains("rename") && (l.contains(&want) || l.contains(&at)))
        .unwrap_or_else(|| panic!("no rename onto {want}:\n{calls:#?}"))
}

fn fsynced(calls: &[String], path: &Path) -> bool {
    let want = format!("<{}>", path.display());
    calls.iter().any(|l| l.contains("fsync(") && l.contains(&want))
}

#[test]
fn staged_files_and_directories_are_durable_before_the_commit_record_and_renames_before_the_record() {
    let t = tempdir();
    let stage = t.path().join("stage");
    sh(&format!(
        "mkdir -p '{0}/bin' '{0}/usr/lib' '{0}/usr/share/doc' && cd '{0}' && echo a > bin/a && echo b > usr/lib/b && ln usr/lib/b usr/lib/b2 \
         && ln -s b usr/lib/c && echo d > usr/share/doc/d",
        stage.display()
    ));
    let dist = crate::util::pack(&stage, &t.path().join("out"), "world", STAMPS[0], "v1");
    let files = ["bin/a", "usr/lib/b", "usr/share/doc/d"];
    for per_file in [true, false] {
        let root = t.path().join(format!("root.{per_file}"));
        std::fs::create_dir(&root).unwrap();
        let mut c = install(&root, &dist);
        if per_file {
            c.env("BINARYDIST_TEST_SYNC", "per-file");
        }
        let Some(calls) = durability_calls(&c, &t.path().join(format!("strace.{per_file}"))) else { return };
        let commit = renamed_onto(&calls, &root.join("var/db/binarydist/journal"));
        let recorded = renamed_onto(&calls, &root.join("var/db/binarydist/world/installed"));
        let (staging, committing) = (&calls[..commit], &calls[commit..recorded]);
        let syncfs = |calls: &[String]| calls.iter().any(|l| l.contains("syncfs("));
        for f in files {
            // The op that renames the staged file into place names its temporary.
            let line = &calls[renamed_onto(&calls, &root.join(f))];
            let temp = line.split('"').nth(1).unwrap_or_else(|| panic!("{line}"));
            assert!(temp.contains(".bdtmp."), "{line}");
            // renameat names it relative to its directory.
            let temp = root.join(f).parent().unwrap().join(temp);
            assert_eq!(fsynced(staging, &temp), per_file, "per file {per_file}: fsync of {} before the commit record", temp.display());
            if per_file {
                let parent = root.join(f).parent().unwrap().to_path_buf();
                for dir in parent.ancestors().take_while(|d| d.starts_with(&root)) {
                    assert!(fsynced(staging, dir), "fsync of {} before the commit record", dir.display());
                }
                assert!(fsynced(committing, &parent), "fsync of {} after the renames, before the record", parent.display());
            }
        }
        assert!(fsynced(staging, &root.join("var/db/binarydist/world/.base.new.tar.gz")), "the new base");
        assert!(fsynced(staging, &root.join("var/db/binarydist/world/.MANIFEST.new")), "the new MANIFEST");
        assert!(fsynced(staging, &root.join("var/db/binarydist/world")), "the series directory");
        assert!(renamed_onto(&calls, &root.join("var/db/binarydist/world/MANIFEST")) < recorded, "MANIFEST with the record");
        assert_eq!(syncfs(staging), !per_file, "per file {per_file}: syncfs while staging");
        assert_eq!(syncfs(committing), !per_file, "per file {per_file}: syncfs after the renames");
        assert_same_tree(&root, &{
            let r = t.path().join("ref");
            if !r.exists() {
                gnu_tar_reference(&dist, &r);
            }
            r
        });
    }
}

#[test]
fn a_rerun_waits_for_or_refuses_on_a_make_upgrade_still_running_from_a_killed_install() {
    // The install is killed while its make upgrade runs; make goes on. A
    // rerun must not start a second make upgrade beside it: make holds the
    // install's lock (inherited), so the rerun refuses, or with --wait waits.
    let f = fixture();
    let t = tempdir();
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let (log, go) = (t.path().join("make.log"), t.path().join("go"));
    let make = t.path().join("make");
    std::fs::write(
        &make,
        format!(
            "#!/bin/sh\nmkdir '{0}.running' 2>/dev/null || {{ echo overlap >> '{0}'; exit 1; }}\necho start >> '{0}'\n\
             while [ ! -e '{1}' ]; do sleep 0.05; done\necho end >> '{0}'\nrmdir '{0}.running'\nexec bmake \"$@\"\n",
            log.display(),
            go.display()
        ),
    )
    .unwrap();
    sh(&format!("chmod +x '{}'", make.display()));
    // However the test ends, the make it leaves running is let go.
    struct Release(std::path::PathBuf);
    impl Drop for Release {
        fn drop(&mut self) {
            let _ = std::fs::write(&self.0, "");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    let _release = Release(go.clone());
    let run = |extra: &[&str]| {
        let mut c = bin();
        c.arg("install").arg("--root").arg(&root).arg("--make").arg(&make).args(extra).arg(&f.dists[0]);
        c
    };
    // Not .output(): the make left running holds the killed install's stderr.
    let killed = run(&[]).env("BINARYDIST_TEST_KILL_AT", "upgrading:1").stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap();
    assert_eq!(killed.signal(), Some(9));
    let err = fails(&mut run(&[]));
    assert!(err.contains("another install is running") && err.contains("make upgrade pid"), "{err}");
    let mut waiting = run(&["--wait"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(waiting.try_wait().unwrap().is_none(), "the rerun did not wait for make upgrade");
    std::fs::write(&go, "").unwrap();
    let out = waiting.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The interrupted install is finished: its make upgrade runs again, after the first.
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "start\nend\nstart\nend\n");
    assert_same_tree(&root, &f.refs[0]);
}

#[test]
fn a_full_disk_while_finishing_a_commit_tears_a_mark_and_a_rerun_after_space_is_freed_converges() {
    // The commit is interrupted; the rerun that finishes it meets a full disk
    // while it appends its progress marks, and the write that fails leaves a
    // torn line. Once space is freed, the next run must still read the
    // journal, and finish.
    let f = fixture();
    let t = tempdir();
    let Some(fs) = Tmpfs::mount(&t.path().join("root"), "8m") else { return };
    let root = fs.0.clone();
    ok(&mut install(&root, &f.dists[0]));
    assert!(killed_at(&root, &f.dists[1], "op:3"));
    // Five bytes left in the journal's last page, then a full file system:
    // the next mark's write(2) stops short with ENOSPC. (A line of filler
    // after the commit record is a damaged mark to any reader: ignored.)
    let journal = root.join("var/db/binarydist/journal");
    let size = std::fs::metadata(&journal).unwrap().len();
    let fill = (4096 - (size + 1 + 5) % 4096) % 4096;
    let mut text = std::fs::read(&journal).unwrap();
    text.extend(std::iter::repeat_n(b'x', fill as usize));
    text.push(b'\n');
    std::fs::write(&journal, &text).unwrap();
    assert_eq!((text.len() + 5) % 4096, 0);
    let _ = Command::new("dd").args(["if=/dev/zero", "bs=4096"]).arg(format!("of={}", root.join("filler").display())).output();
    let err = fails(&mut install(&root, &f.dists[1]));
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(err.trim().lines().count(), 2, "{err}"); // "finishing the interrupted install", then why it stopped
    let torn = std::fs::read(&journal).unwrap();
    assert_eq!(torn.len(), text.len() + 5, "a torn mark was left");
    std::fs::remove_file(root.join("filler")).unwrap();
    ok(&mut install(&root, &f.dists[1]));
    assert_no_leftovers(&root);
    assert_same_tree_but(&root, &f.refs[1], V2_UPGRADED_DIRS);
}

#[test]
fn what_make_upgrade_wrote_is_durable_before_its_upgraded_mark() {
    // v2's make upgrade removes usr/bin/oldprog. A power loss after the
    // journal's `upgraded` mark must not lose that: the rerun would not run
    // make again. So between make's removal and the mark's fsync of the
    // journal, usr/bin is fsynced (per file) or the file system synced.
    let f = fixture();
    for per_file in [true, false] {
        let (t, root) = root_with(&[&f.dists[0]]);
        let mut c = install(&root, &f.dists[1]);
        if per_file {
            c.env("BINARYDIST_TEST_SYNC", "per-file");
        }
        let trace = "fsync,syncfs,rename,renameat,renameat2,unlink,unlinkat";
        let Some(calls) = traced_calls(&c, &t.path().join("strace"), trace) else { return };
        let removed = calls.iter().position(|l| l.contains("unlink") && l.contains("oldprog")).unwrap_or_else(|| panic!("{calls:#?}"));
        let recorded = renamed_onto(&calls, &root.join("var/db/binarydist/world/installed"));
        let journal = format!("<{}>", root.join("var/db/binarydist/journal").display());
        let mark =
            (removed..recorded).rev().find(|&i| calls[i].contains("fsync(") && calls[i].contains(&journal)).expect("the upgraded mark");
        let between = &calls[removed..mark];
        let durable = if per_file { fsynced(between, &root.join("usr/bin")) } else { between.iter().any(|l| l.contains("syncfs(")) };
        assert!(durable, "per file {per_file}: nothing made make upgrade's removal durable before the mark:\n{between:#?}");
        assert_same_tree_but(&root, &f.refs[1], V2_UPGRADED_DIRS);
    }
}
