//! A whole install of a hostile dist (an uncompressed tar) onto an empty root:
//! the manifest, the plan's path checks, staging, the commit. The sidecars are
//! written to match the input, so that verification passes and the commit is
//! reached. Never a panic, and nothing written outside the root.
//!
//! Run it only through fuzz/run.sh, which runs it as root of a user namespace
//! mapped to unprivileged ids: a path escape found here must not be able to
//! write over the machine that looks for it.
use binarydist::install::{self, Options, Source};
use binarydist::manifest;
use binarydist::names::DistName;
use binarydist::tario::{self, Digests};
use std::sync::OnceLock;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
/// The file name when the input has no manifest that names it.
const NAME: &str = "DragonFly-world-x86_64-master-20260101T000000Z-v1";

pub fn run(data: &[u8]) {
    let dir = DIR.get_or_init(|| super::scratch::dir("bdfuzz-install"));
    // The file is named as its manifest says, so that mutations get past the
    // name check.
    let named = manifest::read_member(&mut tario::Reader::new(data)).ok().map(|m| m.manifest.name);
    let name = named.unwrap_or_else(|| DistName::parse(NAME).expect("a dist name"));
    let dist = dir.path().join(name.file_name().replace(".tar.gz", ".tar"));
    std::fs::write(&dist, data).expect("scratch write");
    binarydist::sidecar::write(dir.path(), &name, &Digests::of(data)).expect("sidecars");
    let root = dir.path().join("root");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir(&root).expect("a root");
    let opts =
        Options { root: root.clone(), source: Some(Source::Dist(dist)), make: "true".into(), wait: false, settings: Default::default() };
    let _ = install::install(&opts);
    for entry in std::fs::read_dir(dir.path()).expect("scratch dir").flatten() {
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
