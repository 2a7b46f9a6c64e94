//! Hostile archives: each is refused with a clear message before anything is
//! renamed into place (in fact before anything is staged), and the root and
//! everything outside it are left as they were.

use crate::install::{install, tree};
use crate::util::{fails, ok, sh, tempdir};
use binarydist::manifest::{member_path, Entry, Manifest};
use binarydist::names::{DistName, Series};
use binarydist::tario::{self, hash, Digests, Kind, Meta};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const NAME: &str = "DragonFly-world-x86_64-master-20261128T100000Z-evil";

pub fn file(path: &str, data: &str) -> (Meta, Vec<u8>) {
    let mut m = Meta::new(path, Kind::File);
    m.size = data.len() as u64;
    (m, data.as_bytes().to_vec())
}

pub fn dir(path: &str) -> (Meta, Vec<u8>) {
    (Meta::new(path, Kind::Dir), Vec::new())
}

pub fn link(path: &str, kind: Kind, target: &str) -> (Meta, Vec<u8>) {
    let mut m = Meta::new(path, kind);
    m.link = Some(target.into());
    (m, Vec::new())
}

/// A dist whose manifest lists exactly `entries` and whose members are
/// `members` (the same, unless a test wants them to disagree), with sidecars.
pub fn craft(out: &Path, entries: &[(Meta, Vec<u8>)], members: &[(Meta, Vec<u8>)]) -> PathBuf {
    craft_named(out, NAME, entries, members, None)
}

pub fn craft_named(out: &Path, name: &str, entries: &[(Meta, Vec<u8>)], members: &[(Meta, Vec<u8>)], upgrade_src: Option<&str>) -> PathBuf {
    let manifest = Manifest {
        name: DistName::parse(name).unwrap(),
        upgrade_src: upgrade_src.map(PathBuf::from),
        entries: entries
            .iter()
            .map(|(m, d)| Entry {
                meta: m.clone(),
                sha256: (m.kind == Kind::File).then(|| hash::sha256_of(&d[..]).unwrap()),
                critical: false,
            })
            .collect(),
    };
    let text = manifest.to_text();
    let mut w = tario::Writer::new(Vec::new());
    let mut mm = Meta::new(member_path(&Series::World), Kind::File);
    mm.size = text.len() as u64;
    mm.mode = 0o444;
    w.append(&mm, text.as_bytes()).unwrap();
    for (m, d) in members {
        w.append(m, &d[..]).unwrap();
    }
    let tar = w.finish().unwrap();
    let digests = Digests::of(&tar);
    std::fs::create_dir_all(out).unwrap();
    let dist = out.join(format!("{name}.tar.gz"));
    let mut gz = tario::gz::encoder(std::fs::File::create(&dist).unwrap());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap();
    std::fs::write(out.join(format!("{name}.tar.md5")), format!("MD5 ({name}.tar) = {}\n", digests.md5_hex())).unwrap();
    std::fs::write(out.join(format!("{name}.tar.sha256")), format!("SHA256 ({name}.tar) = {}\n", digests.sha256_hex())).unwrap();
    dist
}

struct Scene {
    _t: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
    out: PathBuf,
}

/// A root holding a few files and the state directory of an earlier install,
/// and a directory beside it that nothing may touch.
fn scene() -> Scene {
    let t = tempdir();
    let root = t.path().join("root");
    let outside = t.path().join("outside");
    sh(&format!(
        "mkdir -p '{0}/etc/motd.d' '{0}/bin' '{0}/var/db/binarydist/world' '{1}' && echo hi > '{0}/etc/motd' && echo x > '{0}/bin/sh' && echo keep > '{1}/f'",
        root.display(),
        outside.display()
    ));
    let out = t.path().join("dist");
    Scene { _t: t, root, outside, out }
}

