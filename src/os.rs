//! The few calls that differ between DragonFly and the Linux machines the tests
//! run on: BSD file flags (chflags), device numbers, file system free space.
//!
//! Each is one small function. On systems without file flags the flag functions
//! are no-ops, unless the test backend is switched on by `BINARYDIST_TEST_FLAGS`:
//! then flags are read from `$BINARYDIST_TEST_FLAGS/flags` (lines `ABSPATH<TAB>flags`)
//! and every change is appended to `$BINARYDIST_TEST_FLAGS/calls`, so that tests
//! on Linux can inject flags and check the order of calls.

use std::io;
use std::path::Path;

/// Environment variable that switches on the test flag backend.
pub const TEST_FLAGS_ENV: &str = "BINARYDIST_TEST_FLAGS";

/// The BSD file flags of `path` (not following a final symlink), in the words
/// `fflagstostr(3)` and bsdtar use (`schg,uappnd`); `None` when there are none.
pub fn file_flags(path: &Path) -> io::Result<Option<String>> {
    if let Some(dir) = std::env::var_os(TEST_FLAGS_ENV) {
        return test_backend::get(Path::new(&dir), path);
    }
    native::file_flags(path)
}

/// Sets the BSD file flags of `path` (not following a symlink); `None` or an
/// empty string clears them all.
pub fn set_file_flags(path: &Path, flags: Option<&str>) -> io::Result<()> {
    if let Some(dir) = std::env::var_os(TEST_FLAGS_ENV) {
        return test_backend::log(Path::new(&dir), &format!("set\t{}\t{}", path.display(), flags.unwrap_or("")));
    }
    native::set_file_flags(path, flags.unwrap_or(""))
}

/// Records a step in the test backend's call log (a rename, say), so a test
/// can check its order against flag changes; does nothing otherwise.
pub fn log_step(step: &str, path: &Path) {
    if let Some(dir) = std::env::var_os(TEST_FLAGS_ENV) {
        let _ = test_backend::log(Path::new(&dir), &format!("{step}\t{}", path.display()));
    }
}

/// Test-only (feature `test-hooks`): the kern.securelevel to pretend, so that
/// tests on Linux can see an install refuse what DragonFly would not allow.
#[cfg(feature = "test-hooks")]
pub const TEST_SECURELEVEL_ENV: &str = "BINARYDIST_TEST_SECURELEVEL";

/// The flags that kern.securelevel protects (securelevel(7)): with any of
/// them on a file, the file's flags cannot change while the level is above 0.
pub const SYSTEM_FLAGS: [&str; 3] = ["schg", "sappnd", "sunlnk"];

/// Why this system will not let the installer change the flags of a file
/// that has a system flag (schg, sappnd, sunlnk), if it will not: on
/// DragonFly, kern.securelevel above 0 (raised by init or an admin, lowered
/// only by a reboot). `None` where it may, and where there are no such flags.
pub fn system_flags_locked() -> io::Result<Option<String>> {
    #[cfg(feature = "test-hooks")]
    if let Some(level) = std::env::var_os(TEST_SECURELEVEL_ENV) {
        let level: i32 = level.to_str().and_then(|l| l.parse().ok()).ok_or_else(|| io::Error::other("bad test securelevel"))?;
        return Ok(securelevel_forbids(level));
    }
    Ok(native::securelevel()?.and_then(securelevel_forbids))
}

fn securelevel_forbids(level: i32) -> Option<String> {
    (level > 0).then(|| format!("kern.securelevel is {level}, which forbids clearing schg, sappnd and sunlnk"))
}

/// Major and minor numbers of a device number, as tar stores them.
pub fn dev_split(rdev: u64) -> (u32, u32) {
    #[allow(clippy::unnecessary_cast)]
    let rdev = rdev as libc::dev_t;
    (libc::major(rdev) as u32, libc::minor(rdev) as u32)
}

/// Bytes available to an unprivileged writer on the file system holding `path`.
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::other("path has a NUL byte"))?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid C string and s a properly sized, writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(s.f_bavail as u64 * s.f_frsize as u64)
}

mod test_backend {
    use std::io::{self, Write};
    use std::path::Path;

    pub fn get(dir: &Path, path: &Path) -> io::Result<Option<String>> {
        let table = match std::fs::read_to_string(dir.join("flags")) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let want = path.to_string_lossy();
        Ok(table.lines().filter_map(|l| l.split_once('\t')).find(|(p, _)| *p == want).map(|(_, f)| f.to_string()).filter(|f| !f.is_empty()))
    }

    pub fn log(dir: &Path, line: &str) -> io::Result<()> {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("calls"))?;
        writeln!(f, "{line}")
    }
}

#[cfg(any(target_os = "dragonfly", target_os = "freebsd", target_os = "netbsd", target_os = "openbsd", target_os = "macos"))]
mod native {
    use std::ffi::CString;
    use std::io;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    // The names fflagstostr(3) prints, from DragonFly's sys/stat.h and
    // lib/libc/gen/strtofflags.c.
    const NAMES: &[(u64, &str)] = &[
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

    fn cpath(path: &Path) -> io::Result<CString> {
        CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::other("path has a NUL byte"))
    }

    pub fn file_flags(path: &Path) -> io::Result<Option<String>> {
        let c = cpath(path)?;
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid C string, writable stat buffer.
        if unsafe { libc::lstat(c.as_ptr(), &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let bits = st.st_flags as u64;
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
        let mut bits = 0u64;
        for w in flags.split(',').filter(|w| !w.is_empty()) {
            let (b, _) = NAMES.iter().find(|(_, n)| *n == w).ok_or_else(|| io::Error::other(format!("unknown file flag {w:?}")))?;
            bits |= b;
        }
        let c = cpath(path)?;
        // SAFETY: valid C string.
        if unsafe { libc::lchflags(c.as_ptr(), bits as _) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(not(any(target_os = "dragonfly", target_os = "freebsd", target_os = "netbsd", target_os = "openbsd", target_os = "macos")))]
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
