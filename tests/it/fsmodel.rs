//! A model of a file system's inodes and directory entries, and the crash
//! states of powerloss.rs built from it (in the spirit of ALICE and
//! CrashMonkey). fstrace.rs parses an strace log, fsreplay.rs turns its
//! calls into this model's effects.
//!
//! An inode is a file (its bytes), a directory (its entries), a symlink or
//! a fifo, with its mode, owner and mtime; an [`Effect`] is what one system
//! call did to them. The states of the bounded model ([`crash_states`]) are
//! sets of effects applied to the tree scanned before the install; an effect
//! that no longer applies once one it depended on was dropped (a write to a
//! file whose creation was lost) is dropped too, and counted. A state is
//! compared by what it holds, made real by [`Fs::materialize`].

use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

pub type Ino = usize;
pub type Name = Vec<u8>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    File(Vec<u8>),
    Dir(BTreeMap<Name, Ino>),
    Symlink(Vec<u8>),
    Fifo,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inode {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// As found or as set (utimensat); `None` once a write or a change of
    /// its entries made it "the time of the change", which no trace tells.
    pub mtime: Option<(i64, i64)>,
}

/// The inodes under one top directory (inode 0).
#[derive(Clone, Debug)]
pub struct Fs {
    pub top: PathBuf,
    pub(crate) inodes: HashMap<Ino, Inode>,
}

/// One change to the inodes, as one system call made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// A new inode `ino` at `dir`/`name` (open with O_CREAT, mkdir, symlink, mkfifo).
    Create {
        dir: Ino,
        name: Name,
        ino: Ino,
        inode: Box<Inode>,
    },
    /// Another name for `ino` (link).
    Link {
        dir: Ino,
        name: Name,
        ino: Ino,
    },
    /// `dir`/`name`, which names `ino`, removed (unlink, rmdir).
    Unlink {
        dir: Ino,
        name: Name,
        ino: Ino,
    },
    /// `ino` moves from one name to another, replacing what that named.
    Rename {
        from: (Ino, Name),
        to: (Ino, Name),
        ino: Ino,
    },
    Write {
        ino: Ino,
        offset: u64,
        data: Vec<u8>,
    },
    Truncate {
        ino: Ino,
        len: u64,
    },
    Mode {
        ino: Ino,
        mode: u32,
    },
    Owner {
        ino: Ino,
        uid: Option<u32>,
        gid: Option<u32>,
    },
    Mtime {
        ino: Ino,
        mtime: Option<(i64, i64)>,
    },
}

#[derive(Clone, Debug)]
pub enum Event {
    Op { effect: Effect, what: String },
    Barrier { what: String },
}

