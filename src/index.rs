//! INDEX: what a dist directory holds, in one signed text file for every series
//! (so that no mirror can serve the metadata of different moments side by side).
//! The format is documented in docs/index.md; this module writes, parses and
//! builds it, and knows nothing of keys or of the network.
//!
//! ```text
//! binarydist-index 1
//! serial 1790010800
//! created 20260922T050000Z
//! expires 20261022T050000Z
//! dist world DragonFly-world-x86_64-master-20260922T040000Z-r2 FILESIZE FILESHA256 TARSIZE TARMD5 TARSHA256
//! patch world DragonFly-world-...-r1--DragonFly-world-...-r2 FILESIZE FILESHA256 TARSIZE TARMD5 TARSHA256
//! end
//! ```
//!
//! For a patch, the tar digests are those of the tar it yields (its new end).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::errors::shown;
use crate::names::{self, DistName, PatchName, Series};
use crate::patchfile as patch_format;
use crate::sidecar::{self, Algo};
use crate::tario::{self, HashingReader};
use std::fmt::{self, Write as _};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub const FILE: &str = "INDEX";
pub const SIG_SUFFIX: &str = ".minisig";
pub const MAGIC: &str = "binarydist-index";
pub const VERSION: u32 = 1;
/// An INDEX is small (a few hundred bytes a file): anything past this is hostile.
pub const MAX_SIZE: u64 = 4 << 20;
/// The longest an INDEX may be made valid for: past a few years an expiry no
/// longer protects against a frozen mirror, and far enough out its stamp has
/// no four-digit year and could not be read back.
pub const MAX_VALIDITY: u64 = 3660 * 86400;
/// Default validity of a fresh INDEX.
pub const DEFAULT_VALIDITY: u64 = 30 * 86400;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("INDEX line {line}: {what}")]
    Parse { line: usize, what: String },
    #[error("{}: line {line}: {what}; remove it and run `binarydist index` again (a new INDEX rescans the directory, and its serial is never below the time)", path.display())]
    Damaged { path: PathBuf, line: usize, what: String },
    #[error("a validity of {0} seconds is longer than {MAX_VALIDITY} seconds (10 years)")]
    Validity(u64),
    #[error("{}: {what}", path.display())]
    Disagrees { path: PathBuf, what: String },
    #[error("{}", path.display())]
    Patch { path: PathBuf, source: patch_format::FormatError },
    #[error("{}: the INDEX names it, but it is gone (run `binarydist index` again, not --resign)", path.display())]
    Gone { path: PathBuf },
    #[error("{}: no INDEX to re-sign; run `binarydist index` first", path.display())]
    NoIndex { path: PathBuf },
}

/// Size, MD5 and SHA-256 of an uncompressed tar.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TarSum {
    pub size: u64,
    pub md5: String,
    pub sha256: String,
}

/// One dist or patch file of the directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// The file name (`NAME.tar.gz` or `FROM--TO.bdpatch`).
    pub file: String,
    #[serde(serialize_with = "as_string")]
    pub series: Series,
    pub size: u64,
    pub sha256: String,
    /// The tar this file yields.
    pub tar: TarSum,
    #[serde(skip)]
    pub kind: Kind,
}

