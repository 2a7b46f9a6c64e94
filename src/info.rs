//! `binarydist verify` and `binarydist info` for dists: reading a dist back,
//! checking every member against its manifest and the tar against its sidecars.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::errors::shown;
use crate::manifest::{self, Manifest, ManifestError};
use crate::names::DistName;
use crate::sidecar::{self, Algo, SidecarError};
use crate::tario::{self, Digests, HashingReader, Kind, TarError};
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DistError {
    #[error("{}", shown(path))]
    Open { path: PathBuf, source: io::Error },
    #[error("{}", shown(path))]
    Tar { path: PathBuf, source: TarError },
    #[error("{}", shown(path))]
    Manifest { path: PathBuf, source: ManifestError },
    #[error("{}: manifest names {manifest}, file name says {file}", shown(path))]
    NameMismatch { path: PathBuf, manifest: String, file: String },
    #[error("{}: member {index} (\"{member}\"): {what}", shown(path))]
    Member { path: PathBuf, index: usize, member: String, what: String },
    #[error(transparent)]
    Sidecar(#[from] SidecarError),
    #[error("{}: {algo} of the tar is {found}, {sidecar} says {expected}", shown(path))]
    Digest { path: PathBuf, algo: &'static str, sidecar: String, expected: String, found: String },
}

/// What a dist is, as `info` prints it.
#[derive(Debug, serde::Serialize)]
pub struct DistInfo {
    pub file: PathBuf,
    pub name: String,
    pub series: String,
    pub arch: String,
    pub branch: String,
    pub date: String,
    pub rev: String,
    pub compressed_size: u64,
    pub tar_size: u64,
    pub md5: String,
    pub sha256: String,
    /// What the dist installs, whichever build made it (`Manifest::content_sha256`).
    pub content_sha256: String,
    pub entries: usize,
    pub file_bytes: u64,
    /// `(stored as, installed as)` pairs.
    pub critical: Vec<(PathBuf, PathBuf)>,
    pub upgrade_src: Option<PathBuf>,
}

/// Streams a whole dist: checks every member against the manifest and returns
/// the manifest, the tar's digests and the number of file bytes.
pub fn scan_dist(path: &Path) -> Result<(Manifest, Digests, u64), DistError> {
    let open_err = |e| DistError::Open { path: path.into(), source: e };
    let tar_err = |e| DistError::Tar { path: path.into(), source: e };
    let stream = tario::gz::open_tar(path).map_err(open_err)?;
    let mut reader = tario::Reader::new(HashingReader::new(stream));
    let manifest = manifest::read_member(&mut reader).map_err(|e| DistError::Manifest { path: path.into(), source: e })?.manifest;
    if let Some(file) = path.file_name().and_then(|f| f.to_str()) {
        if let Ok(from_file) = DistName::from_file_name(file) {
            if from_file != manifest.name {
                return Err(DistError::NameMismatch { path: path.into(), manifest: manifest.name.to_string(), file: file.into() });
            }
        }
    }
    let mut file_bytes = 0;
    for (index, (entry, expected)) in manifest.entries.iter().zip(manifest.member_metas()).enumerate() {
        let member = reader.next_member().map_err(tar_err)?;
        let bad = |member: &str, what: String| DistError::Member { path: path.into(), index: index + 1, member: member.into(), what };
        let Some(member) = member else {
            return Err(bad("end of archive", format!("manifest lists {} more entries", manifest.entries.len() - index)));
        };
        let name = shown(&member.meta.path);
        manifest::check_member(&member.meta, &expected).map_err(|why| bad(&name, format!("disagrees with the manifest: {why}")))?;
        if entry.meta.kind == Kind::File {
            if Some(reader.sha256_data().map_err(tar_err)?) != entry.sha256 {
                return Err(bad(&name, "content does not match the manifest's SHA-256".into()));
            }
            file_bytes += entry.meta.size;
        }
    }
    if let Some(extra) = reader.next_member().map_err(tar_err)? {
        return Err(DistError::Member {
            path: path.into(),
            index: manifest.entries.len() + 1,
            member: shown(&extra.meta.path),
            what: "not in the manifest".into(),
        });
    }
    let (_, hashing) = reader.finish().map_err(tar_err)?;
    let mut hashing = hashing;
    // Hash whatever trails the archive too: the sidecars cover the whole file.
    io::copy(&mut hashing, &mut io::sink()).map_err(open_err)?;
    let (_, digests) = hashing.finish();
    Ok((manifest, digests, file_bytes))
}

/// `binarydist verify DIST`: sidecars, manifest and every member.
pub fn verify_dist(path: &Path) -> Result<(Manifest, Digests), DistError> {
    let (manifest, digests, _) = scan_dist(path)?;
    for (algo, found) in [(Algo::Md5, digests.md5_hex()), (Algo::Sha256, digests.sha256_hex())] {
        let (side, expected) = sidecar::read(path, &manifest.name, algo)?;
        if expected != found {
            let algo = algo.word();
            return Err(DistError::Digest { path: path.into(), algo, sidecar: side.display().to_string(), expected, found });
        }
    }
    Ok((manifest, digests))
}

pub fn dist_info(path: &Path) -> Result<DistInfo, DistError> {
    let (m, d, file_bytes) = scan_dist(path)?;
    let compressed_size = std::fs::metadata(path).map_err(|e| DistError::Open { path: path.into(), source: e })?.len();
    let n = &m.name;
    Ok(DistInfo {
        file: path.into(),
        name: n.to_string(),
        series: n.series.to_string(),
        arch: n.arch.clone(),
        branch: n.branch.clone(),
        date: n.stamp.clone(),
        rev: n.rev.clone(),
        compressed_size,
        tar_size: d.size,
        md5: d.md5_hex(),
        sha256: d.sha256_hex(),
        content_sha256: hex::encode(m.content_sha256()),
        entries: m.entries.len(),
        file_bytes,
        critical: m.critical().map(|e| (e.stored_path(), e.meta.path.clone())).collect(),
        upgrade_src: m.upgrade_src.clone(),
    })
}

impl std::fmt::Display for DistInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "dist        {}", self.name)?;
        writeln!(f, "file        {}", self.file.display())?;
        writeln!(f, "series      {}", self.series)?;
        writeln!(f, "arch        {}", self.arch)?;
        writeln!(f, "branch      {}", self.branch)?;
        writeln!(f, "date        {}", self.date)?;
        writeln!(f, "rev         {}", self.rev)?;
        writeln!(f, "size        {} compressed, {} tar, {} in files", self.compressed_size, self.tar_size, self.file_bytes)?;
        writeln!(f, "MD5         {}", self.md5)?;
        writeln!(f, "SHA256      {}", self.sha256)?;
        writeln!(f, "content     {}", self.content_sha256)?;
        writeln!(f, "entries     {}", self.entries)?;
        match &self.upgrade_src {
            Some(p) => writeln!(f, "upgrade-src {}", shown(p))?,
            None => writeln!(f, "upgrade-src none")?,
        }
        for (stored, installed) in &self.critical {
            writeln!(f, "critical    {} -> {}", shown(stored), shown(installed))?;
        }
        Ok(())
    }
}
