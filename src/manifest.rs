//! The manifest: the first member of every dist, saying what the dist is and
//! listing every entry with its metadata and the SHA-256 of its content, so that
//! installed files can be checked later (like freebsd-update's IDS) and an
//! installer can tell which entries changed without reading the old files.
//!
//! It is text in the spirit of mtree(5), one entry a line, so that an admin can
//! read and grep it:
//!
//! ```text
//! #binarydist manifest 1
//! name DragonFly-world-x86_64-master-20261128T103900Z-v6.5.0.12.gabcde
//! upgrade-src usr/share/binarydist/upgrade-src
//! entries 2
//! bin type=dir mode=0755 uid=0 gid=0 mtime=1700000000
//! lib/libc.so.8 type=file mode=0444 uid=0 gid=0 mtime=1700000000 size=12 sha256=... flags=schg critical
//! ```
//!
//! Paths are final installed paths (relative to the root); a `critical` entry is
//! stored in the tar as `PATH.new`. Bytes outside printable ASCII, and `\`, `=`,
//! `#` and space, are written as `\ooo` octal, as vis(3) does for mtree.

use crate::names::{DistName, NameError, Series};
use crate::tario::{Kind, Meta};
use std::fmt::Write as _;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

const MAGIC: &str = "#binarydist manifest 1";
/// Largest manifest member read (a whole world's is about 5 MB).
pub const MAX_SIZE: u64 = 64 << 20;
/// Most entries a manifest may declare: bounds what parsing allocates.
pub const MAX_ENTRIES: usize = 4 << 20;
/// Suffix a critical file carries inside the tar.
pub const NEW_SUFFIX: &str = ".new";
/// Where shipped /usr/src subsets live inside a dist: never under usr/src.
pub const UPGRADE_SRC_PREFIX: &str = "usr/share/binarydist/upgrade-src";

/// The manifest member's path: at the top, so that no directory is created
/// implicitly before its own entry (bsdtar then restores such a directory's
/// mtime before its children are made, and the two tars would disagree). It is
/// metadata, not a file to install: the installer keeps it in its state
/// directory; a manual `tar xpf` leaves `+MANIFEST` at the top, as pkg's do.
pub const MEMBER: &str = "+MANIFEST";