pub fn shown(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Fs {
    /// The tree under `top` as it is on disk.
    pub fn scan(top: &Path) -> Fs {
        let top = std::fs::canonicalize(top).unwrap();
        let mut fs = Fs { top: top.clone(), inodes: HashMap::new() };
        let mut seen: HashMap<(u64, u64), Ino> = HashMap::new();
        fs.scan_entry(&top, &mut seen);
        fs
    }

    fn scan_entry(&mut self, path: &Path, seen: &mut HashMap<(u64, u64), Ino>) -> Ino {
        let m = std::fs::symlink_metadata(path).unwrap();
        if let Some(&ino) = seen.get(&(m.dev(), m.ino())) {
            return ino;
        }
        let ino = self.inodes.len();
        seen.insert((m.dev(), m.ino()), ino);
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            Kind::Dir(BTreeMap::new())
        } else if ft.is_file() {
            Kind::File(std::fs::read(path).unwrap())
        } else if ft.is_symlink() {
            Kind::Symlink(std::fs::read_link(path).unwrap().as_os_str().as_bytes().to_vec())
        } else if ft.is_fifo() {
            Kind::Fifo
        } else {
            panic!("{}: a kind of file the model does not have", path.display())
        };
        let mode = if ft.is_symlink() { 0o777 } else { m.mode() & 0o7777 };
        self.inodes.insert(ino, Inode { kind, mode, uid: m.uid(), gid: m.gid(), mtime: Some((m.mtime(), m.mtime_nsec())) });
        if ft.is_dir() {
            let mut names: Vec<_> = std::fs::read_dir(path).unwrap().map(|e| e.unwrap().file_name()).collect();
            names.sort();
            for n in names {
                let child = self.scan_entry(&path.join(&n), seen);
                if let Some(Kind::Dir(d)) = self.inodes.get_mut(&ino).map(|i| &mut i.kind) {
                    d.insert(n.as_bytes().to_vec(), child);
                }
            }
        }
        ino
    }

    pub(crate) fn next_ino(&self) -> Ino {
        self.inodes.keys().max().map_or(0, |m| m + 1)
    }

    fn inode(&mut self, ino: Ino) -> Result<&mut Inode, String> {
        self.inodes.get_mut(&ino).ok_or_else(|| format!("inode {ino} does not exist"))
    }

    fn dir(&mut self, ino: Ino) -> Result<&mut BTreeMap<Name, Ino>, String> {
        let i = self.inode(ino)?;
        i.mtime = None;
        match &mut i.kind {
            Kind::Dir(d) => Ok(d),
            _ => Err(format!("inode {ino} is not a directory")),
        }
    }

    fn entry(&self, dir: Ino, name: &[u8]) -> Option<Ino> {
        match &self.inodes.get(&dir)?.kind {
            Kind::Dir(d) => d.get(name).copied(),
            _ => None,
        }
    }

    fn is_nonempty_dir(&self, ino: Ino) -> bool {
        matches!(self.inodes.get(&ino).map(|i| &i.kind), Some(Kind::Dir(d)) if !d.is_empty())
    }

    /// Applies one effect; an error says why it cannot apply here (in a crash
    /// state, because an effect it depends on was dropped).
    pub fn apply(&mut self, e: &Effect) -> Result<(), String> {
        match e {
            Effect::Create { dir, name, ino, inode } => {
                if self.inodes.contains_key(ino) {
                    return Err(format!("inode {ino} exists already"));
                }
                let d = self.dir(*dir)?;
                if d.contains_key(name) {
                    return Err(format!("{} exists already", shown(name)));
                }
                d.insert(name.clone(), *ino);
                self.inodes.insert(*ino, (**inode).clone());
            }
            Effect::Link { dir, name, ino } => {
                if !matches!(self.inodes.get(ino).map(|i| &i.kind), Some(Kind::File(_) | Kind::Symlink(_) | Kind::Fifo)) {
                    return Err(format!("inode {ino} cannot be linked"));
                }
                let d = self.dir(*dir)?;
                if d.contains_key(name) {
                    return Err(format!("{} exists already", shown(name)));
                }
                d.insert(name.clone(), *ino);
            }
            Effect::Unlink { dir, name, ino } => {
                if self.entry(*dir, name) != Some(*ino) {
                    return Err(format!("{} does not name inode {ino}", shown(name)));
                }
                if self.is_nonempty_dir(*ino) {
                    return Err(format!("{} is a directory that is not empty", shown(name)));
                }
                self.dir(*dir)?.remove(name);
            }
            Effect::Rename { from, to, ino } => {
                if self.entry(from.0, &from.1) != Some(*ino) {
                    return Err(format!("{} does not name inode {ino}", shown(&from.1)));
                }
                if let Some(old) = self.entry(to.0, &to.1) {
                    if old == *ino {
                        return Ok(()); // two links to one file: rename(2) does nothing
                    }
                    if self.is_nonempty_dir(old) {
                        return Err(format!("{} is a directory that is not empty", shown(&to.1)));
                    }
                }
                self.dir(from.0)?.remove(&from.1);
                self.dir(to.0)?.insert(to.1.clone(), *ino);
            }
            Effect::Write { ino, offset, data } => {
                let i = self.inode(*ino)?;
                let Kind::File(bytes) = &mut i.kind else { return Err(format!("inode {ino} is not a file")) };
                let (off, end) = (*offset as usize, *offset as usize + data.len());
                if bytes.len() < end {
                    bytes.resize(end, 0);
                }
                bytes[off..end].copy_from_slice(data);
                i.mtime = None;
            }
            Effect::Truncate { ino, len } => {
                let i = self.inode(*ino)?;
                let Kind::File(bytes) = &mut i.kind else { return Err(format!("inode {ino} is not a file")) };
                bytes.resize(*len as usize, 0);
                i.mtime = None;
            }
            Effect::Mode { ino, mode } => self.inode(*ino)?.mode = mode & 0o7777,
            Effect::Owner { ino, uid, gid } => {
                let i = self.inode(*ino)?;
                i.uid = uid.unwrap_or(i.uid);
                i.gid = gid.unwrap_or(i.gid);
            }
            Effect::Mtime { ino, mtime } => self.inode(*ino)?.mtime = *mtime,
        }
        Ok(())
    }

    /// The components of `abs` below the top; `None` outside it.
    pub(crate) fn below_top(&self, abs: &[u8]) -> Option<Vec<Name>> {
        let top = self.top.as_os_str().as_bytes();
        let rest = abs.strip_prefix(top)?;
        if !rest.is_empty() && rest[0] != b'/' {
            return None;
        }
        let mut parts: Vec<Name> = Vec::new();
        for c in rest.split(|&b| b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => {
                    parts.pop()?;
                }
                c => parts.push(c.to_vec()),
            }
        }
        Some(parts)
    }

    /// The inode at `parts`; a symlink on the way is not followed (the model
    /// has no use for that: what is installed is reached without them).
    pub(crate) fn lookup(&self, parts: &[Name]) -> Result<Ino, String> {
        let mut at = 0;
        for (i, p) in parts.iter().enumerate() {
            if i > 0 && matches!(self.inodes.get(&at).map(|n| &n.kind), Some(Kind::Symlink(_))) {
                return Err(format!("{}: goes through a symlink", shown(&parts[..i].join(&b'/'))));
            }
            at = self.entry(at, p).ok_or_else(|| format!("{}: not in the model", shown(&parts.join(&b'/'))))?;
        }
        Ok(at)
    }

    pub(crate) fn parent_and_name(&self, parts: &[Name]) -> Result<(Ino, Name), String> {
        let (name, dir) = parts.split_last().ok_or("the top itself")?;
        Ok((self.lookup(dir)?, name.clone()))
    }

    /// Every entry reachable from the top, by path relative to it: its
    /// description without its mtime, and its mtime.
    pub fn describe(&self) -> BTreeMap<PathBuf, (String, Option<(i64, i64)>)> {
        let mut paths: HashMap<Ino, Vec<PathBuf>> = HashMap::new();
        let mut out = BTreeMap::new();
        let mut todo = vec![(PathBuf::new(), 0)];
        while let Some((rel, ino)) = todo.pop() {
            let Some(i) = self.inodes.get(&ino) else { continue };
            if let Kind::Dir(d) = &i.kind {
                for (n, c) in d {
                    let p = rel.join(std::ffi::OsStr::from_bytes(n));
                    paths.entry(*c).or_default().push(p.clone());
                    todo.push((p, *c));
                }
            }
        }
        for (ino, ps) in &paths {
            let i = &self.inodes[ino];
            let mut first = ps.clone();
            first.sort();
            let group = if ps.len() > 1 { format!(" group={}", first[0].display()) } else { String::new() };
            let what = match &i.kind {
                Kind::File(b) => format!("file {} bytes sha256={}", b.len(), hex::encode(Sha256::digest(b))),
                Kind::Dir(_) => "dir".into(),
                Kind::Symlink(t) => format!("symlink -> {}", shown(t)),
                Kind::Fifo => "fifo".into(),
            };
            let attrs = if matches!(i.kind, Kind::Symlink(_)) { String::new() } else { format!(" mode={:o}", i.mode) };
            for p in ps {
                out.insert(p.clone(), (format!("{what}{attrs} uid={} gid={}{group}", i.uid, i.gid), i.mtime));
            }
        }
        out
    }

    /// Where `self` (a model) differs from `real` (a scan), one line each;
    /// mtimes are compared where the model knows them.
    pub fn differences(&self, real: &Fs) -> Vec<String> {
        let (m, r) = (self.describe(), real.describe());
        let mut d = Vec::new();
        for (p, (what, mtime)) in &m {
            match r.get(p) {
                None => d.push(format!("{}: in the model only ({what})", p.display())),
                Some((w, _)) if w != what => d.push(format!("{}: model {what}, real {w}", p.display())),
                // A symlink's own mtime is not the dist's to set either way.
                Some((w, t)) if mtime.is_some() && t != mtime && !w.starts_with("symlink") => {
                    d.push(format!("{}: model mtime {mtime:?}, real {t:?}", p.display()))
                }
                _ => {}
            }
        }
        for (p, (w, _)) in &r {
            if !m.contains_key(p) {
                d.push(format!("{}: real only ({w})", p.display()));
            }
        }
        d
    }

    /// A digest of the reachable tree, mtimes included.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for (p, (what, mtime)) in self.describe() {
            h.update(format!("{}\0{what}\0{mtime:?}\n", p.display()).as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// Makes the tree real: everything under the top is removed, then made
    /// from the model (hard links as links; an unknown mtime is left as now).
    pub fn materialize(&self) {
        for e in std::fs::read_dir(&self.top).unwrap() {
            let p = e.unwrap().path();
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                std::fs::remove_dir_all(&p).unwrap();
            } else {
                std::fs::remove_file(&p).unwrap();
            }
        }
        let mut made: HashMap<Ino, PathBuf> = HashMap::new();
        let mut dirs = Vec::new();
        self.make_children(0, &self.top.clone(), &mut made, &mut dirs);
        // Directory times last, deepest first: making their entries changed them.
        for (p, ino) in dirs.iter().rev() {
            self.set_mtime(p, *ino);
        }
    }

    fn make_children(&self, dir: Ino, at: &Path, made: &mut HashMap<Ino, PathBuf>, dirs: &mut Vec<(PathBuf, Ino)>) {
        let Kind::Dir(d) = &self.inodes[&dir].kind else { unreachable!() };
        for (n, &ino) in d {
            let p = at.join(std::ffi::OsStr::from_bytes(n));
            if let Some(first) = made.get(&ino) {
                std::fs::hard_link(first, &p).unwrap();
                continue;
            }
            let i = &self.inodes[&ino];
            match &i.kind {
                Kind::File(b) => std::fs::write(&p, b).unwrap(),
                Kind::Dir(_) => std::fs::create_dir(&p).unwrap(),
                Kind::Symlink(t) => std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(t), &p).unwrap(),
                Kind::Fifo => crate::util::ok(std::process::Command::new("mkfifo").arg(&p)).status.success().then_some(()).unwrap(),
            }
            std::os::unix::fs::lchown(&p, Some(i.uid), Some(i.gid)).unwrap();
            if !matches!(i.kind, Kind::Symlink(_)) {
                std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(i.mode)).unwrap();
            }
            made.insert(ino, p.clone());
            if matches!(i.kind, Kind::Dir(_)) {
                self.make_children(ino, &p, made, dirs);
                dirs.push((p, ino));
            } else {
                self.set_mtime(&p, ino);
            }
        }
    }

    fn set_mtime(&self, p: &Path, ino: Ino) {
        use rustix::fs::{AtFlags, Timespec, Timestamps, CWD, UTIME_OMIT};
        let Some((sec, nsec)) = self.inodes[&ino].mtime else { return };
        let times = Timestamps {
            last_access: Timespec { tv_sec: 0, tv_nsec: UTIME_OMIT },
            last_modification: Timespec { tv_sec: sec, tv_nsec: nsec as _ },
        };
        rustix::fs::utimensat(CWD, p, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
    }
}

