//! The checks an install makes before it writes anything (the root, the base
//! a chain starts from, the new manifest, file flags the system will not let
//! the commit change, free space), and the stream's verification after it was
//! staged; `dryrun` makes the same ones.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::plan::{self, Plan};
use super::source::{Source, Stream};
use super::state::{self, State};
use super::{io_err, InstallError};
use crate::manifest::{self, Manifest};
use crate::names::DistName;
use crate::testhooks;
use std::path::{Path, PathBuf};

pub(super) fn check_root(root: &Path) -> Result<PathBuf, InstallError> {
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => std::fs::canonicalize(root).map_err(io_err(root)),
        Ok(_) => Err(InstallError::RootNotDir(root.to_path_buf())),
        Err(e) => Err(io_err(root)(e)),
    }
}

/// Into a root without a state directory: the checks an install makes before
/// it writes anything (the dist's name, sidecars and manifest, the plan and
/// its refusals, flags, room), on a stream that is read no further and kept
/// nowhere. Then the state directory and its lock can be made.
pub(super) fn look_before_making_state(root: &Path, source: &Source) -> Result<(), InstallError> {
    let target = source.target_name()?;
    source.check_base(None, Path::new(state::STATE_DIR), false)?;
    let mut stream = source.open(None, None, None)?;
    let manifest = read_new_manifest(&mut stream, &target)?.manifest;
    let plan = plan::make(root, &manifest, None)?;
    check_flags_changeable(root, &manifest, &plan)?;
    // The state directory will be on the file system of its nearest existing ancestor.
    let probe = root.join(state::STATE_DIR).ancestors().find(|a| a.is_dir()).unwrap_or(root).to_path_buf();
    let dev = std::os::unix::fs::MetadataExt::dev(&std::fs::metadata(&probe).map_err(io_err(&probe))?);
    check_free_space(root, &plan, &(dev, probe), stream.base_estimate())
}

/// A chain must start from the kept base; a full dist may replace anything of
/// its own series and arch (a reinstall, or a fresh start after drift).
pub(super) fn check_base(state: &State, source: &Source, target: &DistName) -> Result<(), InstallError> {
    let installed = state.installed(&target.series)?;
    let have_base = state.base(&target.series)?.is_some();
    source.check_base(installed.as_ref().map(|i| &i.name), &state.base_path(&target.series), have_base)?;
    if let Some(i) = &installed {
        if i.name.arch != target.arch {
            return Err(InstallError::WrongArch { installed: i.name.to_string(), arch: i.name.arch.clone(), found: target.arch.clone() });
        }
    }
    Ok(())
}

/// The manifest, first member of the stream: what the dist is and every entry.
pub(super) fn read_new_manifest(stream: &mut Stream, target: &DistName) -> Result<manifest::Member, InstallError> {
    let m = manifest::read_member(&mut stream.reader).map_err(|e| InstallError::Manifest { what: stream.what.clone(), source: e })?;
    if m.manifest.name != *target {
        return Err(InstallError::WrongDist {
            what: stream.what.clone(),
            expected: target.to_string(),
            found: m.manifest.name.to_string(),
        });
    }
    Ok(m)
}

/// The commit clears the flags of every file it replaces or changes in place,
/// and removes the old kernel.old. Where the system forbids that for a file
/// with schg, sappnd or sunlnk (kern.securelevel above 0), the install would
/// stop half-way through its commit, as FreeBSD's pkg does: refuse it now,
/// before anything is staged, naming the first such file.
pub(super) fn check_flags_changeable(root: &Path, manifest: &Manifest, plan: &Plan) -> Result<(), InstallError> {
    let Some(why) = crate::os::system_flags_locked().map_err(io_err(Path::new("kern.securelevel")))? else {
        return Ok(());
    };
    let mut touched: Vec<PathBuf> = manifest
        .entries
        .iter()
        .zip(plan.actions.iter().zip(&plan.existed))
        .filter(|(_, (a, existed))| **existed && matches!(a, plan::Action::Stage | plan::Action::MetaOnly))
        .map(|(e, _)| root.join(&e.meta.path))
        .collect();
    if let Some((kernel, _)) = &plan.kernel {
        let mut old = kernel.as_os_str().to_os_string();
        old.push(".old");
        let old = root.join(old);
        // kern.post.mk: the .old "might be a file and not a directory".
        if std::fs::symlink_metadata(&old).is_ok() {
            touched.push(old.clone());
        }
        let mut dirs = vec![old];
        while let Some(d) = dirs.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else { continue };
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs.push(e.path());
                }
                touched.push(e.path());
            }
        }
    }
    for p in touched {
        let flags = crate::os::file_flags(&p).map_err(io_err(&p))?.unwrap_or_default();
        if flags.split(',').any(|f| crate::os::SYSTEM_FLAGS.contains(&f)) {
            let path = p.strip_prefix(root).map(|r| Path::new("/").join(r)).unwrap_or_else(|_| p.clone());
            return Err(InstallError::FlagsLocked { path, flags, why });
        }
    }
    Ok(())
}

/// Room for the staged entries on every file system that gets some, and for
/// the next base on the state directory's (`state_fs`: its device and a
/// directory on it).
pub(super) fn check_free_space(root: &Path, plan: &Plan, state_fs: &(u64, PathBuf), base_bytes: u64) -> Result<(), InstallError> {
    if testhooks::skip_space_check() {
        return Ok(());
    }
    let mut needs: Vec<(u64, plan::Need)> = plan.needs.iter().map(|(d, n)| (*d, n.clone())).collect();
    let (sdev, sprobe) = state_fs;
    match needs.iter_mut().find(|(d, _)| d == sdev) {
        Some((_, n)) => n.bytes += base_bytes,
        None => needs.push((*sdev, plan::Need { probe: sprobe.clone(), bytes: base_bytes })),
    }
    for (_, need) in needs {
        // A little slack for directories and the journal.
        let want = need.bytes + (1 << 20);
        let free = crate::os::free_bytes(&need.probe).map_err(io_err(&need.probe))?;
        if free < want {
            let probe = need.probe.strip_prefix(root).map(|p| Path::new("/").join(p)).unwrap_or(need.probe);
            return Err(InstallError::NoSpace { probe, need: want, free });
        }
    }
    Ok(())
}

/// Reads the stream to its end and checks size, MD5 and SHA-256.
pub(super) fn verify_stream(stream: Stream) -> Result<crate::tario::Digests, InstallError> {
    let what = stream.what.clone();
    let expected = stream.expected.clone();
    let digests = stream.finish()?;
    let size_ok = expected.size.is_none_or(|s| s == digests.size);
    if !size_ok {
        return Err(InstallError::Digest {
            what,
            algo: "size",
            expected: expected.size.unwrap_or(0).to_string(),
            found: digests.size.to_string(),
            from: expected.from,
        });
    }
    for (algo, want, got) in [("MD5", &expected.md5, digests.md5_hex()), ("SHA-256", &expected.sha256, digests.sha256_hex())] {
        if *want != got {
            return Err(InstallError::Digest { what: what.clone(), algo, expected: want.clone(), found: got, from: expected.from.clone() });
        }
    }
    Ok(digests)
}
