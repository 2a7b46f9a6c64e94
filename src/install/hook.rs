//! Test-only crash points. `BINARYDIST_TEST_KILL_AT=STEP:N` makes the process
//! SIGKILL itself (a real kill -9: no destructors, no flushing) the Nth time it
//! reaches the point named STEP, so that tests can interrupt an install at
//! every step and check that the next run converges. Unset, a point costs one
//! load of a cached value. Not for production use.
//!
//! Points: `stage` (before each staged entry), `staged` (all staged, stream not
//! yet verified), `verified`, `journal` (commit record durable, nothing renamed),
//! `op` (before each commit operation), `flags` (after a rename, before its
//! flags are set), `kernel-old` (current kernel moved to kernel.old, new one not
//! yet in place), `upgrade` (before make upgrade), `upgrading` (make upgrade
//! started, and left running), `upgraded` (make upgrade done,
//! not yet recorded), `recorded` (base and installed record replaced, journal
//! still there).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

pub const KILL_AT_ENV: &str = "BINARYDIST_TEST_KILL_AT";
/// Test-only: skip the free-space check so that a full disk is hit while staging.
pub const SKIP_SPACE_CHECK_ENV: &str = "BINARYDIST_TEST_SKIP_SPACE_CHECK";

static SPEC: OnceLock<Option<(String, u64)>> = OnceLock::new();
static COUNT: AtomicU64 = AtomicU64::new(0);

pub fn point(step: &str) {
    let spec = SPEC.get_or_init(|| {
        let v = std::env::var(KILL_AT_ENV).ok()?;
        let (s, n) = v.rsplit_once(':')?;
        Some((s.to_string(), n.parse().ok()?))
    });
    if let Some((s, n)) = spec {
        if s == step && COUNT.fetch_add(1, Ordering::SeqCst) + 1 == *n {
            super::sys::kill_self();
        }
    }
}

pub fn skip_space_check() -> bool {
    std::env::var_os(SKIP_SPACE_CHECK_ENV).is_some()
}
