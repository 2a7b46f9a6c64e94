//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binarydist binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_binarydist"))
}

/// A fresh temporary directory, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("bdtest.").tempdir().expect("tempdir")
}

/// Runs a command; panics with its output unless it succeeds.
pub fn ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command that must fail; returns its stderr.
pub fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(!out.status.success(), "{cmd:?} succeeded but should have failed:\n{}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a shell command line; panics unless it succeeds; returns stdout.
pub fn sh(script: &str) -> String {
    String::from_utf8(ok(Command::new("sh").arg("-c").arg(script)).stdout).unwrap()
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A test that cannot run here says why and passes, except in CI (`CI` set),
/// where a skip is a failure: a runner without root or tmpfs must not pass by
/// skipping. Call as `return skip("...")`.
pub fn skip(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("cannot run under CI: {why}");
    }
    eprintln!("skipped: {why}");
}

/// A tmpfs of `size` (`2m`) mounted at `dir`, unmounted on drop; `None` where
/// mounting is not allowed (after [`skip`], so a CI run fails instead).
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir).output().ok();
        match st {
            Some(st) if st.status.success() => Some(Tmpfs(dir.to_path_buf())),
            Some(st) => {
                skip(&format!("cannot mount a tmpfs here: {}", String::from_utf8_lossy(&st.stderr).trim()));
                None
            }
            None => {
                skip("no mount(8)");
                None
            }
        }
    }

    pub fn remount(&self, opts: &str) {
        ok(Command::new("mount").args(["-o", &format!("remount,{opts}")]).arg(&self.0));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// `binarydist pack` with fixed name fields; returns the dist's path.
pub fn pack(stage: &Path, out: &Path, series: &str, stamp: &str, rev: &str) -> PathBuf {
    let mut c = bin();
    c.args(["pack", "--arch", "x86_64", "--branch", "master", "--rev", rev, "--date", stamp]);
    match series.strip_prefix("kernel.") {
        Some(conf) => c.args(["--series", "kernel", "--kernconf", conf]),
        None => c.args(["--series", series]),
    };
    c.arg("--stage").arg(stage).arg("-o").arg(out);
    ok(&mut c);
    let name = format!("DragonFly-{series}-x86_64-master-{stamp}-{rev}.tar.gz");
    out.join(name)
}

/// What a tree holds, entry by entry, for comparing two extractions: type, mode,
/// owner, mtime, content digest or link target, and hard-link identity (the
/// first path, in sorted order, of each inode with more than one link).
pub fn snapshot(root: &Path) -> std::collections::BTreeMap<PathBuf, String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = std::collections::BTreeMap::new();
    let mut inodes: std::collections::HashMap<(u64, u64), PathBuf> = Default::default();
    let mut stack = vec![PathBuf::new()];
    let mut all = Vec::new();
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(root.join(&rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                stack.push(r.clone());
            }
            all.push(r);
        }
    }
    all.sort();
    for rel in all {
        let p = root.join(&rel);
        let md = std::fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        let what = if ft.is_file() {
            let data = std::fs::read(&p).unwrap();
            let group = if md.nlink() > 1 {
                let first = inodes.entry((md.dev(), md.ino())).or_insert_with(|| rel.clone());
                format!(" linkgroup={}", first.display())
            } else {
                String::new()
            };
            format!("file size={} sha256={}{group}", data.len(), binarydist::tario::Digests::of(&data).sha256_hex())
        } else if ft.is_dir() {
            "dir".to_string()
        } else if ft.is_symlink() {
            format!("symlink -> {}", std::fs::read_link(&p).unwrap().display())
        } else if ft.is_fifo() {
            "fifo".into()
        } else if ft.is_char_device() || ft.is_block_device() {
            format!("dev {} {}", if ft.is_char_device() { 'c' } else { 'b' }, md.rdev())
        } else {
            "other".into()
        };
        // A symlink's own mode and mtime are not portable between extractors.
        let attrs = if ft.is_symlink() {
            format!("uid={} gid={}", md.uid(), md.gid())
        } else {
            format!("mode={:o} uid={} gid={} mtime={}", md.mode() & 0o7777, md.uid(), md.gid(), md.mtime())
        };
        out.insert(rel, format!("{what} {attrs}"));
    }
    out
}

/// Differences between two snapshots, one line each, for assertion messages.
pub fn snapshot_diff(a: &std::collections::BTreeMap<PathBuf, String>, b: &std::collections::BTreeMap<PathBuf, String>) -> Vec<String> {
    let mut d = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => d.push(format!("only in first: {} {v}", k.display())),
            Some(w) if w != v => d.push(format!("{}: {v} != {w}", k.display())),
            _ => {}
        }
    }
    for (k, v) in b {
        if !a.contains_key(k) {
            d.push(format!("only in second: {} {v}", k.display()));
        }
    }
    d
}
