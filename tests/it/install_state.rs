//! The state directory, ROOT/var/db/binarydist, under attack and damaged:
//! symlinks planted in it (whoever owns the tree of a jail or an image that
//! `--root` names can plant them), a root that has none yet, and state left
//! broken by a crash or by hand.

use crate::install::install;
use crate::install_hostile::{craft_named, dir, file};
use crate::util::{fails, ok, sh, tempdir};
use std::path::{Path, PathBuf};

const NAME: &str = "DragonFly-world-x86_64-master-20261128T100000Z-s1";

struct Scene {
    t: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

impl Scene {
    /// A root with an etc/ and nothing installed, and a directory beside it.
    fn new() -> Scene {
        let t = tempdir();
        let (root, outside) = (t.path().join("root"), t.path().join("outside"));
        sh(&format!("mkdir -p '{}/etc' '{}'", root.display(), outside.display()));
        Scene { t, root, outside }
    }

    fn dist(&self, name: &str) -> PathBuf {
        let entries = [dir("etc"), file("etc/motd", &format!("{name}\n"))];
        craft_named(&self.t.path().join("dists").join(name), name, &entries, &entries, None)
    }

    fn state(&self) -> PathBuf {
        self.root.join("var/db/binarydist")
    }

    fn outside_is_empty(&self) -> bool {
        std::fs::read_dir(&self.outside).unwrap().next().is_none()
    }
}

fn one_line(err: &str) {
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn symlinks_in_the_state_directory_are_refused_and_never_followed() {
    let victim = "keep\n";
    // (what is planted, relative to the root, and where it points, relative to outside)
    for (planted, target, existing) in [
        ("var/db/binarydist/lock", "victim", true),
        ("var/db/binarydist/journal", "journal", false),
        ("var/db/binarydist/world", "world", true),
        ("var", "var", true),
        ("var/db/binarydist", "state", true),
    ] {
        let s = Scene::new();
        let at = s.root.join(planted);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        let to = s.outside.join(target);
        if existing {
            if planted.ends_with("lock") {
                std::fs::write(&to, victim).unwrap();
            } else {
                std::fs::create_dir(&to).unwrap();
            }
        }
        std::os::unix::fs::symlink(&to, &at).unwrap();
        let err = fails(&mut install(&s.root, &s.dist(NAME)));
        one_line(&err);
        assert!(err.contains("not a real directory") || err.contains("not a regular file"), "{planted}: {err}");
        let left = sh(&format!("cd '{}' && find . | sort", s.outside.display()));
        let want = if !existing { ".\n".to_string() } else { format!(".\n./{target}\n") };
        assert_eq!(left, want, "{planted}: something was made outside the root");
        if planted.ends_with("lock") {
            assert_eq!(std::fs::read_to_string(&to).unwrap(), victim, "the lock's target was written");
        }
        assert_eq!(std::fs::read_to_string(s.root.join("etc/motd")).ok(), None, "{planted}: installed anyway");
    }
    // A state directory that is a file.
    let s = Scene::new();
    sh(&format!("mkdir -p '{0}/var/db' && echo x > '{0}/var/db/binarydist'", s.root.display()));
    let err = fails(&mut install(&s.root, &s.dist(NAME)));
    one_line(&err);
    assert!(err.contains("var/db/binarydist: not a real directory"), "{err}");
}

#[test]
fn a_planted_temporary_base_is_replaced_not_written_through() {
    let s = Scene::new();
    ok(&mut install(&s.root, &s.dist(NAME)));
    let planted = s.state().join("world/.base.new.tar.gz");
    std::os::unix::fs::symlink(s.outside.join("base"), &planted).unwrap();
    ok(&mut install(&s.root, &s.dist("DragonFly-world-x86_64-master-20261128T110000Z-s2")));
    assert!(s.outside_is_empty(), "the new base was written outside the root");
    let base = std::fs::symlink_metadata(s.state().join("world/base.tar.gz")).unwrap();
    assert!(base.file_type().is_file(), "base.tar.gz is {:?}", base.file_type());
    assert_eq!(std::fs::read_to_string(s.root.join("etc/motd")).unwrap(), "DragonFly-world-x86_64-master-20261128T110000Z-s2\n");
}

#[test]
fn a_refused_install_into_a_root_without_state_leaves_no_state_behind() {
    let s = Scene::new();
    let entries = [dir("etc"), file("etc/../../x", "x")];
    let hostile = craft_named(&s.t.path().join("hostile"), NAME, &entries, &entries, None);
    let err = fails(&mut install(&s.root, &hostile));
    assert!(err.contains("'..'"), "{err}");
    assert!(!s.root.join("var").exists(), "a refused install made {}", sh(&format!("find '{}/var'", s.root.display())));
    // A lock file that exists stays: removing it could let two holders coexist.
    std::fs::create_dir_all(s.state()).unwrap();
    std::fs::write(s.state().join("lock"), "").unwrap();
    fails(&mut install(&s.root, &hostile));
    assert!(s.state().join("lock").exists());
    assert!(!Path::new(&s.state().join("journal")).exists());
}

/// A root with the first dist installed and a journal of `text`.
fn with_journal(text: &[u8]) -> Scene {
    let s = Scene::new();
    ok(&mut install(&s.root, &s.dist(NAME)));
    std::fs::write(s.state().join("journal"), text).unwrap();
    s
}

#[test]
fn damaged_state_is_recovered_or_refused_with_the_fix_named() {
    // The lock path is a directory.
    let s = Scene::new();
    std::fs::create_dir_all(s.state().join("lock")).unwrap();
    let err = fails(&mut install(&s.root, &s.dist(NAME)));
    one_line(&err);
    assert!(err.contains("lock: a directory where the lock file should be") && err.contains("rmdir"), "{err}");
    // A journal that is not one: refused, and the message says what to do.
    let s = with_journal(b"\x7fELF garbage\n\x00\x01");
    let err = fails(&mut install(&s.root, &s.dist("DragonFly-world-x86_64-master-20261128T110000Z-s2")));
    one_line(&err);
    assert!(err.contains("not a binarydist journal") && err.contains("move it aside") && err.contains(".bdtmp."), "{err}");
    // An empty one (a crash before its first lines reached the disk): nothing
    // was staged yet, so it is removed and the install goes on.
    let s = with_journal(b"");
    ok(&mut install(&s.root, &s.dist("DragonFly-world-x86_64-master-20261128T110000Z-s2")));
    assert!(!s.state().join("journal").exists());
    // A commit record cut short: what it would have done cannot be known.
    let s = Scene::new();
    ok(&mut install(&s.root, &s.dist(NAME)));
    let name2 = "DragonFly-world-x86_64-master-20261128T110000Z-s2";
    let killed = install(&s.root, &s.dist(name2)).env("BINARYDIST_TEST_KILL_AT", "journal:1").status().unwrap();
    assert!(!killed.success());
    let journal = s.state().join("journal");
    let text = std::fs::read(&journal).unwrap();
    std::fs::write(&journal, &text[..text.len() * 2 / 3]).unwrap();
    let err = fails(&mut install(&s.root, &s.dist(name2)));
    one_line(&err);
    assert!(err.contains("cut short") && err.contains(name2) && err.contains("again in full"), "{err}");
    // The fix it names works.
    std::fs::rename(&journal, s.t.path().join("journal.aside")).unwrap();
    ok(&mut install(&s.root, &s.dist(name2)));
    assert_eq!(std::fs::read_to_string(s.root.join("etc/motd")).unwrap(), format!("{name2}\n"));
    assert_eq!(sh(&format!("find '{}' -name '.bdtmp.*' -o -name '.*.new*'", s.root.display())), "");
}
