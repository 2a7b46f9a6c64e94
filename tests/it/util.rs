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
    unsafe { libc::geteuid() == 0 }
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
