//! The calls that differ between DragonFly and the Linux machines the tests
//! run on, or that std does not make without following a symlink: BSD file
//! flags (chflags), device numbers and nodes, fifos, owners and times of
//! symlinks, free space, flock, syncfs, the signals an install ignores.
//!
//! Each is one small function over std or rustix. Some calls have no safe
//! wrapper and stay `unsafe` here, each with its SAFETY comment: fchflags(2)
//! and chflagsat(2) (the BSDs), mkfifoat(2) (rustix's goes through
//! mknodat(2), which DragonFly's kern_mknod refuses for a fifo with EINVAL)
//! and signal(3); sync_file_range(2), a Linux-only hint, is the last. On
//! systems without file flags the flag functions are no-ops, unless a
//! test-hooks build fakes them (see `testhooks`).
//!
//! The installer changes entries below a root it does not own (a jail, an
//! image, a world-writable directory the dist ships): it reaches them through
//! directory descriptors ([`open_dir_beneath`]) and sets their owner, mode,
//! times and flags through [`set_attrs_at`], never by a path that a swapped
//! symlink could redirect.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::testhooks;
use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags, Stat, Timespec, Timestamps};
use rustix::io::Errno;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

/// The BSD file flags of `path` (not following a final symlink), in the words
/// `fflagstostr(3)` and bsdtar use (`schg,uappnd`); `None` when there are none.
pub fn file_flags(path: &Path) -> io::Result<Option<String>> {
    if let Some(faked) = testhooks::fake_file_flags(path) {
        return faked;
    }
    native::file_flags(path)
}

/// The flags that kern.securelevel protects (securelevel(7)): with any of
/// them on a file, the file's flags cannot change while the level is above 0.
pub const SYSTEM_FLAGS: [&str; 3] = ["schg", "sappnd", "sunlnk"];

/// Why this system will not let the installer change the flags of a file
/// that has a system flag (schg, sappnd, sunlnk), if it will not: on
/// DragonFly, kern.securelevel above 0 (raised by init or an admin, lowered
/// only by a reboot). `None` where it may, and where there are no such flags.
pub fn system_flags_locked() -> io::Result<Option<String>> {
    let level = match testhooks::fake_securelevel() {
        Some(faked) => Some(faked?),
        None => native::securelevel()?,
    };
    Ok(level.and_then(securelevel_forbids))
}

fn securelevel_forbids(level: i32) -> Option<String> {
    (level > 0).then(|| format!("kern.securelevel is {level}, which forbids clearing schg, sappnd and sunlnk"))
}

/// Major and minor numbers of a device number, as tar stores them.
pub fn dev_split(rdev: u64) -> (u32, u32) {
    // std widens the system's dev_t (32 bits on DragonFly) to u64: narrowing
    // it back loses nothing.
    #[allow(clippy::unnecessary_cast)]
    let dev = rdev as rustix::fs::Dev;
    (rustix::fs::major(dev), rustix::fs::minor(dev))
}