/// Installs `dist`, expects a refusal mentioning `why`, and checks that
/// nothing changed inside or outside the root.
fn refused(s: &Scene, dist: &Path, why: &str) {
    let before = tree(&s.root);
    let err = fails(&mut install(&s.root, dist));
    assert!(err.contains(why), "expected {why:?} in: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
    assert!(tree(&s.root) == before, "the root changed after: {err}");
    assert_eq!(sh(&format!("ls -A '{}'", s.outside.display())), "f\n", "outside the root changed");
    let leftovers = sh(&format!("find '{}' -name '.bdtmp.*' -o -name journal", s.root.display()));
    assert!(leftovers.is_empty(), "{leftovers}");
}

fn refused_entries(entries: &[(Meta, Vec<u8>)], why: &str) {
    let s = scene();
    let dist = craft(&s.out, entries, entries);
    refused(&s, &dist, why);
}

#[test]
fn hostile_dotdot_path_is_refused() {
    refused_entries(&[dir("usr"), file("usr/../../outside/evil", "x")], "'..'");
}

#[test]
fn hostile_absolute_path_is_refused() {
    let s = scene();
    let evil = s.outside.join("evil").display().to_string();
    let entries = [file(&evil, "x")];
    let dist = craft(&s.out, &entries, &entries);
    refused(&s, &dist, "absolute path");
}

#[test]
fn hostile_path_through_a_symlink_planted_in_the_archive_is_refused() {
    let s = scene();
    let entries = [dir("usr"), link("usr/lnk", Kind::Symlink, &s.outside.display().to_string()), file("usr/lnk/evil", "x")];
    let dist = craft(&s.out, &entries, &entries);
    refused(&s, &dist, "a link planted earlier in the archive");
}

#[test]
fn hostile_path_through_a_symlink_already_in_the_root_is_refused() {
    let s = scene();
    std::os::unix::fs::symlink(&s.outside, s.root.join("usr")).unwrap();
    refused_entries_in(&s, &[file("usr/evil", "x")], "a symlink already in the root");
}

fn refused_entries_in(s: &Scene, entries: &[(Meta, Vec<u8>)], why: &str) {
    let dist = craft(&s.out, entries, entries);
    refused(s, &dist, why);
}

#[test]
fn hostile_entry_after_one_that_goes_through_it_is_refused() {
    refused_entries(&[file("lib/x/evil", "x"), link("lib/x", Kind::Symlink, "/etc")], "an earlier entry goes through it");
}

#[test]
fn hostile_hard_links_out_of_the_root_are_refused() {
    refused_entries(&[file("bin/a", "a"), link("bin/x", Kind::HardLink, "/etc/passwd")], "absolute path");
    refused_entries(&[file("bin/a", "a"), link("bin/x", Kind::HardLink, "../outside/f")], "'..'");
    refused_entries(&[link("bin/s", Kind::Symlink, "/etc/passwd"), link("bin/x", Kind::HardLink, "bin/s")], "not a regular file earlier");
    refused_entries(&[link("bin/x", Kind::HardLink, "etc/motd")], "not a regular file earlier");
}

#[test]
fn hostile_duplicate_entries_are_refused() {
    refused_entries(&[file("etc/motd", "a"), file("etc/motd", "b")], "duplicate entry");
    refused_entries(&[file("+MANIFEST", "forged")], "duplicate entry");
}

#[test]
fn hostile_entries_named_like_the_installers_temporary_names_are_refused() {
    refused_entries(&[file("bin/.bdtmp.0", "x")], "the installer's temporary names");
    refused_entries(&[dir("boot"), dir("boot/.bdtmp.kernel")], "the installer's temporary names");
}

#[test]
fn hostile_entries_in_the_installers_state_directory_are_refused() {
    refused_entries(&[file("var/db/binarydist/world/installed", "forged")], "inside the installer's state directory");
    refused_entries(&[file("var/db/binarydist/world/base.tar.gz", "forged")], "inside the installer's state directory");
}

#[test]
fn hostile_file_over_a_directory_and_directory_over_a_file_are_refused() {
    refused_entries(&[file("etc/motd.d", "x")], "a file in the dist, a directory in the root");
    refused_entries(&[dir("etc/motd")], "a directory in the dist, a file in the root");
}

#[test]
fn hostile_members_that_disagree_with_the_manifest_leave_the_root_as_it_was() {
    let s = scene();
    let entries = [dir("usr"), file("usr/a", "a"), file("usr/b", "b")];
    let members = [dir("usr"), file("usr/a", "a"), file("usr/c", "b")];
    let dist = craft(&s.out, &entries, &members);
    // The message names the field that differs, not two structs.
    refused(&s, &dist, r#"disagrees with the manifest: path "usr/c" in the header, "usr/b" in the manifest"#);
    let mut wrong_mode = file("usr/a", "a");
    wrong_mode.0.mode = 0o4755;
    let dist = craft(&s.out.join("mode"), &entries, &[dir("usr"), wrong_mode, file("usr/b", "b")]);
    refused(&s, &dist, "mode 4755 in the header, 0644 in the manifest");
}

#[test]
fn hostile_device_node_is_refused_when_not_root() {
    let s = scene();
    let mut dev = Meta::new("dev/evil", Kind::CharDev);
    dev.dev = Some((1, 3));
    let entries = [(dev, Vec::new())];
    let dist = craft(&s.out, &entries, &entries);
    // An unprivileged user who owns the root and can read the dist.
    sh(&format!("chown -R 65534:65534 '{}' && chmod -R a+rX '{}' '{}'", s.root.display(), s._t.path().display(), s.out.display()));
    let bin = env!("CARGO_BIN_EXE_binarydist");
    let probe = Command::new("setpriv").args(["--reuid=65534", "--regid=65534", "--clear-groups", bin, "--version"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return crate::util::skip("cannot run the binary as an unprivileged user here");
    }
    let before = tree(&s.root);
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", bin, "install", "--root"])
        .arg(&s.root)
        .arg(&dist)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("only root may create one"), "{err}");
    assert!(tree(&s.root) == before);
}

const SUBSET: &str = "usr/share/binarydist/upgrade-src";

/// The directories leading to the upgrade subset, and its Makefile.
fn subset_entries() -> Vec<(Meta, Vec<u8>)> {
    vec![dir("usr"), dir("usr/share"), dir("usr/share/binarydist"), dir(SUBSET), file(&format!("{SUBSET}/Makefile"), "upgrade:\n\t@true\n")]
}

#[test]
fn hostile_upgrade_subset_outside_the_dist_is_refused() {
    // make upgrade runs as root in the directory the manifest names.
    let s = scene();
    let evil = s.out.parent().unwrap().join("evil");
    sh(&format!("mkdir -p '{0}/src' && printf 'upgrade:\n\ttouch {0}/ran\n' > '{0}/src/Makefile'", evil.display()));
    for src in [evil.join("src").display().to_string(), "../evil/src".to_string(), "usr".to_string()] {
        let entries = subset_entries();
        let dist = craft_named(&s.out, NAME, &entries, &entries, Some(&src));
        refused(&s, &dist, "upgrade subset");
    }
    assert!(!evil.join("ran").exists());
}

#[test]
fn hostile_symlink_where_a_dropped_subset_directory_was_does_not_carry_removals_out() {
    // Files the new dist drops from the subset are removed; a symlink the new
    // dist puts where their directory was must not take the removal elsewhere.
    let s = scene();
    sh(&format!("rm -rf '{0}/var/db/binarydist/world' && echo precious > '{1}/b'", s.root.display(), s.outside.display()));
    let mut first = subset_entries();
    first.extend([dir(&format!("{SUBSET}/a")), file(&format!("{SUBSET}/a/b"), "bbb")]);
    let d1 = craft_named(&s.out.join("1"), NAME, &first, &first, Some(SUBSET));
    crate::util::ok(&mut install(&s.root, &d1));
    sh(&format!("rm -rf '{}/{SUBSET}/a'", s.root.display()));
    let mut second = subset_entries();
    second.push(link(&format!("{SUBSET}/a"), Kind::Symlink, &s.outside.display().to_string()));
    let name2 = "DragonFly-world-x86_64-master-20261128T110000Z-evil2";
    let d2 = craft_named(&s.out.join("2"), name2, &second, &second, Some(SUBSET));
    crate::util::ok(&mut install(&s.root, &d2));
    assert_eq!(sh(&format!("cat '{}/b'", s.outside.display())), "precious\n", "a removal went through the symlink");
    let planted = std::fs::read_link(s.root.join(format!("{SUBSET}/a"))).unwrap();
    assert_eq!(planted, s.outside, "the new dist's symlink is in place");
}

/// Corrupts a dist's SHA-256 sidecar, so that the install fails at verification,
/// after staging.
fn break_sidecar(dist: &Path) {
    let side = PathBuf::from(dist.to_string_lossy().replace(".tar.gz", ".tar.sha256"));
    let text = std::fs::read_to_string(&side).unwrap();
    std::fs::write(&side, format!("{}0000000000\n", &text[..text.len() - 11])).unwrap();
}

#[test]
fn undo_puts_back_the_mtime_of_a_parent_whose_new_directory_had_no_entry() {
    // The dist lists etc/new/f but not etc/new: staging makes etc/new, and the
    // undo must leave etc's mtime as it was after removing it.
    let s = scene();
    sh(&format!("touch -d @1577836800 '{}/etc'", s.root.display()));
    let entries = [file("etc/new/f", "x")];
    let dist = craft(&s.out, &entries, &entries);
    break_sidecar(&dist);
    refused(&s, &dist, "SHA-256 of the tar");
}

#[test]
fn a_file_with_hard_links_gets_its_flags_after_every_rename() {
    // On BSD rename(2) of a link to an schg inode fails: set flags last.
    let s = scene();
    let flags = s.out.parent().unwrap().join("flags");
    std::fs::create_dir_all(&flags).unwrap();
    let (mut chfn, data) = file("usr/bin/chfn", "prog");
    chfn.flags = Some("schg".into());
    let mut chpass = link("usr/bin/chpass", Kind::HardLink, "usr/bin/chfn");
    chpass.0.flags = Some("schg".into());
    let entries = [dir("usr"), dir("usr/bin"), (chfn, data), chpass];
    let dist = craft(&s.out, &entries, &entries);
    crate::util::ok(install(&s.root, &dist).env("BINARYDIST_TEST_FLAGS", &flags));
    let calls = std::fs::read_to_string(flags.join("calls")).unwrap();
    let at = |l: String| calls.lines().position(|x| x == l).unwrap_or_else(|| panic!("no {l:?} in\n{calls}"));
    let root = s.root.display();
    assert!(at(format!("rename\t{root}/usr/bin/chpass")) < at(format!("set\t{root}/usr/bin/chfn\tschg")), "{calls}");
}

#[test]
fn undo_finishes_even_when_the_journal_lost_a_temporary_file() {
    // After a power loss a staged file may be on disk while its journal line
    // is not: the undo of its new directory must still succeed.
    let s = scene();
    let entries = [dir("etc/sub"), file("etc/sub/a", "a"), file("etc/sub/b", "b"), file("etc/sub/c", "c")];
    let dist = craft(&s.out, &entries, &entries);
    let before = tree(&s.root);
    let killed = install(&s.root, &dist).env("BINARYDIST_TEST_KILL_AT", "stage:3").output().unwrap();
    assert!(!killed.status.success());
    let journal = s.root.join("var/db/binarydist/journal");
    let text = std::fs::read_to_string(&journal).unwrap();
    let lost: String = text.lines().filter(|l| !l.contains("etc/sub/")).map(|l| format!("{l}\n")).collect();
    assert_ne!(lost, text, "no staged file of etc/sub in the journal:\n{text}");
    std::fs::write(&journal, lost).unwrap();
    let mut rerun = crate::util::bin();
    rerun.arg("install").arg("--root").arg(&s.root);
    crate::util::ok(&mut rerun);
    assert!(tree(&s.root) == before, "the root is not as it was");
}

#[test]
fn hostile_journal_is_refused_before_anything_is_undone_or_redone() {
    // The journal is read back by the next run, which removes what a staging
    // log lists and renames what a commit record lists: its paths are input.
    let s = scene();
    let journal = s.root.join("var/db/binarydist/journal");
    let outside = s.outside.file_name().unwrap().to_str().unwrap().to_string();
    let commit = |op: &str| {
        format!(
            "#binarydist journal 1\nphase commit\ndist {NAME}\ntar 1 {} {}\nbase-new var/db/binarydist/world/.base.new.tar.gz\nop {op}\nend\n",
            "0".repeat(32),
            "0".repeat(64)
        )
    };
    for text in [
        format!("#binarydist journal 1\nphase staging\nstaged-tree ../{outside}\n"),
        format!("#binarydist journal 1\nphase staging\nstaged ../{outside}/f\n"),
        "#binarydist journal 1\nphase staging\nstaged etc/motd\n".to_string(),
        commit(&format!("remove ../{outside}/f")),
        commit("rename bin/sh etc/motd -"),
    ] {
        std::fs::write(&journal, &text).unwrap();
        let before = tree(&s.root);
        let mut rerun = crate::util::bin();
        rerun.arg("install").arg("--root").arg(&s.root);
        let err = fails(&mut rerun);
        assert!(err.contains("journal: line 3") || err.contains("journal: line 6"), "{text}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert_eq!(sh(&format!("ls -A '{}'", s.outside.display())), "f\n", "{text}: outside the root changed");
        assert!(tree(&s.root) == before, "{text}: the root changed");
    }
}

/// One line, short, with no control character but its final newline: what an
/// admin's terminal shows of it is what it says.
fn assert_one_clean_line(err: &str) {
    let body = err.strip_suffix('\n').unwrap_or(err);
    assert!(!body.chars().any(|c| c.is_control()), "a control character in: {err:?}");
    assert!(body.len() < 1024, "{} bytes: {}...", body.len(), &body[..200]);
}

#[test]
fn hostile_names_are_shown_escaped_and_cut_on_one_line() {
    let s = scene();
    // A newline and an escape sequence that would print a fake second line.
    let fake = "\n\x1b[1Abinarydist: installed\x1b[K";
    let dist = craft(&s.out.join("dotdot"), &[file(&format!("usr/..{fake}/../x"), "x")], &[file(&format!("usr/..{fake}/../x"), "x")]);
    let err = fails(&mut install(&s.root, &dist));
    assert!(err.contains("'..'") && err.contains("\\n\\x1b[1Abinarydist"), "{err:?}");
    assert_one_clean_line(&err);
    // The same in a member that disagrees with its manifest entry.
    let entries = [dir("usr"), file("usr/a", "a")];
    let dist = craft(&s.out.join("member"), &entries, &[dir("usr"), file(&format!("usr/a{fake}"), "a")]);
    let err = fails(&mut install(&s.root, &dist));
    assert!(err.contains("disagrees with the manifest"), "{err:?}");
    assert_one_clean_line(&err);
    // A path of 900 KB (in a PAX header): cut, with its length.
    let long = format!("usr/{}", "x".repeat(900_000));
    let dist = craft(&s.out.join("long"), &[dir("usr"), file(&long, "x")], &[dir("usr"), file(&long, "x")]);
    let err = fails(&mut install(&s.root, &dist));
    assert!(err.contains("x\u{2026} (") && err.contains(" bytes)"), "{}", &err[..err.len().min(400)]);
    assert_one_clean_line(&err);
}

#[test]
fn a_manifest_member_past_the_limit_says_so() {
    let s = scene();
    let mut m = Meta::new("+MANIFEST", Kind::File);
    m.size = binarydist::manifest::MAX_SIZE + 1;
    let mut tar = tario::write::header_bytes(&m);
    tar.extend_from_slice(&[0u8; 4096]);
    std::fs::create_dir_all(&s.out).unwrap();
    let dist = s.out.join(format!("{NAME}.tar"));
    std::fs::write(&dist, &tar).unwrap();
    let d = Digests::of(&tar);
    std::fs::write(s.out.join(format!("{NAME}.tar.md5")), format!("MD5 ({NAME}.tar) = {}\n", d.md5_hex())).unwrap();
    std::fs::write(s.out.join(format!("{NAME}.tar.sha256")), format!("SHA256 ({NAME}.tar) = {}\n", d.sha256_hex())).unwrap();
    let want = format!("+MANIFEST is {} bytes, more than the {} a manifest may have", m.size, m.size - 1);
    refused(&s, &dist, &want);
    let err = fails(crate::util::bin().arg("verify").arg(&dist));
    assert!(err.contains(&want), "{err}");
}

#[test]
fn hostile_owner_4294967295_is_refused() {
    // To chown(2), uid or gid (uid_t)-1 means "leave it": such an entry would
    // be installed with whatever owner the install happens to give it.
    for (uid, gid) in [(u32::MAX, 0), (0, u32::MAX)] {
        let (mut m, d) = file("etc/owned", "x");
        (m.uid, m.gid) = (uid, gid);
        refused_entries(&[(m, d)], "4294967295");
    }
}

#[test]
fn hostile_content_that_is_not_what_the_manifest_says_is_refused() {
    // The sidecars match the tar; the manifest lists another SHA-256 for
    // etc/motd than its member has. Installed, the next honest dist (which
    // has the listed content) would find etc/motd "unchanged".
    let s = scene();
    let entries = [dir("etc"), file("etc/motd", "good\n"), file("etc/other", "same\n")];
    let members = [dir("etc"), file("etc/motd", "evil\n"), file("etc/other", "same\n")];
    let dist = craft(&s.out, &entries, &members);
    refused(&s, &dist, r#"member 2 ("etc/motd") disagrees with the manifest: its content has SHA-256 "#);
    // Where the file is unchanged: the member is checked all the same.
    ok(&mut install(&s.root, &craft_named(&s.out.join("1"), NAME, &entries, &entries, None)));
    let name2 = "DragonFly-world-x86_64-master-20261128T110000Z-evil2";
    let dist2 = craft_named(&s.out.join("2"), name2, &entries, &members, None);
    refused(&s, &dist2, r#"member 2 ("etc/motd") disagrees with the manifest: its content has SHA-256 "#);
}

#[test]
fn a_manifest_recorded_by_an_older_installer_is_not_trusted_for_unchanged_files() {
    // State from before members were checked: `installed` without its
    // `manifest` line. Such a MANIFEST may list a digest that the installed
    // file never had, so "unchanged" is decided from the file itself.
    let s = scene();
    let entries = [dir("etc"), file("etc/motd", "good\n")];
    ok(&mut install(&s.root, &craft_named(&s.out.join("1"), NAME, &entries, &entries, None)));
    let installed = s.root.join("var/db/binarydist/world/installed");
    let record = std::fs::read_to_string(&installed).unwrap();
    let legacy: String = record.lines().filter(|l| !l.starts_with("manifest ")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&installed, legacy).unwrap();
    sh(&format!("cd '{}' && printf 'evil\\n' > etc/motd.x && touch -r etc/motd etc/motd.x && mv etc/motd.x etc/motd", s.root.display()));
    let name2 = "DragonFly-world-x86_64-master-20261128T110000Z-good2";
    let out = ok(&mut install(&s.root, &craft_named(&s.out.join("2"), name2, &entries, &entries, None)));
    assert_eq!(std::fs::read_to_string(s.root.join("etc/motd")).unwrap(), "good\n", "{}", String::from_utf8_lossy(&out.stdout));
    assert!(std::fs::read_to_string(&installed).unwrap().lines().any(|l| l.starts_with("manifest ")), "recorded as checked now");
}

#[test]
fn a_set_id_file_with_another_hard_link_loses_its_set_id_bits_before_it_is_replaced() {
    // A user's hard link to su keeps the old inode: once su is replaced,
    // that link would be the old (perhaps vulnerable) program, still set-uid.
    let s = scene();
    let su = |data: &str| {
        let (mut m, d) = file("usr/bin/su", data);
        m.mode = 0o4555;
        (m, d)
    };
    let v1 = [dir("usr"), dir("usr/bin"), su("su v1\n")];
    ok(&mut install(&s.root, &craft_named(&s.out.join("1"), NAME, &v1, &v1, None)));
    sh(&format!("mkdir -p '{0}/home/user' && ln '{0}/usr/bin/su' '{0}/home/user/oldsu'", s.root.display()));
    let v2 = [dir("usr"), dir("usr/bin"), su("su v2\n")];
    let name2 = "DragonFly-world-x86_64-master-20261128T110000Z-evil2";
    let out = ok(&mut install(&s.root, &craft_named(&s.out.join("2"), name2, &v2, &v2, None)));
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| std::fs::metadata(s.root.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(std::fs::read_to_string(s.root.join("home/user/oldsu")).unwrap(), "su v1\n");
    assert_eq!(mode("home/user/oldsu"), 0o555, "the old inode is no longer set-uid");
    assert_eq!(mode("usr/bin/su"), 0o4555, "the new su is");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("usr/bin/su: set-id file with 2 hard links: its set-id bits were cleared before it was replaced"), "{err}");
    assert_eq!(crate::install::summary(&out)["setid_cleared"], 1);
}

#[test]
fn an_entry_swapped_for_a_symlink_while_its_mode_is_set_steers_nothing_outside() {
    // A user who owns var/tmp/vi.recover and the fifo var/tmp/notes (made
    // before the dist first shipped them) swaps each for a symlink out of the
    // root between the installer's look at it and its chmod: the hook runs
    // exactly there. The directory goes the descriptor's way, the fifo the
    // `*at` way. Before the fix both modes went through the symlinks.
    let s = scene();
    sh(&format!(
        "mkdir -p '{0}/var/tmp/vi.recover' && chmod 755 '{0}/var/tmp/vi.recover' '{1}' && mkfifo -m 644 '{0}/var/tmp/notes' && chmod 644 '{0}/var/tmp/notes' '{1}/f'",
        s.root.display(),
        s.outside.display()
    ));
    let mut tmp = dir("var/tmp");
    tmp.0.mode = 0o1777;
    let mut recover = dir("var/tmp/vi.recover");
    recover.0.mode = 0o1777;
    let mut notes = (Meta::new("var/tmp/notes", Kind::Fifo), Vec::new());
    notes.0.mode = 0o666;
    let entries = [dir("var"), tmp, notes, recover];
    let dist = craft(&s.out, &entries, &entries);
    let (d, f) = (s.root.join("var/tmp/vi.recover"), s.root.join("var/tmp/notes"));
    let swap = format!(
        "case \"$1\" in '{d}') rmdir \"$1\" && ln -s '{o}' \"$1\";; '{f}') rm \"$1\" && ln -s '{o}/f' \"$1\";; esac; true",
        d = d.display(),
        f = f.display(),
        o = s.outside.display()
    );
    let out = install(&s.root, &dist).env("BINARYDIST_TEST_HOOK_META", &swap).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&s.outside), 0o755, "the mode went through the symlink to a directory outside the root: {err}");
    assert_eq!(mode(&s.outside.join("f")), 0o644, "the mode went through the symlink put where a fifo was: {err}");
    for p in [&d, &f] {
        assert!(std::fs::symlink_metadata(p).unwrap().file_type().is_symlink(), "the hook did not run on {}: {err}", p.display());
    }
    assert!(out.status.success(), "{err}");
    assert!(err.contains("vi.recover") && err.contains("var/tmp/notes") && err.contains("not followed"), "said so: {err}");
}

#[test]
fn the_installer_changes_nothing_under_the_root_by_path() {
    // The race above, for every kind of change: what stages, commits and
    // undoes an install makes, renames, removes and sets owners, modes, times
    // and flags through descriptors and `*at` calls (os::Beneath,
    // os::set_attrs_at), never by a path that a swapped symlink redirects.
    let forbidden = [
        "fs::set_permissions(",
        "lchown(",
        "fs::rename(",
        "fs::remove_file(",
        "fs::remove_dir",
        "fs::create_dir(",
        "fs::hard_link(",
        "fs::symlink(",
        "OpenOptions",
        "set_file_flags(",
        "set_mtime_nofollow(",
        "restore_mtime(",
        "os::mknod(",
        "os::mkfifo(",
    ];
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/install");
    for name in ["stage.rs", "commit.rs", "transaction.rs"] {
        let text = std::fs::read_to_string(src.join(name)).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for call in forbidden {
                assert!(!code.contains(call), "src/install/{name}:{}: a path-based call ({call}) under the root: {line}", n + 1);
            }
        }
    }
}
