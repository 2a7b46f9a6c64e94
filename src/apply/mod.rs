//! `binarydist patch PATCH...`: applies one patch, or a chain of them in one
//! pass, to a tar stream, and gives the new tar as a stream.
//!
//! Before a byte is streamed, every patch's header and ops digest is checked and
//! the chain is checked link by link (each patch's old tar is the previous one's
//! new tar, by name and by digests). Then each patch runs on its own thread,
//! joined to the next by a bounded pipe; each checks its old stream as it reads
//! it and its new stream at the end. This module never touches the file system
//! beyond reading patches, except [`apply_to_file`], which writes through a
//! temporary file and renames only a verified result.
//!
//! Where verification errors surface:
//! - [`apply_chain`] returns them (the bytes already written to `out` are then
//!   garbage: the caller must not commit them);
//! - the [`ChainReader`] of [`chain_reader`] returns an `io::Error` (kind
//!   `InvalidData`, its inner error an [`ApplyError`]) from the read that would
//!   otherwise have returned end of stream: a reader never sees a clean end of a
//!   stream that did not verify. [`ChainReader::finish`] gives the typed error.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod old;
mod out;
pub mod pipe;
pub mod stage;
mod streams;

use crate::names::DistName;
use crate::os;
use crate::patchfile::{self, FormatError, PatchFile};
use crate::tario::{self, Digests};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("{}: applies to {expected}, but the patch before it ({previous}) makes {found}: patches out of order?", patch.display())]
    Chain { patch: PathBuf, previous: String, expected: String, found: String },
    #[error("{}: applies to {expected}, but the base {} is {found}", patch.display(), base.display())]
    Base { patch: PathBuf, base: PathBuf, expected: String, found: String },
    #[error("{}: old tar ({label}): {what}", patch.display())]
    Old { patch: PathBuf, label: String, what: String },
    #[error("{}: corrupt patch at new member {member}: {what}", patch.display())]
    Ops { patch: PathBuf, member: u64, what: String },
    #[error("{}: new tar does not verify: {what}", patch.display())]
    New { patch: PathBuf, what: String },
    #[error("{what}")]
    Output { what: String, source: io::Error },
    #[error("{}: {what}", patch.display())]
    Stopped { patch: PathBuf, what: String },
    #[error("no patches given")]
    NoPatches,
    #[error("a patch stage panicked")]
    Panicked,
    /// An error already returned by a read of a [`ChainReader`], again.
    #[error("{0}")]
    Reported(String),
}

impl ApplyError {
    /// True for an error that only reports that another stage of the chain
    /// stopped: the other stage's error is the one to show.
    fn is_secondary(&self) -> bool {
        match self {
            ApplyError::Stopped { .. } => true,
            ApplyError::Output { source, .. } => source.kind() == pipe::BROKEN,
            _ => false,
        }
    }

    /// Wraps the error for an `io::Read`/`io::Write` caller.
    pub fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }

    /// Recovers an `ApplyError` wrapped by [`ApplyError::into_io`].
    pub fn from_io(e: io::Error) -> Result<ApplyError, io::Error> {
        e.downcast::<ApplyError>()
    }
}

/// Reads every patch's header, checks its ops digest (a truncated or bit-flipped
/// patch is refused here, before streaming) and checks that they chain.
pub fn open_patches(paths: &[PathBuf]) -> Result<Vec<PatchFile>, ApplyError> {
    if paths.is_empty() {
        return Err(ApplyError::NoPatches);
    }
    let mut out: Vec<PatchFile> = Vec::with_capacity(paths.len());
    for path in paths {
        let p = patchfile::read_header(path)?;
        patchfile::verify_streams(&p)?;
        if let Some(prev) = out.last() {
            if prev.to != p.from || prev.header.new != p.header.old {
                return Err(ApplyError::Chain {
                    patch: p.path.clone(),
                    previous: prev.path.display().to_string(),
                    expected: format!("{} (SHA-256 {})", p.from, p.header.old.sha256),
                    found: format!("{} (SHA-256 {})", prev.to, prev.header.new.sha256),
                });
            }
        }
        out.push(p);
    }
    Ok(out)
}

/// Refuses a base file whose name says it is another dist than the one the first
/// patch applies to (a name that is no dist name says nothing: the digests judge).
pub fn check_base_name(base: &Path, first: &PatchFile) -> Result<(), ApplyError> {
    let Some(file) = base.file_name().and_then(|f| f.to_str()) else { return Ok(()) };
    match DistName::from_file_name(file) {
        Ok(name) if name != first.from => Err(ApplyError::Base {
            patch: first.path.clone(),
            base: base.into(),
            expected: first.from.to_string(),
            found: name.to_string(),
        }),
        _ => Ok(()),
    }
}

/// What to call the old stream of stage `i` in messages.
fn stage_label(i: usize, base_label: &str, patches: &[PatchFile]) -> String {
    match i.checked_sub(1).and_then(|before| patches.get(before)) {
        None => base_label.to_string(),
        Some(p) => format!("output of {}", p.path.display()),
    }
}

