//! The state directory, ROOT/var/db/binarydist, reached without following a
//! symlink anywhere below the root.
//!
//! Whoever owns the tree under `--root` (a jail, an image, a chroot) can plant
//! symlinks there: `var` pointing out of the root, a `lock` or a partial
//! download pointing at /etc/master.passwd. So `var`, `db` and `binarydist` are
//! each opened with `O_DIRECTORY|O_NOFOLLOW` relative to the one before, and
//! every file in them is reached by a single name relative to that descriptor
//! (`openat`, `mkdirat`, `renameat`, `unlinkat`) with `O_NOFOLLOW`: a symlink in
//! the way is refused, never followed. A name is one path component, never
//! `..`. The installer's own files (lock, journal, kept bases, records; see
//! install/state.rs) are reached the same way.
//!
//! Every call goes through rustix: there is no `unsafe` here. `open` takes
//! its flags as the `libc::O_*` constants its callers name.
//!
//! What lives here besides the installer's files (install/state.rs):
//!
//! ```text
//! keys/pinned.pub     the key that signed the last INDEX accepted (minisign format)
//! keys/revoked        keys learned or declared revoked, one key id or public key a line
//! serial              the serial of the last INDEX accepted
//! downloads/          partial and verified downloads (NAME.part, then NAME)
//! <series>/hold       present while the series is held (rollback writes it):
//!                     `update` leaves the series alone until `--to` or unhold
//! ```
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::errors::shown;
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// ROOT-relative path of the state directory.
pub const STATE_DIR: &str = "var/db/binarydist";
/// The hold marker of a series, under `<series>/`.
pub const HOLD: &str = "hold";

#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    #[error("{}", shown(path))]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: not a real directory (a symlink or another kind of file); the state directory must be a directory inside the root, reached without symlinks", shown(path))]
    NotRealDir { path: PathBuf },
    #[error(
        "{}: not a regular file (a symlink or another kind of file), refused; binarydist makes none there: remove it, then run again",
        shown(path)
    )]
    NotRegular { path: PathBuf },
    #[error("{}: larger than the {max} bytes allowed here", shown(path))]
    TooLarge { path: PathBuf, max: u64 },
    #[error("{name:?}: not a single file name")]
    BadName { name: String },
}

/// An open directory, reached without symlinks, and its path for messages.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

fn cname(name: &str) -> Result<CString, StateDirError> {
    let bad = || StateDirError::BadName { name: name.to_string() };
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(bad());
    }
    CString::new(name).map_err(|_| bad())
}

const DIR_FLAGS: OFlags = OFlags::RDONLY.union(OFlags::DIRECTORY).union(OFlags::NOFOLLOW).union(OFlags::CLOEXEC);

impl Dir {
    /// Opens `path` itself as the starting point (the root, which the admin
    /// named; it may be reached through symlinks of the admin's own).
    pub fn open_root(path: &Path) -> Result<Dir, StateDirError> {
        let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| StateDirError::Io { path: path.to_path_buf(), source: e.into() })?;
        Ok(Dir { fd, path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The descriptor, for `*at` calls relative to this directory.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.fd)
    }

    /// lstat of `name` in this directory (a symlink is not followed); `None`
    /// when there is nothing of that name.
    pub fn stat(&self, name: &str) -> Result<Option<rustix::fs::Stat>, StateDirError> {
        let c = cname(name)?;
        match rustix::fs::statat(&self.fd, c.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(self.io_err(name)(e.into())),
        }
    }

    /// fstat of the directory itself.
    pub fn metadata(&self) -> Result<rustix::fs::Stat, StateDirError> {
        rustix::fs::fstat(&self.fd).map_err(|e| StateDirError::Io { path: self.path.clone(), source: e.into() })
    }