/// The manifest member's path, whatever the series (kept for callers that ask
/// by series).
pub fn member_path(_series: &Series) -> PathBuf {
    PathBuf::from(MEMBER)
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("not a binarydist manifest (first line is not {MAGIC:?})")]
    Magic,
    #[error("manifest line {line}: {what}")]
    Syntax { line: usize, what: String },
    #[error("manifest: {0}")]
    Name(#[from] NameError),
    #[error("manifest says {declared} entries but lists {found}")]
    Count { declared: usize, found: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Metadata with the final path; a hard link's `link` is the target's final path.
    pub meta: Meta,
    pub sha256: Option<[u8; 32]>,
    pub critical: bool,
}

impl Entry {
    /// The path of this entry's member in the tar.
    pub fn stored_path(&self) -> PathBuf {
        stored(&self.meta.path, self.critical)
    }
}

/// `PATH.new` for a critical file, `PATH` otherwise.
pub fn stored(path: &Path, critical: bool) -> PathBuf {
    if critical {
        let mut s = path.as_os_str().to_owned();
        s.push(NEW_SUFFIX);
        PathBuf::from(s)
    } else {
        path.to_path_buf()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub name: DistName,
    /// Where the /usr/src subset for `make upgrade` is, if the dist carries one.
    pub upgrade_src: Option<PathBuf>,
    pub entries: Vec<Entry>,
}

impl Manifest {
    pub fn critical(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.critical)
    }

    pub fn to_text(&self) -> String {
        let mut s = String::with_capacity(64 + self.entries.len() * 120);
        let n = &self.name;
        let _ =
            writeln!(s, "{MAGIC}\nname {n}\nseries {}\narch {}\nbranch {}\ndate {}\nrev {}", n.series, n.arch, n.branch, n.stamp, n.rev);
        if let Some(src) = &self.upgrade_src {
            let _ = writeln!(s, "upgrade-src {}", escape(src.as_os_str().as_bytes()));
        }
        let _ = writeln!(s, "entries {}", self.entries.len());
        for e in &self.entries {
            let m = &e.meta;
            let _ = write!(
                s,
                "{} type={} mode={:04o} uid={} gid={} mtime={}",
                escape(m.path.as_os_str().as_bytes()),
                m.kind.word(),
                m.mode,
                m.uid,
                m.gid,
                m.mtime
            );
            if m.kind == Kind::File {
                let _ = write!(s, " size={}", m.size);
            }
            if let Some(h) = &e.sha256 {
                let _ = write!(s, " sha256={}", hex::encode(h));
            }
            if let Some(l) = &m.link {
                let _ = write!(s, " link={}", escape(l.as_os_str().as_bytes()));
            }
            if let Some((maj, min)) = m.dev {
                let _ = write!(s, " dev={maj},{min}");
            }
            if let Some(f) = &m.flags {
                let _ = write!(s, " flags={f}");
            }
            if e.critical {
                s.push_str(" critical");
            }
            s.push('\n');
        }
        s
    }

    /// SHA-256 of what the dist installs, whichever build made it: this
    /// manifest with the build stamp and rev of its name and every mtime left
    /// out (installworld stamps files with the install time, clamped to the
    /// build's SOURCE_DATE_EPOCH). Two dists of a series with the same content
    /// digest install the same paths, types, modes, owners, flags, links and
    /// bytes: the fragment publishes no new dist for an unchanged series.
    pub fn content_sha256(&self) -> [u8; 32] {
        let mut m = self.clone();
        let n = &self.name;
        m.name = DistName { stamp: "19700101T000000Z".into(), rev: "content".into(), ..n.clone() };
        for e in &mut m.entries {
            e.meta.mtime = 0;
        }
        crate::tario::Digests::of(m.to_text().as_bytes()).sha256
    }

    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let mut lines = text.lines().enumerate();
        if lines.next().map(|(_, l)| l) != Some(MAGIC) {
            return Err(ManifestError::Magic);
        }
        let syntax = |line: usize, what: String| ManifestError::Syntax { line: line + 1, what };
        let mut name = None;
        let mut upgrade_src = None;
        let mut declared = None;
        let mut entries = Vec::new();
        for (no, line) in lines {
            if declared.is_none() {
                let (key, value) = line.split_once(' ').ok_or_else(|| syntax(no, format!("{line:?}")))?;
                match key {
                    "name" => name = Some(DistName::parse(value)?),
                    "upgrade-src" => upgrade_src = Some(unescape(value).map_err(|w| syntax(no, w))?),
                    "entries" => {
                        let n = value.parse::<usize>().ok().filter(|&n| n <= MAX_ENTRIES);
                        declared = Some(n.ok_or_else(|| syntax(no, format!("entries {value:?} (at most {MAX_ENTRIES})")))?);
                        entries.reserve(declared.unwrap_or(0).min(1 << 16));
                    }
                    _ => {} // series, arch, ... are in the name; unknown keys are for later versions
                }
                continue;
            }
            if Some(entries.len()) == declared {
                return Err(ManifestError::Count { declared: entries.len(), found: entries.len() + 1 });
            }
            entries.push(parse_entry(line).map_err(|w| syntax(no, w))?);
        }
        let name = name.ok_or_else(|| syntax(0, "no name line".into()))?;
        let declared = declared.ok_or_else(|| syntax(0, "no entries line".into()))?;
        if declared != entries.len() {
            return Err(ManifestError::Count { declared, found: entries.len() });
        }
        Ok(Manifest { name, upgrade_src, entries })
    }
}

fn parse_entry(line: &str) -> Result<Entry, String> {
    let mut words = line.split(' ');
    let path = unescape(words.next().unwrap_or(""))?;
    let mut meta = Meta::new(path, Kind::File);
    let mut sha256 = None;
    let mut critical = false;
    let mut kind = None;
    for w in words {
        if w == "critical" {
            critical = true;
            continue;
        }
        let (k, v) = w.split_once('=').ok_or_else(|| format!("bad field {w:?}"))?;
        let num = |v: &str| v.parse::<i64>().map_err(|_| format!("bad {k} {v:?}"));
        let id = |v: &str| v.parse::<u32>().map_err(|_| format!("bad {k} {v:?}"));
        match k {
            "type" => kind = Some(Kind::from_word(v).ok_or_else(|| format!("bad type {v:?}"))?),
            "mode" => meta.mode = u32::from_str_radix(v, 8).map_err(|_| format!("bad mode {v:?}"))?,
            "uid" => meta.uid = id(v)?,
            "gid" => meta.gid = id(v)?,
            "mtime" => meta.mtime = num(v)?,
            "size" => meta.size = v.parse().map_err(|_| format!("bad size {v:?}"))?,
            "sha256" => {
                let mut h = [0u8; 32];
                hex::decode_to_slice(v, &mut h).map_err(|_| format!("bad sha256 {v:?}"))?;
                sha256 = Some(h);
            }
            "link" => meta.link = Some(unescape(v)?),
            "dev" => {
                let (a, b) = v.split_once(',').ok_or_else(|| format!("bad dev {v:?}"))?;
                meta.dev = Some((id(a)?, id(b)?));
            }
            "flags" => meta.flags = Some(v.to_string()),
            _ => {}
        }
    }
    meta.kind = kind.ok_or("no type")?;
    Ok(Entry { meta, sha256, critical })
}

fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_graphic() && !matches!(b, b'\\' | b'=' | b'#') {
            s.push(b as char);
        } else {
            let _ = write!(s, "\\{b:03o}");
        }
    }
    s
}

fn unescape(s: &str) -> Result<PathBuf, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let oct = s.get(i + 1..i + 4).and_then(|o| u8::from_str_radix(o, 8).ok()).ok_or_else(|| format!("bad escape in {s:?}"))?;
            out.push(oct);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    if out.is_empty() {
        return Err("empty path".into());
    }
    Ok(PathBuf::from(std::ffi::OsString::from_vec(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips() {
        let name = DistName::new(Series::Kernel("X86_64_GENERIC".into()), "x86_64", "master", "20261128T103900Z", "v1.2").unwrap();
        let mut f = Meta::new("lib/lib c=#\\é.so.8", Kind::File);
        f.size = 12;
        f.flags = Some("schg,uappnd".into());
        let mut l = Meta::new("usr/lib/libc.so", Kind::Symlink);
        l.link = Some("../../lib/libc.so.8".into());
        let mut d = Meta::new("dev/null", Kind::CharDev);
        d.dev = Some((2, 2));
        let m = Manifest {
            name,
            upgrade_src: Some(UPGRADE_SRC_PREFIX.into()),
            entries: vec![
                Entry { meta: Meta::new("bin", Kind::Dir), sha256: None, critical: false },
                Entry { meta: f, sha256: Some([7; 32]), critical: true },
                Entry { meta: l, sha256: None, critical: false },
                Entry { meta: d, sha256: None, critical: false },
            ],
        };
        let text = m.to_text();
        assert!(text.contains("lib/lib\\040c\\075\\043\\134\\303\\251.so.8 "), "{text}");
        assert_eq!(Manifest::parse(&text).unwrap(), m);
        assert_eq!(m.entries[1].stored_path(), PathBuf::from("lib/lib c=#\\é.so.8.new"));
    }

    #[test]
    fn the_content_digest_ignores_the_build_name_and_mtimes_only() {
        let name = |stamp: &str, rev: &str| DistName::new(Series::World, "x86_64", "master", stamp, rev).unwrap();
        let mut f = Meta::new("bin/sh", Kind::File);
        f.size = 3;
        let m = Manifest {
            name: name("20261128T103900Z", "r1"),
            upgrade_src: None,
            entries: vec![
                Entry { meta: Meta::new("bin", Kind::Dir), sha256: None, critical: false },
                Entry { meta: f, sha256: Some([1; 32]), critical: false },
            ],
        };
        let mut later = m.clone();
        later.name = name("20261201T000000Z", "r2");
        later.entries[0].meta.mtime = 1_790_000_000;
        assert_eq!(m.content_sha256(), later.content_sha256(), "another build of the same content");
        let changed: [fn(&mut Manifest); 5] = [
            |m| m.entries[1].sha256 = Some([2; 32]),
            |m| m.entries[1].meta.mode = 0o555,
            |m| m.entries[1].meta.flags = Some("schg".into()),
            |m| m.entries[1].critical = true,
            |m| m.name.branch = "DragonFly_RELEASE_6_4".into(),
        ];
        for (i, change) in changed.iter().enumerate() {
            let mut c = m.clone();
            change(&mut c);
            assert_ne!(m.content_sha256(), c.content_sha256(), "change {i} is a change");
        }
    }

    #[test]
    fn bad_manifests_are_refused() {
        assert!(matches!(Manifest::parse("hello"), Err(ManifestError::Magic)));
        let t = format!("{MAGIC}\nname DragonFly-world-x86_64-master-20261128T103900Z-v1\nentries 2\nbin type=dir\n");
        assert!(matches!(Manifest::parse(&t), Err(ManifestError::Count { declared: 2, found: 1 })));
        let t = format!("{MAGIC}\nname DragonFly-world-x86_64-master-20261128T103900Z-v1\nentries 1\nbin type=blob\n");
        assert!(matches!(Manifest::parse(&t), Err(ManifestError::Syntax { line: 4, .. })));
        // More lines than declared stop at the first extra one; an absurd count is refused.
        let t = format!("{MAGIC}\nname DragonFly-world-x86_64-master-20261128T103900Z-v1\nentries 1\n{}", "a type=dir\n".repeat(1000));
        assert!(matches!(Manifest::parse(&t), Err(ManifestError::Count { declared: 1, found: 2 })));
        let t = format!("{MAGIC}\nname DragonFly-world-x86_64-master-20261128T103900Z-v1\nentries 99999999999\n");
        assert!(matches!(Manifest::parse(&t), Err(ManifestError::Syntax { line: 3, .. })));
    }
}
