//! From an strace log's calls (fstrace.rs) to the model's effects and
//! barriers (fsmodel.rs): each successful call that changes something under
//! the top directory is one effect on inodes, a write going to the inode its
//! descriptor was opened on, whatever was renamed since; each fsync,
//! fdatasync, syncfs or msync of something there, and each sync, a barrier.
//! Descriptors are followed per process (threads share them, a fork copies
//! them, dup and fcntl share an open file, exec closes the close-on-exec ones),
//! with their offsets. What it cannot account for is a failure: a call it does
//! not know, a descriptor under the top it never saw opened, a path the model
//! does not have or a descriptor whose path is another inode in it, a
//! writable shared mapping, O_TMPFILE, a copy made in the kernel.

use crate::fsmodel::{shown, Effect, Event, Fs, Ino, Inode, Kind, Name};
use crate::fstrace::{Call, Val};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

#[derive(Debug)]
struct Desc {
    ino: Option<Ino>,
    offset: u64,
    append: bool,
}

/// A path below the top: its components there, and the absolute path.
type Below = (Vec<Name>, Vec<u8>);

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
        let desc =
            t.borrow().get(&n).map(|(d, _)| d.clone()).ok_or_else(|| format!("descriptor {n} of {} never seen opened", shown(path)))?;
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
    fn at(&mut self, tid: u64, dirfd: Option<&Val>, path: &Val) -> Result<Option<Below>, String> {
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
                // The path opened is the one -y gives the returned descriptor.
                let (_, _, flags, mode) = match c.name.as_str() {
                    "open" => (None, arg(0)?, arg(1)?.clone(), a.get(2).and_then(Val::int)),
                    "creat" => (None, arg(0)?, Val::Word("O_WRONLY|O_CREAT|O_TRUNC".into(), None), arg(1)?.int()),
                    "openat" => (Some(arg(0)?), arg(1)?, arg(2)?.clone(), a.get(3).and_then(Val::int)),
                    _ => {
                        let how = arg(2)?;
                        (
                            Some(arg(0)?),
                            arg(1)?,
                            how.field("flags").cloned().unwrap_or(Val::Word(String::new(), None)),
                            how.field("mode").and_then(Val::int),
                        )
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
                let desc = Rc::new(RefCell::new(Desc { ino, offset: 0, append: flags.has_flag("O_APPEND") }));
                self.table(tid).borrow_mut().insert(fdn, (desc, flags.has_flag("O_CLOEXEC")));
            }
            "write" | "pwrite64" | "writev" | "pwritev" | "pwritev2" => {
                let Some(n) = c.ret.filter(|&n| n > 0) else { return Ok(()) };
                let Some(desc) = self.fd(tid, arg(0)?)? else { return Ok(()) };
                let mut data = Vec::new();
                let parts: Vec<&Val> = match arg(1)? {
                    Val::List(iov) => {
                        iov.iter().map(|v| v.field("iov_base").ok_or("an iovec without iov_base")).collect::<Result<_, _>>()?
                    }
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
                // Into the descriptor: the third argument, sendfile's first.
                let out = if c.name == "sendfile" { arg(0)? } else { arg(2)? };
                if ok && self.fd(tid, out)?.is_some() {
                    return Err("data copied in the kernel into a file under the top: the trace does not show it".into());
                }
            }
            "rename" | "renameat" | "renameat2" => {
                if !ok {
                    return Ok(());
                }
                let (fd1, p1, fd2, p2) =
                    if c.name == "rename" { (None, arg(0)?, None, arg(1)?) } else { (Some(arg(0)?), arg(1)?, Some(arg(2)?), arg(3)?) };
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
                    let (fd1, p1, fd2, p2) =
                        if c.name == "link" { (None, arg(0)?, None, arg(1)?) } else { (Some(arg(0)?), arg(1)?, Some(arg(2)?), arg(3)?) };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsmodel::crash_states;
    use crate::fstrace::parse_log;
    use crate::util::{sh, tempdir};
    use sha2::{Digest, Sha256};

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
                let names: Vec<String> =
                    d.iter().map(|(p, (w, _))| format!("{}:{}", p.display(), &w[..w.find(" mode").unwrap_or(w.len())])).collect();
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
