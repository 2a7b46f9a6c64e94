//! The install journal as a rerun reads it after a crash (whatever a torn
//! write or a damaged disk left): never a panic.
use binarydist::install::journal;
use std::sync::OnceLock;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

pub fn run(data: &[u8]) {
    let dir = DIR.get_or_init(|| super::scratch::dir("bdfuzz-journal"));
    let path = dir.path().join("journal");
    std::fs::write(&path, data).expect("scratch write");
    let _ = journal::read(&path);
}
