//! The calls that differ between DragonFly and the Linux machines the tests
//! run on, or that std does not make without following a symlink: BSD file
//! flags (chflags), device numbers and nodes, fifos, owners and times of
//! symlinks, free space, flock, syncfs, the signals an install ignores.
//!
//! Each is one small function over std or rustix. Three calls have no safe
//! wrapper and stay `unsafe` here, each with its SAFETY comment: lchflags(2)
//! (the BSDs), mkfifo(2) (rustix's mkfifoat goes through mknodat(2), which
//! DragonFly's kern_mknod refuses for a fifo with EINVAL) and signal(3);
//! sync_file_range(2), a Linux-only hint, is the fourth. On systems without
//! file flags the flag functions are no-ops, unless a test-hooks build fakes
//! them (see `testhooks`).

use crate::testhooks;
use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, Timespec, Timestamps, CWD};
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The BSD file flags of `path` (not following a final symlink), in the words
/// `fflagstostr(3)` and bsdtar use (`schg,uappnd`); `None` when there are none.
pub fn file_flags(path: &Path) -> io::Result<Option<String>> {
    if let Some(faked) = testhooks::fake_file_flags(path) {
        return faked;
    }
    native::file_flags(path)
}

/// Sets the BSD file flags of `path` (not following a symlink); `None` or an
/// empty string clears them all.
pub fn set_file_flags(path: &Path, flags: Option<&str>) -> io::Result<()> {
    if let Some(faked) = testhooks::fake_set_file_flags(path, flags) {
        return faked;
    }
    native::set_file_flags(path, flags.unwrap_or(""))
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

/// chown that never follows a final symlink.
pub fn lchown(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
}

/// Sets access and modification time to `mtime` without following a final
/// symlink (tar keeps one time; GNU tar also restores atime from it with -p).
pub fn set_mtime_nofollow(path: &Path, mtime: i64) -> io::Result<()> {
    let t = Timespec { tv_sec: mtime, tv_nsec: 0 };
    rustix::fs::utimensat(CWD, path, &Timestamps { last_access: t, last_modification: t }, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// Puts back a modification time read earlier, to the nanosecond, leaving the
/// access time alone.
pub fn restore_mtime(path: &Path, sec: i64, nsec: i64) -> io::Result<()> {
    let times = Timestamps {
        last_access: Timespec { tv_sec: 0, tv_nsec: rustix::fs::UTIME_OMIT },
        last_modification: Timespec { tv_sec: sec, tv_nsec: nsec },
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// A fifo readable and writable by its owner only (the caller sets the mode).
pub fn mkfifo(path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path has a NUL byte"))?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call, which
    // only reads it.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A character or block device node, for its owner only (the caller sets the mode).
pub fn mknod(path: &Path, block: bool, major: u32, minor: u32) -> io::Result<()> {
    let kind = if block { FileType::BlockDevice } else { FileType::CharacterDevice };
    rustix::fs::mknodat(CWD, path, kind, Mode::RUSR | Mode::WUSR, rustix::fs::makedev(major, minor))?;
    Ok(())
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

    pub fn set_file_flags(path: &Path, flags: &str) -> io::Result<()> {
        let mut bits: libc::c_ulong = 0;
        for w in flags.split(',').filter(|w| !w.is_empty()) {
            let (b, _) = NAMES.iter().find(|(_, n)| *n == w).ok_or_else(|| io::Error::other(format!("unknown file flag {w:?}")))?;
            bits |= b;
        }
        let c =
            CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path has a NUL byte"))?;
        // SAFETY: `c` is a NUL-terminated string that outlives the call, which
        // only reads it; lchflags(2) has no other pointer argument.
        if unsafe { libc::lchflags(c.as_ptr(), bits) } != 0 {
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

    pub fn set_file_flags(_path: &Path, _flags: &str) -> io::Result<()> {
        Ok(())
    }
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
