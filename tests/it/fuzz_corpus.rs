//! The fuzz campaign's inputs as tests: every committed corpus input
//! (fuzz/corpus/TARGET, minimized) and every finding's input
//! (fuzz/regressions/TARGET) goes through the same function the fuzz target
//! runs (fuzz/src/TARGET.rs), without libFuzzer. A panic fails the test; so
//! does a target whose corpus is missing (a test that cannot fail is a defect).

use std::path::{Path, PathBuf};

#[path = "../../fuzz/src/scratch.rs"]
mod scratch;

#[path = "../../fuzz/src/config.rs"]
mod config;
#[path = "../../fuzz/src/gunzip.rs"]
mod gunzip;
#[path = "../../fuzz/src/index.rs"]
mod index;
#[path = "../../fuzz/src/install.rs"]
mod install;
#[path = "../../fuzz/src/journal.rs"]
mod journal;
#[path = "../../fuzz/src/manifest.rs"]
mod manifest;
#[path = "../../fuzz/src/names.rs"]
mod names;
#[path = "../../fuzz/src/patch_apply.rs"]
mod patch_apply;
#[path = "../../fuzz/src/patch_header.rs"]
mod patch_header;
#[path = "../../fuzz/src/tar.rs"]
mod tar;

/// (target, its function).
/// A fuzz target's body.
type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("names", names::run),
    ("manifest", manifest::run),
    ("tar", tar::run),
    ("gunzip", gunzip::run),
    ("install", install::run),
    ("patch_header", patch_header::run),
    ("patch_apply", patch_apply::run),
    ("index", index::run),
    ("config", config::run),
    ("journal", journal::run),
];

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(d) => d.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

#[test]
fn every_corpus_input_and_every_finding_runs_without_a_panic() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut ran = Vec::new();
    for (name, run) in TARGETS {
        let corpus = inputs(&fuzz.join("corpus").join(name));
        assert!(!corpus.is_empty(), "fuzz/corpus/{name} is empty: run make fuzz-seeds fuzz fuzz-cmin");
        let found = inputs(&fuzz.join("regressions").join(name));
        for input in corpus.iter().chain(&found) {
            let data = std::fs::read(input).unwrap();
            if let Err(panic) = std::panic::catch_unwind(|| run(&data)) {
                let what = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
                panic!("{name}: {} panicked: {}", input.display(), what.unwrap_or_default());
            }
        }
        ran.push(format!("{name}: {} + {}", corpus.len(), found.len()));
    }
    eprintln!("fuzz inputs replayed: {}", ran.join(", "));
}