fn as_string<S: serde::Serializer>(s: &Series, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(&s.to_string())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dist(DistName),
    Patch(PatchName),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub serial: u64,
    /// Seconds since the epoch (the text says it as a build stamp, UTC).
    pub created: i64,
    pub expires: i64,
    pub entries: Vec<Entry>,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Index {
    pub fn dists(&self) -> impl Iterator<Item = (&DistName, &Entry)> {
        self.entries.iter().filter_map(|e| match &e.kind {
            Kind::Dist(d) => Some((d, e)),
            Kind::Patch(_) => None,
        })
    }

    pub fn patches(&self) -> impl Iterator<Item = (&PatchName, &Entry)> {
        self.entries.iter().filter_map(|e| match &e.kind {
            Kind::Patch(p) => Some((p, e)),
            Kind::Dist(_) => None,
        })
    }

    pub fn dist(&self, name: &DistName) -> Option<&Entry> {
        self.dists().find(|(d, _)| *d == name).map(|(_, e)| e)
    }

    /// The one-line summary the signature's trusted comment repeats for people.
    pub fn trusted_comment(&self) -> String {
        format!(
            "binarydist INDEX serial {} created {} expires {}",
            self.serial,
            names::stamp_from_epoch(self.created),
            names::stamp_from_epoch(self.expires)
        )
    }

    pub fn parse(text: &str) -> Result<Index, IndexError> {
        let err = |line: usize, what: String| IndexError::Parse { line, what };
        let mut lines = text.split('\n').enumerate().map(|(i, l)| (i + 1, l));
        let (n, first) = lines.next().unwrap_or((1, ""));
        match first.split_once(' ') {
            Some((MAGIC, v)) if v == VERSION.to_string() => {}
            Some((MAGIC, v)) => {
                return Err(err(n, format!("INDEX format version \"{}\"; this binarydist reads version {VERSION}", shown(v))))
            }
            _ => return Err(err(n, format!("not a binarydist INDEX (no {MAGIC:?} line)"))),
        }
        let mut field = |key: &str| -> Result<String, IndexError> {
            let (n, l) = lines.next().ok_or_else(|| err(0, format!("ends before its {key:?} line")))?;
            l.strip_prefix(key).and_then(|v| v.strip_prefix(' ')).map(String::from).ok_or_else(|| err(n, format!("expected {key:?}")))
        };
        let serial = field("serial")?;
        let serial = serial.parse::<u64>().map_err(|_| err(2, format!("serial \"{}\" is not a number", shown(&serial))))?;
        let stamp = |n: usize, s: String| {
            names::stamp_to_epoch(&s).ok_or_else(|| err(n, format!("\"{}\" is not a YYYYMMDDTHHMMSSZ time", shown(&s))))
        };
        let created = stamp(3, field("created")?)?;
        let expires = stamp(4, field("expires")?)?;
        let mut entries = Vec::new();
        let mut ended = false;
        for (n, line) in lines.by_ref() {
            if line == "end" {
                ended = true;
                break;
            }
            if line.is_empty() {
                break;
            }
            let w: Vec<&str> = line.split(' ').collect();
            let [kind, series, name, size, sha, tsize, tmd5, tsha] = w[..] else {
                return Err(err(n, "expected `dist|patch SERIES NAME SIZE SHA256 TARSIZE TARMD5 TARSHA256` or `end`".into()));
            };
            let series = Series::parse(series).map_err(|e| err(n, e.to_string()))?;
            let num = |s: &str| s.parse::<u64>().map_err(|_| err(n, format!("\"{}\" is not a size", shown(s))));
            let (size, tsize) = (num(size)?, num(tsize)?);
            if !is_hex(sha, 64) || !is_hex(tsha, 64) || !is_hex(tmd5, 32) {
                return Err(err(n, "digests must be lower-case hex (SHA-256: 64 digits, MD5: 32)".into()));
            }
            let (kind, file) = match kind {
                "dist" => {
                    let d = DistName::parse(name).map_err(|e| err(n, e.to_string()))?;
                    (Kind::Dist(d.clone()), d.file_name())
                }
                "patch" => {
                    let p = PatchName::parse(name).map_err(|e| err(n, e.to_string()))?;
                    (Kind::Patch(p.clone()), p.file_name())
                }
                k => return Err(err(n, format!("\"{}\" is neither dist nor patch", shown(k)))),
            };
            let named_series = match &kind {
                Kind::Dist(d) => &d.series,
                Kind::Patch(p) => &p.to.series,
            };
            if *named_series != series {
                return Err(err(n, format!("series {series} disagrees with the name {}", shown(name))));
            }
            if entries.iter().any(|e: &Entry| e.file == file) {
                return Err(err(n, format!("{file} is listed twice")));
            }
            let tar = TarSum { size: tsize, md5: tmd5.into(), sha256: tsha.into() };
            entries.push(Entry { file, series, size, sha256: sha.into(), tar, kind });
        }
        if !ended {
            return Err(err(0, "has no `end` line: truncated".into()));
        }
        if lines.any(|(_, l)| !l.is_empty()) {
            return Err(err(0, "has text after its `end` line".into()));
        }
        Ok(Index { serial, created, expires, entries })
    }
}

impl fmt::Display for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{MAGIC} {VERSION}")?;
        writeln!(f, "serial {}", self.serial)?;
        writeln!(f, "created {}", names::stamp_from_epoch(self.created))?;
        writeln!(f, "expires {}", names::stamp_from_epoch(self.expires))?;
        for e in &self.entries {
            let (kind, name) = match &e.kind {
                Kind::Dist(d) => ("dist", d.to_string()),
                Kind::Patch(p) => ("patch", p.to_string()),
            };
            writeln!(f, "{kind} {} {name} {} {} {} {} {}", e.series, e.size, e.sha256, e.tar.size, e.tar.md5, e.tar.sha256)?;
        }
        writeln!(f, "end")
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Reads DISTDIR/INDEX, if there is one.
pub fn read(distdir: &Path) -> Result<Option<Index>, IndexError> {
    let path = distdir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) => Index::parse(&t).map(Some).map_err(|e| match e {
            IndexError::Parse { line, what } => IndexError::Damaged { path, line, what },
            e => e,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(IndexError::Io { path, source: e }),
    }
}

pub struct BuildOptions {
    /// How long the INDEX stays valid, in seconds.
    pub validity: u64,
    /// Keep the entries of the current INDEX (checking only that each file is
    /// still there with its size): a new serial and expiry without a rescan.
    pub resign: bool,
    /// The time to write as `created` (tests and reproducible runs).
    pub now: i64,
}

/// Scans DISTDIR and returns the new INDEX (not written): every dist
/// (`*.tar.gz` with a dist name) and patch (`*.bdpatch`), sorted by name. The
/// serial is past the previous one and never below the time, so that even a
/// lost INDEX does not make the next one look like a replay.
pub fn build(distdir: &Path, opts: &BuildOptions) -> Result<Index, IndexError> {
    if opts.validity > MAX_VALIDITY {
        return Err(IndexError::Validity(opts.validity));
    }
    let previous = read(distdir)?;
    let entries = if opts.resign {
        let prev = previous.as_ref().ok_or_else(|| IndexError::NoIndex { path: distdir.join(FILE) })?;
        for e in &prev.entries {
            let path = distdir.join(&e.file);
            match std::fs::metadata(&path) {
                Ok(m) if m.len() == e.size => {}
                Ok(m) => return Err(IndexError::Disagrees { path, what: format!("{} bytes, the INDEX says {}", m.len(), e.size) }),
                Err(_) => return Err(IndexError::Gone { path }),
            }
        }
        prev.entries.clone()
    } else {
        scan(distdir, previous.as_ref())?
    };
    let serial = previous.as_ref().map_or(0, |p| p.serial + 1).max(opts.now.max(0) as u64);
    Ok(Index { serial, created: opts.now, expires: opts.now.saturating_add_unsigned(opts.validity), entries })
}

fn scan(distdir: &Path, previous: Option<&Index>) -> Result<Vec<Entry>, IndexError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| IndexError::Io { path: path.clone(), source }
    };
    let mut files: Vec<String> = std::fs::read_dir(distdir)
        .map_err(io_err(distdir))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().to_str().map(String::from))
        .collect();
    files.sort();
    let mut entries = Vec::new();
    for file in files {
        let path = distdir.join(&file);
        let kind = if let Some(d) = DistName::from_file_name(&file).ok().filter(|_| file.ends_with(names::DIST_SUFFIX)) {
            Kind::Dist(d)
        } else if let Ok(p) = PatchName::from_file_name(&file) {
            Kind::Patch(p)
        } else {
            continue;
        };
        let (size, sha256) = file_sum(&path)?;
        let known = previous.and_then(|p| p.entries.iter().find(|e| e.file == file && e.size == size && e.sha256 == sha256));
        let (series, tar) = match &kind {
            Kind::Dist(d) => {
                let tar = match known {
                    Some(e) => e.tar.clone(),
                    None => tar_sum(&path)?,
                };
                check_sidecars(&path, d, &tar)?;
                (d.series.clone(), tar)
            }
            Kind::Patch(p) => {
                let pf = patch_format::read_header(&path).map_err(|e| IndexError::Patch { path: path.clone(), source: e })?;
                if pf.from != p.from || pf.to != p.to {
                    return Err(IndexError::Disagrees { path, what: format!("its header joins {} to {}", pf.from, pf.to) });
                }
                let n = &pf.header.new;
                (p.to.series.clone(), TarSum { size: n.size, md5: n.md5.clone(), sha256: n.sha256.clone() })
            }
        };
        entries.push(Entry { file, series, size, sha256, tar, kind });
    }
    check_patch_ends(distdir, &entries)?;
    Ok(entries)
}

