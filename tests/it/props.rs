//! Property tests of the round trips over random trees (proptest): pack, then
//! install, gives what GNU tar extracts from the same dist; a patch made by
//! diff over random edits gives the new tar, byte for byte, and an update by it
//! gives what GNU tar gives extracting the new dist over the old; a random chain gives what the direct patch gives.
//!
//! Each case runs the real binary several times, so the suite runs a few cases
//! (PROPTEST_CASES, default 6); the long run (make props-long) runs many more.

use crate::install::{assert_same_tree, gnu_tar_reference, install};
use crate::patch::binary;
use crate::util::{bin, is_root, ok, sh, tempdir};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const T1: i64 = 1_767_225_600;
const T2: i64 = 1_767_312_000;

#[derive(Debug, Clone)]
enum Node {
    File {
        len: usize,
        seed: u8,
        mode: u32,
    },
    Symlink(u8),
    /// A hard link to the n-th regular file made so far.
    Hardlink(usize),
    Fifo,
    Dir,
}

/// One entry: directory (0 = top), name, what it is, owner.
#[derive(Debug, Clone)]
struct Spec {
    dir: u8,
    name: u8,
    node: Node,
    owner: u32,
}

#[derive(Debug, Clone)]
enum Edit {
    /// Splices the n-th regular file: at a fraction of its length, deletes some bytes, inserts others.
    Splice {
        which: usize,
        at: u16,
        delete: u16,
        insert: Vec<u8>,
    },
    Remove {
        which: usize,
    },
    Add(Spec),
    Chmod {
        which: usize,
        mode: u32,
    },
}

fn mode() -> impl Strategy<Value = u32> {
    prop::sample::select(vec![0o644, 0o755, 0o600, 0o444, 0o4755, 0o2755])
}

fn node() -> impl Strategy<Value = Node> {
    prop_oneof![
        6 => (0usize..40_000, any::<u8>(), mode()).prop_map(|(len, seed, mode)| Node::File { len, seed, mode }),
        1 => (0u8..12).prop_map(Node::Symlink),
        1 => (0usize..8).prop_map(Node::Hardlink),
        1 => Just(Node::Fifo),
        1 => Just(Node::Dir),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (0u8..4, 0u8..12, node(), prop::sample::select(vec![0u32, 0, 5, 1001])).prop_map(|(dir, name, node, owner)| Spec {
        dir,
        name,
        node,
        owner,
    })
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        5 => (0usize..64, any::<u16>(), 0u16..300, prop::collection::vec(any::<u8>(), 0..80))
            .prop_map(|(which, at, delete, insert)| Edit::Splice { which, at, delete, insert }),
        1 => (0usize..64).prop_map(|which| Edit::Remove { which }),
        2 => spec().prop_map(Edit::Add),
        1 => (0usize..64, mode()).prop_map(|(which, mode)| Edit::Chmod { which, mode }),
    ]
}

fn rel(s: &Spec) -> PathBuf {
    match s.dir {
        0 => PathBuf::from(format!("n{}", s.name)),
        d => PathBuf::from(format!("d{d}/n{}", s.name)),
    }
}

/// Regular files (not hard links to another path), in path order.
fn files(stage: &Path) -> Vec<PathBuf> {
    let out = sh(&format!("cd '{}' && find . -type f -links 1 | sort", stage.display()));
    out.lines().map(|l| stage.join(l.trim_start_matches("./"))).collect()
}

fn add(stage: &Path, s: &Spec, made: &mut Vec<PathBuf>) {
    let p = stage.join(rel(s));
    if p.symlink_metadata().is_ok() {
        return;
    }
    match &s.node {
        Node::File { len, seed, mode } => {
            std::fs::write(&p, binary(*seed as u64, *len)).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
            made.push(p.clone());
        }
        Node::Symlink(t) => std::os::unix::fs::symlink(format!("n{t}"), &p).unwrap(),
        Node::Hardlink(i) => match made.get(*i) {
            Some(target) => std::fs::hard_link(target, &p).unwrap(),
            None => return,
        },
        Node::Fifo => {
            ok(std::process::Command::new("mkfifo").arg(&p));
        }
        Node::Dir => std::fs::create_dir(&p).unwrap(),
    };
    if is_root() && s.owner != 0 {
        std::os::unix::fs::lchown(&p, Some(s.owner), Some(s.owner)).unwrap();
    }
}

fn make_tree(stage: &Path, specs: &[Spec]) {
    for d in 1..4 {
        std::fs::create_dir_all(stage.join(format!("d{d}"))).unwrap();
    }
    let mut made = Vec::new();
    for s in specs {
        add(stage, s, &mut made);
    }
    sh(&format!("find '{}' -exec touch -h -d @{T1} {{}} +", stage.display()));
}

