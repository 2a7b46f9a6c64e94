//! The gzip reader: decompression on threads of its own, beside whatever
//! consumes the tar (the patch applier, the installer).
//!
//! A splitting thread reads the compressed stream. While members carry our
//! size subfield, it cuts them out without inflating and hands them to a pool
//! of threads, which inflate and check them side by side; the reader gives
//! their output back in order. At the first member without it (a file from
//! gzip or pigz, or appended to ours), the splitting thread inflates the rest
//! of the stream itself, as gunzip would: every member, concatenated. Either
//! way at most `2 * threads + 2` blocks are in flight, so memory is bounded
//! whatever the size of the file.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::member::{self, Header};
use super::Options;
use flate2::Decompress;
use std::io::{self, BufReader, Read};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};

/// Largest member the fast path takes, compressed or not: four of our blocks.
/// A member past it (not one of ours, whatever its field says) goes the
/// general way, so no size field or trailer makes a reader allocate more than
/// this per block in flight.
const MAX_MEMBER: usize = 4 * super::BLOCK;
/// Chunks the fallback path hands on.
const CHUNK: usize = 1 << 20;

type Block = io::Result<Vec<u8>>;

/// What the splitting thread hands to the reader, in stream order.
enum Slot {
    /// A member being inflated by the pool.
    Pending(Receiver<Block>),
    /// Bytes already inflated (by the fallback path), or an error.
    Ready(Block),
    /// The clean end of the stream.
    End,
}

struct Job {
    member: Vec<u8>,
    done: SyncSender<Block>,
}

/// Spent buffers, handed back for reuse: no fresh allocation, page faults or
/// zeroing per block.
#[derive(Clone, Default)]
struct Pool(Arc<Mutex<Vec<Vec<u8>>>>);

impl Pool {
    const KEEP: usize = 16;

    fn get(&self) -> Vec<u8> {
        self.0.lock().ok().and_then(|mut p| p.pop()).unwrap_or_default()
    }

    fn put(&self, mut buf: Vec<u8>) {
        buf.clear();
        if let Ok(mut p) = self.0.lock() {
            if p.len() < Self::KEEP {
                p.push(buf);
            }
        }
    }
}

/// Decompressed bytes of a gzip stream (see the module's comment).
pub struct Reader {
    slots: Receiver<Slot>,
    /// Where spent output chunks go back to the inflating threads.
    outputs: Pool,
    chunk: Vec<u8>,
    pos: usize,
    state: State,
}

enum State {
    Reading,
    Ended,
    Failed(io::ErrorKind, String),
}

impl Reader {
    /// Starts decompressing `inner`, a gzip stream, on `opts.threads` threads
    /// (plus the splitting one).
    pub fn new<R: Read + Send + 'static>(inner: R, opts: &Options) -> Reader {
        let threads = opts.threads.max(1);
        let (slot_tx, slots) = sync_channel::<Slot>(threads * 2);
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let (outputs, members) = (Pool::default(), Pool::default());
        for _ in 0..threads {
            let (queue, outputs, members) = (queue.clone(), outputs.clone(), members.clone());
            std::thread::spawn(move || inflate_jobs(&queue, &outputs, &members));
        }
        let input = Input { inner, buf: Vec::new(), pos: 0 };
        let pools = (outputs.clone(), members);
        std::thread::spawn(move || {
            let end = match split(input, &slot_tx, &jobs, &pools) {
                Ok(()) => Slot::End,
                Err(e) => Slot::Ready(Err(e)),
            };
            let _ = slot_tx.send(end);
        });
        Reader { slots, outputs, chunk: Vec::new(), pos: 0, state: State::Reading }
    }
}

fn inflate_jobs(queue: &Mutex<Receiver<Job>>, outputs: &Pool, members: &Pool) {
    let mut inflate = Decompress::new(false);
    loop {
        let job = match queue.lock() {
            Ok(q) => q.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let mut out = outputs.get();
        let r = member::decompress(&mut inflate, &job.member, MAX_MEMBER, &mut out);
        members.put(job.member);
        let _ = job.done.send(r.map(|()| out));
    }
}

/// The compressed stream with a small look-ahead buffer: enough to parse a
/// header before deciding how to read the member behind it.
struct Input<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
}

/// Longest header we look ahead for (a name or comment can be long); past it
/// the general path reads the member.
const MAX_HEADER: usize = 1 << 20;

