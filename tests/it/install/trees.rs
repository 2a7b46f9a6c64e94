//! Trees as the install tests compare them: every entry's kind, mode,
//! owner, mtime, content, link target, device and hard-link group, the
//! installer's private state left out.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// One entry of a tree, as the comparison sees it.
#[derive(Debug, PartialEq, Eq)]
pub struct Sig {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Option<i64>,
    content: Option<Vec<u8>>,
    link: Option<PathBuf>,
    rdev: u64,
    /// The first path (in sorted order) of the entry's hard-link group.
    group: Option<PathBuf>,
}

impl Sig {
    /// The same entry, its mtime not compared (a time the dist cannot know).
    pub fn without_mtime(&mut self) {
        self.mtime = None;
    }

    pub fn is_dir(&self) -> bool {
        self.kind == "dir"
    }
}

/// Everything under `root` but the installer's private state (lock, journal,
/// kept bases, installed record); directories under var/db/binarydist are
/// compared without their mtimes, which the state files change.
pub fn tree(root: &Path) -> BTreeMap<PathBuf, Sig> {
    let mut out = BTreeMap::new();
    let mut inodes: HashMap<(u64, u64), Vec<PathBuf>> = HashMap::new();
    walk(root, Path::new(""), &mut out, &mut inodes);
    for paths in inodes.values_mut().filter(|p| p.len() > 1) {
        paths.sort();
        for p in paths.iter() {
            out.get_mut(p).unwrap().group = Some(paths[0].clone());
        }
    }
    out
}

pub(super) fn is_state(rel: &Path) -> bool {
    if rel == Path::new("+MANIFEST") {
        return true; // tar extracts it; the installer keeps it as var/db/binarydist/SERIES/MANIFEST
    }
    let Ok(rest) = rel.strip_prefix("var/db/binarydist") else { return false };
    let name = rest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    matches!(name.as_str(), "lock" | "journal" | "installed" | "MANIFEST") || name.contains("base")
}

fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Sig>, inodes: &mut HashMap<(u64, u64), Vec<PathBuf>>) {
    let mut names: Vec<_> = std::fs::read_dir(root.join(rel)).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    for n in names {
        let r = rel.join(&n);
        if is_state(&r) {
            continue;
        }
        let abs = root.join(&r);
        let m = std::fs::symlink_metadata(&abs).unwrap();
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_file() {
            "file"
        } else if ft.is_fifo() {
            "fifo"
        } else if ft.is_char_device() {
            "char"
        } else {
            "other"
        };
        // The state directory and its parents are made by the installer before
        // the dist is read (or by tar, at its own time): their times are not the dist's.
        let private_dir = ft.is_dir() && (r.starts_with("var/db") || r == Path::new("var"));
        if ft.is_file() && m.nlink() > 1 {
            inodes.entry((m.dev(), m.ino())).or_default().push(r.clone());
        }
        out.insert(
            r.clone(),
            Sig {
                kind,
                mode: if ft.is_symlink() { 0 } else { m.mode() & 0o7777 },
                uid: m.uid(),
                gid: m.gid(),
                mtime: if private_dir { None } else { Some(m.mtime()) },
                content: ft.is_file().then(|| std::fs::read(&abs).unwrap()),
                link: ft.is_symlink().then(|| std::fs::read_link(&abs).unwrap()),
                rdev: m.rdev(),
                group: None,
            },
        );
        if ft.is_dir() {
            walk(root, &r, out, inodes);
        }
    }
}

/// Asserts two trees are equal, naming the first differences.
pub fn assert_same_tree(got: &Path, want: &Path) {
    assert_same_tree_but(got, want, &[]);
}

/// The same, without the mtimes of the directories `make upgrade` removed
/// something from (the dist cannot know them).
pub fn assert_same_tree_but(got: &Path, want: &Path, upgraded_dirs: &[&str]) {
    let diffs = tree_differences(got, want, upgraded_dirs);
    if !diffs.is_empty() {
        panic!("{} differs from {}:\n{}", got.display(), want.display(), diffs.join("\n"));
    }
}

/// The first differences between two trees, as `assert_same_tree_but` sees
/// them; empty when they are the same.
pub fn tree_differences(got: &Path, want: &Path, upgraded_dirs: &[&str]) -> Vec<String> {
    let (mut g, mut w) = (tree(got), tree(want));
    // The installer's state directory, and its parents where only it made them.
    w.retain(|p, _| !p.starts_with("var/db/binarydist"));
    g.retain(|p, _| !p.starts_with("var/db/binarydist") && (w.contains_key(p) || !Path::new("var/db/binarydist").starts_with(p)));
    for d in upgraded_dirs {
        for t in [&mut g, &mut w] {
            if let Some(s) = t.get_mut(Path::new(d)) {
                s.mtime = None;
            }
        }
    }
    if g == w {
        return Vec::new();
    }
    let mut diffs = Vec::new();
    for (p, s) in &w {
        match g.get(p) {
            None => diffs.push(format!("missing {}", p.display())),
            Some(gs) if gs != s => diffs.push(format!("{}: got {gs:?}\n   want {s:?}", p.display())),
            _ => {}
        }
    }
    for p in g.keys().filter(|p| !w.contains_key(*p)) {
        diffs.push(format!("extra {}", p.display()));
    }
    diffs.truncate(8);
    diffs
}