    /// A new, empty file `name` (mode `mode`), whatever was there before: a
    /// file or a symlink of that name is removed first (the link itself, never
    /// its target), then the file is made with `O_CREAT|O_EXCL|O_NOFOLLOW`.
    /// For the installer's own temporary files, which nobody else may hold.
    pub fn create_new(&self, name: &str, mode: u32) -> Result<File, StateDirError> {
        self.remove(name)?;
        self.open(name, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, mode)?
            .ok_or_else(|| self.io_err(name)(io::ErrorKind::NotFound.into()))
    }

    fn child(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn io_err(&self, name: &str) -> impl Fn(io::Error) -> StateDirError + '_ {
        let path = self.child(name);
        move |source| StateDirError::Io { path: path.clone(), source }
    }

    /// The subdirectory `name`, created (0755) when `create` and missing;
    /// `None` when missing and not created. A symlink is refused.
    pub fn subdir(&self, name: &str, create: bool) -> Result<Option<Dir>, StateDirError> {
        let c = cname(name)?;
        loop {
            match rustix::fs::openat(&self.fd, c.as_c_str(), DIR_FLAGS, Mode::empty()) {
                Ok(fd) => return Ok(Some(Dir { fd, path: self.child(name) })),
                Err(Errno::NOENT) if create => match rustix::fs::mkdirat(&self.fd, c.as_c_str(), Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(self.io_err(name)(e.into())),
                },
                Err(Errno::NOENT) => return Ok(None),
                // O_NOFOLLOW on a symlink: ELOOP, EMLINK on FreeBSD.
                Err(Errno::LOOP | Errno::MLINK | Errno::NOTDIR) => return Err(StateDirError::NotRealDir { path: self.child(name) }),
                Err(e) => return Err(self.io_err(name)(e.into())),
            }
        }
    }