impl<R: Read> Input<R> {
    /// At least `n` buffered bytes, fewer only at the end of the stream.
    fn fill(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.buf.len() - self.pos < n && self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        while self.buf.len() < n {
            let old = self.buf.len();
            self.buf.resize(old.max(n).max(64 * 1024), 0);
            let r = self.inner.read(self.buf.get_mut(old..).unwrap_or_default());
            self.buf.truncate(old + *r.as_ref().unwrap_or(&0));
            match r {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.buf.get(self.pos..).unwrap_or_default())
    }

    /// The next member's header, parsed but not consumed; `None` at a clean
    /// end of the stream.
    fn next_header(&mut self) -> io::Result<Option<Header>> {
        let mut want = 10;
        loop {
            let have = self.fill(want)?;
            if have.is_empty() {
                return Ok(None);
            }
            match member::parse_header(have)? {
                Some(h) => return Ok(Some(h)),
                None if have.len() < want => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "gzip stream ends in a header")),
                None if want >= MAX_HEADER => return Ok(Some(Header { len: want, member_size: None })),
                None => want *= 2,
            }
        }
    }

    /// The next `n` bytes, into `out` (cleared first).
    fn take(&mut self, n: usize, out: &mut Vec<u8>) -> io::Result<()> {
        let ahead = self.buf.get(self.pos..).unwrap_or_default();
        let buffered = ahead.len().min(n);
        out.clear();
        out.extend_from_slice(ahead.get(..buffered).unwrap_or(ahead));
        self.pos += buffered;
        out.resize(n, 0);
        self.inner.read_exact(out.get_mut(buffered..).unwrap_or_default()).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => io::Error::new(e.kind(), "gzip stream ends inside a member"),
            _ => e,
        })
    }

    /// What is left of the stream, look-ahead included.
    fn rest(mut self) -> impl Read {
        io::Cursor::new(self.buf.split_off(self.pos)).chain(self.inner)
    }
}

/// Cuts members out of the stream while they carry their size; falls back to
/// inflating everything from the first one that does not.
/// `pools` holds spent output chunks and member buffers.
fn split<R: Read>(mut input: Input<R>, slots: &SyncSender<Slot>, jobs: &Sender<Job>, pools: &(Pool, Pool)) -> io::Result<()> {
    let mut first = true;
    loop {
        let header = match input.next_header()? {
            Some(h) => h,
            None if first => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "empty gzip stream")),
            None => return Ok(()),
        };
        first = false;
        let size = match header.member_size {
            Some(s) if (s as usize) >= header.len + member::TRAILER_LEN && (s as usize) <= MAX_MEMBER => s as usize,
            _ => return inflate_rest(input.rest(), slots, &pools.0),
        };
        let mut m = pools.1.get();
        input.take(size, &mut m)?;
        if member::inflated_size(&m) > MAX_MEMBER {
            return inflate_rest(io::Cursor::new(m).chain(input.rest()), slots, &pools.0);
        }
        let (done, rx) = sync_channel(1);
        if slots.send(Slot::Pending(rx)).is_err() {
            return Ok(()); // the reader is gone
        }
        jobs.send(Job { member: m, done }).map_err(|_| io::Error::other("gzip threads stopped"))?;
    }
}

/// The general path: whatever is left, inflated as gunzip would.
fn inflate_rest(rest: impl Read, slots: &SyncSender<Slot>, outputs: &Pool) -> io::Result<()> {
    let mut z = flate2::bufread::MultiGzDecoder::new(BufReader::with_capacity(256 * 1024, rest));
    loop {
        let mut chunk = outputs.get();
        (&mut z).take(CHUNK as u64).read_to_end(&mut chunk)?;
        if chunk.is_empty() {
            return Ok(());
        }
        if slots.send(Slot::Ready(Ok(chunk))).is_err() {
            return Ok(());
        }
    }
}

impl Read for Reader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match &self.state {
                State::Ended => return Ok(0),
                State::Failed(kind, what) => return Err(io::Error::new(*kind, what.clone())),
                State::Reading if out.is_empty() => return Ok(0),
                State::Reading => {}
            }
            let block = match self.slots.recv() {
                Ok(Slot::Pending(rx)) => rx.recv().unwrap_or_else(|_| Err(io::Error::other("a gzip thread stopped"))),
                Ok(Slot::Ready(b)) => b,
                Ok(Slot::End) => {
                    self.state = State::Ended;
                    continue;
                }
                Err(_) => Err(io::Error::other("the gzip reading thread stopped")),
            };
            match block {
                Ok(b) => {
                    self.outputs.put(std::mem::replace(&mut self.chunk, b));
                    self.pos = 0;
                }
                Err(e) => {
                    self.state = State::Failed(e.kind(), e.to_string());
                    return Err(e);
                }
            }
        }
        let mut rest = self.chunk.get(self.pos..).unwrap_or_default();
        let n = rest.read(out)?;
        self.pos += n;
        Ok(n)
    }
}
