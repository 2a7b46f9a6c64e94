//! Where the new tar's bytes come from, and what they must hash to: a full dist
//! (checked against its MD5 and SHA-256 sidecars), or the kept base run through
//! a chain of patches (checked against the last patch's header). Either way the
//! installer sees one stream of tar bytes, tee'd into the new base file and the
//! hashes as it is read.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::state::Installed;
use crate::apply;
use crate::errors::shown;
use crate::names::{DistName, NameError, PatchName};
use crate::sidecar::{self, Algo, SidecarError};
use crate::tario::{self, Digests, HashingReader};
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{}", shown(path))]
    Io { path: PathBuf, source: io::Error },
    #[error("{}", shown(path))]
    Name { path: PathBuf, source: NameError },
    #[error(transparent)]
    Sidecar(#[from] SidecarError),
    #[error("reading {what}")]
    Tar { what: String, source: tario::TarError },
    #[error("{}: applies to {from}, but {installed} is installed", patch.display())]
    WrongBase { patch: PathBuf, from: String, installed: String },
    #[error("{}: follows {expected} in the chain, but applies to {found}", patch.display())]
    BrokenChain { patch: PathBuf, expected: String, found: String },
    #[error("no kept base to patch: install a full dist first ({} is missing)", .0.display())]
    NoBase(PathBuf),
    #[error("no patch given")]
    NoPatch,
    #[error(transparent)]
    Apply(#[from] apply::ApplyError),
    #[error("{}: made from a tar with SHA-256 {expected}, but the installed dist's is {found}", patch.display())]
    BaseDigest { patch: PathBuf, expected: String, found: String },
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> SourceError + '_ {
    move |e| SourceError::Io { path: path.to_path_buf(), source: e }
}

pub enum Source {
    /// A full dist, `.tar.gz` or `.tar`, with its sidecars beside it.
    Dist(PathBuf),
    /// Patches applied in order to the kept base.
    Chain(Vec<PathBuf>),
    /// A full dist with patches applied to it on the way, in one stream: an
    /// update planned as "full dist, then patches" (the dist's own sidecars
    /// are not needed: the last patch's header says what the result must be).
    DistThenChain { dist: PathBuf, patches: Vec<PathBuf> },
    /// A kept generation (rollback): its gzipped tar, opened through the
    /// state directory, and the installed record that says what it must hash to.
    Kept(Box<Kept>),
}

pub struct Kept {
    pub installed: Installed,
    /// Where it is, for messages.
    pub path: PathBuf,
    /// Taken by the one `open`.
    pub file: Mutex<Option<File>>,
}

/// What the whole tar must hash to, and who says so.
#[derive(Debug, Clone)]
pub struct Expected {
    pub size: Option<u64>,
    pub md5: String,
    pub sha256: String,
    pub from: String,
}

/// The next base being written as the stream goes by.
enum BaseSink {
    /// A full dist's own gzipped bytes, as they are read.
    Raw(BufWriter<File>),
    /// A patch chain's output, gzipped here.
    Gz(Box<tario::gz::Writer<BufWriter<File>>>),
}

impl BaseSink {
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            BaseSink::Raw(w) => w.write_all(b),
            BaseSink::Gz(w) => w.write_all(b),
        }
    }
    fn finish(self) -> io::Result<()> {
        let w = match self {
            BaseSink::Raw(w) => w,
            BaseSink::Gz(g) => (*g).finish()?,
        };
        w.into_inner().map_err(|e| e.into_error())?.sync_all()
    }
}

/// The new tar becomes the base gzipped at the base's level: a base is read
/// once, at the next update, and time matters more here than size.
fn gz_sink(out: BufWriter<File>) -> BaseSink {
    BaseSink::Gz(Box::new(tario::gz::encoder_with(out, &tario::gz::Options::base())))
}

