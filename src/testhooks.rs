//! Every point where a test reaches into binarydist, in one place.
//!
//! They exist only in a build with the cargo feature `test-hooks`, which `make
//! test` turns on for the test suite. Without it (`make`, `make install`, `make
//! demo`, `cargo build --release`) every function here is an empty inline
//! function: no variable below is read, and their names are not even in the
//! binary. A stray variable on a build machine or a target can therefore not
//! make `pack` run a command as root, turn chflags into a no-op or skip a check;
//! `tests/it/shipped.rs` runs the shipped binary to show it.
//!
//! The variables, each read only in a test-hooks build:
//!
//! - `BINARYDIST_TEST_KILL_AT=STEP:N`: the process SIGKILLs itself (a real
//!   kill -9: no destructors, no flushing) the Nth time it reaches the point
//!   named STEP, so that tests can interrupt an install at every step. Points:
//!   `stage` (before each staged entry), `staged` (all staged, stream not yet
//!   verified), `verified`, `journal` (commit record durable, nothing renamed),
//!   `op` (before each commit operation), `flags` (after a rename, before its
//!   flags are set), `kernel-old` (current kernel moved to kernel.old, new one
//!   not yet in place), `upgrade` (before make upgrade), `upgrading` (make
//!   upgrade started, and left running), `upgraded` (make upgrade done, not yet
//!   recorded), `recorded` (base and installed record replaced, journal still
//!   there). `bytes:N` is a point by size: the first time staging has written
//!   N bytes of file data in all, mid-file (tests/it/install_faults.rs picks
//!   random ones). Two points are in `update`'s downloads (fetch.rs):
//!   `downloaded` (a file's body all written to `NAME.part`, synced and its
//!   SHA-256 checked, not yet renamed to `NAME`), and `fetched:N`, a
//!   point by size: the first time the run has written N bytes of downloaded
//!   data in all, over every file (checked after each write, so a `.part` is
//!   cut mid-way; tests/it/update_faults.rs picks random ones).
//! - `BINARYDIST_TEST_SKIP_SPACE_CHECK=1`: no free-space check before staging,
//!   so that a full disk is met while staging.
//! - `BINARYDIST_TEST_HOOK_PACK=CMD`: `sh -c CMD` between pack's hashing pass
//!   and its writing pass, so that a test can change the stage exactly there.
//! - `BINARYDIST_TEST_HOOK_META=CMD`: `sh -c CMD sh PATH` each time the
//!   installer has looked at an entry whose owner, mode, times or flags it is
//!   about to set, and has not set them yet, so that a test can swap the entry
//!   for a symlink exactly there (the race of a user who owns it).
//! - `BINARYDIST_TEST_FLAGS=DIR`: a fake BSD file-flag backend for Linux. Flags
//!   are read from `DIR/flags` (lines `ABSPATH<TAB>flags`), and every flag
//!   change and every rename of the commit is appended to `DIR/calls`, so that
//!   a test can inject flags and check the order of calls.
//! - `BINARYDIST_TEST_SYNC=per-file`: staged files are made durable by an
//!   fsync of each file and directory, the BSDs' way, instead of Linux's
//!   syncfs, so that the tests run that path too.
//! - `BINARYDIST_TEST_SECURELEVEL=N`: the kern.securelevel to pretend, so that
//!   tests on Linux see an install refuse what DragonFly would not allow.
//! - `BINARYDIST_TEST_SNAPSHOT=DIR`: the root is taken to be on HAMMER2, and each
//!   snapshot call is appended to `DIR/calls` (`snapshot<TAB>ROOT<TAB>LABEL`)
//!   instead of running hammer2(8): with BINARYDIST_TEST_FLAGS=DIR too, the
//!   same file shows it among the commit's renames.

#[cfg(feature = "test-hooks")]
mod hooks {
    use std::io::{self, Write};
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    static KILL_AT: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static REACHED: AtomicU64 = AtomicU64::new(0);