/// A crash state: the tree, and what it is.
pub struct State {
    pub fs: Fs,
    pub what: String,
}

#[derive(Debug, Default)]
pub struct Counts {
    pub barriers: usize,
    pub ops: usize,
    /// States built (before duplicates are taken out).
    pub built: usize,
    /// Effects that no longer applied once the one they followed was dropped.
    pub dependants: usize,
}

/// The bounded model's states over `seed` (the tree before the events): at
/// each barrier, (a) everything since the previous barrier lost, and (b) for
/// each op since then, all of them but that one (with what no longer applies
/// without it); the end counts as a barrier, and the final tree is a state
/// too. Distinct trees only, in the order first built.
pub fn crash_states(seed: &Fs, events: &[Event]) -> (Vec<State>, Counts) {
    let mut counts = Counts::default();
    let mut ops: Vec<(&Effect, &str)> = Vec::new();
    let mut barriers: Vec<(usize, &str)> = Vec::new();
    for e in events {
        match e {
            Event::Op { effect, what } => ops.push((effect, what)),
            Event::Barrier { what } => barriers.push((ops.len(), what)),
        }
    }
    counts.barriers = barriers.len();
    counts.ops = ops.len();
    barriers.push((ops.len(), "the end"));
    let mut seen = BTreeSet::new();
    let mut states = Vec::new();
    let mut keep = |fs: Fs, what: String, counts: &mut Counts| {
        counts.built += 1;
        if seen.insert(fs.fingerprint()) {
            states.push(State { fs, what });
        }
    };
    let mut before = seed.clone();
    let mut prev = 0;
    for (b, what) in barriers {
        keep(before.clone(), format!("at {what}: all since the previous barrier lost"), &mut counts);
        for j in prev..b {
            let mut fs = before.clone();
            for (k, (e, _)) in ops.iter().enumerate().take(b).skip(prev) {
                if k != j && fs.apply(e).is_err() {
                    counts.dependants += 1;
                }
            }
            keep(fs, format!("at {what}: {} lost", ops[j].1), &mut counts);
        }
        for (e, w) in &ops[prev..b] {
            before.apply(e).unwrap_or_else(|err| panic!("{w}: {err}"));
        }
        prev = b;
    }
    keep(before, "the final tree".into(), &mut counts);
    (states, counts)
}