/// A reader that copies everything read through it into the base sink.
struct Tee<R> {
    inner: R,
    sink: Arc<Mutex<Option<BaseSink>>>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(s) = self.sink.lock().map_err(|_| io::Error::other("base writer poisoned"))?.as_mut() {
            // A reader returns at most the buffer's length.
            s.write_all(buf.get(..n).unwrap_or(buf))?;
        }
        Ok(n)
    }
}

/// The tar bytes, read, gunzipped (or patched), tee'd and hashed on a thread
/// of their own, so that this work overlaps with writing the staged files.
pub struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    /// Spent chunks go back to the thread to be filled again.
    spent: SyncSender<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(c)) if c.is_empty() => self.done = true,
                Ok(Ok(c)) => {
                    let mut spent = std::mem::replace(&mut self.chunk, c);
                    spent.clear();
                    let _ = self.spent.try_send(spent);
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(io::Error::other("the reading thread stopped")),
            }
        }
        let mut rest = self.chunk.get(self.pos..).unwrap_or_default();
        let n = rest.read(buf)?;
        self.pos += n;
        Ok(n)
    }
}

const CHUNK: usize = 1 << 20;

/// Starts the reading thread; it ends at the end of `inner` (an empty chunk
/// says so) with the digests of everything it read, or when the receiver goes.
fn spawn_reader(inner: Box<dyn Read + Send>) -> (ChannelReader, JoinHandle<io::Result<Digests>>) {
    let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(8);
    let (spent_tx, spent_rx) = sync_channel::<Vec<u8>>(10);
    let handle = std::thread::spawn(move || {
        let mut hashing = HashingReader::new(inner);
        loop {
            // Reuse a spent chunk: no fresh allocation, page faults or zeroing per MiB.
            let mut chunk = spent_rx.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK));
            if let Err(e) = (&mut hashing).take(CHUNK as u64).read_to_end(&mut chunk) {
                let msg = crate::errors::chain(&e);
                let _ = tx.send(Err(e));
                return Err(io::Error::other(msg));
            }
            let last = chunk.is_empty();
            if tx.send(Ok(chunk)).is_err() {
                return Err(io::Error::other("install stopped reading"));
            }
            if last {
                return Ok(hashing.finish().1);
            }
        }
    });
    (ChannelReader { rx, spent: spent_tx, chunk: Vec::new(), pos: 0, done: false }, handle)
}

pub struct Stream {
    pub reader: tario::Reader<ChannelReader>,
    /// What the stream is, for messages.
    pub what: String,
    pub expected: Expected,
    thread: JoinHandle<io::Result<Digests>>,
    sink: Arc<Mutex<Option<BaseSink>>>,
    /// Where the next base goes, for messages.
    base_path: PathBuf,
    estimate: u64,
}

impl Stream {
    /// Room the new base will take.
    pub fn base_estimate(&self) -> u64 {
        self.estimate
    }

    /// Reads what is left (trailing blocks and all), finishes and syncs the new
    /// base, and returns the digests of the whole tar.
    pub fn finish(self) -> Result<Digests, SourceError> {
        let what = self.what.clone();
        let (_, mut rest) = self.reader.finish().map_err(|e| SourceError::Tar { what: what.clone(), source: e })?;
        let io_what = |e| SourceError::Io { path: what.clone().into(), source: e };
        io::copy(&mut rest, &mut io::sink()).map_err(io_what)?;
        let digests = self.thread.join().map_err(|_| io_what(io::Error::other("the reading thread panicked")))?.map_err(io_what)?;
        let sink = self.sink.lock().ok().and_then(|mut s| s.take());
        if let Some(s) = sink {
            s.finish().map_err(io_err(&self.base_path))?;
        }
        Ok(digests)
    }
}

fn file_name(p: &Path) -> &str {
    p.file_name().and_then(|f| f.to_str()).unwrap_or("")
}