/// Bytes available to an unprivileged writer on the file system holding `path`.
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    let s = rustix::fs::statvfs(path)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Takes an exclusive flock on `file` without waiting; `Ok(false)` when another
/// process holds it. The kernel drops the lock when its holder dies, so a lock
/// left by a killed process is no lock. (rustix rather than std's File::lock,
/// which needs Rust 1.89.)
pub fn try_lock(file: &File) -> io::Result<bool> {
    match rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Blocks until the exclusive flock on `file` is ours.
pub fn lock(file: &File) -> io::Result<()> {
    Ok(rustix::fs::flock(file, FlockOperation::LockExclusive)?)
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Makes everything written to the file system holding `path` durable:
/// Linux's syncfs(2), which waits for the data. The BSDs have none, and their
/// sync(2) may return before the data is written; the installer fsyncs file
/// by file there and never calls this.
pub fn sync_filesystem(path: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        Ok(rustix::fs::syncfs(File::open(path)?)?)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        Err(io::Error::new(io::ErrorKind::Unsupported, "no syncfs(2) on this system"))
    }
}

/// Starts writing a file's data to disk without waiting for it, so that a
/// syncfs later finds little left to do (Linux only; elsewhere the installer
/// fsyncs each staged file).
pub fn start_writeback(file: &File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a descriptor `file` keeps open for the call; offset and
        // length 0 mean the whole file; the call reads no memory of ours.
        // A failure only means the later syncfs has more to do.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// While alive, SIGINT, SIGHUP and SIGTERM are ignored (as OpenBSD's syspatch
/// does while installing): a commit interrupted anyway is finished by the next
/// run, but a terminal closing is no reason to make the admin do that.
pub struct NoInterrupts {
    old: [libc::sighandler_t; 3],
}

const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGHUP, libc::SIGTERM];

pub fn ignore_interrupts() -> NoInterrupts {
    // SAFETY: SIG_IGN runs no code of ours in the handler, so nothing
    // async-signal-unsafe can happen; the previous dispositions are kept
    // to be put back on drop.
    let old = SIGNALS.map(|s| unsafe { libc::signal(s, libc::SIG_IGN) });
    NoInterrupts { old }
}

impl Drop for NoInterrupts {
    fn drop(&mut self) {
        for (s, h) in SIGNALS.iter().zip(self.old) {
            // SAFETY: puts back the disposition signal(3) returned above, which
            // was valid for this signal.
            unsafe { libc::signal(*s, h) };
        }
    }
}

/// File flags where lchflags(2) takes the `unsigned long` of DragonFly's
/// sys/stat.h (FreeBSD and NetBSD share it; OpenBSD and macOS use other
/// widths and bits, and are no targets).
#[cfg(any(target_os = "dragonfly", target_os = "freebsd", target_os = "netbsd"))]
mod native {
    use std::ffi::CString;
    use std::io;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    // The names fflagstostr(3) prints, from DragonFly's sys/stat.h and
    // lib/libc/gen/strtofflags.c.
    const NAMES: &[(libc::c_ulong, &str)] = &[
        (0x0000_0001, "nodump"),
        (0x0000_0002, "uchg"),
        (0x0000_0004, "uappnd"),
        (0x0000_0008, "opaque"),
        (0x0000_0010, "uunlnk"),
        (0x0000_0040, "nouhistory"),
        (0x0000_0080, "ucache"),
        (0x0001_0000, "arch"),
        (0x0002_0000, "schg"),
        (0x0004_0000, "sappnd"),
        (0x0010_0000, "sunlnk"),
        (0x0040_0000, "noshistory"),
        (0x0080_0000, "scache"),
    ];

    pub fn file_flags(path: &Path) -> io::Result<Option<String>> {
        let bits = libc::c_ulong::from(rustix::fs::lstat(path)?.st_flags);
        let words: Vec<&str> = NAMES.iter().filter(|(b, _)| bits & b != 0).map(|(_, n)| *n).collect();
        Ok(if words.is_empty() { None } else { Some(words.join(",")) })
    }

    /// kern.securelevel, by sysctl(3).
    pub fn securelevel() -> io::Result<Option<i32>> {
        let mut mib = [libc::CTL_KERN, libc::KERN_SECURELVL];
        let mut level: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>();
        // SAFETY: a two-element MIB, and a writable int with its size.
        let rc = unsafe {
            libc::sysctl(mib.as_mut_ptr(), mib.len() as _, (&mut level as *mut libc::c_int).cast(), &mut len, std::ptr::null_mut(), 0)
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Some(level))
    }

    pub fn flags_of(st: &rustix::fs::Stat) -> Option<String> {
        let bits = libc::c_ulong::from(st.st_flags);
        let words: Vec<&str> = NAMES.iter().filter(|(b, _)| bits & b != 0).map(|(_, n)| *n).collect();
        if words.is_empty() {
            None
        } else {
            Some(words.join(","))
        }
    }

    pub fn set_flags(target: super::Target<'_>, flags: &str) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let mut bits: libc::c_ulong = 0;
        for w in flags.split(',').filter(|w| !w.is_empty()) {
            let (b, _) = NAMES.iter().find(|(_, n)| *n == w).ok_or_else(|| io::Error::other(format!("unknown file flag {w:?}")))?;
            bits |= b;
        }
        let rc = match target {
            // SAFETY: a descriptor the caller keeps open; fchflags(2) takes no pointer.
            super::Target::Fd(fd) => unsafe { libc::fchflags(fd.as_raw_fd(), bits) },
            super::Target::At(dir, name) => {
                let c = CString::new(name.as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name has a NUL byte"))?;
                // SAFETY: a descriptor the caller keeps open, and a
                // NUL-terminated string that outlives the call, which only reads it.
                unsafe { libc::chflagsat(dir.as_raw_fd(), c.as_ptr(), bits, libc::AT_SYMLINK_NOFOLLOW) }
            }
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(not(any(target_os = "dragonfly", target_os = "freebsd", target_os = "netbsd")))]
mod native {
    use std::io;
    use std::path::Path;

    /// Linux files have no BSD flags.
    pub fn file_flags(_path: &Path) -> io::Result<Option<String>> {
        Ok(None)
    }

    /// No BSD flags, so nothing a securelevel protects.
    pub fn securelevel() -> io::Result<Option<i32>> {
        Ok(None)
    }

    pub fn flags_of(_st: &rustix::fs::Stat) -> Option<String> {
        None
    }

    pub fn set_flags(_target: super::Target<'_>, _flags: &str) -> io::Result<()> {
        Ok(())
    }
}

/// The directory `rel` below `dir`, each component opened
/// `O_DIRECTORY|O_NOFOLLOW` relative to the one before: a symlink anywhere on
/// the way is refused (ELOOP or ENOTDIR), never followed. An empty `rel` is
/// `dir` itself.
pub fn open_dir_beneath(dir: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    let mut fd = rustix::io::fcntl_dupfd_cloexec(dir, 0)?;
    for c in rel.components() {
        match c {
            Component::Normal(name) => {
                fd = rustix::fs::openat(&fd, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?
            }
            Component::CurDir => {}
            _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a path below the root")),
        }
    }
    Ok(fd)
}

/// A root held open, and the directory below it used last: the installer's
/// `*at` calls come in manifest order, so consecutive ones mostly share it.
/// Every directory is reached by [`open_dir_beneath`].
pub struct Beneath {
    root: OwnedFd,
    path: std::path::PathBuf,
    last: Option<(std::path::PathBuf, OwnedFd)>,
}

impl Beneath {
    /// `root` itself may be reached through symlinks of the admin's own.
    pub fn open(root: &Path) -> io::Result<Beneath> {
        let fd = rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
        Ok(Beneath { root: fd, path: root.to_path_buf(), last: None })
    }

    pub fn root(&self) -> &Path {
        &self.path
    }

    pub fn root_fd(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// The directory `rel` below the root (empty: the root).
    pub fn dir(&mut self, rel: &Path) -> io::Result<BorrowedFd<'_>> {
        if self.last.as_ref().is_none_or(|(p, _)| p != rel) {
            self.last = Some((rel.to_path_buf(), open_dir_beneath(self.root.as_fd(), rel)?));
        }
        match &self.last {
            Some((_, fd)) => Ok(fd.as_fd()),
            None => Err(io::Error::other("no directory open")),
        }
    }

    /// The directory holding `rel`, and `rel`'s last name.
    pub fn parent_of<'p>(&mut self, rel: &'p Path) -> io::Result<(BorrowedFd<'_>, &'p OsStr)> {
        let name = rel.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        Ok((self.dir(rel.parent().unwrap_or(Path::new("")))?, name))
    }

    /// Forgets the directory used last: after a directory was renamed or
    /// removed, a path must be walked again.
    pub fn forget(&mut self) {
        self.last = None;
    }
}

/// Removes the entry `name` of `dir`, a whole tree if a directory, clearing
/// BSD flags on the way (installkernel and installworld set schg); nothing
/// is followed. `abs` is its path (fake flags, messages).
pub fn remove_tree_at(dir: BorrowedFd<'_>, name: &OsStr, abs: &Path) -> io::Result<()> {
    let st = stat_at(dir, name)?;
    if flags_of(&st, abs)?.is_some() {
        set_flags(Target::At(dir, name), abs, None)?;
    }
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Ok(rustix::fs::unlinkat(dir, name, AtFlags::empty())?);
    }
    let sub = open_dir_beneath(dir, Path::new(name))?;
    for entry in names_in(sub.as_fd())? {
        remove_tree_at(sub.as_fd(), &entry, &abs.join(&entry))?;
    }
    Ok(rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?)
}

/// The names in the directory `dir` (not `.` and `..`), read through it.
pub fn names_in(dir: BorrowedFd<'_>) -> io::Result<Vec<std::ffi::OsString>> {
    use std::os::unix::ffi::OsStringExt;
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(std::ffi::OsString::from_vec(name));
        }
    }
    Ok(names)
}

/// What [`set_attrs_at`] sets; `None` leaves a field as it is.
#[derive(Debug, Default, Clone, Copy)]
pub struct Attrs<'a> {
    pub owner: Option<(u32, u32)>,
    pub mode: Option<u32>,
    /// Access and modification time (tar keeps one).
    pub mtime: Option<i64>,
    /// The BSD flags to end with (`Some(None)`: none); the entry's own are
    /// cleared first, since schg would forbid the rest.
    pub flags: Option<Option<&'a str>>,
}

