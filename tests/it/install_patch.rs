//! `binarydist install --patch P1 P2...`: the kept base run through a patch
//! chain, staged, verified against the last patch's header, installed.

use crate::install::{assert_same_tree_but, fixture, root_with, summary, tree, V2_UPGRADED_DIRS};
use crate::util::{bin, fails, ok, sh, tempdir};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Patches v1 -> v2 and v2 -> v3 of the shared fixture, made once.
pub fn patches() -> &'static [PathBuf; 2] {
    static P: OnceLock<[PathBuf; 2]> = OnceLock::new();
    P.get_or_init(|| {
        let f = fixture();
        let out = f.dir.join("patches");
        std::fs::create_dir_all(&out).unwrap();
        let make = |a: &Path, b: &Path| {
            ok(bin().arg("diff").arg(a).arg(b).arg("-o").arg(&out).args(["--level", "3"]));
            let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().trim_end_matches(".tar.gz").to_string();
            out.join(format!("{}--{}.bdpatch", name(a), name(b)))
        };
        [make(&f.dists[0], &f.dists[1]), make(&f.dists[1], &f.dists[2])]
    })
}

pub fn install_patches(root: &Path, patches: &[&Path]) -> Command {
    let mut c = bin();
    c.arg("install").arg("--root").arg(root).args(["--make", "bmake", "--json", "--patch"]);
    c.args(patches);
    c
}

#[test]
fn update_by_a_patch_chain_equals_a_fresh_install_of_the_last_dist() {
    let f = fixture();
    let [p12, p23] = patches();
    let (_t, root) = root_with(&[&f.dists[0]]);
    let s = summary(&ok(&mut install_patches(&root, &[p12, p23])));
    assert_eq!(s["dist"], "DragonFly-world-x86_64-master-20261128T120000Z-v3", "{s}");
    // A fresh install of v3, then the same make upgrade as the chain had
    // (v2's and v3's subsets both remove oldprog): equal trees.
    let (_t3, fresh) = root_with(&[&f.dists[2]]);
    assert_same_tree_but(&root, &fresh, V2_UPGRADED_DIRS);
    // The kept base is now v3's tar, whatever the compression.
    let base = root.join("var/db/binarydist/world/base.tar.gz");
    let got = sh(&format!("gzip -dc '{}' | sha256sum", base.display()));
    let want = std::fs::read_to_string(
        f.dists[2].with_file_name(format!("{}.tar.sha256", f.dists[2].file_name().unwrap().to_str().unwrap().trim_end_matches(".tar.gz"))),
    )
    .unwrap();
    assert!(want.contains(got.split_whitespace().next().unwrap()), "{got} vs {want}");
    // Written by tario::gz, in members that say their size: the next update inflates it in parallel.
    assert_eq!(&std::fs::read(&base).unwrap()[12..16], b"BD\x04\x00", "kept base not in binarydist's gzip members");
    // And it is the base of the next patch: installing it again is a no-op.
    let s = summary(&ok(&mut install_patches(&root, &[p23])));
    assert_eq!(s["already_installed"], true);
}

#[test]
fn one_patch_after_another_converges_too() {
    let f = fixture();
    let [p12, p23] = patches();
    let (_t, root) = root_with(&[&f.dists[0]]);
    ok(&mut install_patches(&root, &[p12]));
    let s = summary(&ok(&mut install_patches(&root, &[p23])));
    assert_eq!(s["written"], 1, "one file differs between v2 and v3: {s}");
    let (_t3, fresh) = root_with(&[&f.dists[2]]);
    assert_same_tree_but(&root, &fresh, V2_UPGRADED_DIRS);
}

#[test]
fn a_chain_that_does_not_start_from_the_installed_dist_is_refused() {
    let f = fixture();
    let [p12, p23] = patches();
    let (_t, root) = root_with(&[&f.dists[0]]);
    let before = tree(&root);
    let err = fails(&mut install_patches(&root, &[p23]));
    assert!(err.contains("applies to") && err.contains("v2") && err.contains("v1 is installed"), "{err}");
    let err = fails(&mut install_patches(&root, &[p23, p12]));
    assert!(err.contains("follows"), "{err}");
    assert!(tree(&root) == before);
    // No installed dist at all: no base to patch.
    let t = tempdir();
    let err = fails(&mut install_patches(t.path(), &[p12]));
    assert!(err.contains("nothing is installed") || err.contains("nothing"), "{err}");
}

#[test]
fn a_corrupt_patch_or_kept_base_leaves_the_root_as_it_was() {
    let f = fixture();
    let [p12, _] = patches();
    let (_t, root) = root_with(&[&f.dists[0]]);
    let before = tree(&root);
    // A bit flipped in the patch: refused before streaming.
    let t = tempdir();
    let bad = t.path().join(p12.file_name().unwrap());
    let mut bytes = std::fs::read(p12).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x40;
    std::fs::write(&bad, bytes).unwrap();
    fails(&mut install_patches(&root, &[&bad]));
    assert!(tree(&root) == before);
    // A kept base that drifted from the installed record: the chain's old-tar
    // check fails while streaming, and everything staged is removed.
    let base = root.join("var/db/binarydist/world/base.tar.gz");
    let kept = std::fs::read(&base).unwrap();
    sh(&format!("gzip -dc '{0}' > '{1}/b.tar' && printf x | dd of='{1}/b.tar' bs=1 seek=5000 conv=notrunc 2>/dev/null && gzip -c '{1}/b.tar' > '{0}'", base.display(), t.path().display()));
    let err = fails(&mut install_patches(&root, &[p12]));
    assert!(tree(&root) == before, "{err}");
    let leftovers = sh(&format!("find '{}' -name '.bdtmp.*' -o -name journal -o -name '.base.new*'", root.display()));
    assert!(leftovers.is_empty(), "{leftovers}");
    std::fs::write(&base, kept).unwrap();
    ok(&mut install_patches(&root, &[p12]));
}

#[test]
fn crash_during_a_chain_install_converges() {
    let f = fixture();
    let [p12, p23] = patches();
    let (_t, template) = root_with(&[&f.dists[0]]);
    let (_t3, fresh) = root_with(&[&f.dists[2]]);
    let t = tempdir();
    let mut kills = 0;
    for point in ["stage:1", "stage:7", "stage:20", "staged:1", "verified:1", "journal:1", "op:1", "op:4", "upgrade:1", "recorded:1"] {
        let root = t.path().join("root");
        let _ = Command::new("rm").arg("-rf").arg(&root).status();
        sh(&format!("cp -a '{}' '{}'", template.display(), root.display()));
        let out = install_patches(&root, &[p12, p23]).env("BINARYDIST_TEST_KILL_AT", point).output().unwrap();
        assert_eq!(out.status.signal(), Some(9), "{point}: {}", String::from_utf8_lossy(&out.stderr));
        kills += 1;
        ok(&mut install_patches(&root, &[p12, p23]));
        assert_same_tree_but(&root, &fresh, V2_UPGRADED_DIRS);
    }
    assert_eq!(kills, 10);
}