fn patch_names(patches: &[PathBuf]) -> Result<Vec<PatchName>, SourceError> {
    if patches.is_empty() {
        return Err(SourceError::NoPatch);
    }
    let names = patches
        .iter()
        .map(|p| PatchName::from_file_name(file_name(p)).map_err(|e| SourceError::Name { path: p.clone(), source: e }))
        .collect::<Result<Vec<_>, _>>()?;
    for (pair, p) in names.windows(2).zip(patches.iter().skip(1)) {
        if let [before, after] = pair {
            if after.from != before.to {
                return Err(SourceError::BrokenChain { patch: p.clone(), expected: before.to.to_string(), found: after.from.to_string() });
            }
        }
    }
    Ok(names)
}

/// The first patch of a chain, its name checked with the rest, and its path.
fn first_patch(patches: &[PathBuf]) -> Result<(PatchName, &PathBuf), SourceError> {
    let first = patch_names(patches)?.into_iter().next();
    first.zip(patches.first()).ok_or(SourceError::NoPatch)
}

impl Source {
    /// The dist this source installs, from file names alone (the stream's own
    /// manifest must agree).
    pub fn target_name(&self) -> Result<DistName, SourceError> {
        match self {
            Source::Dist(p) => DistName::from_file_name(file_name(p)).map_err(|e| SourceError::Name { path: p.clone(), source: e }),
            Source::Chain(ps) | Source::DistThenChain { patches: ps, .. } => {
                patch_names(ps)?.pop().map(|n| n.to).ok_or(SourceError::NoPatch)
            }
            Source::Kept(k) => Ok(k.installed.name.clone()),
        }
    }

    /// A chain must start from the installed dist, whose kept base it patches
    /// (`base`, where it is, and whether it is there).
    pub fn check_base(&self, installed: Option<&DistName>, base: &Path, have_base: bool) -> Result<(), SourceError> {
        if let Source::DistThenChain { dist, patches } = self {
            let (first, first_path) = first_patch(patches)?;
            let name = Source::Dist(dist.clone()).target_name()?;
            if first.from != name {
                return Err(SourceError::BrokenChain {
                    patch: first_path.clone(),
                    expected: name.to_string(),
                    found: first.from.to_string(),
                });
            }
            return Ok(());
        }
        let Source::Chain(ps) = self else { return Ok(()) };
        let (first, first_path) = first_patch(ps)?;
        match installed {
            Some(i) if *i == first.from => {}
            other => {
                return Err(SourceError::WrongBase {
                    patch: first_path.clone(),
                    from: first.from.to_string(),
                    installed: other.map(|i| i.to_string()).unwrap_or_else(|| "nothing".into()),
                })
            }
        }
        if !have_base {
            return Err(SourceError::NoBase(base.to_path_buf()));
        }
        Ok(())
    }