/// A patch whose new end is listed must yield that dist's very tar.
fn check_patch_ends(distdir: &Path, entries: &[Entry]) -> Result<(), IndexError> {
    for e in entries {
        let Kind::Patch(p) = &e.kind else { continue };
        if let Some(d) = entries.iter().find(|d| d.kind == Kind::Dist(p.to.clone())) {
            if d.tar != e.tar {
                return Err(IndexError::Disagrees {
                    path: distdir.join(&e.file),
                    what: format!("yields a tar with SHA-256 {}, but {} is {}", e.tar.sha256, d.file, d.tar.sha256),
                });
            }
        }
    }
    Ok(())
}

/// Size and SHA-256 of a file as it is served.
pub fn file_sum(path: &Path) -> Result<(u64, String), IndexError> {
    let f = std::fs::File::open(path).map_err(|e| IndexError::Io { path: path.into(), source: e })?;
    let mut h = HashingReader::new(f);
    io::copy(&mut h, &mut io::sink()).map_err(|e| IndexError::Io { path: path.into(), source: e })?;
    let (_, d) = h.finish();
    Ok((d.size, d.sha256_hex()))
}

fn tar_sum(path: &Path) -> Result<TarSum, IndexError> {
    let io_err = |e| IndexError::Io { path: path.into(), source: e };
    let mut h = HashingReader::new(tario::gz::open_tar(path).map_err(io_err)?);
    io::copy(&mut (&mut h as &mut dyn Read), &mut io::sink()).map_err(io_err)?;
    let (_, d) = h.finish();
    Ok(TarSum { size: d.size, md5: d.md5_hex(), sha256: d.sha256_hex() })
}