/// lstat of `name` in `dir`.
pub fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Stat> {
    Ok(rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?)
}

/// Sets `a` on the entry `name` of `dir` (`abs` is its path, for the fake
/// flags of a test-hooks build), never through a symlink. A regular file or a
/// directory is opened `O_NOFOLLOW|O_NONBLOCK` and changed through its
/// descriptor (fchown, fchmod, futimens, fchflags), once the descriptor is
/// seen to be the entry just looked at. A symlink, fifo or device node, which
/// cannot be opened, or not without blocking or side effects, is changed
/// through the `*at` calls relative to `dir` with `AT_SYMLINK_NOFOLLOW` (a
/// symlink's mode is left alone; see [`chmod_at`] for Linux). Returns
/// `Ok(false)`, having changed nothing, when the entry is gone or is no longer
/// what was looked at (swapped for a symlink, say).
pub fn set_attrs_at(dir: BorrowedFd<'_>, name: &OsStr, abs: &Path, a: &Attrs) -> io::Result<bool> {
    let looked = match stat_at(dir, name) {
        Ok(st) => st,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let kind = FileType::from_raw_mode(looked.st_mode);
    testhooks::between_look_and_set(abs);
    if !matches!(kind, FileType::RegularFile | FileType::Directory) {
        return set_attrs_by_name(dir, name, abs, kind, &looked, a);
    }
    let mut how = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    if kind == FileType::Directory {
        how |= OFlags::DIRECTORY;
    }
    let fd = match rustix::fs::openat(dir, name, how, Mode::empty()) {
        Ok(fd) => fd,
        // A symlink now (ELOOP; EMLINK on FreeBSD), or gone, or a socket.
        Err(Errno::LOOP | Errno::MLINK | Errno::NOTDIR | Errno::NOENT | Errno::NXIO) => return Ok(false),
        // Our own file without read permission, when not root: by name.
        Err(Errno::ACCESS) => return set_attrs_by_name(dir, name, abs, kind, &looked, a),
        Err(e) => return Err(e.into()),
    };
    let st = rustix::fs::fstat(&fd)?;
    if (st.st_dev, st.st_ino) != (looked.st_dev, looked.st_ino) || FileType::from_raw_mode(st.st_mode) != kind {
        return Ok(false);
    }
    if a.flags.is_some() && flags_of(&st, abs)?.is_some() {
        set_flags(Target::Fd(fd.as_fd()), abs, None)?;
    }
    if let Some((uid, gid)) = a.owner {
        rustix::fs::fchown(&fd, Some(rustix::fs::Uid::from_raw(uid)), Some(rustix::fs::Gid::from_raw(gid)))?;
    }
    // After chown, which clears set-id bits.
    if let Some(mode) = a.mode {
        rustix::fs::fchmod(&fd, mode_bits(mode))?;
    }
    if let Some(t) = a.mtime {
        rustix::fs::futimens(&fd, &both_times(t))?;
    }
    if let Some(Some(flags)) = a.flags {
        set_flags(Target::Fd(fd.as_fd()), abs, Some(flags))?;
    }
    Ok(true)
}

fn set_attrs_by_name(dir: BorrowedFd<'_>, name: &OsStr, abs: &Path, kind: FileType, looked: &Stat, a: &Attrs) -> io::Result<bool> {
    if a.flags.is_some() && flags_of(looked, abs)?.is_some() {
        set_flags(Target::At(dir, name), abs, None)?;
    }
    if let Some((uid, gid)) = a.owner {
        let (uid, gid) = (rustix::fs::Uid::from_raw(uid), rustix::fs::Gid::from_raw(gid));
        rustix::fs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)?;
    }
    if let (Some(mode), false) = (a.mode, kind == FileType::Symlink) {
        if !chmod_at(dir, name, mode, looked)? {
            return Ok(false);
        }
    }
    if let Some(t) = a.mtime {
        rustix::fs::utimensat(dir, name, &both_times(t), AtFlags::SYMLINK_NOFOLLOW)?;
    }
    if let Some(Some(flags)) = a.flags {
        set_flags(Target::At(dir, name), abs, Some(flags))?;
    }
    Ok(true)
}