    /// Opens the stream. The next base is written to `base_new` (a fresh
    /// file, its path for messages) as the stream is read, unless it is
    /// `None` (a look at the dist before anything is made); `kept_base` is the
    /// kept base a chain patches.
    pub fn open(
        &self,
        base_new: Option<(File, &Path)>,
        kept_base: Option<(File, &Path)>,
        installed: Option<&Installed>,
    ) -> Result<Stream, SourceError> {
        let base_path = base_new.as_ref().map(|(_, p)| p.to_path_buf()).unwrap_or_default();
        let out = base_new.map(|(f, _)| BufWriter::with_capacity(1 << 20, f));
        match self {
            Source::Kept(k) => {
                let file = k.file.lock().ok().and_then(|mut f| f.take());
                let file = file.ok_or_else(|| io_err(&k.path)(io::Error::other("a kept generation is read once")))?;
                let estimate = file.metadata().map_err(io_err(&k.path))?.len();
                let sink = Arc::new(Mutex::new(out.map(BaseSink::Raw)));
                let tee = Tee { inner: file, sink: sink.clone() };
                let (chan, thread) = spawn_reader(tario::gz::maybe_gunzip(tee).map_err(io_err(&k.path))?);
                let i = &k.installed;
                Ok(Stream {
                    reader: tario::Reader::new(chan),
                    thread,
                    what: k.path.display().to_string(),
                    expected: Expected {
                        size: Some(i.tar_size),
                        md5: i.md5.clone(),
                        sha256: i.sha256.clone(),
                        from: "its installed record".into(),
                    },
                    sink,
                    base_path,
                    estimate,
                })
            }
            Source::Dist(path) => {
                let name = self.target_name()?;
                let (md5_side, md5) = sidecar::read(path, &name, Algo::Md5)?;
                let (sha_side, sha256) = sidecar::read(path, &name, Algo::Sha256)?;
                let mut file = File::open(path).map_err(io_err(path))?;
                let estimate = file.metadata().map_err(io_err(path))?.len();
                let mut magic = [0u8; 2];
                let gzipped = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
                file.rewind().map_err(io_err(path))?;
                // A gzipped dist is kept as it came; a plain .tar is gzipped on the way.
                let (tar, sink): (Box<dyn Read + Send>, _) = if gzipped {
                    let sink = Arc::new(Mutex::new(out.map(BaseSink::Raw)));
                    let tee = Tee { inner: file, sink: sink.clone() };
                    (tario::gz::maybe_gunzip(tee).map_err(io_err(path))?, sink)
                } else {
                    let sink = Arc::new(Mutex::new(out.map(gz_sink)));
                    (Box::new(Tee { inner: io::BufReader::with_capacity(256 * 1024, file), sink: sink.clone() }), sink)
                };
                let (chan, thread) = spawn_reader(tar);
                Ok(Stream {
                    reader: tario::Reader::new(chan),
                    thread,
                    what: path.display().to_string(),
                    expected: Expected { size: None, md5, sha256, from: format!("{} and {}", md5_side.display(), sha_side.display()) },
                    sink,
                    base_path,
                    estimate,
                })
            }
            Source::Chain(paths) | Source::DistThenChain { patches: paths, .. } => {
                // Headers, ops digests and links of the chain are checked here,
                // before a byte streams; the kept base must be the tar the first
                // patch was made from.
                let patches = apply::open_patches(paths)?;
                let (Some(first), Some(last)) = (patches.first(), patches.last()) else { return Err(SourceError::NoPatch) };
                let (file, kept_base) = match (self, kept_base) {
                    (Source::DistThenChain { dist, .. }, _) => (File::open(dist).map_err(io_err(dist))?, dist.as_path()),
                    (_, Some(kept)) => kept,
                    (_, None) => return Err(SourceError::NoBase("the kept base".into())),
                };
                let (base, base_size) = tario::gz::open_file(file).map_err(io_err(kept_base))?;
                let installed = if matches!(self, Source::Chain(_)) { installed } else { None };
                if let Some(i) = installed {
                    if i.sha256 != first.header.old.sha256 || i.tar_size != first.header.old.size {
                        return Err(SourceError::BaseDigest {
                            patch: first.path.clone(),
                            expected: first.header.old.sha256.clone(),
                            found: i.sha256.clone(),
                        });
                    }
                }
                let estimate = base_size * 11 / 10 + (1 << 20);
                let chain = apply::chain_reader(base, paths)?;
                let sink = Arc::new(Mutex::new(out.map(gz_sink)));
                let tee = Tee { inner: chain, sink: sink.clone() };
                let (chan, thread) = spawn_reader(Box::new(tee));
                let new = &last.header.new;
                Ok(Stream {
                    reader: tario::Reader::new(chan),
                    thread,
                    what: format!(
                        "{} applied to {}",
                        paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" + "),
                        kept_base.display()
                    ),
                    expected: Expected {
                        size: Some(new.size),
                        md5: new.md5.clone(),
                        sha256: new.sha256.clone(),
                        from: format!("the header of {}", last.path.display()),
                    },
                    sink,
                    base_path,
                    estimate,
                })
            }
        }
    }
}