/// A copy of `from` at `to` with `edits` made; what they touched gets time T2.
fn edited(from: &Path, to: &Path, edits: &[Edit]) {
    sh(&format!("cp -a '{}' '{}'", from.display(), to.display()));
    let mut changed = BTreeSet::new();
    let mut made = Vec::new();
    for e in edits {
        let fs = files(to);
        let pick = |w: usize| (!fs.is_empty()).then(|| fs[w % fs.len()].clone());
        match e {
            Edit::Splice { which, at, delete, insert } => {
                let Some(p) = pick(*which) else { continue };
                let mut data = std::fs::read(&p).unwrap();
                let at = data.len() * *at as usize / 65536;
                let end = (at + *delete as usize).min(data.len());
                data.splice(at..end, insert.iter().copied());
                std::fs::write(&p, data).unwrap();
                changed.insert(p);
            }
            Edit::Remove { which } => {
                let Some(p) = pick(*which) else { continue };
                std::fs::remove_file(&p).unwrap();
                changed.insert(p.parent().unwrap().to_path_buf());
            }
            Edit::Add(s) => {
                add(to, s, &mut made);
                let p = to.join(rel(s));
                changed.insert(p.parent().unwrap().to_path_buf());
                changed.insert(p);
            }
            Edit::Chmod { which, mode } => {
                let Some(p) = pick(*which) else { continue };
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
            }
        }
    }
    for p in changed.iter().filter(|p| p.symlink_metadata().is_ok()) {
        ok(std::process::Command::new("touch").arg("-h").arg("-d").arg(format!("@{T2}")).arg(p));
    }
}

fn pack(stage: &Path, out: &Path, day: u32) -> PathBuf {
    crate::util::pack(stage, out, "world", &format!("202601{day:02}T000000Z"), &format!("r{day}"))
}

fn diff(old: &Path, new: &Path, out: &Path) -> PathBuf {
    ok(bin().arg("diff").arg(old).arg(new).arg("-o").arg(out));
    let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().trim_end_matches(".tar.gz").to_string();
    out.join(format!("{}--{}.bdpatch", name(old), name(new)))
}

fn tar_of(dist: &Path) -> Vec<u8> {
    ok(bin().arg("cat").arg(dist)).stdout
}

fn patched(base: &Path, patches: &[&Path], out: &Path) -> Vec<u8> {
    ok(bin().arg("patch").args(patches).arg("--base").arg(base).arg("-o").arg(out));
    std::fs::read(out).unwrap()
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn pack_then_install_equals_gnu_tar(specs in prop::collection::vec(spec(), 1..30)) {
        let t = tempdir();
        let stage = t.path().join("stage");
        make_tree(&stage, &specs);
        let dist = pack(&stage, &t.path().join("dists"), 1);
        let root = t.path().join("root");
        std::fs::create_dir(&root).unwrap();
        ok(&mut install(&root, &dist));
        gnu_tar_reference(&dist, &t.path().join("ref"));
        assert_same_tree(&root, &t.path().join("ref"));
    }

    #[test]
    fn diff_then_patch_gives_the_new_tar_and_the_new_tree(
        specs in prop::collection::vec(spec(), 1..30),
        edits in prop::collection::vec(edit(), 1..10),
    ) {
        let t = tempdir();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        make_tree(&a, &specs);
        edited(&a, &b, &edits);
        let dists = t.path().join("dists");
        let (da, db) = (pack(&a, &dists, 1), pack(&b, &dists, 2));
        let p = diff(&da, &db, &dists);
        prop_assert!(patched(&da, &[&p], &t.path().join("out.tar")) == tar_of(&db), "patch output differs from the new tar");
        let root = t.path().join("root");
        std::fs::create_dir(&root).unwrap();
        ok(&mut install(&root, &da));
        ok(bin().arg("install").arg("--root").arg(&root).arg("--make").arg("true").arg("--patch").arg(&p));
        // Files the new dist no longer has stay (make upgrade's TO_REMOVE lists
        // retire files, not the installer): the reference is B extracted over A.
        gnu_tar_reference(&da, &t.path().join("ref"));
        gnu_tar_reference(&db, &t.path().join("ref"));
        assert_same_tree(&root, &t.path().join("ref"));
    }

    #[test]
    fn a_random_chain_gives_what_the_direct_patch_gives(
        specs in prop::collection::vec(spec(), 1..25),
        e1 in prop::collection::vec(edit(), 1..8),
        e2 in prop::collection::vec(edit(), 1..8),
    ) {
        let t = tempdir();
        let (a, b, c) = (t.path().join("a"), t.path().join("b"), t.path().join("c"));
        make_tree(&a, &specs);
        edited(&a, &b, &e1);
        edited(&b, &c, &e2);
        let dists = t.path().join("dists");
        let (da, db, dc) = (pack(&a, &dists, 1), pack(&b, &dists, 2), pack(&c, &dists, 3));
        let (ab, bc, ac) = (diff(&da, &db, &dists), diff(&db, &dc, &dists), diff(&da, &dc, &dists));
        let want = tar_of(&dc);
        prop_assert!(patched(&da, &[&ab, &bc], &t.path().join("chain.tar")) == want, "chain output differs from the new tar");
        prop_assert!(patched(&da, &[&ac], &t.path().join("direct.tar")) == want, "direct patch output differs from the new tar");
    }
}
