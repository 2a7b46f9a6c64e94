//! The one OS function behind the HAMMER2 snapshot an install takes before
//! its commit: where the root is on HAMMER2, `hammer2 snapshot MOUNT LABEL`
//! (a writable snapshot of the whole PFS, instant, boot-able), so that an
//! install gone wrong can be left by booting the snapshot. Elsewhere it does
//! nothing. A test-hooks build has a backend that pretends the root is on
//! HAMMER2 and records each call (testhooks.rs, BINARYDIST_TEST_SNAPSHOT=DIR:
//! appended to DIR/calls, beside the fake flag backend's renames when both
//! name one DIR).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io;
use std::path::Path;

/// A snapshot taken: its label, and how to boot from it or mount it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Snapshot {
    pub label: String,
    /// The mount point it is a snapshot of.
    pub mount: String,
    /// The device spec of the snapshot (`DEV@LABEL`), for mount(8) and the loader.
    pub spec: String,
}

impl Snapshot {
    /// One sentence for the admin.
    pub fn how_to_use(&self) -> String {
        format!(
            "HAMMER2 snapshot {} of {}: to boot it, at the loader prompt `set vfs.root.mountfrom=hammer2:{}` then `boot`; to restore files, `mount -t hammer2 {} /mnt`",
            self.label, self.mount, self.spec, self.spec
        )
    }
}

/// Takes a snapshot of the HAMMER2 file system holding `root`, labelled
/// `label`; `None` when `root` is not on HAMMER2.
pub fn take(root: &Path, label: &str) -> io::Result<Option<Snapshot>> {
    if let Some(r) = fake(root, label) {
        return r;
    }
    backend::take(root, label)
}

/// The test backend (testhooks.rs): the root taken for HAMMER2, the call recorded.
fn fake(root: &Path, label: &str) -> Option<io::Result<Option<Snapshot>>> {
    let logged = crate::testhooks::fake_snapshot(root, label)?;
    Some(
        logged.map(|()| Some(Snapshot { label: label.to_string(), mount: root.display().to_string(), spec: format!("/dev/fake@{label}") })),
    )
}

#[cfg(target_os = "dragonfly")]
mod backend {
    use super::Snapshot;
    use std::ffi::{CStr, CString};
    use std::io;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    pub fn take(root: &Path, label: &str) -> io::Result<Option<Snapshot>> {
        let c = CString::new(root.as_os_str().as_bytes()).map_err(|_| io::Error::other("NUL in path"))?;
        let mut s: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: valid C string and a writable statfs.
        if unsafe { libc::statfs(c.as_ptr(), &mut s) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel NUL-terminates these fields.
        let text = |f: &[libc::c_char]| unsafe { CStr::from_ptr(f.as_ptr()) }.to_string_lossy().into_owned();
        if text(&s.f_fstypename) != "hammer2" {
            return Ok(None);
        }
        let (mount, from) = (text(&s.f_mntonname), text(&s.f_mntfromname));
        let st = std::process::Command::new("hammer2").args(["snapshot", &mount, label]).status()?;
        if !st.success() {
            return Err(io::Error::other(format!("hammer2 snapshot {mount} {label}: {st}")));
        }
        let dev = from.split('@').next().unwrap_or(&from).to_string();
        Ok(Some(Snapshot { label: label.to_string(), mount, spec: format!("{dev}@{label}") }))
    }
}

#[cfg(not(target_os = "dragonfly"))]
mod backend {
    use super::Snapshot;
    use std::io;
    use std::path::Path;

    /// Only DragonFly has HAMMER2.
    pub fn take(_root: &Path, _label: &str) -> io::Result<Option<Snapshot>> {
        Ok(None)
    }
}