/// The root cause among the stages' results: the first error, in chain order,
/// that is not just the echo of another stage stopping.
fn pick(results: Vec<Result<Digests, ApplyError>>) -> Result<Digests, ApplyError> {
    let mut last_ok = None;
    let mut secondary = None;
    for r in results {
        match r {
            Ok(d) => last_ok = Some(d),
            Err(e) if e.is_secondary() => {
                secondary.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    match secondary {
        Some(e) => Err(e),
        None => last_ok.ok_or(ApplyError::NoPatches),
    }
}

/// Runs one stage writing into a pipe, closing it only when the stage verified.
fn run_stage<R: Read + Send>(p: &PatchFile, label: &str, old: R, mut out: pipe::PipeWriter) -> Result<Digests, ApplyError> {
    let d = stage::apply_one(p, label, old, &mut out)?;
    out.close().map_err(|e| ApplyError::Output { what: "handing on the new tar".into(), source: e })?;
    Ok(d)
}

/// Applies a checked chain (from [`open_patches`]) to the tar stream `base`,
/// writing the final tar into `out`; returns its digests once every stage
/// verified. `base_label` names the base in messages.
pub fn apply_chain<R: Read + Send, W: Write>(base: R, base_label: &str, patches: &[PatchFile], out: W) -> Result<Digests, ApplyError> {
    let Some((last, firsts)) = patches.split_last() else { return Err(ApplyError::NoPatches) };
    let mut out = out;
    std::thread::scope(|s| {
        let mut input: Box<dyn Read + Send + '_> = Box::new(base);
        let mut handles = Vec::new();
        for (i, p) in firsts.iter().enumerate() {
            let (w, r) = pipe::pipe();
            let old = std::mem::replace(&mut input, Box::new(r));
            let label = stage_label(i, base_label, patches);
            handles.push(s.spawn(move || run_stage(p, &label, old, w)));
        }
        let last_result = stage::apply_one(last, &stage_label(firsts.len(), base_label, patches), input, &mut out);
        let mut results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap_or(Err(ApplyError::Panicked))).collect();
        results.push(last_result);
        pick(results)
    })
}

/// The new tar of a chain of patches applied to `base`, as a stream. Every check
/// that can be made before streaming is made before this returns.
pub fn chain_reader(base: impl Read + Send + 'static, patches: &[PathBuf]) -> Result<ChainReader, ApplyError> {
    let patches = open_patches(patches)?;
    let mut input: Box<dyn Read + Send> = Box::new(base);
    let mut handles = Vec::new();
    for (i, p) in patches.iter().enumerate() {
        let (w, r) = pipe::pipe();
        let old = std::mem::replace(&mut input, Box::new(r));
        let label = stage_label(i, "base", &patches);
        let p = p.clone();
        handles.push(std::thread::spawn(move || run_stage(&p, &label, old, w)));
    }
    Ok(ChainReader { input, handles, outcome: None })
}

/// The output of [`chain_reader`]. Reads give the new tar; the read that would
/// return end of stream first joins every stage, and returns an error instead
/// unless all of them verified.
pub struct ChainReader {
    input: Box<dyn Read + Send>,
    handles: Vec<JoinHandle<Result<Digests, ApplyError>>>,
    outcome: Option<Result<Digests, String>>,
}

impl ChainReader {
    fn join(&mut self) -> Result<Digests, ApplyError> {
        let results = self.handles.drain(..).map(|h| h.join().unwrap_or(Err(ApplyError::Panicked))).collect();
        pick(results)
    }

    /// Reads the rest of the stream (discarding it) and returns the new tar's
    /// digests, or the typed error of the stage that failed.
    pub fn finish(mut self) -> Result<Digests, ApplyError> {
        if let Some(outcome) = self.outcome.take() {
            return outcome.map_err(ApplyError::Reported);
        }
        let drained = io::copy(&mut self.input, &mut io::sink());
        let joined = self.join();
        match (joined, drained) {
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(ApplyError::Output { what: "reading the chain".into(), source: e }),
            (Ok(d), Ok(_)) => Ok(d),
        }
    }
}

impl Read for ChainReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(outcome) = &self.outcome {
            return match outcome {
                Ok(_) => Ok(0),
                Err(what) => Err(io::Error::new(io::ErrorKind::InvalidData, what.clone())),
            };
        }
        match self.input.read(buf) {
            Ok(0) if !buf.is_empty() => match self.join() {
                Ok(d) => {
                    self.outcome = Some(Ok(d));
                    Ok(0)
                }
                Err(e) => {
                    self.outcome = Some(Err(crate::errors::chain(&e)));
                    Err(e.into_io())
                }
            },
            Ok(n) => Ok(n),
            Err(read_error) => {
                let e = self.join().err().unwrap_or(ApplyError::Output { what: "reading the chain".into(), source: read_error });
                self.outcome = Some(Err(crate::errors::chain(&e)));
                Err(e.into_io())
            }
        }
    }
}

/// Applies a chain to `base` and writes the result to `path` (gzipped when the
/// name ends in `.gz`) through a temporary file: nothing appears under `path`
/// unless every stage verified.
pub fn apply_to_file<R: Read + Send>(base: R, base_label: &str, patches: &[PatchFile], path: &Path) -> Result<Digests, ApplyError> {
    let gzip = path.to_string_lossy().ends_with(".gz");
    let mut digests = None;
    let written = os::write_atomically(path, |f| {
        let w = BufWriter::with_capacity(256 * 1024, f);
        if gzip {
            let mut z = tario::gz::encoder(w);
            digests = Some(apply_chain(base, base_label, patches, &mut z).map_err(ApplyError::into_io)?);
            z.finish()?.flush()
        } else {
            let mut w = w;
            digests = Some(apply_chain(base, base_label, patches, &mut w).map_err(ApplyError::into_io)?);
            w.flush()
        }
    });
    match written {
        Ok(()) => digests
            .ok_or_else(|| ApplyError::Output { what: format!("writing {}", path.display()), source: io::Error::other("no digests") }),
        Err(e) => {
            Err(ApplyError::from_io(e).unwrap_or_else(|e| ApplyError::Output { what: format!("writing {}", path.display()), source: e }))
        }
    }
}
