//! The install journal (format 2: framed records) as a rerun reads it after a
//! crash, whatever a torn write or a damaged disk left: never a panic.
use binarydist::install::journal;
use binarydist::statedir::Dir;
use std::sync::OnceLock;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

pub fn run(data: &[u8]) {
    let dir = DIR.get_or_init(|| super::scratch::dir("bdfuzz-journal"));
    std::fs::write(dir.path().join(journal::NAME), data).expect("scratch write");
    let state = Dir::open_root(dir.path()).expect("the scratch directory");
    let _ = journal::read(&state);
}