/// The permission bits of a tar mode (mode_t is 16 bits on the BSDs).
fn mode_bits(mode: u32) -> Mode {
    Mode::from_raw_mode((mode & 0o7777) as rustix::fs::RawMode)
}

fn both_times(t: i64) -> Timestamps {
    let t = Timespec { tv_sec: t, tv_nsec: 0 };
    Timestamps { last_access: t, last_modification: t }
}

/// The mode of a fifo or device node `name` of `dir`, not following a
/// symlink put there meanwhile. Linux's fchmodat has no AT_SYMLINK_NOFOLLOW
/// (rustix refuses it; glibc emulates it through /proc) and fchmod on an
/// `O_PATH` descriptor fails: an `O_PATH` descriptor pins the entry itself, it
/// is checked to be the inode looked at, and the chmod goes through
/// `/proc/self/fd/N`, which names that very inode (needs /proc, as glibc's
/// emulation does). `false` when the entry is no longer what was looked at.
#[cfg(target_os = "linux")]
fn chmod_at(dir: BorrowedFd<'_>, name: &OsStr, mode: u32, looked: &Stat) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let fd = match rustix::fs::openat(dir, name, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let st = rustix::fs::fstat(&fd)?;
    if (st.st_dev, st.st_ino, FileType::from_raw_mode(st.st_mode))
        != (looked.st_dev, looked.st_ino, FileType::from_raw_mode(looked.st_mode))
    {
        return Ok(false);
    }
    rustix::fs::chmod(format!("/proc/self/fd/{}", fd.as_raw_fd()), mode_bits(mode))?;
    Ok(true)
}

