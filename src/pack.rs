//! `binarydist pack`: turns a staging DESTDIR, as installworld or installkernel
//! leaves it, into a deterministic dist: `NAME.tar.gz` and its checksum sidecars.
//!
//! Two passes over the stage: the first walks it in sorted order, reads every
//! file once to hash it and builds the manifest; the second writes the manifest
//! and the entries into the tar, gzips and hashes it in one stream, re-hashing
//! each file as it goes so that a file changed between the passes is caught.
//! Nothing appears under a final name until it is complete and synced.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::manifest::{self, Entry, Manifest, UPGRADE_SRC_PREFIX};
use crate::names::DistName;
use crate::os;
use crate::sidecar::{self, SidecarError};
use crate::tario::{self, hash, Digests, HashingWriter, Kind, Meta};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The critical-file list shipped in etc/, used unless another is given.
pub const DEFAULT_CRITICAL: &str = include_str!("../etc/critical.conf");
/// The /usr/src subset list shipped in etc/, used unless another is given.
pub const DEFAULT_UPGRADE_SUBSET: &str = include_str!("../etc/upgrade-subset.conf");

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{}", path.display())]
    Stage { path: PathBuf, source: io::Error },
    #[error("{}: changed while packing ({what})", path.display())]
    Changed { path: PathBuf, what: &'static str },
    #[error("{}", path.display())]
    Output { path: PathBuf, source: io::Error },
    #[error("{}: not a directory", .0.display())]
    NotDir(PathBuf),
    #[error("{list}: bad pattern {pattern:?}: {why}")]
    Pattern { list: String, pattern: String, why: String },
    #[error("upgrade subset: {} is missing (listed in the upgrade-subset list)", .0.display())]
    MissingSubset(PathBuf),
    #[error("SOURCE_DATE_EPOCH {0:?} is not a number of seconds")]
    Epoch(String),
    #[error("{}: the stage already has an entry at the manifest's place", .0.display())]
    ManifestClash(PathBuf),
    #[error(transparent)]
    Sidecar(#[from] SidecarError),
}

pub struct PackOptions {
    pub stage: PathBuf,
    pub name: DistName,
    /// A /usr/src checkout to take the `make upgrade` subset from.
    pub upgrade_src: Option<PathBuf>,
    /// Text of the upgrade-subset list (etc/upgrade-subset.conf's format).
    pub upgrade_subset: String,
    /// Text of the critical-file list (etc/critical.conf's format).
    pub critical: String,
    /// SOURCE_DATE_EPOCH: mtimes later than this are clamped to it.
    pub clamp_mtime: Option<i64>,
    pub out_dir: PathBuf,
    /// How the tar is gzipped (level and block size fix the bytes; threads do not).
    pub gzip: tario::gz::Options,
}

/// SOURCE_DATE_EPOCH, as reproducible-builds.org defines it: when set, the
/// build time and the latest mtime a dist may carry.
pub fn source_date_epoch() -> Result<Option<i64>, PackError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) if !s.trim().is_empty() => s.trim().parse().map(Some).map_err(|_| PackError::Epoch(s)),
        _ => Ok(None),
    }
}

/// The build stamp when none is given: SOURCE_DATE_EPOCH, else now.
pub fn default_stamp(clamp: Option<i64>) -> String {
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    crate::names::stamp_from_epoch(clamp.unwrap_or_else(now))
}

/// What `pack` made.
pub struct Packed {
    pub dist: PathBuf,
    pub tar: Digests,
    pub gz_size: u64,
    pub manifest: Manifest,
}

/// One entry to pack: where its content comes from and what it becomes.
struct Source {
    fs_path: PathBuf,
    entry: Entry,
}