    fn kill_spec() -> &'static Option<(String, u64)> {
        KILL_AT.get_or_init(|| {
            let v = std::env::var("BINARYDIST_TEST_KILL_AT").ok()?;
            let (s, n) = v.rsplit_once(':')?;
            Some((s.to_string(), n.parse().ok()?))
        })
    }

    /// A real kill -9 of this process: no destructors, no flushing.
    fn die() -> ! {
        let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        unreachable!("SIGKILL returned");
    }

    pub fn kill_point(step: &str) {
        let spec = kill_spec();
        if let Some((s, n)) = spec {
            if s == step && REACHED.fetch_add(1, Ordering::SeqCst) + 1 == *n {
                die();
            }
        }
    }

    /// `BINARYDIST_TEST_KILL_AT=bytes:N`: once staging has written N bytes of
    /// file data in all (checked after each write, so a file is cut mid-way).
    pub fn kill_at_bytes(written: u64) {
        let spec = kill_spec();
        if let Some((s, n)) = spec {
            if s == "bytes" && written >= *n {
                die();
            }
        }
    }

    static FETCHED: AtomicU64 = AtomicU64::new(0);

    /// `BINARYDIST_TEST_KILL_AT=fetched:N`: once downloads have written N
    /// bytes in all (`n` more were just written).
    pub fn kill_at_fetched(n: u64) {
        let spec = kill_spec();
        if let Some((s, at)) = spec {
            if s == "fetched" && FETCHED.fetch_add(n, Ordering::SeqCst) + n >= *at {
                die();
            }
        }
    }

    pub fn skip_space_check() -> bool {
        std::env::var_os("BINARYDIST_TEST_SKIP_SPACE_CHECK").is_some()
    }

    pub fn between_pack_passes() {
        if let Some(cmd) = std::env::var_os("BINARYDIST_TEST_HOOK_PACK") {
            let _ = std::process::Command::new("sh").arg("-c").arg(cmd).status();
        }
    }

    pub fn per_file_sync() -> bool {
        std::env::var("BINARYDIST_TEST_SYNC").is_ok_and(|v| v == "per-file")
    }

    pub fn between_look_and_set(path: &Path) {
        if let Some(cmd) = std::env::var_os("BINARYDIST_TEST_HOOK_META") {
            let _ = std::process::Command::new("sh").arg("-c").arg(cmd).arg("sh").arg(path).status();
        }
    }

    pub fn fake_securelevel() -> Option<io::Result<i32>> {
        let level = std::env::var_os("BINARYDIST_TEST_SECURELEVEL")?;
        Some(level.to_str().and_then(|l| l.parse().ok()).ok_or_else(|| io::Error::other("bad BINARYDIST_TEST_SECURELEVEL")))
    }

    fn flags_dir() -> Option<std::path::PathBuf> {
        std::env::var_os("BINARYDIST_TEST_FLAGS").map(Into::into)
    }

    fn log(dir: &Path, line: &str) -> io::Result<()> {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("calls"))?;
        writeln!(f, "{line}")
    }

    pub fn fake_file_flags(path: &Path) -> Option<io::Result<Option<String>>> {
        let dir = flags_dir()?;
        let table = match std::fs::read_to_string(dir.join("flags")) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Some(Ok(None)),
            Err(e) => return Some(Err(e)),
        };
        let want = path.to_string_lossy();
        let found = table.lines().filter_map(|l| l.split_once('\t')).find(|(p, _)| *p == want).map(|(_, f)| f.to_string());
        Some(Ok(found.filter(|f| !f.is_empty())))
    }

    pub fn fake_set_file_flags(path: &Path, flags: Option<&str>) -> Option<io::Result<()>> {
        let dir = flags_dir()?;
        Some(log(&dir, &format!("set\t{}\t{}", path.display(), flags.unwrap_or(""))))
    }

    pub fn log_step(step: &str, path: &Path) {
        if let Some(dir) = flags_dir() {
            let _ = log(&dir, &format!("{step}\t{}", path.display()));
        }
    }

    pub fn fake_snapshot(root: &Path, label: &str) -> Option<io::Result<()>> {
        let dir = std::env::var_os("BINARYDIST_TEST_SNAPSHOT")?;
        Some(log(Path::new(&dir), &format!("snapshot\t{}\t{label}", root.display())))
    }
}

#[cfg(not(feature = "test-hooks"))]
mod hooks {
    use std::io;
    use std::path::Path;

    #[inline(always)]
    pub fn kill_point(_step: &str) {}

    #[inline(always)]
    pub fn kill_at_bytes(_written: u64) {}

    #[inline(always)]
    pub fn kill_at_fetched(_n: u64) {}

    #[inline(always)]
    pub fn skip_space_check() -> bool {
        false
    }

    #[inline(always)]
    pub fn between_pack_passes() {}

    #[inline(always)]
    pub fn per_file_sync() -> bool {
        false
    }

    #[inline(always)]
    pub fn between_look_and_set(_path: &Path) {}

    #[inline(always)]
    pub fn fake_securelevel() -> Option<io::Result<i32>> {
        None
    }

    #[inline(always)]
    pub fn fake_file_flags(_path: &Path) -> Option<io::Result<Option<String>>> {
        None
    }

    #[inline(always)]
    pub fn fake_set_file_flags(_path: &Path, _flags: Option<&str>) -> Option<io::Result<()>> {
        None
    }

    #[inline(always)]
    pub fn log_step(_step: &str, _path: &Path) {}

    #[inline(always)]
    pub fn fake_snapshot(_root: &Path, _label: &str) -> Option<io::Result<()>> {
        None
    }
}

/// Runs the metadata hook, if any, on the entry at `path`.
pub use hooks::between_look_and_set;
/// Runs the pack hook, if any.
pub use hooks::between_pack_passes;
/// The fake backend's flags of `path`; `None` when the fake backend is off.
pub use hooks::fake_file_flags;
/// The pretended kern.securelevel; `None` when none is pretended.
pub use hooks::fake_securelevel;
/// Records a flag change in the fake backend; `None` when it is off.
pub use hooks::fake_set_file_flags;
/// Records a HAMMER2 snapshot call in the fake backend; `None` when it is off.
pub use hooks::fake_snapshot;
/// The kill point by bytes staged (`bytes:N`, see above).
pub use hooks::kill_at_bytes;
/// The kill point by bytes downloaded (`fetched:N`, see above).
pub use hooks::kill_at_fetched;
/// A kill point named `step` (see above).
pub use hooks::kill_point;
/// Records a step (a rename) in the fake backend's call log, if it is on.
pub use hooks::log_step;
/// Whether a Linux build makes staged files durable one by one, as the BSDs do.
pub use hooks::per_file_sync;
/// Whether the free-space check is skipped.
pub use hooks::skip_space_check;