/// The BSDs: fchmodat(2) with AT_SYMLINK_NOFOLLOW, which is lchmod(2)
/// relative to the directory descriptor (lchmod itself would walk the whole
/// path again): whatever is at `name` now, a symlink put there is changed
/// itself, never what it points to.
#[cfg(not(target_os = "linux"))]
fn chmod_at(dir: BorrowedFd<'_>, name: &OsStr, mode: u32, _looked: &Stat) -> io::Result<bool> {
    rustix::fs::chmodat(dir, name, mode_bits(mode), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(true)
}

/// Where a flag change goes: an open entry, or a name in a directory (not
/// followed if a symlink).
#[derive(Clone, Copy)]
pub enum Target<'a> {
    Fd(BorrowedFd<'a>),
    At(BorrowedFd<'a>, &'a OsStr),
}

/// The BSD flags in a stat of the entry at `abs`.
pub fn flags_of(st: &Stat, abs: &Path) -> io::Result<Option<String>> {
    if let Some(faked) = testhooks::fake_file_flags(abs) {
        return faked;
    }
    Ok(native::flags_of(st))
}

/// Sets the BSD flags of `target` (the entry at `abs`); `None` clears them.
pub fn set_flags(target: Target<'_>, abs: &Path, flags: Option<&str>) -> io::Result<()> {
    if let Some(faked) = testhooks::fake_set_file_flags(abs, flags) {
        return faked;
    }
    native::set_flags(target, flags.unwrap_or(""))
}

/// A directory `name` in `dir`, for its owner only (the caller sets the mode).
pub fn mkdir_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    Ok(rustix::fs::mkdirat(dir, name, Mode::RWXU)?)
}

/// A fifo `name` in `dir`, readable and writable by its owner only.
pub fn mkfifo_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let c = CString::new(name.as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name has a NUL byte"))?;
    // SAFETY: a descriptor `dir` keeps open, and a NUL-terminated string that
    // outlives the call, which only reads it.
    if unsafe { libc::mkfifoat(dir.as_raw_fd(), c.as_ptr(), 0o600) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A character or block device node `name` in `dir`, for its owner only.
pub fn mknod_at(dir: BorrowedFd<'_>, name: &OsStr, block: bool, major: u32, minor: u32) -> io::Result<()> {
    let kind = if block { FileType::BlockDevice } else { FileType::CharacterDevice };
    rustix::fs::mknodat(dir, name, kind, Mode::RUSR | Mode::WUSR, rustix::fs::makedev(major, minor))?;
    Ok(())
}

/// Puts back a modification time read earlier, to the nanosecond, on the
/// entry `name` of `dir` (`.` for `dir` itself), leaving the access time alone.
pub fn restore_mtime_at(dir: BorrowedFd<'_>, name: &OsStr, sec: i64, nsec: i64) -> io::Result<()> {
    let times = Timestamps {
        last_access: Timespec { tv_sec: 0, tv_nsec: rustix::fs::UTIME_OMIT },
        last_modification: Timespec { tv_sec: sec, tv_nsec: nsec },
    };
    Ok(rustix::fs::utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW)?)
}

/// Writes a file under a temporary name in the same directory, syncs it, then
/// renames it into place and syncs the directory: a reader never sees a partial
/// file under `path`, and a failure (a full disk) leaves nothing behind.
pub fn write_atomically(path: &Path, write: impl FnOnce(&mut std::fs::File) -> io::Result<()>) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut tmp = tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".tmp").tempfile_in(dir)?;
    write(tmp.as_file_mut())?;
    // Dists, patches and sidecars are served to the world: not mkstemp's 0600.
    tmp.as_file().set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// fsync of a directory, so that a rename in it survives a power loss.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
