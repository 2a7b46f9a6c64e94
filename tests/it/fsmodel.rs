//! A model of a file system's inodes and directory entries, replayed from an
//! strace log, and the crash states of powerloss.rs built from it (in the
//! spirit of ALICE and CrashMonkey).
//!
//! `strace -f -y -xx` prints every call with its file descriptors resolved to
//! paths (`3</top/root/x>`, `AT_FDCWD</cwd>`) and every string in hex, so the
//! log can be parsed without ambiguity. [`replay`] turns it into events, each
//! successful call that changes something under the top directory one
//! [`Effect`] on inodes (a write goes to the inode its descriptor was opened
//! on, whatever has been renamed since), and each fsync, fdatasync, syncfs or
//! sync of something there a barrier. Anything it cannot account for fails
//! loudly: a call it does not know, a descriptor under the top it never saw
//! opened, a path the model does not have, a writable shared mapping (whose
//! writes no trace shows), an effect that does not apply. powerloss.rs then
//! checks that replaying every effect on the scanned initial tree gives the
//! real final tree, so a model that dropped or misread a call fails there.

use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

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
    inodes: HashMap<Ino, Inode>,
}

/// One change to the inodes, as one system call made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// A new inode `ino` at `dir`/`name` (open with O_CREAT, mkdir, symlink, mkfifo).
    Create { dir: Ino, name: Name, ino: Ino, inode: Box<Inode> },
    /// Another name for `ino` (link).
    Link { dir: Ino, name: Name, ino: Ino },
    /// `dir`/`name`, which names `ino`, removed (unlink, rmdir).
    Unlink { dir: Ino, name: Name, ino: Ino },
    /// `ino` moves from one name to another, replacing what that named.
    Rename { from: (Ino, Name), to: (Ino, Name), ino: Ino },
    Write { ino: Ino, offset: u64, data: Vec<u8> },
    Truncate { ino: Ino, len: u64 },
    Mode { ino: Ino, mode: u32 },
    Owner { ino: Ino, uid: Option<u32>, gid: Option<u32> },
    Mtime { ino: Ino, mtime: Option<(i64, i64)> },
}

#[derive(Clone, Debug)]
pub enum Event {
    Op { effect: Effect, what: String },
    Barrier { what: String },
}