    /// Opens the file `name` with `flags` (plus `O_NOFOLLOW|O_CLOEXEC|O_NONBLOCK`)
    /// and checks that it is a regular file: a symlink, fifo or device is refused.
    pub fn open(&self, name: &str, flags: libc::c_int, mode: u32) -> Result<Option<File>, StateDirError> {
        let c = cname(name)?;
        // The libc constants are the kernel's, which OFlags holds as they are.
        let flags = OFlags::from_bits_retain(flags as _) | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let mode = Mode::from_raw_mode((mode & 0o7777) as rustix::fs::RawMode);
        let fd: OwnedFd = match rustix::fs::openat(&self.fd, c.as_c_str(), flags, mode) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if !flags.contains(OFlags::CREATE) => return Ok(None),
            Err(Errno::LOOP | Errno::MLINK) => return Err(StateDirError::NotRegular { path: self.child(name) }),
            Err(e) => return Err(self.io_err(name)(e.into())),
        };
        let file = File::from(fd);
        let md = file.metadata().map_err(self.io_err(name))?;
        if !md.file_type().is_file() {
            return Err(StateDirError::NotRegular { path: self.child(name) });
        }
        // O_NONBLOCK was only there so that opening a planted fifo cannot hang.
        let io = |e: Errno| self.io_err(name)(e.into());
        rustix::fs::fcntl_setfl(&file, rustix::fs::fcntl_getfl(&file).map_err(io)? - OFlags::NONBLOCK).map_err(io)?;
        Ok(Some(file))
    }

    /// The whole content of `name`, at most `max` bytes; `None` when missing.
    pub fn read(&self, name: &str, max: u64) -> Result<Option<Vec<u8>>, StateDirError> {
        let Some(f) = self.open(name, libc::O_RDONLY, 0)? else { return Ok(None) };
        let mut v = Vec::new();
        f.take(max + 1).read_to_end(&mut v).map_err(self.io_err(name))?;
        if v.len() as u64 > max {
            return Err(StateDirError::TooLarge { path: self.child(name), max });
        }
        Ok(Some(v))
    }

    /// `name` as UTF-8 text, at most 1 MiB.
    pub fn read_text(&self, name: &str) -> Result<Option<String>, StateDirError> {
        match self.read(name, 1 << 20)? {
            None => Ok(None),
            Some(v) => String::from_utf8(v).map(Some).map_err(|_| self.io_err(name)(io::Error::other("not UTF-8 text"))),
        }
    }

    /// Replaces `name` by `bytes` atomically and durably: a temporary file made
    /// with `O_CREAT|O_EXCL|O_NOFOLLOW`, synced, renamed over `name`, directory synced.
    pub fn write_atomically(&self, name: &str, bytes: &[u8], mode: u32) -> Result<(), StateDirError> {
        cname(name)?;
        let tmp = format!(".{name}.{}.tmp", std::process::id());
        let _ = self.remove(&tmp);
        self.remove_stale_temps(name)?;
        let mut f = self
            .open(&tmp, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, mode)?
            .ok_or_else(|| self.io_err(&tmp)(io::ErrorKind::NotFound.into()))?;
        let written = f.write_all(bytes).and_then(|_| f.sync_all());
        if let Err(e) = written {
            let _ = self.remove(&tmp);
            return Err(self.io_err(name)(e));
        }
        self.rename(&tmp, name)?;
        self.sync()
    }

    /// Removes what [`Dir::write_atomically`] of `name` left in a process that
    /// is gone (`.NAME.PID.tmp`): after a power loss the temporary file can be
    /// on disk and its rename not, and no later run has that pid.
    fn remove_stale_temps(&self, name: &str) -> Result<(), StateDirError> {
        let prefix = format!(".{name}.");
        for n in self.names()? {
            let pid = n.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".tmp")).and_then(|p| p.parse::<i32>().ok());
            let Some(pid) = pid.and_then(rustix::process::Pid::from_raw) else { continue };
            if pid != rustix::process::getpid() && rustix::process::test_kill_process(pid) == Err(Errno::SRCH) {
                self.remove(&n)?;
            }
        }
        Ok(())
    }

    /// renameat within this directory; neither name is followed.
    pub fn rename(&self, from: &str, to: &str) -> Result<(), StateDirError> {
        let (a, b) = (cname(from)?, cname(to)?);
        rustix::fs::renameat(&self.fd, a.as_c_str(), &self.fd, b.as_c_str()).map_err(|e| self.io_err(to)(e.into()))
    }

    /// Removes the file `name` (a symlink itself, never its target); missing is fine.
    pub fn remove(&self, name: &str) -> Result<(), StateDirError> {
        let c = cname(name)?;
        match rustix::fs::unlinkat(&self.fd, c.as_c_str(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(self.io_err(name)(e.into())),
        }
    }

    /// The names in this directory (not `.` and `..`, nor any that is not
    /// UTF-8: binarydist makes none), sorted; read through the descriptor, not
    /// the path, so a swapped symlink in the path cannot make us list another
    /// directory.
    pub fn names(&self) -> Result<Vec<String>, StateDirError> {
        let names = crate::os::names_in(std::os::fd::AsFd::as_fd(&self.fd))
            .map_err(|source| StateDirError::Io { path: self.path.clone(), source })?;
        let mut v: Vec<String> = names.into_iter().filter_map(|n| n.into_string().ok()).collect();
        v.sort();
        Ok(v)
    }

    /// fsync of the directory itself.
    pub fn sync(&self) -> Result<(), StateDirError> {
        rustix::fs::fsync(&self.fd).map_err(|e| StateDirError::Io { path: self.path.clone(), source: e.into() })
    }

    /// Bytes available to us on this directory's file system.
    pub fn free_bytes(&self) -> Result<u64, StateDirError> {
        let s = rustix::fs::fstatvfs(&self.fd).map_err(|e| StateDirError::Io { path: self.path.clone(), source: e.into() })?;
        Ok(s.f_bavail.saturating_mul(s.f_frsize))
    }
}

