//! What the installer keeps from happening: `make upgrade` for another root
//! reaching the running system (the guards on PATH), and an install that the
//! securelevel would stop half-way through its commit (refused up front).

use crate::install::{fixture, install, pack_with_upgrade, root_with, tree, STAMPS};
use crate::util::{fails, ok, sh, tempdir};

#[test]
fn make_upgrade_for_another_root_cannot_remove_or_ldconfig_outside_it() {
    let t = tempdir();
    let work = t.path().canonicalize().unwrap();
    let stage = work.join("stage");
    std::fs::create_dir_all(stage.join("etc")).unwrap();
    std::fs::write(stage.join("etc/motd"), "hello\n").unwrap();
    // The shape of DragonFly's etc/Makefile: an rm -rf of a path read from
    // the root's passwd, without DESTDIR, and ldconfig -R.
    let src = work.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("Makefile"),
        "upgrade:\n\trm -f ${DESTDIR}/etc/obsolete\n\tHOME_DIR=\"$${VICTIM}\"; rm -rf \"$$HOME_DIR\"\n\
         \trm -rf $${VICTIM}/../also/*\n\tldconfig -R\n",
    )
    .unwrap();
    let dist = pack_with_upgrade(&stage, &work.join("dist"), STAMPS[0], "v1", &src);
    let victim = work.join("outside/chroot");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::create_dir_all(work.join("outside/also")).unwrap();
    std::fs::write(work.join("outside/also/file"), "").unwrap();
    // A logging ldconfig next in PATH: the guard must come before it.
    let bin_dir = work.join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let ldlog = work.join("ldconfig.log");
    std::fs::write(bin_dir.join("ldconfig"), format!("#!/bin/sh\necho \"$@\" >> '{}'\n", ldlog.display())).unwrap();
    sh(&format!("chmod +x '{}'", bin_dir.join("ldconfig").display()));
    let root = work.join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/obsolete"), "").unwrap();

    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = ok(install(&root, &dist).env("PATH", path).env("VICTIM", &victim));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!root.join("etc/obsolete").exists(), "an rm inside the root goes through: {err}");
    assert!(victim.is_dir() && work.join("outside/also/file").exists(), "an rm outside the root went through: {err}");
    assert!(err.contains(&format!("guard: not removing {}", victim.display())), "{err}");
    assert!(err.contains("guard: skipped ldconfig -R") && !ldlog.exists(), "{err}");
    assert!(!root.join("var/db/binarydist/guard").exists(), "the guards are removed after");
}

#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks (make test)")]
fn an_install_the_securelevel_forbids_is_refused_before_anything_is_staged() {
    let f = fixture();
    let (t, root) = root_with(&[&f.dists[0]]);
    let flags = t.path().join("flags");
    std::fs::create_dir(&flags).unwrap();
    // libc.so.8 has schg, and revision 2 replaces it.
    std::fs::write(flags.join("flags"), format!("{}\tschg\n", root.join("lib/libc.so.8").display())).unwrap();
    let before = tree(&root);
    let err = fails(install(&root, &f.dists[1]).env("BINARYDIST_TEST_FLAGS", &flags).env("BINARYDIST_TEST_SECURELEVEL", "1"));
    assert!(err.contains("/lib/libc.so.8: has schg, and kern.securelevel is 1") && err.contains("nothing was staged"), "{err}");
    assert_eq!(tree(&root), before, "the root changed");
    assert!(!root.join("var/db/binarydist/journal").exists());
    assert!(sh(&format!("find '{}' -name '.bdtmp.*'", root.display())).is_empty());
    assert!(!flags.join("calls").exists(), "a flag was changed");

    // Nothing to clear: the same securelevel does not stop the install.
    std::fs::remove_file(flags.join("flags")).unwrap();
    ok(install(&root, &f.dists[1]).env("BINARYDIST_TEST_FLAGS", &flags).env("BINARYDIST_TEST_SECURELEVEL", "1"));
    assert_eq!(std::fs::read_to_string(root.join("lib/libc.so.8")).unwrap(), "libc 8 v2\n");
}

#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks (make test)")]
fn a_kernel_install_that_must_remove_an_schg_kernel_old_is_refused_under_securelevel() {
    let t = tempdir();
    let flags = t.path().join("flags");
    std::fs::create_dir(&flags).unwrap();
    let dists: Vec<_> = ["k1", "k2"]
        .iter()
        .enumerate()
        .map(|(i, rev)| {
            let stage = t.path().join(rev);
            std::fs::create_dir_all(stage.join("boot/kernel")).unwrap();
            std::fs::write(stage.join("boot/kernel/kernel"), format!("kernel {rev}\n")).unwrap();
            crate::util::pack(&stage, &t.path().join("dist"), "kernel.GENERIC", STAMPS[i], rev)
        })
        .collect();
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let run = |dist: &std::path::Path| {
        let mut c = install(&root, dist);
        c.env("BINARYDIST_TEST_FLAGS", &flags).env("BINARYDIST_TEST_SECURELEVEL", "1");
        c
    };
    ok(&mut run(&dists[0]));
    // The installed kernel.old holds an schg kernel, which the next kernel
    // install removes.
    std::fs::create_dir_all(root.join("boot/kernel.old")).unwrap();
    std::fs::write(root.join("boot/kernel.old/kernel"), "kernel k0\n").unwrap();
    std::fs::write(flags.join("flags"), format!("{}\tschg\n", root.join("boot/kernel.old/kernel").display())).unwrap();
    let err = fails(&mut run(&dists[1]));
    assert!(err.contains("/boot/kernel.old/kernel: has schg, and kern.securelevel is 1"), "{err}");
    assert_eq!(std::fs::read_to_string(root.join("boot/kernel/kernel")).unwrap(), "kernel k1\n");
}
