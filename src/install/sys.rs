//! The handful of system calls the installer makes that std does not offer
//! without following symlinks: lchown, utimensat with AT_SYMLINK_NOFOLLOW,
//! mkfifo, mknod, flock, syncfs. Each is a thin, safe wrapper.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path has a NUL byte"))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// chown that never follows a final symlink.
pub fn lchown(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let c = cpath(path)?;
    // SAFETY: valid C string.
    check(unsafe { libc::lchown(c.as_ptr(), uid as libc::uid_t, gid as libc::gid_t) })
}

/// Sets access and modification time to `mtime` without following a final
/// symlink (tar keeps one time; GNU tar also restores atime from it with -p).
pub fn set_mtime_nofollow(path: &Path, mtime: i64) -> io::Result<()> {
    let c = cpath(path)?;
    let t = libc::timespec { tv_sec: mtime as libc::time_t, tv_nsec: 0 };
    let times = [t, t];
    // SAFETY: valid C string and a two-element timespec array.
    check(unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })
}

/// Puts back a modification time read earlier, to the nanosecond, leaving the
/// access time alone.
pub fn restore_mtime(path: &Path, sec: i64, nsec: i64) -> io::Result<()> {
    let c = cpath(path)?;
    let times =
        [libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT }, libc::timespec { tv_sec: sec as libc::time_t, tv_nsec: nsec as _ }];
    // SAFETY: valid C string and a two-element timespec array.
    check(unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })
}

pub fn mkfifo(path: &Path, mode: u32) -> io::Result<()> {
    let c = cpath(path)?;
    // SAFETY: valid C string.
    check(unsafe { libc::mkfifo(c.as_ptr(), mode as libc::mode_t) })
}

/// Creates a character or block device node.
pub fn mknod(path: &Path, block: bool, mode: u32, major: u32, minor: u32) -> io::Result<()> {
    let c = cpath(path)?;
    let kind = if block { libc::S_IFBLK } else { libc::S_IFCHR };
    #[allow(clippy::unnecessary_cast)]
    let dev = libc::makedev(major as _, minor as _) as libc::dev_t;
    // SAFETY: valid C string.
    check(unsafe { libc::mknod(c.as_ptr(), kind | mode as libc::mode_t, dev) })
}

/// Takes an exclusive flock on `file` without waiting; `Ok(false)` when another
/// process holds it. The kernel drops the lock when its holder dies, so a lock
/// left by a killed process is no lock.
pub fn try_lock(file: &std::fs::File) -> io::Result<bool> {
    // SAFETY: a valid, open descriptor.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Blocks until the exclusive flock on `file` is ours.
pub fn lock(file: &std::fs::File) -> io::Result<()> {
    // SAFETY: a valid, open descriptor.
    check(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) })
}

pub fn is_root() -> bool {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Makes everything written to the file system holding `path` durable:
/// Linux's syncfs(2), which waits for the data. The BSDs have none, and their
/// sync(2) may return before the data is written; `durable` fsyncs file by
/// file there and never calls this.
pub fn sync_filesystem(path: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let f = std::fs::File::open(path)?;
        // SAFETY: a valid, open descriptor.
        check(unsafe { libc::syncfs(f.as_raw_fd()) })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        Err(io::Error::new(io::ErrorKind::Unsupported, "no syncfs(2) on this system"))
    }
}

/// While alive, SIGINT, SIGHUP and SIGTERM are ignored (as OpenBSD's syspatch
/// does while installing): a commit interrupted anyway is finished by the next
/// run, but a terminal closing is no reason to make the admin do that.
pub struct NoInterrupts {
    old: [libc::sighandler_t; 3],
}

const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGHUP, libc::SIGTERM];

pub fn ignore_interrupts() -> NoInterrupts {
    // SAFETY: installing SIG_IGN and later restoring the previous dispositions.
    let old = SIGNALS.map(|s| unsafe { libc::signal(s, libc::SIG_IGN) });
    NoInterrupts { old }
}

impl Drop for NoInterrupts {
    fn drop(&mut self) {
        for (s, h) in SIGNALS.iter().zip(self.old) {
            // SAFETY: restoring what ignore_interrupts found.
            unsafe { libc::signal(*s, h) };
        }
    }
}

/// Starts writing a staged file's data to disk without waiting for it, so that
/// the syncfs before the commit record finds little left to do (Linux only;
/// elsewhere each staged file is fsynced).
pub fn start_writeback(file: &std::fs::File) {
    #[cfg(target_os = "linux")]
    // SAFETY: a valid, open descriptor; offset and length 0 mean the whole file.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}