/// ROOT/var/db/binarydist, each step opened without following symlinks;
/// created when `create` (refused, not created, when any step is a symlink).
/// `None` when it does not exist and `create` is false.
pub fn open(root: &Path, create: bool) -> Result<Option<Dir>, StateDirError> {
    let mut dir = Dir::open_root(root)?;
    for part in STATE_DIR.split('/') {
        match dir.subdir(part, create)? {
            Some(d) => dir = d,
            None => return Ok(None),
        }
    }
    Ok(Some(dir))
}

/// Why the series is held, or `None` when it is not: `<series>/hold` holds a
/// line saying who held it and when (rollback writes it; `update` respects it).
pub fn hold(state: &Dir, series: &str) -> Result<Option<String>, StateDirError> {
    let Some(dir) = state.subdir(series, false)? else { return Ok(None) };
    Ok(dir.read_text(HOLD)?.map(|t| {
        let t = t.trim();
        if t.is_empty() {
            "held".to_string()
        } else {
            t.lines().next().unwrap_or_default().to_string()
        }
    }))
}

/// Records a hold on the series, with `why` as its one line.
pub fn set_hold(state: &Dir, series: &str, why: &str) -> Result<(), StateDirError> {
    let gone = || StateDirError::Io { path: state.child(series), source: io::Error::from(io::ErrorKind::NotFound) };
    let dir = state.subdir(series, true)?.ok_or_else(gone)?;
    dir.write_atomically(HOLD, format!("{}\n", why.replace('\n', " ")).as_bytes(), 0o644)
}

/// Removes the hold on the series, if any.
pub fn clear_hold(state: &Dir, series: &str) -> Result<(), StateDirError> {
    match state.subdir(series, false)? {
        Some(dir) => dir.remove(HOLD),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlinked_step_is_refused_and_nothing_is_created_outside() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("var")).unwrap();
        let e = open(&root, true).unwrap_err();
        assert!(matches!(e, StateDirError::NotRealDir { .. }), "{e}");
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none(), "created outside the root");
    }

    #[test]
    fn files_are_never_followed() {
        let t = tempfile::tempdir().unwrap();
        let d = open(t.path(), true).unwrap().unwrap();
        let victim = t.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, d.path().join("serial")).unwrap();
        assert!(matches!(d.read("serial", 10), Err(StateDirError::NotRegular { .. })));
        assert!(d.open("serial", libc::O_WRONLY | libc::O_CREAT, 0o644).is_err());
        // Replacing it atomically replaces the link, not its target.
        d.write_atomically("serial", b"7\n", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(d.read_text("serial").unwrap().unwrap(), "7\n");
        assert!(cname("../x").is_err() && cname("..").is_err());
    }

    #[test]
    fn an_atomic_write_removes_what_a_dead_process_left_for_the_same_name() {
        let t = tempfile::tempdir().unwrap();
        let d = open(t.path(), true).unwrap().unwrap();
        // No process has a pid past pid_max (at most 2^22); pid 1 is alive.
        for n in [".serial.999999999.tmp", ".serial.1.tmp", ".other.999999999.tmp", ".serial.x.tmp"] {
            std::fs::write(d.path().join(n), "left").unwrap();
        }
        d.write_atomically("serial", b"7\n", 0o644).unwrap();
        assert_eq!(d.names().unwrap(), [".other.999999999.tmp", ".serial.1.tmp", ".serial.x.tmp", "serial"]);
    }

    #[test]
    fn holds_round_trip() {
        let t = tempfile::tempdir().unwrap();
        let d = open(t.path(), true).unwrap().unwrap();
        assert_eq!(hold(&d, "world").unwrap(), None);
        assert!(d.names().unwrap().is_empty());
        set_hold(&d, "world", "rollback to X\nsecond line").unwrap();
        assert_eq!(hold(&d, "world").unwrap().as_deref(), Some("rollback to X second line"));
        assert_eq!(d.names().unwrap(), ["world"]);
        clear_hold(&d, "world").unwrap();
        assert_eq!(hold(&d, "world").unwrap(), None);
    }
}