pub fn pack(opts: &PackOptions) -> Result<Packed, PackError> {
    let critical = patterns(&opts.critical, "critical list")?;
    let mut sources = walk(&opts.stage, Path::new(""), opts, &critical, &mut HashMap::new())?;
    let manifest_path = manifest::member_path(&opts.name.series);
    if sources.iter().any(|s| s.entry.meta.path == manifest_path) {
        return Err(PackError::ManifestClash(opts.stage.join(&manifest_path)));
    }
    let upgrade_src = match &opts.upgrade_src {
        Some(src) => {
            sources.extend(upgrade_subset(src, opts, &sources)?);
            Some(PathBuf::from(UPGRADE_SRC_PREFIX))
        }
        None => None,
    };
    sources.sort_by(|a, b| tario::path_order(&a.entry.meta.path, &b.entry.meta.path));
    hash_files(&mut sources)?;
    crate::testhooks::between_pack_passes();

    let manifest = Manifest { name: opts.name.clone(), upgrade_src, entries: sources.iter().map(|s| s.entry.clone()).collect() };
    fs::create_dir_all(&opts.out_dir).map_err(|e| PackError::Output { path: opts.out_dir.clone(), source: e })?;
    let dist = opts.out_dir.join(opts.name.file_name());
    let (tar, gz_size) = write_dist(&dist, &manifest, &manifest_path, &sources, opts)?;

    sidecar::write(&opts.out_dir, &opts.name, &tar)?;
    Ok(Packed { dist, tar, gz_size, manifest })
}

fn patterns(text: &str, list: &str) -> Result<Vec<glob::Pattern>, PackError> {
    list_lines(text)
        .map(|l| glob::Pattern::new(l).map_err(|e| PackError::Pattern { list: list.into(), pattern: l.into(), why: e.msg.into() }))
        .collect()
}

/// Non-blank lines of a list file, without `#` comments.
pub fn list_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(|l| l.split('#').next().unwrap_or("").trim()).filter(|l| !l.is_empty())
}

fn is_critical(path: &Path, flags: Option<&str>, critical: &[glob::Pattern]) -> bool {
    let abs = Path::new("/").join(path);
    let opts = glob::MatchOptions { require_literal_separator: true, ..Default::default() };
    critical.iter().any(|p| p.matches_path_with(&abs, opts)) || flags.is_some_and(|f| f.split(',').any(|w| w == "schg"))
}

fn stage_err(path: &Path) -> impl Fn(io::Error) -> PackError + '_ {
    move |e| {
        let e = if e.kind() == io::ErrorKind::NotFound { io::Error::new(e.kind(), "vanished while packing") } else { e };
        PackError::Stage { path: path.to_path_buf(), source: e }
    }
}

