//! The comparison under `binarydist check` (an IDS, as freebsd-update's):
//! each entry of an installed manifest against what the root has there now
//! (type, mode, owner, flags, link target, content), and the baseline an
//! install records once `make upgrade` has run, so that what `make upgrade`
//! itself changed is not taken for a local edit.
//!
//! Content is hashed only where size or mtime differ from the manifest
//! (an install sets both), unless `full`; the files to hash are shared out
//! over every core.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::manifest::{Entry, Manifest};
use crate::statedir::{Dir, StateDirError};
use crate::tario::Kind;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// `<series>/baseline`: JSON, path -> what the root had there when the
/// install (and its `make upgrade`) was done, for entries that differed then.
pub const BASELINE: &str = "baseline";

/// One entry that is not as its manifest says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Difference {
    pub path: PathBuf,
    /// What differs: "missing", "type", "mode", "owner", "flags", "link", "content", "size".
    pub what: Vec<&'static str>,
    /// What the root has, in one line (compared with the baseline).
    pub found: String,
}

fn kind_word(ft: fs::FileType) -> &'static str {
    if ft.is_dir() {
        "dir"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_file() {
        "file"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_char_device() {
        "char"
    } else if ft.is_block_device() {
        "block"
    } else {
        "other"
    }
}

fn expected_kind(k: Kind) -> &'static str {
    match k {
        Kind::Dir => "dir",
        Kind::Symlink => "symlink",
        Kind::File | Kind::HardLink => "file",
        Kind::Fifo => "fifo",
        Kind::CharDev => "char",
        Kind::BlockDev => "block",
    }
}

fn sha256_hex(abs: &Path) -> Option<String> {
    let f = fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(abs).ok()?;
    let d = crate::tario::hash::sha256_of(std::io::BufReader::with_capacity(256 * 1024, f)).ok()?;
    Some(d.iter().map(|b| format!("{b:02x}")).collect())
}

/// Hashes `paths` on every core; `None` where a file cannot be read.
fn hash_all(paths: &[PathBuf]) -> Vec<Option<String>> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(paths.len().max(1));
    let next = AtomicUsize::new(0);
    let mut out: Vec<Option<String>> = vec![None; paths.len()];
    let results: Vec<Vec<(usize, Option<String>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = paths.get(i) else { break mine };
                        mine.push((i, sha256_hex(path)));
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    });
    for (i, h) in results.into_iter().flatten() {
        if let Some(slot) = out.get_mut(i) {
            *slot = h;
        }
    }
    out
}

/// The differences between `manifest` and the root, in manifest order.
pub fn compare(root: &Path, manifest: &Manifest, full: bool) -> Vec<Difference> {
    let hex = |d: &[u8; 32]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut found: Vec<Option<Difference>> = Vec::with_capacity(manifest.entries.len());
    // (index into found, path, expected hash, what the root has so far)
    let mut to_hash: Vec<(usize, PathBuf, String)> = Vec::new();
    for e in &manifest.entries {
        let abs = root.join(&e.meta.path);
        let Ok(m) = fs::symlink_metadata(&abs) else {
            found.push(Some(Difference { path: e.meta.path.clone(), what: vec!["missing"], found: "missing".into() }));
            continue;
        };
        let (mut what, desc) = compare_meta(root, e, &m, &abs);
        if e.meta.kind == Kind::File && m.is_file() {
            if let Some(want) = e.sha256.as_ref().map(hex) {
                if full || m.mtime() != e.meta.mtime || m.size() != e.meta.size {
                    to_hash.push((found.len(), abs.clone(), want));
                }
            }
        }
        what.dedup();
        found.push((!what.is_empty()).then(|| Difference { path: e.meta.path.clone(), what, found: desc }));
    }
    let hashes = hash_all(&to_hash.iter().map(|(_, p, _)| p.clone()).collect::<Vec<_>>());
    for ((i, _, want), got) in to_hash.into_iter().zip(hashes) {
        if got.as_deref() == Some(want.as_str()) {
            continue;
        }
        // `i` is the index of the entry's slot, pushed above.
        let (Some(e), Some(slot)) = (manifest.entries.get(i), found.get_mut(i)) else { continue };
        let desc = format!("content sha256={}", got.as_deref().unwrap_or("unreadable"));
        match slot {
            Some(d) => {
                d.what.push("content");
                d.found = format!("{} {desc}", d.found);
            }
            slot => *slot = Some(Difference { path: e.meta.path.clone(), what: vec!["content"], found: desc }),
        }
    }
    found.into_iter().flatten().collect()
}

/// Type, mode, owner, flags, link target and size of one entry.
fn compare_meta(root: &Path, e: &Entry, m: &fs::Metadata, abs: &Path) -> (Vec<&'static str>, String) {
    let meta = &e.meta;
    let ft = m.file_type();
    let mut what = Vec::new();
    let kind = kind_word(ft);
    if kind != expected_kind(meta.kind) {
        return (vec!["type"], kind.to_string());
    }
    let mode = m.mode() & 0o7777;
    if !ft.is_symlink() && mode != meta.mode {
        what.push("mode");
    }
    if m.uid() != meta.uid || m.gid() != meta.gid {
        what.push("owner");
    }
    let flags = crate::os::file_flags(abs).ok().flatten();
    // A hard link's flags are its target's, checked there.
    if meta.kind != Kind::HardLink && flags != meta.flags {
        what.push("flags");
    }
    let mut desc = format!("{kind} mode={mode:o} uid={} gid={} flags={}", m.uid(), m.gid(), flags.as_deref().unwrap_or("-"));
    match meta.kind {
        Kind::Symlink => {
            let to = fs::read_link(abs).ok();
            if to.as_ref() != meta.link.as_ref() {
                what.push("link");
            }
            desc.push_str(&format!(" -> {}", to.map(|t| crate::errors::shown(t).to_string()).unwrap_or_default()));
        }
        Kind::HardLink => {
            let target = meta.link.as_deref().map(|t| root.join(t));
            let same = target.and_then(|t| fs::symlink_metadata(t).ok()).is_some_and(|t| t.dev() == m.dev() && t.ino() == m.ino());
            if !same {
                what.push("link");
                desc.push_str(" (not a link to its target)");
            }
        }
        Kind::File => {
            if m.size() != meta.size {
                what.push("size");
                desc.push_str(&format!(" size={}", m.size()));
            }
        }
        Kind::CharDev | Kind::BlockDev => {
            if Some(crate::os::dev_split(m.rdev())) != meta.dev {
                what.push("type");
            }
        }
        Kind::Dir | Kind::Fifo => {}
    }
    (what, desc)
}

/// The baseline of a series directory (empty when there is none).
pub fn read_baseline(dir: &Dir) -> BTreeMap<PathBuf, String> {
    dir.read(BASELINE, 64 << 20).ok().flatten().and_then(|t| serde_json::from_slice(&t).ok()).unwrap_or_default()
}

/// Records what differs right after an install (and its `make upgrade`).
pub fn write_baseline(dir: &Dir, diffs: &[Difference]) -> Result<(), StateDirError> {
    let map: BTreeMap<&Path, &str> = diffs.iter().map(|d| (d.path.as_path(), d.found.as_str())).collect();
    let text = serde_json::to_vec_pretty(&map).unwrap_or_default();
    dir.write_atomically(BASELINE, &text, 0o644)
}

/// The differences that are not in the baseline as they are now.
pub fn beyond_baseline(diffs: Vec<Difference>, baseline: &BTreeMap<PathBuf, String>) -> Vec<Difference> {
    diffs.into_iter().filter(|d| baseline.get(&d.path) != Some(&d.found)).collect()
}
