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
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::errors::shown;
use crate::names::{DistName, NameError, Series};
use crate::tario::{self, Kind, Meta, TarError};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Read;
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
    #[error("manifest")]
    Name(#[from] NameError),
    #[error("manifest says {declared} entries but lists {found}")]
    Count { declared: usize, found: usize },
    #[error("the first member is {found}, not the manifest {MEMBER:?}")]
    NotFirst { found: String },
    #[error("the manifest member {MEMBER} is {size} bytes, more than the {MAX_SIZE} a manifest may have")]
    TooLarge { size: u64 },
    #[error("reading the manifest member")]
    Read(#[source] TarError),
}

/// The manifest member as read from the front of a tar stream.
pub struct Member {
    pub manifest: Manifest,
    /// The member's own header.
    pub meta: Meta,
    /// Its bytes, as the installer keeps them.
    pub text: Vec<u8>,
}

/// Reads the manifest, which must be the first member of the stream: a
/// regular file named [`MEMBER`], at most [`MAX_SIZE`] bytes of UTF-8.
/// The one way every reader (verify, info, install) gets at it.
pub fn read_member<R: Read>(reader: &mut tario::Reader<R>) -> Result<Member, ManifestError> {
    let member = reader.next_member().map_err(ManifestError::Read)?;
    let found = member.as_ref().map(|m| format!("\"{}\"", shown(&m.meta.path))).unwrap_or_else(|| "the end of the archive".into());
    let Some(member) = member.filter(|m| m.meta.kind == Kind::File && m.meta.path.as_os_str() == MEMBER) else {
        return Err(ManifestError::NotFirst { found });
    };
    if member.meta.size > MAX_SIZE {
        return Err(ManifestError::TooLarge { size: member.meta.size });
    }
    let text = reader.read_data_to_vec().map_err(ManifestError::Read)?;
    let manifest = Manifest::parse(std::str::from_utf8(&text).map_err(|_| ManifestError::Magic)?)?;
    Ok(Member { manifest, meta: member.meta, text })
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

    /// The header each entry's member must have, in entry order: the entry's
    /// metadata under its stored path (`PATH.new` when critical), a hard link
    /// naming its target's stored path. Pack writes these, and verify and
    /// install compare the members they read with them ([`check_member`]).
    pub fn member_metas(&self) -> impl Iterator<Item = Meta> + '_ {
        let critical: HashSet<&Path> = self.critical().map(|e| e.meta.path.as_path()).collect();
        self.entries.iter().map(move |e| {
            let mut m = e.meta.clone();
            m.path = e.stored_path();
            if m.kind == Kind::HardLink {
                let target = m.link.take().unwrap_or_default();
                m.link = Some(stored(&target, critical.contains(target.as_path())));
            }
            m
        })
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
                let (key, value) = line.split_once(' ').ok_or_else(|| syntax(no, format!("\"{}\"", shown(line))))?;
                match key {
                    "name" => name = Some(DistName::parse(value)?),
                    "upgrade-src" => upgrade_src = Some(unescape(value).map_err(|w| syntax(no, w))?),
                    "entries" => {
                        let n = value.parse::<usize>().ok().filter(|&n| n <= MAX_ENTRIES);
                        declared = Some(n.ok_or_else(|| syntax(no, format!("entries \"{}\" (at most {MAX_ENTRIES})", shown(value))))?);
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

/// Compares a member's header with the one its manifest entry says it must
/// have; the error names each field that differs (modes in octal), the
/// member's value first.
pub fn check_member(found: &Meta, expected: &Meta) -> Result<(), String> {
    if found == expected {
        return Ok(());
    }
    let opt = |p: &Option<PathBuf>| p.as_ref().map_or("none".to_string(), |p| format!("\"{}\"", shown(p)));
    let mut diffs = Vec::new();
    let mut field = |name: &str, a: String, b: String| {
        if a != b {
            diffs.push(format!("{name} {a} in the header, {b} in the manifest"));
        }
    };
    field("path", format!("\"{}\"", shown(&found.path)), format!("\"{}\"", shown(&expected.path)));
    field("type", found.kind.word().into(), expected.kind.word().into());
    field("mode", format!("{:04o}", found.mode), format!("{:04o}", expected.mode));
    field("uid", found.uid.to_string(), expected.uid.to_string());
    field("gid", found.gid.to_string(), expected.gid.to_string());
    field("mtime", found.mtime.to_string(), expected.mtime.to_string());
    field("size", found.size.to_string(), expected.size.to_string());
    field("link", opt(&found.link), opt(&expected.link));
    let dev = |d: Option<(u32, u32)>| d.map_or("none".into(), |(a, b)| format!("{a},{b}"));
    field("dev", dev(found.dev), dev(expected.dev));
    let flags = |f: &Option<String>| f.clone().unwrap_or_else(|| "none".into());
    field("flags", flags(&found.flags), flags(&expected.flags));
    Err(diffs.join("; "))
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
        let (k, v) = w.split_once('=').ok_or_else(|| format!("bad field \"{}\"", shown(w)))?;
        let num = |v: &str| v.parse::<i64>().map_err(|_| format!("bad {k} \"{}\"", shown(v)));
        let id = |v: &str| v.parse::<u32>().map_err(|_| format!("bad {k} \"{}\"", shown(v)));
        match k {
            "type" => kind = Some(Kind::from_word(v).ok_or_else(|| format!("bad type \"{}\"", shown(v)))?),
            "mode" => meta.mode = u32::from_str_radix(v, 8).map_err(|_| format!("bad mode \"{}\"", shown(v)))?,
            "uid" => meta.uid = id(v)?,
            "gid" => meta.gid = id(v)?,
            "mtime" => meta.mtime = num(v)?,
            "size" => meta.size = v.parse().map_err(|_| format!("bad size \"{}\"", shown(v)))?,
            "sha256" => {
                let mut h = [0u8; 32];
                hex::decode_to_slice(v, &mut h).map_err(|_| format!("bad sha256 \"{}\"", shown(v)))?;
                sha256 = Some(h);
            }
            "link" => meta.link = Some(unescape(v)?),
            "dev" => {
                let (a, b) = v.split_once(',').ok_or_else(|| format!("bad dev \"{}\"", shown(v)))?;
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
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&byte) = s.as_bytes().get(i) {
        if byte == b'\\' {
            let oct =
                s.get(i + 1..i + 4).and_then(|o| u8::from_str_radix(o, 8).ok()).ok_or_else(|| format!("bad escape in \"{}\"", shown(s)))?;
            out.push(oct);
            i += 4;
        } else {
            out.push(byte);
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
    fn a_mismatch_names_the_fields_that_differ() {
        let mut want = Meta::new("bin/sh", Kind::File);
        want.mode = 0o555;
        want.size = 10;
        let mut got = want.clone();
        got.mode = 0o4755;
        got.uid = 3;
        assert_eq!(check_member(&want, &want), Ok(()));
        assert_eq!(
            check_member(&got, &want),
            Err("mode 4755 in the header, 0555 in the manifest; uid 3 in the header, 0 in the manifest".into())
        );
    }

    #[test]
    fn member_metas_name_stored_paths() {
        let name = DistName::parse("DragonFly-world-x86_64-master-20261128T103900Z-v1").unwrap();
        let mut link = Meta::new("lib/libc.so.8.link", Kind::HardLink);
        link.link = Some("lib/libc.so.8".into());
        let m = Manifest {
            name,
            upgrade_src: None,
            entries: vec![
                Entry { meta: Meta::new("lib/libc.so.8", Kind::File), sha256: None, critical: true },
                Entry { meta: link, sha256: None, critical: false },
            ],
        };
        let metas: Vec<Meta> = m.member_metas().collect();
        assert_eq!(metas[0].path, PathBuf::from("lib/libc.so.8.new"));
        assert_eq!(metas[1].path, PathBuf::from("lib/libc.so.8.link"));
        assert_eq!(metas[1].link, Some(PathBuf::from("lib/libc.so.8.new")));
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

    mod props {
        use super::super::*;
        use proptest::collection::vec;
        use proptest::prelude::*;

        fn path() -> impl Strategy<Value = PathBuf> {
            vec(any::<u8>(), 1..40).prop_map(|b| PathBuf::from(std::ffi::OsString::from_vec(b)))
        }

        fn entry() -> impl Strategy<Value = Entry> {
            let kinds = [Kind::File, Kind::Dir, Kind::Symlink, Kind::HardLink, Kind::Fifo, Kind::CharDev, Kind::BlockDev];
            (
                (path(), proptest::sample::select(kinds.to_vec()), 0..=0o7777u32, any::<u32>(), any::<u32>(), any::<i64>()),
                (any::<u64>(), proptest::option::of(any::<[u8; 32]>()), path(), any::<(u32, u32)>()),
                (proptest::option::of("[a-z]{1,8}(,[a-z]{1,8}){0,2}"), any::<bool>()),
            )
                .prop_map(|((p, kind, mode, uid, gid, mtime), (size, sha256, link, dev), (flags, critical))| {
                    let mut meta = Meta::new(p, kind);
                    (meta.mode, meta.uid, meta.gid, meta.mtime) = (mode, uid, gid, mtime);
                    meta.size = if kind == Kind::File { size } else { 0 };
                    meta.link = matches!(kind, Kind::Symlink | Kind::HardLink).then_some(link);
                    meta.dev = matches!(kind, Kind::CharDev | Kind::BlockDev).then_some(dev);
                    meta.flags = flags;
                    Entry { meta, sha256, critical }
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            #[test]
            fn any_bytes_escape_to_one_word_and_back(b in vec(any::<u8>(), 1..80)) {
                let e = escape(&b);
                prop_assert!(e.bytes().all(|c| c.is_ascii_graphic() && c != b'=' && c != b'#'), "{}", e);
                prop_assert_eq!(unescape(&e).unwrap().into_os_string().into_vec(), b);
            }

            #[test]
            fn any_manifest_round_trips(entries in vec(entry(), 0..12), src in proptest::option::of(path())) {
                let name = DistName::parse("DragonFly-world-x86_64-master-20261128T103900Z-v1").unwrap();
                let m = Manifest { name, upgrade_src: src, entries };
                prop_assert_eq!(Manifest::parse(&m.to_text()).unwrap(), m);
            }

            #[test]
            fn no_text_makes_the_parser_panic(body in "\\PC{0,300}", lines in vec("[a-z/=\\\\ 0-9]{0,30}", 0..8)) {
                let _ = Manifest::parse(&body);
                let text = format!("{MAGIC}\nname DragonFly-world-x86_64-master-20261128T103900Z-v1\nentries {}\n{}", lines.len(), lines.join("\n"));
                let _ = Manifest::parse(&text);
            }
        }
    }
}