/// Walks `root/rel` depth-first; hard links are found by (device, inode).
fn walk(
    root: &Path,
    rel: &Path,
    opts: &PackOptions,
    critical: &[glob::Pattern],
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<Vec<Source>, PackError> {
    let dir = root.join(rel);
    let md = fs::symlink_metadata(&dir).map_err(|e| PackError::Stage { path: dir.clone(), source: e })?;
    if !md.is_dir() {
        return Err(PackError::NotDir(dir));
    }
    let mut names: Vec<_> = fs::read_dir(&dir)
        .map_err(stage_err(&dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(stage_err(&dir))?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let mut out = Vec::new();
    for name in names {
        let rel_path = rel.join(&name);
        let fs_path = root.join(&rel_path);
        let md = fs::symlink_metadata(&fs_path).map_err(stage_err(&fs_path))?;
        let mut meta = stat_meta(&rel_path, &fs_path, &md, opts.clamp_mtime)?;
        meta.flags = os::file_flags(&fs_path).map_err(stage_err(&fs_path))?;
        if meta.kind == Kind::File && md.nlink() > 1 {
            match links.get(&(md.dev(), md.ino())) {
                Some(first) => {
                    meta.kind = Kind::HardLink;
                    meta.link = Some(first.clone());
                    meta.size = 0;
                }
                None => {
                    links.insert((md.dev(), md.ino()), rel_path.clone());
                }
            }
        }
        let is_crit = meta.kind == Kind::File && is_critical(&rel_path, meta.flags.as_deref(), critical);
        let is_dir = meta.kind == Kind::Dir;
        out.push(Source { fs_path, entry: Entry { meta, sha256: None, critical: is_crit } });
        if is_dir {
            out.extend(walk(root, &rel_path, opts, critical, links)?);
        }
    }
    Ok(out)
}

fn stat_meta(rel: &Path, fs_path: &Path, md: &fs::Metadata, clamp: Option<i64>) -> Result<Meta, PackError> {
    let ft = md.file_type();
    use std::os::unix::fs::FileTypeExt;
    let kind = if ft.is_file() {
        Kind::File
    } else if ft.is_dir() {
        Kind::Dir
    } else if ft.is_symlink() {
        Kind::Symlink
    } else if ft.is_fifo() {
        Kind::Fifo
    } else if ft.is_char_device() {
        Kind::CharDev
    } else if ft.is_block_device() {
        Kind::BlockDev
    } else {
        return Err(PackError::Stage { path: fs_path.into(), source: io::Error::other("a socket or other entry tar cannot hold") });
    };
    let mut meta = Meta::new(rel, kind);
    meta.mode = md.mode() & 0o7777;
    meta.uid = md.uid();
    meta.gid = md.gid();
    meta.mtime = clamp.map_or(md.mtime(), |c| md.mtime().min(c));
    if kind == Kind::File {
        meta.size = md.size();
    }
    if kind == Kind::Symlink {
        meta.link = Some(fs::read_link(fs_path).map_err(stage_err(fs_path))?);
    }
    if matches!(kind, Kind::CharDev | Kind::BlockDev) {
        meta.dev = Some(os::dev_split(md.rdev()));
    }
    Ok(meta)
}

/// The files of the upgrade subset under `src`, placed under the private prefix,
/// with the directories that lead to them. Owners are root's and modes plain:
/// a checkout's owner and umask are not the target's business.
fn upgrade_subset(src: &Path, opts: &PackOptions, staged: &[Source]) -> Result<Vec<Source>, PackError> {
    let mut files: Vec<PathBuf> = Vec::new();
    for line in list_lines(&opts.upgrade_subset) {
        // `?path`: an entry only some trees have (etc/upgrade-subset.conf).
        let (line, optional) = line.strip_prefix('?').map_or((line, false), |l| (l, true));
        let matches: Vec<PathBuf> = if line.contains(['*', '?', '[']) {
            let pat = src.join(line);
            glob::glob(&pat.to_string_lossy())
                .map_err(|e| PackError::Pattern { list: "upgrade-subset list".into(), pattern: line.into(), why: e.msg.into() })?
                .filter_map(Result::ok)
                .collect()
        } else {
            let p = src.join(line);
            if fs::symlink_metadata(&p).is_err() {
                if optional {
                    continue;
                }
                return Err(PackError::MissingSubset(p));
            }
            vec![p]
        };
        for m in matches {
            collect_tree(&m, &mut files)?;
        }
    }
    files.sort();
    files.dedup();
    let prefix = Path::new(UPGRADE_SRC_PREFIX);
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut out = Vec::new();
    for fs_path in files {
        let rel = prefix.join(fs_path.strip_prefix(src).unwrap_or(&fs_path));
        for anc in rel.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()) {
            if !dirs.iter().any(|d| d == anc) && !staged.iter().any(|s| s.entry.meta.path == anc) {
                dirs.push(anc.to_path_buf());
            }
        }
        let md = fs::symlink_metadata(&fs_path).map_err(stage_err(&fs_path))?;
        let mut meta = stat_meta(&rel, &fs_path, &md, opts.clamp_mtime)?;
        if meta.kind == Kind::Dir {
            if dirs.contains(&rel) || staged.iter().any(|s| s.entry.meta.path == rel) {
                continue;
            }
            dirs.push(rel.clone());
            continue;
        }
        meta.uid = 0;
        meta.gid = 0;
        meta.mode = if meta.mode & 0o111 != 0 { 0o755 } else { 0o644 };
        out.push(Source { fs_path, entry: Entry { meta, sha256: None, critical: false } });
    }
    let mtime = opts.clamp_mtime.unwrap_or(0);
    for d in dirs {
        let mut meta = Meta::new(&d, Kind::Dir);
        meta.mtime = mtime;
        out.push(Source { fs_path: PathBuf::new(), entry: Entry { meta, sha256: None, critical: false } });
    }
    Ok(out)
}

fn collect_tree(p: &Path, out: &mut Vec<PathBuf>) -> Result<(), PackError> {
    let md = fs::symlink_metadata(p).map_err(stage_err(p))?;
    out.push(p.to_path_buf());
    if md.is_dir() {
        for e in fs::read_dir(p).map_err(stage_err(p))? {
            collect_tree(&e.map_err(stage_err(p))?.path(), out)?;
        }
    }
    Ok(())
}

/// Reads every regular file once for the manifest's SHA-256.
fn hash_files(sources: &mut [Source]) -> Result<(), PackError> {
    for s in sources.iter_mut().filter(|s| s.entry.meta.kind == Kind::File) {
        let f = File::open(&s.fs_path).map_err(stage_err(&s.fs_path))?;
        let mut counted = CountingReader { inner: f, count: 0 };
        s.entry.sha256 = Some(hash::sha256_of(&mut counted).map_err(stage_err(&s.fs_path))?);
        if counted.count != s.entry.meta.size {
            return Err(PackError::Changed { path: s.fs_path.clone(), what: "size" });
        }
    }
    Ok(())
}

struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Writes manifest and entries as one tar, gzipped, hashing the tar on the way.
fn write_dist(
    dist: &Path,
    manifest: &Manifest,
    manifest_path: &Path,
    sources: &[Source],
    opts: &PackOptions,
) -> Result<(Digests, u64), PackError> {
    let mut tar_digests = Digests::default();
    let mut inner_err: Option<PackError> = None;
    let res = os::write_atomically(dist, |file| {
        let gz = tario::gz::encoder_with(BufWriter::with_capacity(1 << 20, file), &opts.gzip);
        let mut tar = tario::Writer::new(HashingWriter::new(gz));
        let text = manifest.to_text();
        let mut mm = Meta::new(manifest_path, Kind::File);
        mm.size = text.len() as u64;
        mm.mode = 0o444;
        mm.mtime = crate::names::stamp_to_epoch(&opts.name.stamp).unwrap_or(0);
        tar.append(&mm, text.as_bytes())?;
        for (s, meta) in sources.iter().zip(manifest.member_metas()) {
            if meta.kind != Kind::File {
                tar.append(&meta, io::empty())?;
                continue;
            }
            let f = File::open(&s.fs_path).map_err(|e| {
                inner_err = Some(stage_err(&s.fs_path)(e));
                io::Error::other("stage")
            })?;
            let mut hashing = hash::HashingReader::new(f);
            if let Err(e) = tar.append(&meta, &mut hashing) {
                inner_err = Some(PackError::Changed { path: s.fs_path.clone(), what: "size" });
                return Err(e);
            }
            if Some(hashing.finish().1.sha256) != s.entry.sha256 {
                inner_err = Some(PackError::Changed { path: s.fs_path.clone(), what: "content" });
                return Err(io::Error::other("changed"));
            }
        }
        let (gz, digests) = tar.finish()?.finish();
        tar_digests = digests;
        gz.finish()?.flush()?;
        Ok(())
    });
    if let Some(e) = inner_err {
        return Err(e);
    }
    res.map_err(|e| PackError::Output { path: dist.to_path_buf(), source: e })?;
    let gz_size = fs::metadata(dist).map_err(|e| PackError::Output { path: dist.to_path_buf(), source: e })?.len();
    Ok((tar_digests, gz_size))
}