/// Sidecars, where present, must say what the INDEX says.
fn check_sidecars(path: &Path, name: &DistName, tar: &TarSum) -> Result<(), IndexError> {
    for (algo, want) in [(Algo::Md5, &tar.md5), (Algo::Sha256, &tar.sha256)] {
        if let Ok((side, hex)) = sidecar::read(path, name, algo) {
            if hex != *want {
                return Err(IndexError::Disagrees { path: side, what: format!("says {hex}, the tar's {} is {want}", algo.word()) });
            }
        }
    }
    Ok(())
}

/// Writes DISTDIR/INDEX atomically.
pub fn write(distdir: &Path, index: &Index) -> Result<PathBuf, IndexError> {
    let path = distdir.join(FILE);
    let mut text = String::new();
    let _ = write!(text, "{index}");
    crate::os::write_atomically(&path, |f| io::Write::write_all(f, text.as_bytes()))
        .map_err(|e| IndexError::Io { path: path.clone(), source: e })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Index {
        let d1 = DistName::parse("DragonFly-world-x86_64-master-20260101T000000Z-r1").unwrap();
        let d2 = DistName::parse("DragonFly-world-x86_64-master-20260201T000000Z-r2").unwrap();
        let sum = |c: char| TarSum { size: 10240, md5: c.to_string().repeat(32), sha256: c.to_string().repeat(64) };
        let p = PatchName::new(d1.clone(), d2.clone()).unwrap();
        Index {
            serial: 42,
            created: 1_790_000_000,
            expires: 1_792_592_000,
            entries: vec![
                Entry {
                    file: d1.file_name(),
                    series: Series::World,
                    size: 99,
                    sha256: "a".repeat(64),
                    tar: sum('1'),
                    kind: Kind::Dist(d1),
                },
                Entry {
                    file: d2.file_name(),
                    series: Series::World,
                    size: 98,
                    sha256: "b".repeat(64),
                    tar: sum('2'),
                    kind: Kind::Dist(d2),
                },
                Entry { file: p.file_name(), series: Series::World, size: 7, sha256: "c".repeat(64), tar: sum('2'), kind: Kind::Patch(p) },
            ],
        }
    }

    #[test]
    fn round_trips() {
        let i = sample();
        let text = i.to_string();
        assert!(
            text.starts_with("binarydist-index 1\nserial 42\ncreated 20260921T141320Z\nexpires 20261021T141320Z\ndist world "),
            "{text}"
        );
        assert_eq!(Index::parse(&text).unwrap(), i);
    }

    #[test]
    fn a_damaged_index_is_named_with_its_fix_and_an_absurd_validity_refused() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join(FILE), sample().to_string().replace("expires 20261021T141320Z", "expires 736628969120430T175732Z"))
            .unwrap();
        let opts = BuildOptions { validity: DEFAULT_VALIDITY, resign: false, now: 1_790_000_000 };
        let e = build(t.path(), &opts).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: line 4: ", t.path().join(FILE).display())) && e.contains("remove it"), "{e}");
        std::fs::remove_file(t.path().join(FILE)).unwrap();
        let e = build(t.path(), &BuildOptions { validity: MAX_VALIDITY + 1, ..opts }).unwrap_err().to_string();
        assert!(e.contains("longer than"), "{e}");
    }

    #[test]
    fn refuses_what_is_not_exactly_an_index() {
        let text = sample().to_string();
        let cases = [
            (text.replace("binarydist-index 1", "binarydist-index 2"), "version"),
            (text.replace("\nend\n", "\n"), "truncated"),
            (text.replace("end\n", "end\nmore\n"), "after its"),
            (text.replace("serial 42", "serial -1"), "not a number"),
            (text.replacen("dist world", "dist kernel.X", 1), "disagrees"),
            (text.replacen(&"a".repeat(64), &"A".repeat(64), 1), "hex"),
            (text.replacen("patch world", "dist world", 1), "not a dist name"),
        ];
        for (bad, says) in cases {
            let e = Index::parse(&bad).unwrap_err().to_string();
            assert!(e.contains(says), "{says}: {e}");
        }
    }
}
