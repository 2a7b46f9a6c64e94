//! A scratch directory per process for the targets that need files: under
//! BDFUZZ_SCRATCH (fuzz/run.sh gives each run its own), else on a tmpfs where
//! there is one, so that a million inputs do not wear a disk.
use std::path::PathBuf;

pub fn dir(prefix: &str) -> tempfile::TempDir {
    let shm = PathBuf::from("/dev/shm");
    let base = std::env::var_os("BDFUZZ_SCRATCH").map(PathBuf::from).unwrap_or(if shm.is_dir() { shm } else { std::env::temp_dir() });
    let _ = std::fs::create_dir_all(&base);
    tempfile::Builder::new().prefix(prefix).tempdir_in(base).expect("a scratch directory")
}
