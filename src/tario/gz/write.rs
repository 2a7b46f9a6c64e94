//! The parallel gzip writer: the input is cut into blocks of a fixed size, each
//! compressed into its own member (see [`super::member`]) by a pool of threads,
//! and the members are written in input order.
//!
//! The bytes depend only on the input, the level and the block size: a block
//! boundary falls every `block` bytes of input, whatever the sizes of the
//! `write` calls, and each member is compressed from a fresh state, so neither
//! the number of threads nor their timing can change a byte (gzp, tried on this
//! project, did not have that property: its output changed run to run).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::member;
use super::Options;
use flate2::{Compress, Compression};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A block to compress, and the buffer to put its member in.
struct Job {
    input: Vec<u8>,
    output: Vec<u8>,
    done: std::sync::mpsc::SyncSender<io::Result<Done>>,
}

/// A compressed block: its member, and its input buffer handed back for reuse.
struct Done {
    member: Vec<u8>,
    input: Vec<u8>,
}

/// Writes gzip to `W` on several threads; [`Writer::finish`] must be called
/// (dropping a `Writer` discards what was not yet written, unlike flate2's).
pub struct Writer<W: Write> {
    inner: Option<W>,
    block: usize,
    buf: Vec<u8>,
    /// Members being compressed, oldest first; at most `max_pending`.
    pending: VecDeque<Receiver<io::Result<Done>>>,
    max_pending: usize,
    jobs: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    spare_inputs: Vec<Vec<u8>>,
    spare_outputs: Vec<Vec<u8>>,
    members: u64,
    written: u64,
}

impl<W: Write> Writer<W> {
    pub fn new(inner: W, opts: &Options) -> Writer<W> {
        let threads = opts.threads.max(1);
        let block = opts.block.max(1);
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let level = Compression::new(opts.level);
        let workers = (0..threads)
            .map(|_| {
                let queue = queue.clone();
                std::thread::spawn(move || {
                    let mut deflate = Compress::new(level, false);
                    loop {
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => return,
                        };
                        let Ok(mut job) = job else { return };
                        job.output.clear();
                        let r = member::compress(&mut deflate, &job.input, &mut job.output);
                        let _ = job.done.send(r.map(|()| Done { member: job.output, input: job.input }));
                    }
                })
            })
            .collect();
        Writer {
            inner: Some(inner),
            block,
            buf: Vec::with_capacity(block),
            pending: VecDeque::new(),
            // Two blocks per thread keep every thread busy while the oldest is written.
            max_pending: threads * 2,
            jobs: Some(jobs),
            workers,
            spare_inputs: Vec::new(),
            spare_outputs: Vec::new(),
            members: 0,
            written: 0,
        }
    }

    /// Compressed bytes written to the inner writer so far.
    pub fn compressed_bytes(&self) -> u64 {
        self.written
    }

    fn submit(&mut self) -> io::Result<()> {
        if self.pending.len() >= self.max_pending {
            self.write_oldest()?;
        }
        let next = self.spare_inputs.pop().unwrap_or_else(|| Vec::with_capacity(self.block));
        let input = std::mem::replace(&mut self.buf, next);
        let output = self.spare_outputs.pop().unwrap_or_default();
        let (done, rx) = sync_channel(1);
        let jobs = self.jobs.as_ref().ok_or_else(|| io::Error::other("gzip writer already finished"))?;
        jobs.send(Job { input, output, done }).map_err(|_| io::Error::other("gzip threads stopped"))?;
        self.pending.push_back(rx);
        self.members += 1;
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        let Some(rx) = self.pending.pop_front() else { return Ok(()) };
        let done = rx.recv().map_err(|_| io::Error::other("a gzip thread stopped"))??;
        let inner = self.inner.as_mut().ok_or_else(|| io::Error::other("gzip writer already finished"))?;
        inner.write_all(&done.member)?;
        self.written += done.member.len() as u64;
        let mut input = done.input;
        input.clear();
        self.spare_inputs.push(input);
        self.spare_outputs.push(done.member);
        Ok(())
    }

    /// Compresses what is left, writes every member and returns the inner
    /// writer (not flushed). Empty input still makes one (empty) member: a gzip
    /// file has at least one.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.buf.is_empty() || self.members == 0 {
            self.submit()?;
        }
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        self.inner.take().ok_or_else(|| io::Error::other("gzip writer already finished"))
    }
}

impl<W: Write> Write for Writer<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(self.block - self.buf.len());
        self.buf.extend_from_slice(data.get(..n).unwrap_or(data));
        if self.buf.len() == self.block {
            self.submit()?;
        }
        Ok(n)
    }

    /// Writes the members already compressed; the block being filled stays (a
    /// flush must not move a block boundary, or the bytes would depend on it).
    fn flush(&mut self) -> io::Result<()> {
        while self.pending.front().is_some() {
            self.write_oldest()?;
        }
        match self.inner.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl<W: Write> Drop for Writer<W> {
    fn drop(&mut self) {
        self.jobs.take();
        self.pending.clear();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
