//! Tar members in and out, the hashing tee, gzip in and out.
//!
//! Every other module sees a tar as a sequence of [`Member`]s with [`Meta`]data.
//! Parsing leans on the `tar` crate's header field decoding; extraction is never
//! done here nor by that crate (it turns fifos and devices into regular files and
//! has had path-escape bugs): the installer does it with its own code.
//! Like tar-rs, everything is generic over `Read`/`Write` and compression is left
//! to the caller.

pub mod gz;
pub mod hash;
pub mod read;
pub mod write;

use std::path::{Component, Path, PathBuf};

pub use hash::{Digests, HashingReader, HashingWriter};
pub use read::{Member, Reader, TarError};
pub use write::Writer;

pub const BLOCK: usize = 512;

/// What kind of entry a member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// A hard link to an earlier member, named by `Meta::link`.
    HardLink,
    Fifo,
    CharDev,
    BlockDev,
}

impl Kind {
    /// The word used in manifests and `info` output.
    pub fn word(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Symlink => "link",
            Kind::HardLink => "hardlink",
            Kind::Fifo => "fifo",
            Kind::CharDev => "char",
            Kind::BlockDev => "block",
        }
    }

    pub fn from_word(w: &str) -> Option<Kind> {
        [Kind::File, Kind::Dir, Kind::Symlink, Kind::HardLink, Kind::Fifo, Kind::CharDev, Kind::BlockDev]
            .into_iter()
            .find(|k| k.word() == w)
    }
}

/// The metadata of one tar member, as binarydist cares about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Relative path as stored (no leading `/` or `./`, no trailing `/`).
    pub path: PathBuf,
    pub kind: Kind,
    /// Permission bits including setuid, setgid and sticky (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    /// Data size; zero for everything but regular files.
    pub size: u64,
    /// Symlink target, or the stored path of a hard link's target.
    pub link: Option<PathBuf>,
    /// Device major and minor for character and block devices.
    pub dev: Option<(u32, u32)>,
    /// BSD file flags as bsdtar writes them in `SCHILY.fflags` (`schg,uappnd`).
    pub flags: Option<String>,
}

impl Meta {
    pub fn new(path: impl Into<PathBuf>, kind: Kind) -> Meta {
        Meta {
            path: path.into(),
            kind,
            mode: if kind == Kind::Dir { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            mtime: 0,
            size: 0,
            link: None,
            dev: None,
            flags: None,
        }
    }
}

/// Why a stored path may not be used under a root directory.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UnsafePath {
    #[error("absolute path")]
    Absolute,
    #[error("path with '..'")]
    DotDot,
    #[error("empty path")]
    Empty,
}

/// Checks that a stored path stays inside whatever root it is joined to: no
/// absolute path, no `..` (the path-escape class of bugs the tar crate has had).
/// Symlinks along the way are the installer's business, since only it sees the root.
pub fn check_relative(path: &Path) -> Result<(), UnsafePath> {
    let mut any = false;
    for c in path.components() {
        match c {
            Component::Normal(_) => any = true,
            Component::CurDir => {}
            Component::ParentDir => return Err(UnsafePath::DotDot),
            Component::RootDir | Component::Prefix(_) => return Err(UnsafePath::Absolute),
        }
    }
    if any {
        Ok(())
    } else {
        Err(UnsafePath::Empty)
    }
}

/// Orders paths component by component, so that a directory is followed at once
/// by its contents (`a`, `a/x`, `a.b`), as tar extraction wants and as
/// `tar --sort=name` does: the order of a dist's members.
pub fn path_order(a: &Path, b: &Path) -> std::cmp::Ordering {
    use std::os::unix::ffi::OsStrExt;
    a.components().map(|c| c.as_os_str().as_bytes()).cmp(b.components().map(|c| c.as_os_str().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_checked() {
        assert!(check_relative(Path::new("usr/bin/ls")).is_ok());
        assert_eq!(check_relative(Path::new("/etc/passwd")), Err(UnsafePath::Absolute));
        assert_eq!(check_relative(Path::new("usr/../../etc")), Err(UnsafePath::DotDot));
        assert_eq!(check_relative(Path::new(".")), Err(UnsafePath::Empty));
    }
}