fn shown(b: &[u8]) -> String {
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

    fn next_ino(&self) -> Ino {
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
    fn below_top(&self, abs: &[u8]) -> Option<Vec<Name>> {
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
    fn lookup(&self, parts: &[Name]) -> Result<Ino, String> {
        let mut at = 0;
        for (i, p) in parts.iter().enumerate() {
            if i > 0 && matches!(self.inodes.get(&at).map(|n| &n.kind), Some(Kind::Symlink(_))) {
                return Err(format!("{}: goes through a symlink", shown(&parts[..i].join(&b'/'))));
            }
            at = self.entry(at, p).ok_or_else(|| format!("{}: not in the model", shown(&parts.join(&b'/'))))?;
        }
        Ok(at)
    }

    fn parent_and_name(&self, parts: &[Name]) -> Result<(Ino, Name), String> {
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
            let _ = std::process::Command::new("chattr").arg("-R").arg("-i").arg(&p).output();
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
        let times = Timestamps { last_access: Timespec { tv_sec: 0, tv_nsec: UTIME_OMIT }, last_modification: Timespec { tv_sec: sec, tv_nsec: nsec as _ } };
        rustix::fs::utimensat(CWD, p, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
    }
}

// ---------------------------------------------------------------------------
// The strace log.

/// One value of a call's arguments as strace prints them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Val {
    /// A string, and whether strace cut it short (`"..."...`).
    Str(Vec<u8>, bool),
    /// A number, flags, NULL, AT_FDCWD...: the word, and the path -y put after it.
    Word(String, Option<Vec<u8>>),
    List(Vec<Val>),
    /// `{key=value, ...}` (a value without a key has an empty one).
    Struct(Vec<(String, Val)>),
}

impl Val {
    fn word(&self) -> &str {
        match self {
            Val::Word(w, _) => w,
            _ => "",
        }
    }

    fn path(&self) -> Option<&[u8]> {
        match self {
            Val::Word(_, p) => p.as_deref(),
            _ => None,
        }
    }

    fn int(&self) -> Option<i64> {
        let w = self.word();
        if let Some(h) = w.strip_prefix("0x") {
            return i64::from_str_radix(h, 16).ok();
        }
        if w.len() > 1 && w.starts_with('0') {
            return i64::from_str_radix(&w[1..], 8).ok();
        }
        w.parse().ok()
    }

    fn has_flag(&self, flag: &str) -> bool {
        self.word().split('|').any(|f| f == flag)
    }

    fn field(&self, key: &str) -> Option<&Val> {
        match self {
            Val::Struct(f) => f.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// One finished call: who made it, on which line it started, its name,
/// arguments and return value (with the path -y gave a returned descriptor).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub tid: u64,
    pub entry: usize,
    /// The line it finished on.
    pub end: usize,
    pub name: String,
    pub args: Vec<Val>,
    pub ret: Option<i64>,
    pub ret_path: Option<Vec<u8>>,
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn peek(&self) -> u8 {
        self.s.get(self.i).copied().unwrap_or(0)
    }

    fn eat(&mut self, t: &str) -> bool {
        if self.s[self.i..].starts_with(t.as_bytes()) {
            self.i += t.len();
            true
        } else {
            false
        }
    }

    fn skip(&mut self) {
        loop {
            while self.peek() == b' ' {
                self.i += 1;
            }
            if self.eat("/*") {
                while self.i < self.s.len() && !self.eat("*/") {
                    self.i += 1;
                }
            } else {
                return;
            }
        }
    }

    fn string(&mut self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        self.i += 1;
        loop {
            match self.peek() {
                0 => return Err("a string without its end".into()),
                b'"' => {
                    self.i += 1;
                    return Ok(out);
                }
                b'\\' => {
                    let c = self.s.get(self.i + 1).copied().unwrap_or(0);
                    self.i += 2;
                    match c {
                        b'x' => {
                            let h = std::str::from_utf8(self.s.get(self.i..self.i + 2).unwrap_or_default()).unwrap_or("");
                            out.push(u8::from_str_radix(h, 16).map_err(|_| "a bad \\x escape")?);
                            self.i += 2;
                        }
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'v' => out.push(0x0b),
                        b'f' => out.push(0x0c),
                        b'0'..=b'7' => {
                            let mut v = (c - b'0') as u32;
                            while (b'0'..=b'7').contains(&self.peek()) && v < 0o40 {
                                v = v * 8 + (self.peek() - b'0') as u32;
                                self.i += 1;
                            }
                            out.push(v as u8);
                        }
                        c => out.push(c),
                    }
                }
                c => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// The path strace -y put after a word (`<...>`), hex-escaped under -xx.
    fn annotation(&mut self) -> Result<Option<Vec<u8>>, String> {
        if self.peek() != b'<' {
            return Ok(None);
        }
        self.i += 1;
        let start = self.i;
        while self.peek() != b'>' {
            if self.peek() == 0 {
                return Err("a descriptor's path without its end".into());
            }
            self.i += 1;
        }
        let raw = &self.s[start..self.i];
        self.i += 1;
        let mut out = Vec::new();
        let mut k = 0;
        while k < raw.len() {
            let hexed = raw.get(k..k + 4).filter(|e| e.starts_with(b"\\x")).and_then(|e| std::str::from_utf8(&e[2..]).ok());
            match hexed.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(byte) => {
                    out.push(byte);
                    k += 4;
                }
                None => {
                    out.push(raw[k]);
                    k += 1;
                }
            }
        }
        Ok(Some(out))
    }

    fn value(&mut self) -> Result<Val, String> {
        self.skip();
        let v = match self.peek() {
            b'"' => {
                let s = self.string()?;
                Val::Str(s, self.eat("..."))
            }
            b'[' => {
                self.i += 1;
                Val::List(self.items(b']')?.into_iter().map(|(_, v)| v).collect())
            }
            b'{' => {
                self.i += 1;
                Val::Struct(self.items(b'}')?)
            }
            _ => {
                let start = self.i;
                while !matches!(self.peek(), 0 | b',' | b')' | b']' | b'}' | b'<' | b' ' | b'=') {
                    self.i += 1;
                }
                let w = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                let mut path = self.annotation()?;
                if let (Some(p), true) = (&mut path, self.eat("(deleted)")) {
                    p.extend_from_slice(b" (deleted)");
                }
                Val::Word(w, path)
            }
        };
        self.skip();
        // An in/out argument: what the call wrote back is added to what it
        // was given (clone3's flags stay beside the tid it wrote back).
        if self.eat("=> ") {
            return Ok(match (v, self.value()?) {
                (Val::Struct(mut given), Val::Struct(back)) => {
                    given.extend(back);
                    Val::Struct(given)
                }
                (_, back) => back,
            });
        }
        Ok(v)
    }

    fn items(&mut self, close: u8) -> Result<Vec<(String, Val)>, String> {
        let mut out = Vec::new();
        loop {
            self.skip();
            if self.peek() == close {
                self.i += 1;
                return Ok(out);
            }
            let v = self.value()?;
            let item = if self.peek() == b'=' && !self.s[self.i..].starts_with(b"=>") {
                self.i += 1;
                (v.word().to_string(), self.value()?)
            } else {
                (String::new(), v)
            };
            out.push(item);
            self.skip();
            if !self.eat(",") && self.peek() != close {
                return Err(format!("unexpected {:?} in a list", self.peek() as char));
            }
        }
    }
}

/// Parses one whole call, `name(args) = ret`.
fn parse_call(tid: u64, entry: usize, end: usize, text: &str) -> Result<Call, String> {
    let open = text.find('(').ok_or("no (")?;
    let name = text[..open].to_string();
    let mut p = P { s: text.as_bytes(), i: open + 1 };
    let args = p.items(b')')?.into_iter().map(|(k, v)| if k.is_empty() { v } else { Val::Struct(vec![(k, v)]) }).collect();
    p.skip();
    if !p.eat("= ") {
        return Err("no return value".into());
    }
    let (ret, ret_path) = if p.peek() == b'?' {
        (None, None)
    } else {
        match p.value()? {
            v @ Val::Word(..) => (v.int(), v.path().map(<[u8]>::to_vec)),
            _ => return Err("a return value that is not a number".into()),
        }
    };
    Ok(Call { tid, entry, end, name, args, ret, ret_path })
}

/// The calls of a log in the order they finished, an unfinished call joined
/// to its `<... resumed>` line; `entry` is the line it started on.
pub fn parse_log(text: &str) -> Vec<Call> {
    let mut pending: HashMap<u64, (usize, String)> = HashMap::new();
    let mut calls = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let fail = |why: &str| -> ! { panic!("strace log line {}: {why}: {line}", n + 1) };
        let (tid, rest) = line.split_once(' ').unwrap_or_else(|| fail("no pid"));
        let tid: u64 = tid.parse().unwrap_or_else(|_| fail("no pid"));
        let rest = rest.trim_start();
        if rest.starts_with("+++") || rest.starts_with("---") {
            continue;
        }
        if let Some(start) = rest.strip_suffix(" <unfinished ...>") {
            pending.insert(tid, (n + 1, start.to_string()));
            continue;
        }
        let (entry, whole) = if let Some(after) = rest.strip_prefix("<... ") {
            let (_, tail) = after.split_once(" resumed>").unwrap_or_else(|| fail("a resumed line without its call"));
            let (entry, start) = pending.remove(&tid).unwrap_or_else(|| fail("resumed but never started"));
            (entry, format!("{start}{tail}"))
        } else {
            (n + 1, rest.to_string())
        };
        calls.push(parse_call(tid, entry, n + 1, &whole).unwrap_or_else(|e| fail(&e)));
    }
    assert!(pending.is_empty() || pending.values().all(|(_, s)| s.starts_with("exit")), "calls never finished: {pending:?}");
    calls
}

// ---------------------------------------------------------------------------
// From calls to events.

#[derive(Debug)]
struct Desc {
    ino: Option<Ino>,
    offset: u64,
    append: bool,
}

type Table = Rc<RefCell<HashMap<i64, (Rc<RefCell<Desc>>, bool)>>>;

/// The events of a log, over the tree `fs` was scanned from; what changed
/// outside the top is listed apart (paths), for the caller to judge.
pub struct Replay {
    pub fs: Fs,
    pub events: Vec<Event>,
    pub outside: BTreeSet<String>,
    keyed: Vec<(usize, usize, Event)>,
    tables: HashMap<u64, Table>,
    cwd: HashMap<u64, Vec<u8>>,
    parents: HashMap<u64, (u64, bool)>,
    umask: u32,
    next_ino: Ino,
}

/// The calls that change a file system or sync it, and those the replay
/// needs to follow descriptors (strace's `-e trace=` list; `?` for a call
/// this system may not have).
pub const TRACED: &str = "open,openat,?openat2,creat,write,pwrite64,writev,pwritev,?pwritev2,read,readv,lseek,\
ftruncate,truncate,fallocate,copy_file_range,sendfile,splice,rename,renameat,?renameat2,unlink,unlinkat,mkdir,mkdirat,\
rmdir,link,linkat,symlink,symlinkat,mknod,mknodat,chmod,fchmod,fchmodat,?fchmodat2,chown,fchown,fchownat,lchown,\
utimensat,futimesat,utimes,utime,setxattr,lsetxattr,fsetxattr,removexattr,lremovexattr,fremovexattr,\
fsync,fdatasync,syncfs,sync,msync,close,dup,dup2,dup3,fcntl,clone,?clone3,fork,vfork,execve,chdir,fchdir,umask,mmap";

/// Replays `calls` over `fs` (the tree before them); `cwd` is the first
/// process's working directory, `umask` its umask, `uid`/`gid` who creates.
pub fn replay(fs: Fs, calls: &[Call], cwd: &Path, umask: u32) -> Replay {
    let next_ino = fs.next_ino();
    let mut r = Replay {
        fs,
        events: Vec::new(),
        outside: BTreeSet::new(),
        keyed: Vec::new(),
        tables: HashMap::new(),
        cwd: HashMap::new(),
        parents: HashMap::new(),
        umask,
        next_ino,
    };
    for c in calls {
        if matches!(c.name.as_str(), "clone" | "clone3" | "fork" | "vfork") {
            if let Some(child) = c.ret.filter(|&t| t > 0) {
                let flags = c.args.first().map(|a| a.field("flags").unwrap_or(a).clone());
                let files = flags.is_some_and(|f| f.has_flag("CLONE_FILES")) && c.name != "fork" && c.name != "vfork";
                r.parents.insert(child as u64, (c.tid, files));
            }
        }
    }
    if let Some(first) = calls.first() {
        r.cwd.insert(first.tid, cwd.as_os_str().as_bytes().to_vec());
        r.tables.insert(first.tid, Rc::default());
    }
    for (seq, c) in calls.iter().enumerate() {
        r.call(seq, c).unwrap_or_else(|e| panic!("strace log line {}: {}({:?}) = {:?}: {e}", c.entry, c.name, c.args, c.ret));
    }
    let mut keyed = std::mem::take(&mut r.keyed);
    keyed.sort_by_key(|(k, seq, _)| (*k, *seq));
    r.events = keyed.into_iter().map(|(_, _, e)| e).collect();
    r
}

impl Replay {
    fn table(&mut self, tid: u64) -> Table {
        if let Some(t) = self.tables.get(&tid) {
            return t.clone();
        }
        let t = match self.parents.get(&tid).copied() {
            Some((parent, shared)) => {
                let pt = self.table(parent);
                let cwd = self.cwd.get(&parent).cloned();
                if let Some(cwd) = cwd {
                    self.cwd.insert(tid, cwd);
                }
                if shared {
                    pt
                } else {
                    Rc::new(RefCell::new(pt.borrow().clone()))
                }
            }
            None => panic!("pid {tid}: its parent is not in the log"),
        };
        self.tables.insert(tid, t.clone());
        t
    }

    fn emit_op(&mut self, c: &Call, seq: usize, effect: Effect) -> Result<(), String> {
        self.fs.apply(&effect).map_err(|e| format!("the model cannot apply {effect:?}: {e}"))?;
        let what = format!("line {} {}", c.entry, c.name);
        // An op counts from when it returned, a barrier from when it was
        // called: what returned after an fsync began is not covered by it.
        self.keyed.push((c.end, seq, Event::Op { effect, what }));
        Ok(())
    }

    /// An absolute path for `path`, relative to `dirfd` (or the cwd).
    fn abs(&mut self, tid: u64, dirfd: Option<&Val>, path: &[u8]) -> Result<Vec<u8>, String> {
        if path.starts_with(b"/") {
            return Ok(path.to_vec());
        }
        let base = match dirfd {
            Some(v) => v.path().map(<[u8]>::to_vec).ok_or_else(|| format!("{v:?}: no path for the directory"))?,
            None => {
                self.table(tid);
                self.cwd.get(&tid).cloned().ok_or("a relative path and no known working directory")?
            }
        };
        Ok([base, b"/".to_vec(), path.to_vec()].concat())
    }

    /// The descriptor `v` (`N<path>`) when it is of something under the top;
    /// checked against the model by the path strace saw.
    fn fd(&mut self, tid: u64, v: &Val) -> Result<Option<Rc<RefCell<Desc>>>, String> {
        let Some(path) = v.path() else { return Ok(None) };
        let (path, deleted) = match path.strip_suffix(b" (deleted)") {
            Some(p) => (p, true),
            None => (path, false),
        };
        let Some(parts) = self.fs.below_top(path) else { return Ok(None) };
        let n = v.int().ok_or("a descriptor that is not a number")?;
        let t = self.table(tid);
        let desc = t.borrow().get(&n).map(|(d, _)| d.clone()).ok_or_else(|| format!("descriptor {n} of {} never seen opened", shown(path)))?;
        let ino = desc.borrow().ino.ok_or_else(|| format!("descriptor {n} was opened outside the top"))?;
        if !deleted && self.fs.lookup(&parts)? != ino {
            return Err(format!("descriptor {n}: the model has another inode at {}", shown(path)));
        }
        Ok(Some(desc))
    }

    fn fd_ino(&mut self, tid: u64, v: &Val) -> Result<Option<Ino>, String> {
        Ok(self.fd(tid, v)?.and_then(|d| d.borrow().ino))
    }

    /// The (directory inode, name) of a path argument, or None outside the top.
    fn at(&mut self, tid: u64, dirfd: Option<&Val>, path: &Val) -> Result<Option<(Vec<Name>, Vec<u8>)>, String> {
        let Val::Str(p, false) = path else { return Err(format!("{path:?}: not a whole path")) };
        let abs = self.abs(tid, dirfd, p)?;
        Ok(self.fs.below_top(&abs).map(|parts| (parts, abs)))
    }

    fn changed_outside(&mut self, abs: &[u8]) {
        self.outside.insert(shown(abs));
    }

    fn inode_at(&mut self, tid: u64, dirfd: Option<&Val>, path: &Val, follow: bool) -> Result<Option<Ino>, String> {
        let Some((parts, abs)) = self.at(tid, dirfd, path)? else {
            if let Val::Str(p, _) = path {
                let abs = self.abs(tid, dirfd, p)?;
                self.changed_outside(&abs);
            }
            return Ok(None);
        };
        let ino = self.fs.lookup(&parts)?;
        if follow && matches!(self.fs.inodes[&ino].kind, Kind::Symlink(_)) {
            return Err(format!("{}: a symlink followed (the model does not follow them)", shown(&abs)));
        }
        Ok(Some(ino))
    }

    fn new_inode(&mut self, kind: Kind, mode: u32) -> (Ino, Box<Inode>) {
        let ino = self.next_ino;
        self.next_ino += 1;
        let (uid, gid) = (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw());
        (ino, Box::new(Inode { kind, mode: mode & !self.umask & 0o7777, uid, gid, mtime: None }))
    }

    fn create(&mut self, c: &Call, seq: usize, dirfd: Option<&Val>, path: &Val, kind: Kind, mode: u32) -> Result<(), String> {
        let Some((parts, _)) = self.at(c.tid, dirfd, path)? else {
            let Val::Str(p, _) = path else { unreachable!() };
            let abs = self.abs(c.tid, dirfd, p)?;
            self.changed_outside(&abs);
            return Ok(());
        };
        let (dir, name) = self.fs.parent_and_name(&parts)?;
        let (ino, inode) = self.new_inode(kind, mode);
        self.emit_op(c, seq, Effect::Create { dir, name, ino, inode })
    }

    fn call(&mut self, seq: usize, c: &Call) -> Result<(), String> {
        let tid = c.tid;
        let a = &c.args;
        let arg = |i: usize| a.get(i).ok_or_else(|| format!("no argument {i}"));
        // A failed call changed nothing (a write that wrote part says so in its return).
        let ok = c.ret.is_some_and(|r| r >= 0);
        for v in a {
            if let Val::Word(w, _) = v {
                if w == "AT_FDCWD" {
                    if let Some(p) = v.path() {
                        self.table(tid);
                        self.cwd.insert(tid, p.to_vec());
                    }
                }
            }
        }
        match c.name.as_str() {
            "open" | "openat" | "openat2" | "creat" => {
                let (dirfd, path, flags, mode) = match c.name.as_str() {
                    "open" => (None, arg(0)?, arg(1)?.clone(), a.get(2).and_then(Val::int)),
                    "creat" => (None, arg(0)?, Val::Word("O_WRONLY|O_CREAT|O_TRUNC".into(), None), arg(1)?.int()),
                    "openat" => (Some(arg(0)?), arg(1)?, arg(2)?.clone(), a.get(3).and_then(Val::int)),
                    _ => {
                        let how = arg(2)?;
                        (Some(arg(0)?), arg(1)?, how.field("flags").cloned().unwrap_or(Val::Word(String::new(), None)), how.field("mode").and_then(Val::int))
                    }
                };
                if !ok {
                    return Ok(());
                }
                if flags.has_flag("O_TMPFILE") || flags.has_flag("__O_TMPFILE") {
                    return Err("O_TMPFILE: the model has no unnamed files".into());
                }
                let writes = flags.has_flag("O_WRONLY") || flags.has_flag("O_RDWR");
                let fdn = c.ret.unwrap_or(-1);
                let opened = c.ret_path.clone().ok_or("no path for the descriptor returned")?;
                let ino = match self.fs.below_top(&opened) {
                    None => {
                        if flags.has_flag("O_CREAT") || (writes && flags.has_flag("O_TRUNC")) {
                            self.changed_outside(&opened);
                        }
                        None
                    }
                    Some(parts) => match self.fs.lookup(&parts) {
                        Ok(ino) => {
                            if flags.has_flag("O_CREAT") && flags.has_flag("O_EXCL") {
                                return Err(format!("{}: created with O_EXCL, but the model has it", shown(&opened)));
                            }
                            if writes && flags.has_flag("O_TRUNC") && matches!(self.fs.inodes[&ino].kind, Kind::File(_)) {
                                self.emit_op(c, seq, Effect::Truncate { ino, len: 0 })?;
                            }
                            Some(ino)
                        }
                        Err(_) if flags.has_flag("O_CREAT") => {
                            let (dir, name) = self.fs.parent_and_name(&parts)?;
                            let (ino, inode) = self.new_inode(Kind::File(Vec::new()), mode.unwrap_or(0) as u32);
                            self.emit_op(c, seq, Effect::Create { dir, name, ino, inode })?;
                            Some(ino)
                        }
                        Err(e) => return Err(e),
                    },
                };
                let _ = path;
                let desc = Rc::new(RefCell::new(Desc { ino, offset: 0, append: flags.has_flag("O_APPEND") }));
                self.table(tid).borrow_mut().insert(fdn, (desc, flags.has_flag("O_CLOEXEC")));
            }
            "write" | "pwrite64" | "writev" | "pwritev" | "pwritev2" => {
                let Some(n) = c.ret.filter(|&n| n > 0) else { return Ok(()) };
                let Some(desc) = self.fd(tid, arg(0)?)? else { return Ok(()) };
                let mut data = Vec::new();
                let parts: Vec<&Val> = match arg(1)? {
                    Val::List(iov) => iov.iter().map(|v| v.field("iov_base").ok_or("an iovec without iov_base")).collect::<Result<_, _>>()?,
                    v => vec![v],
                };
                for p in parts {
                    match p {
                        Val::Str(s, false) => data.extend_from_slice(s),
                        _ => return Err("data cut short or not a string: raise strace's -s".into()),
                    }
                }
                if (data.len() as i64) < n {
                    return Err(format!("{} bytes written, {} shown", n, data.len()));
                }
                data.truncate(n as usize);
                let ino = desc.borrow().ino.unwrap_or_default();
                let offset = match c.name.as_str() {
                    "pwrite64" => arg(3)?.int().ok_or("no offset")? as u64,
                    "pwritev" | "pwritev2" => arg(3)?.int().ok_or("no offset")? as u64,
                    _ => {
                        let mut d = desc.borrow_mut();
                        if d.append {
                            let Kind::File(b) = &self.fs.inodes[&ino].kind else { return Err("a write to something not a file".into()) };
                            d.offset = b.len() as u64;
                        }
                        let at = d.offset;
                        d.offset += n as u64;
                        at
                    }
                };
                self.emit_op(c, seq, Effect::Write { ino, offset, data })?;
            }
            "read" | "readv" => {
                if let (Some(n), Some(d)) = (c.ret.filter(|&n| n > 0), self.fd(tid, arg(0)?)?) {
                    d.borrow_mut().offset += n as u64;
                }
            }
            "lseek" => {
                if let (Some(n), Some(d)) = (c.ret.filter(|&n| n >= 0), self.fd(tid, arg(0)?)?) {
                    d.borrow_mut().offset = n as u64;
                }
            }
            "ftruncate" | "truncate" | "fallocate" => {
                if !ok {
                    return Ok(());
                }
                let ino = if c.name == "truncate" { self.inode_at(tid, None, arg(0)?, true)? } else { self.fd_ino(tid, arg(0)?)? };
                let Some(ino) = ino else { return Ok(()) };
                let len = if c.name == "fallocate" {
                    if arg(1)?.int() != Some(0) {
                        return Err("fallocate with a mode the model does not have".into());
                    }
                    let Kind::File(b) = &self.fs.inodes[&ino].kind else { return Err("not a file".into()) };
                    (arg(2)?.int().unwrap_or(0) + arg(3)?.int().unwrap_or(0)).max(b.len() as i64)
                } else {
                    arg(1)?.int().ok_or("no length")?
                };
                self.emit_op(c, seq, Effect::Truncate { ino, len: len as u64 })?;
            }
            "copy_file_range" | "sendfile" | "splice" => {
                let out = if c.name == "copy_file_range" { arg(2)? } else if c.name == "splice" { arg(2)? } else { arg(0)? };
                if ok && self.fd(tid, out)?.is_some() {
                    return Err("data copied in the kernel into a file under the top: the trace does not show it".into());
                }
            }
            "rename" | "renameat" | "renameat2" => {
                if !ok {
                    return Ok(());
                }
                let (fd1, p1, fd2, p2) = if c.name == "rename" { (None, arg(0)?, None, arg(1)?) } else { (Some(arg(0)?), arg(1)?, Some(arg(2)?), arg(3)?) };
                if a.get(4).is_some_and(|f| f.has_flag("RENAME_EXCHANGE") || f.has_flag("RENAME_WHITEOUT")) {
                    return Err("a rename the model does not have".into());
                }
                let from = self.at(tid, fd1, p1)?;
                let to = self.at(tid, fd2, p2)?;
                match (from, to) {
                    (None, None) => {}
                    (Some((f, _)), Some((t, _))) => {
                        let ino = self.fs.lookup(&f)?;
                        let (from, to) = (self.fs.parent_and_name(&f)?, self.fs.parent_and_name(&t)?);
                        self.emit_op(c, seq, Effect::Rename { from, to, ino })?;
                    }
                    _ => return Err("a rename into or out of the top".into()),
                }
            }
            "unlink" | "unlinkat" | "rmdir" => {
                if !ok {
                    return Ok(());
                }
                let (fd, p) = if c.name == "unlinkat" { (Some(arg(0)?), arg(1)?) } else { (None, arg(0)?) };
                match self.at(tid, fd, p)? {
                    None => {
                        let Val::Str(p, _) = p else { unreachable!() };
                        let abs = self.abs(tid, fd, p)?;
                        self.changed_outside(&abs);
                    }
                    Some((parts, _)) => {
                        let ino = self.fs.lookup(&parts)?;
                        let (dir, name) = self.fs.parent_and_name(&parts)?;
                        self.emit_op(c, seq, Effect::Unlink { dir, name, ino })?;
                    }
                }
            }
            "mkdir" | "mkdirat" => {
                if ok {
                    let (fd, p, m) = if c.name == "mkdirat" { (Some(arg(0)?), arg(1)?, arg(2)?) } else { (None, arg(0)?, arg(1)?) };
                    self.create(c, seq, fd, p, Kind::Dir(BTreeMap::new()), m.int().unwrap_or(0) as u32)?;
                }
            }
            "symlink" | "symlinkat" => {
                if ok {
                    let Val::Str(target, false) = arg(0)? else { return Err("no whole target".into()) };
                    let (fd, p) = if c.name == "symlinkat" { (Some(arg(1)?), arg(2)?) } else { (None, arg(1)?) };
                    // A symlink's mode is 0777 whatever the umask.
                    let umask = std::mem::replace(&mut self.umask, 0);
                    let r = self.create(c, seq, fd, p, Kind::Symlink(target.clone()), 0o777);
                    self.umask = umask;
                    r?;
                }
            }
            "mknod" | "mknodat" => {
                if ok {
                    let (fd, p, m) = if c.name == "mknodat" { (Some(arg(0)?), arg(1)?, arg(2)?) } else { (None, arg(0)?, arg(1)?) };
                    let Some(mode) = m.word().split('|').find_map(|f| u32::from_str_radix(f, 8).ok()) else {
                        return Err("no mode".into());
                    };
                    if !m.has_flag("S_IFIFO") {
                        return Err("a device node: the model has none".into());
                    }
                    self.create(c, seq, fd, p, Kind::Fifo, mode)?;
                }
            }
            "link" | "linkat" => {
                if ok {
                    let (fd1, p1, fd2, p2) = if c.name == "link" { (None, arg(0)?, None, arg(1)?) } else { (Some(arg(0)?), arg(1)?, Some(arg(2)?), arg(3)?) };
                    let follow = a.get(4).is_some_and(|f| f.has_flag("AT_SYMLINK_FOLLOW"));
                    let ino = self.inode_at(tid, fd1, p1, follow)?;
                    match (ino, self.at(tid, fd2, p2)?) {
                        (None, None) => {}
                        (Some(ino), Some((t, _))) => {
                            let (dir, name) = self.fs.parent_and_name(&t)?;
                            self.emit_op(c, seq, Effect::Link { dir, name, ino })?;
                        }
                        _ => return Err("a link across the top's edge".into()),
                    }
                }
            }
            "chmod" | "fchmod" | "fchmodat" | "fchmodat2" => {
                if ok {
                    let (ino, m) = match c.name.as_str() {
                        "chmod" => (self.inode_at(tid, None, arg(0)?, true)?, arg(1)?),
                        "fchmod" => (self.fd_ino(tid, arg(0)?)?, arg(1)?),
                        _ => {
                            let follow = !a.get(3).is_some_and(|f| f.has_flag("AT_SYMLINK_NOFOLLOW"));
                            (self.inode_at(tid, Some(arg(0)?), arg(1)?, follow)?, arg(2)?)
                        }
                    };
                    if let Some(ino) = ino {
                        let mode = m.int().ok_or("no mode")? as u32;
                        self.emit_op(c, seq, Effect::Mode { ino, mode })?;
                    }
                }
            }
            "chown" | "lchown" | "fchown" | "fchownat" => {
                if ok {
                    let (ino, u, g) = match c.name.as_str() {
                        "chown" | "lchown" => (self.inode_at(tid, None, arg(0)?, c.name == "chown")?, arg(1)?, arg(2)?),
                        "fchown" => (self.fd_ino(tid, arg(0)?)?, arg(1)?, arg(2)?),
                        _ => {
                            let follow = !a.get(4).is_some_and(|f| f.has_flag("AT_SYMLINK_NOFOLLOW"));
                            let ino = match arg(1)? {
                                Val::Str(p, _) if p.is_empty() => self.fd_ino(tid, arg(0)?)?,
                                p => self.inode_at(tid, Some(arg(0)?), p, follow)?,
                            };
                            (ino, arg(2)?, arg(3)?)
                        }
                    };
                    if let Some(ino) = ino {
                        let id = |v: &Val| v.int().filter(|&i| i >= 0).map(|i| i as u32);
                        self.emit_op(c, seq, Effect::Owner { ino, uid: id(u), gid: id(g) })?;
                    }
                }
            }
            "utimensat" => {
                if ok {
                    let follow = !a.get(3).is_some_and(|f| f.has_flag("AT_SYMLINK_NOFOLLOW"));
                    let ino = match arg(1)? {
                        Val::Word(w, _) if w == "NULL" => self.fd_ino(tid, arg(0)?)?,
                        p => self.inode_at(tid, Some(arg(0)?), p, follow)?,
                    };
                    if let Some(ino) = ino {
                        let mtime = match arg(2)? {
                            Val::Word(w, _) if w == "NULL" => Some(None),
                            Val::List(t) if t.len() == 2 => {
                                let m = &t[1];
                                match m.field("tv_nsec").map(Val::word).unwrap_or(m.word()) {
                                    "UTIME_OMIT" => None,
                                    "UTIME_NOW" => Some(None),
                                    _ => Some(Some((
                                        m.field("tv_sec").and_then(Val::int).ok_or("no tv_sec")?,
                                        m.field("tv_nsec").and_then(Val::int).ok_or("no tv_nsec")?,
                                    ))),
                                }
                            }
                            v => return Err(format!("times {v:?}")),
                        };
                        if let Some(mtime) = mtime {
                            self.emit_op(c, seq, Effect::Mtime { ino, mtime })?;
                        }
                    }
                }
            }
            "futimesat" | "utimes" | "utime" => {
                if ok {
                    let (fd, p) = if c.name == "futimesat" { (Some(arg(0)?), arg(1)?) } else { (None, arg(0)?) };
                    if self.inode_at(tid, fd, p, true)?.is_some() {
                        return Err("utimes/futimesat: the model has only utimensat".into());
                    }
                }
            }
            "setxattr" | "lsetxattr" | "removexattr" | "lremovexattr" => {
                if ok && self.at(tid, None, arg(0)?)?.is_some() {
                    return Err("extended attributes: the model has none".into());
                }
            }
            "fsetxattr" | "fremovexattr" => {
                if ok && self.fd(tid, arg(0)?)?.is_some() {
                    return Err("extended attributes: the model has none".into());
                }
            }
            "fsync" | "fdatasync" | "syncfs" | "msync" => {
                if ok && (c.name == "msync" || self.fd(tid, arg(0)?)?.is_some()) {
                    let what = format!("line {} {}({})", c.entry, c.name, arg(0).ok().and_then(Val::path).map(shown).unwrap_or_default());
                    self.keyed.push((c.entry, seq, Event::Barrier { what }));
                }
            }
            "sync" => self.keyed.push((c.entry, seq, Event::Barrier { what: format!("line {} sync", c.entry) })),
            "close" => {
                if let Some(n) = arg(0)?.int() {
                    self.table(tid).borrow_mut().remove(&n);
                }
            }
            "dup" | "dup2" | "dup3" | "fcntl" => {
                let t = self.table(tid);
                let from = arg(0)?.int().ok_or("no descriptor")?;
                let cmd = if c.name == "fcntl" { arg(1)?.word().to_string() } else { String::new() };
                match (c.name.as_str(), cmd.as_str()) {
                    ("fcntl", "F_DUPFD" | "F_DUPFD_CLOEXEC") | ("dup" | "dup2" | "dup3", _) => {
                        let Some(to) = c.ret.filter(|&n| n >= 0) else { return Ok(()) };
                        let cloexec = cmd == "F_DUPFD_CLOEXEC" || (c.name == "dup3" && a.get(2).is_some_and(|f| f.has_flag("O_CLOEXEC")));
                        let desc = t.borrow().get(&from).map(|(d, _)| d.clone());
                        match desc {
                            Some(d) => t.borrow_mut().insert(to, (d, cloexec)),
                            None => t.borrow_mut().remove(&to),
                        };
                    }
                    ("fcntl", "F_SETFD") if ok => {
                        if let Some(e) = t.borrow_mut().get_mut(&from) {
                            e.1 = arg(2)?.has_flag("FD_CLOEXEC");
                        }
                    }
                    ("fcntl", "F_SETFL") if ok => {
                        if let Some(e) = t.borrow().get(&from) {
                            e.0.borrow_mut().append = arg(2)?.has_flag("O_APPEND");
                        }
                    }
                    _ => {}
                }
            }
            "clone" | "clone3" | "fork" | "vfork" => {
                if let Some(child) = c.ret.filter(|&t| t > 0) {
                    self.table(child as u64);
                }
            }
            "execve" => {
                if ok {
                    let t = self.table(tid);
                    t.borrow_mut().retain(|_, (_, cloexec)| !*cloexec);
                }
            }
            "chdir" => {
                if ok {
                    let Val::Str(p, false) = arg(0)? else { return Err("no whole path".into()) };
                    let abs = self.abs(tid, None, p)?;
                    self.cwd.insert(tid, abs);
                }
            }
            "fchdir" => {
                if ok {
                    let p = arg(0)?.path().ok_or("no path")?.to_vec();
                    self.table(tid);
                    self.cwd.insert(tid, p);
                }
            }
            "umask" => self.umask = arg(0)?.int().ok_or("no mask")? as u32,
            "mmap" => {
                let (prot, flags) = (arg(2)?, arg(3)?);
                if ok && prot.has_flag("PROT_WRITE") && flags.has_flag("MAP_SHARED") && self.fd(tid, arg(4)?)?.is_some() {
                    return Err("a writable shared mapping of a file under the top: its writes are in no trace".into());
                }
            }
            other => return Err(format!("a call the model does not know: {other}")),
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Crash states.

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::{sh, tempdir};

    fn hex(s: &[u8]) -> String {
        s.iter().map(|b| format!("\\x{b:02x}")).collect()
    }

    #[test]
    fn the_parser_joins_resumed_calls_and_decodes_paths_strings_and_times() {
        let p = hex(b"/t/a");
        let log = format!(
            "10 write(3<{p}>, \"{}\", 2 <unfinished ...>\n\
             11 fsync(4<{p}>) = 0\n\
             10 <... write resumed>) = 2\n\
             10 utimensat(3<{p}>, NULL, [{{tv_sec=1700000000, tv_nsec=0}} /* 2023 */, {{tv_sec=5, tv_nsec=UTIME_OMIT}}], 0) = 0\n\
             10 writev(3<{p}>, [{{iov_base=\"{}\", iov_len=1}}, {{iov_base=\"{}\", iov_len=1}}], 2) = 2\n\
             10 openat(AT_FDCWD<{p}>, \"{}\", O_WRONLY|O_CREAT, 0644) = 5<{p}>\n\
             10 clone3({{flags=CLONE_VM|CLONE_FILES, exit_signal=0}} => {{parent_tid=[12]}}, 88) = 12\n\
             10 unlinkat(3<{p}>, \"{}\", 0) = -1 ENOENT (No such file or directory)\n\
             10 +++ exited with 0 +++\n",
            hex(b"hi"),
            hex(b"a"),
            hex(b"b"),
            hex(b"x"),
            hex(b"gone")
        );
        let calls = parse_log(&log);
        assert_eq!(calls.len(), 7);
        assert_eq!((calls[0].name.as_str(), calls[0].entry), ("fsync", 2));
        assert_eq!((calls[1].name.as_str(), calls[1].entry, calls[1].ret), ("write", 1, Some(2)));
        assert_eq!(calls[1].args[0], Val::Word("3".into(), Some(b"/t/a".to_vec())));
        assert_eq!(calls[1].args[1], Val::Str(b"hi".to_vec(), false));
        let t = &calls[2].args[2];
        let Val::List(t) = t else { panic!("{t:?}") };
        assert_eq!(t[0].field("tv_sec").and_then(Val::int), Some(1700000000));
        assert_eq!(t[1].field("tv_nsec").map(Val::word), Some("UTIME_OMIT"));
        let Val::List(iov) = &calls[3].args[1] else { panic!() };
        assert_eq!(iov[1].field("iov_base"), Some(&Val::Str(b"b".to_vec(), false)));
        assert_eq!(calls[4].ret_path.as_deref(), Some(&b"/t/a"[..]));
        assert!(calls[4].args[2].has_flag("O_CREAT") && calls[4].args[3].int() == Some(0o644));
        assert_eq!(calls[5].ret, Some(12));
        assert_eq!(calls[6].ret, Some(-1));
    }

    /// Runs `script` (sh) in `top` under strace, and replays it over the scan
    /// of `top` taken before: the model must reach the real tree.
    fn traced(top: &Path, script: &str) -> (Fs, Replay) {
        let seed = Fs::scan(top);
        let log = top.parent().unwrap().join("log");
        let out = std::process::Command::new("strace")
            .args(["-f", "-y", "-qq", "-xx", "-s", "1000000", "-e", "signal=none", "-e", &format!("trace={TRACED}"), "-o"])
            .arg(&log)
            .args(["sh", "-c", script])
            .current_dir(top)
            .output()
            .expect("strace");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let calls = parse_log(&std::fs::read_to_string(&log).unwrap());
        let umask = 0o022;
        let r = replay(seed.clone(), &calls, &std::fs::canonicalize(top).unwrap(), umask);
        let d = r.fs.differences(&Fs::scan(top));
        assert!(d.is_empty(), "the model is not the real tree:\n{}", d.join("\n"));
        (seed, r)
    }

    fn ops(r: &Replay) -> Vec<&Effect> {
        r.events.iter().filter_map(|e| if let Event::Op { effect, .. } = e { Some(effect) } else { None }).collect()
    }

    #[test]
    fn the_replay_follows_inodes_through_renames_links_truncation_and_unlinked_open_files() {
        let t = tempdir();
        let top = t.path().join("top");
        std::fs::create_dir(&top).unwrap();
        sh(&format!("cd '{}' && printf old > f && printf keep > g && mkdir d && ln -s f s", top.display()));
        // Rename over an existing file, then a write through the descriptor
        // opened before the rename; a hard link; a write to an unlinked open
        // file; O_TRUNC; a directory made and removed; chmod, utimes.
        let (seed, r) = traced(
            &top,
            "umask 022; exec 3>new; printf 1 >&3; mv new f; printf 2 >&3; ln f d/h; exec 4>tmp; rm tmp; printf lost >&4; \
             printf x > g; printf yy >> g; mkdir e; rmdir e; chmod 600 d/h; touch -d @1000 g; sync",
        );
        assert_eq!(std::fs::read(top.join("f")).unwrap(), b"12");
        let ops = ops(&r);
        assert!(ops.iter().any(|e| matches!(e, Effect::Rename { .. })) && ops.iter().any(|e| matches!(e, Effect::Link { .. })));
        assert!(ops.iter().any(|e| matches!(e, Effect::Truncate { len: 0, .. })));
        assert!(matches!(r.events.last(), Some(Event::Barrier { .. })));
        // Without the rename: f keeps its old content, and the write made
        // after it still lands in the new inode, under its first name.
        let rename = ops.iter().position(|e| matches!(e, Effect::Rename { .. })).unwrap();
        let mut fs = seed.clone();
        for (i, e) in ops.iter().enumerate() {
            if i != rename {
                fs.apply(e).unwrap();
            }
        }
        let d = fs.describe();
        let sha = |b: &[u8]| format!("sha256={}", hex::encode(Sha256::digest(b)));
        assert!(d[Path::new("f")].0.contains(&sha(b"old")), "{d:?}");
        assert!(d[Path::new("new")].0.contains(&sha(b"12")), "{d:?}");
        assert!(d[Path::new("d/h")].0.contains(" group=d/h"), "a hard link of new: {d:?}");
        assert!(!d.contains_key(Path::new("tmp")));
    }

    #[test]
    fn crash_states_drop_each_unsynced_op_and_its_dependants() {
        let t = tempdir();
        let top = t.path().join("top");
        std::fs::create_dir(&top).unwrap();
        std::fs::write(top.join("f"), "old").unwrap();
        // Write a temporary file, sync, rename it over f, sync.
        let (seed, r) = traced(&top, "printf new > t; sync; mv t f; sync");
        let (states, counts) = crash_states(&seed, &r.events);
        assert_eq!(counts.barriers, 2, "{:?}", r.events);
        let contents: BTreeSet<String> = states
            .iter()
            .map(|s| {
                let d = s.fs.describe();
                let names: Vec<String> = d.iter().map(|(p, (w, _))| format!("{}:{}", p.display(), &w[..w.find(" mode").unwrap_or(w.len())])).collect();
                names.join(",")
            })
            .collect();
        let old = hex::encode(Sha256::digest(b"old"));
        let new = hex::encode(Sha256::digest(b"new"));
        let want = [
            format!("f:file 3 bytes sha256={old}"),
            format!("f:file 3 bytes sha256={old},t:file 0 bytes sha256={}", hex::encode(Sha256::digest(b""))),
            format!("f:file 3 bytes sha256={old},t:file 3 bytes sha256={new}"),
            format!("f:file 3 bytes sha256={new}"),
        ];
        assert_eq!(contents, want.into_iter().collect(), "{contents:#?}");
        // Dropping the create drops the write to what it created.
        assert!(counts.dependants >= 1, "{counts:?}");
    }
}
