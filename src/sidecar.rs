//! The checksum sidecars beside a dist, `NAME.tar.md5` and `NAME.tar.sha256`:
//! one line each, as BSD md5(1) and sha256(1) print it (`MD5 (NAME.tar) =
//! HEX`), for the uncompressed tar, which is what every hash is of. `pack`
//! writes them; `verify` and `install` read them.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::names::{DistName, MD5_SUFFIX, SHA256_SUFFIX};
use crate::os;
use crate::tario::Digests;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    Md5,
    Sha256,
}

impl Algo {
    /// The word the line starts with.
    pub fn word(self) -> &'static str {
        match self {
            Algo::Md5 => "MD5",
            Algo::Sha256 => "SHA256",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Algo::Md5 => MD5_SUFFIX,
            Algo::Sha256 => SHA256_SUFFIX,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error("{}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: no line {line:?}", path.display())]
    NoLine { path: PathBuf, line: String },
}

/// The sidecar of `name` in `dir`.
pub fn path(dir: &Path, name: &DistName, algo: Algo) -> PathBuf {
    dir.join(format!("{name}{}", algo.suffix()))
}

fn prefix(name: &DistName, algo: Algo) -> String {
    format!("{} ({name}.tar) = ", algo.word())
}

/// Writes both sidecars of `name` into `dir`, each atomically.
pub fn write(dir: &Path, name: &DistName, tar: &Digests) -> Result<(), SidecarError> {
    for (algo, hex) in [(Algo::Md5, tar.md5_hex()), (Algo::Sha256, tar.sha256_hex())] {
        let p = path(dir, name, algo);
        let line = format!("{}{hex}\n", prefix(name, algo));
        os::write_atomically(&p, |f| f.write_all(line.as_bytes())).map_err(|e| SidecarError::Io { path: p.clone(), source: e })?;
    }
    Ok(())
}

/// Reads the `algo` sidecar beside `dist`: its path and the lowercase hex it gives.
pub fn read(dist: &Path, name: &DistName, algo: Algo) -> Result<(PathBuf, String), SidecarError> {
    let side = path(dist.parent().unwrap_or(Path::new("")), name, algo);
    let text = std::fs::read_to_string(&side).map_err(|e| SidecarError::Io { path: side.clone(), source: e })?;
    let want = prefix(name, algo);
    let hex = text.lines().find_map(|l| l.strip_prefix(&want)).ok_or_else(|| SidecarError::NoLine { path: side.clone(), line: want })?;
    Ok((side, hex.trim().to_ascii_lowercase()))
}
