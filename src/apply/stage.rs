//! Applying one patch as a stream: old tar in, new tar out, front to back.
//!
//! The old tar is read once, with a cursor on its next member. An op whose source
//! is at or past the cursor reads forward to it (keeping, on the way, what the
//! header's keep list names); a copy streams straight from the old stream to the
//! new one; a delta holds its one source member in memory (its controls seek in
//! it) and writes the new data straight from the controls into the output
//! chunks. An op whose source is behind the cursor is served from the kept set,
//! which frees each member after its last use; a member repeating an earlier new
//! one is served from the new keep list the same way. Memory is thus the
//! streams' dictionaries, one source member, the declared kept sets and a few
//! chunks in flight between threads.
//!
//! Threads: each stream decodes on its own (`streams`), the old tar is read and
//! hashed on its own (`old`), and the new tar is hashed on its own (`out`); this
//! one only parses ops and moves bytes, into buffers it reuses. The old tar is
//! checked by size and SHA-256, the new one by size, MD5 and SHA-256; nothing
//! that the patch says is trusted for an allocation beyond the bounds that
//! `patchfile::read_header` checked.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod fetch;

use super::old::{Expect, OldReader};
use super::out::{Out, OutError};
use super::streams::{self, StreamReader};
use super::ApplyError;
use crate::errors::{chain, shown};
use crate::patchfile::{self, stream, Keep, NewKeep, PatchFile, STREAMS};
use crate::tario::{self, Digests, Member, TarError, BLOCK};
use std::collections::HashMap;
use std::io::{self, BufRead, Read, Write};

/// An old member held in memory: its header, and its data if an op needs it.
struct Kept {
    header: Vec<u8>,
    data: Vec<u8>,
    uses_left: u64,
}

/// Where the source of an op is once fetched.
enum Fetched {
    /// The member under the cursor; its data not yet read from the old stream.
    Current(Member),
    /// In the kept set.
    Stored,
}

/// The new member an op makes, as its header says.
struct NewMember {
    index: u64,
    size: u64,
    /// Debug-quoted, for messages.
    path: String,
}

/// The run-length state of the difference bytes, which runs on from one
/// control and one member to the next.
#[derive(Default)]
struct Runs {
    zeros: u64,
    nonzeros: u64,
}

struct Applier<'a> {
    p: &'a PatchFile,
    label: &'a str,
    old: tario::Reader<OldReader>,
    /// Index of the next old member to read.
    cursor: u64,
    keep: HashMap<u64, &'a Keep>,
    kept: HashMap<u64, Kept>,
    new_keep: HashMap<u64, &'a NewKeep>,
    new_kept: HashMap<u64, Kept>,
    /// One reader a stream, indexed by the `patchfile::stream` constants.
    s: [StreamReader; STREAMS.len()],
    runs: Runs,
    /// The current delta's source, when read from the old stream (reused).
    src: Vec<u8>,
    /// A header read from the headers stream (reused).
    hdr: Vec<u8>,
}

/// Applies patch `p` to the tar stream `old` (described by `label` in messages),
/// writing the new tar to `out`; returns the new tar's digests once both the
/// old and the new stream have been verified.
pub fn apply_one<R: Read + Send, W: Write>(p: &PatchFile, label: &str, old: R, out: &mut W) -> Result<Digests, ApplyError> {
    std::thread::scope(|scope| {
        let patch_io = |e| ApplyError::Format(patchfile::FormatError::Io { path: p.path.clone(), source: e });
        let s = streams::open(scope, p).map_err(patch_io)?;
        // read_header checked that there are nine streams; a patch built by
        // other means is refused here rather than indexed past its end.
        let s: [StreamReader; STREAMS.len()] = s.try_into().map_err(|s: Vec<_>| {
            patch_io(io::Error::new(io::ErrorKind::InvalidData, format!("{} streams, expected {}", s.len(), STREAMS.len())))
        })?;
        let h = &p.header;
        let expect = Expect { size: h.old.size, prefix_len: h.old_prefix.size, prefix_sha256: h.old_prefix.sha256.clone() };
        let old = OldReader::spawn(scope, old, expect);
        let mut w = Out::new(scope, out, h.new.size);
        let mut a = Applier {
            p,
            label,
            old: tario::Reader::new(old),
            cursor: 0,
            keep: h.keep.iter().map(|k| (k.index, k)).collect(),
            kept: HashMap::new(),
            new_keep: h.new_keep.iter().map(|k| (k.index, k)).collect(),
            new_kept: HashMap::new(),
            s,
            runs: Runs::default(),
            src: Vec::new(),
            hdr: Vec::new(),
        };
        let mut index = 0u64;
        let made = (|| {
            while let Some(tag) = a.next_tag(index)? {
                a.apply_op(tag, index, &mut w)?;
                index += 1;
            }
            a.write_end(index, &mut w)
        })();
        match made {
            Ok(()) => a.verify(w),
            Err(e @ ApplyError::Ops { .. }) => Err(a.blame_the_base().unwrap_or(e)),
            Err(e) => Err(e),
        }
    })
}

impl Applier<'_> {
    fn ops_err(&self, member: u64, what: String) -> ApplyError {
        ApplyError::Ops { patch: self.p.path.clone(), member, what }
    }

    /// The next varint of the ops stream.
    fn op_varint(&mut self, member: u64) -> Result<u64, ApplyError> {
        patchfile::read_varint(&mut self.s[stream::OPS]).map_err(|e| self.ops_err(member, stream_problem("ops", &e)))
    }

    /// Old member `k`, which the op's fetch found in the kept set.
    fn stored(&self, k: u64, member: u64) -> Result<&Kept, ApplyError> {
        self.kept.get(&k).ok_or_else(|| self.ops_err(member, format!("old member {k} is no longer kept")))
    }

    fn out_err(&self, member: u64, path: &str, e: OutError) -> ApplyError {
        match e {
            OutError::Write(e) => output_err(path, e),
            OutError::TooLong(limit) => self.ops_err(member, format!("{path}: makes more than the {limit} bytes the header declares")),
        }
    }

    /// The tag of op `index`; `None` at the end op.
    fn next_tag(&mut self, index: u64) -> Result<Option<u8>, ApplyError> {
        let mut tag = [0u8];
        self.s[stream::OPS].read_exact(&mut tag).map_err(|e| self.ops_err(index, stream_problem("ops", &e)))?;
        if tag[0] == patchfile::TAG_END {
            return Ok(None);
        }
        if index >= self.p.header.new_members {
            return Err(self.ops_err(index, format!("more ops than the {} members the header declares", self.p.header.new_members)));
        }
        Ok(Some(tag[0]))
    }

    /// Op `index`: its source, its header, its data, written as new member `index`.
    fn apply_op<W: Write>(&mut self, tag: u8, index: u64, w: &mut Out<'_, W>) -> Result<(), ApplyError> {
        let (header_op, data_op) = (tag & 3, (tag >> 2) & 7);
        if tag >> 5 != 0 || header_op > patchfile::HDR_DIFF || data_op > patchfile::DATA_NEW {
            return Err(self.ops_err(index, format!("unknown op tag {tag:#04x}")));
        }
        let needs_source = header_op != patchfile::HDR_LITERAL || matches!(data_op, patchfile::DATA_COPY | patchfile::DATA_DELTA);
        let source = if needs_source { Some(self.source(index)?) } else { None };
        let earlier = if data_op == patchfile::DATA_NEW { Some(self.earlier(index)?) } else { None };
        let new = self.write_header(header_op, source.as_ref(), index, w)?;
        let (size, path) = (new.size, new.path.as_str());
        let mut keep_uses = None;
        if let Some(keep) = self.new_keep.get(&index) {
            if keep.size != size {
                return Err(self.ops_err(index, format!("{path}: {size} bytes, the new keep list says {}", keep.size)));
            }
            // Grown as the data is written: the header's sizes reserve nothing.
            w.tee = Some(Vec::with_capacity(size.min(1 << 20) as usize));
            keep_uses = Some(keep.uses);
        }
        match (data_op, source.as_ref(), earlier) {
            (patchfile::DATA_NONE, _, _) if size == 0 => {}
            (patchfile::DATA_NONE, _, _) if header_op == patchfile::HDR_SAME => {
                return Err(self.old_err(format!("old member {path} has {size} bytes of data, the patch expects none: wrong base?")))
            }
            (patchfile::DATA_NONE, _, _) => return Err(self.ops_err(index, format!("{path}: {size} bytes of data but no data op"))),
            (patchfile::DATA_COPY, Some(src), _) => self.copy_data(src, &new, w)?,
            (patchfile::DATA_DELTA, Some(src), _) => self.delta_data(src, &new, w)?,
            (patchfile::DATA_LITERAL, _, _) => self.literal_data(&new, w)?,
            (patchfile::DATA_NEW, _, Some(j)) => self.new_copy(j, &new, w)?,
            // A copy and a delta fetched a source, a repeat its earlier member,
            // and other data ops were refused above.
            _ => return Err(self.ops_err(index, format!("unknown op tag {tag:#04x}"))),
        }
        let captured = w.tee.take();
        let padding = [0u8; BLOCK];
        let padding = padding.get(..tario::write::padding(size)).unwrap_or(&padding);
        w.put(padding).map_err(|e| self.out_err(index, path, e))?;
        if let (Some(data), Some(uses)) = (captured, keep_uses) {
            self.new_kept.insert(index, Kept { header: Vec::new(), data, uses_left: uses });
        }
        if let Some((k, Fetched::Stored)) = source {
            self.used(k);
        }
        Ok(())
    }

    /// The old member an op names (relative to the cursor), brought to hand.
    fn source(&mut self, index: u64) -> Result<(u64, Fetched), ApplyError> {
        let rel = patchfile::unzigzag(self.op_varint(index)?);
        let k = i64::try_from(self.cursor).ok().and_then(|c| c.checked_add(rel)).and_then(|k| u64::try_from(k).ok());
        let Some(k) = k.filter(|k| *k < self.p.header.old_members) else {
            return Err(self.ops_err(index, format!("source {rel:+} from old member {} is outside the old tar", self.cursor)));
        };
        Ok((k, self.fetch(k, index)?))
    }

    /// The earlier new member a DATA_NEW op repeats; it must be on the new keep list.
    fn earlier(&mut self, index: u64) -> Result<u64, ApplyError> {
        let back = self.op_varint(index)?;
        match index.checked_sub(back).filter(|j| back > 0 && self.new_kept.contains_key(j)) {
            Some(j) => Ok(j),
            None => Err(self.ops_err(index, format!("repeats new member {back} back, which its new keep list does not keep"))),
        }
    }

    /// Writes the new member's raw header (its source's, the one the op sends,
    /// or the source's plus the differences the op sends) and returns what it says.
    fn write_header<W: Write>(
        &mut self,
        header_op: u8,
        source: Option<&(u64, Fetched)>,
        index: u64,
        w: &mut Out<'_, W>,
    ) -> Result<NewMember, ApplyError> {
        let base: Option<&[u8]> = match source {
            Some((_, Fetched::Current(m))) => Some(&m.raw_header),
            Some((k, Fetched::Stored)) => match self.kept.get(k) {
                Some(kept) => Some(&kept.header),
                None => return Err(self.ops_err(index, format!("old member {k} is no longer kept"))),
            },
            None => None,
        };
        if header_op != patchfile::HDR_SAME {
            let len = patchfile::read_varint(&mut self.s[stream::OPS]).map_err(|e| self.ops_err(index, stream_problem("ops", &e)))?;
            let max = self.p.header.max_raw_header;
            let Some(n) = usize::try_from(len).ok().filter(|_| len <= max) else {
                return Err(self.ops_err(index, format!("raw header of {len} bytes, the header declares at most {max}")));
            };
            self.hdr.resize(n, 0);
            if let Err(e) = self.s[stream::HEADERS].read_exact(&mut self.hdr) {
                return Err(self.ops_err(index, stream_problem("headers", &e)));
            }
            if header_op == patchfile::HDR_DIFF {
                let Some(base) = base else { return Err(self.ops_err(index, "header difference without a source".into())) };
                if base.len() != self.hdr.len() {
                    return Err(self.ops_err(index, format!("header difference of {len} bytes against a {}-byte header", base.len())));
                }
                for (n, o) in self.hdr.iter_mut().zip(base) {
                    *n = n.wrapping_add(*o);
                }
            }
        }
        let raw: &[u8] = match (header_op, base) {
            (patchfile::HDR_SAME, Some(base)) => base,
            (patchfile::HDR_SAME, None) => return Err(self.ops_err(index, "header copy without a source".into())),
            _ => &self.hdr,
        };
        let member = match tario::Reader::new(raw).next_member() {
            Ok(Some(m)) if m.raw_header.len() == raw.len() => m,
            Ok(_) => return Err(self.ops_err(index, "raw header is not exactly one member header".into())),
            Err(e) => return Err(self.ops_err(index, format!("raw header: {e}"))),
        };
        let path = format!("\"{}\"", shown(&member.meta.path));
        w.put(raw).map_err(|e| self.out_err(index, &path, e))?;
        Ok(NewMember { index, size: member.meta.size, path })
    }

    fn source_size(&self, src: &(u64, Fetched), member: u64) -> Result<u64, ApplyError> {
        Ok(match src {
            (_, Fetched::Current(m)) => m.meta.size,
            (k, Fetched::Stored) => self.stored(*k, member)?.data.len() as u64,
        })
    }

    /// DATA_COPY: the source member's data, unchanged.
    fn copy_data<W: Write>(&mut self, src: &(u64, Fetched), new: &NewMember, w: &mut Out<'_, W>) -> Result<(), ApplyError> {
        let (size, path) = (new.size, new.path.as_str());
        let have = self.source_size(src, new.index)?;
        if have != size {
            return Err(self
                .old_err(format!("old member {} is {have} bytes, the patch copies {size} bytes from it into {path}: wrong base?", src.0)));
        }
        if let (k, Fetched::Stored) = src {
            return w.put(&self.stored(*k, new.index)?.data).map_err(|e| self.out_err(new.index, path, e));
        }
        let mut left = size;
        while left > 0 {
            let room = w.spare(left.min(usize::MAX as u64) as usize).map_err(|e| self.out_err(new.index, path, e))?;
            let n = match self.old.read_data(room) {
                Ok(0) => return Err(self.old_err(format!("member data ends {left} bytes early"))),
                Ok(n) => n,
                Err(e) => return Err(tar_err(self.p, self.label, e)),
            };
            w.commit(n).map_err(|e| self.out_err(new.index, path, e))?;
            left -= n as u64;
        }
        Ok(())
    }

    /// DATA_LITERAL: `size` bytes of the literal stream.
    fn literal_data<W: Write>(&mut self, new: &NewMember, w: &mut Out<'_, W>) -> Result<(), ApplyError> {
        let path = new.path.as_str();
        let mut left = new.size;
        while left > 0 {
            let room = w.spare(left.min(usize::MAX as u64) as usize).map_err(|e| self.out_err(new.index, path, e))?;
            let n = match self.s[stream::LITERAL].read(room) {
                Ok(0) => return Err(self.ops_err(new.index, format!("{path}: literal data ends {left} bytes early"))),
                Ok(n) => n,
                Err(e) => return Err(self.ops_err(new.index, format!("{path}: {}", stream_problem("literal", &e)))),
            };
            w.commit(n).map_err(|e| self.out_err(new.index, path, e))?;
            left -= n as u64;
        }
        Ok(())
    }

    /// DATA_NEW: the data of earlier new member `j`, kept when it was written.
    fn new_copy<W: Write>(&mut self, j: u64, new: &NewMember, w: &mut Out<'_, W>) -> Result<(), ApplyError> {
        let Some(kept) = self.new_kept.get(&j) else {
            return Err(self.ops_err(new.index, format!("{}: new member {j} is no longer kept", new.path)));
        };
        if kept.data.len() as u64 != new.size {
            return Err(self.ops_err(new.index, format!("{}: {} bytes, new member {j} has {}", new.path, new.size, kept.data.len())));
        }
        w.put(&kept.data).map_err(|e| self.out_err(new.index, &new.path, e))?;
        if let Some(kept) = self.new_kept.get_mut(&j) {
            kept.uses_left = kept.uses_left.saturating_sub(1);
            if kept.uses_left == 0 {
                self.new_kept.remove(&j);
            }
        }
        Ok(())
    }

    /// DATA_DELTA: controls against the source member's data, held in memory
    /// (controls seek in it), written straight into the output chunks.
    fn delta_data<W: Write>(&mut self, src: &(u64, Fetched), new: &NewMember, w: &mut Out<'_, W>) -> Result<(), ApplyError> {
        if let (k, Fetched::Current(m)) = src {
            let max = self.p.header.max_source;
            if m.meta.size > max {
                return Err(self.old_err(format!(
                    "old member {k} (\"{}\") is {} bytes, the patch expects delta sources of at most {max}: wrong base?",
                    shown(&m.meta.path),
                    m.meta.size
                )));
            }
            self.read_source(m.meta.size)?;
        }
        let Applier { p, s, runs, src: held, kept, .. } = self;
        let err = |what: String| ApplyError::Ops { patch: p.path.clone(), member: new.index, what: format!("{}: {what}", new.path) };
        let old: &[u8] = match src {
            (k, Fetched::Current(m)) => usize::try_from(m.meta.size)
                .ok()
                .and_then(|n| held.get(..n))
                .ok_or_else(|| err(format!("old member {k} was not read whole")))?,
            (k, Fetched::Stored) => &kept.get(k).ok_or_else(|| err(format!("old member {k} is no longer kept")))?.data,
        };
        let out_err = |e: OutError| match e {
            OutError::Write(e) => output_err(&new.path, e),
            OutError::TooLong(limit) => err(format!("makes more than the {limit} bytes the header declares")),
        };
        let varint = |s: &mut StreamReader| patchfile::read_varint(s).map_err(|e| err(stream_problem(s.name, &e)));
        let (mut made, mut pos) = (0u64, 0u64);
        while made < new.size {
            let seek = patchfile::unzigzag(varint(&mut s[stream::SEEK])?);
            let add = varint(&mut s[stream::ADD])?;
            let copy = varint(&mut s[stream::COPY])?;
            pos = pos
                .checked_add_signed(seek)
                .filter(|&p| p <= old.len() as u64)
                .ok_or_else(|| err(format!("control seeks outside the {}-byte source", old.len())))?;
            if add > old.len() as u64 - pos || add > new.size - made || copy > new.size - made - add {
                return Err(err(format!("control of {add}+{copy} bytes runs past the source or the member")));
            }
            let mut left = add as usize;
            while left > 0 {
                let room = w.spare(left).map_err(out_err)?;
                let n = room.len();
                let from = usize::try_from(pos).ok().and_then(|p| old.get(p..p.checked_add(n)?));
                room.copy_from_slice(from.ok_or_else(|| err(format!("control runs past the {}-byte source", old.len())))?);
                add_diff(room, runs, &mut s[stream::RUNS..=stream::DIFF]).map_err(|e| err(stream_problem("diff", &e)))?;
                w.commit(n).map_err(out_err)?;
                (left, pos) = (left - n, pos + n as u64);
            }
            let mut left = copy as usize;
            while left > 0 {
                let room = w.spare(left).map_err(out_err)?;
                let n = s[stream::EXTRA].read(room).map_err(|e| err(stream_problem("extra", &e)))?;
                if n == 0 {
                    return Err(err("extra stream ends early (truncated patch?)".into()));
                }
                w.commit(n).map_err(out_err)?;
                left -= n;
            }
            made += add + copy;
        }
        Ok(())
    }

    /// The end op, after `members` ops: the tail that follows the end-of-archive
    /// block; then every stream must be at its end, as long as declared.
    fn write_end<W: Write>(&mut self, members: u64, w: &mut Out<'_, W>) -> Result<(), ApplyError> {
        let h = &self.p.header;
        if members != h.new_members {
            return Err(self.ops_err(members, format!("{members} members, the header declares {}", h.new_members)));
        }
        let tail_len = self.op_varint(members)?;
        if tail_len > h.tail_size {
            return Err(self.ops_err(members, format!("tail of {tail_len} bytes, the header declares {}", h.tail_size)));
        }
        let Ok(tail_len) = usize::try_from(tail_len) else {
            return Err(self.ops_err(members, format!("tail of {tail_len} bytes does not fit in memory")));
        };
        let mut tail = vec![0u8; tail_len];
        self.s[stream::OPS].read_exact(&mut tail).map_err(|e| self.ops_err(members, stream_problem("ops", &e)))?;
        let ops_err = |what: String| ApplyError::Ops { patch: self.p.path.clone(), member: members, what };
        for (s, info) in self.s.iter_mut().zip(&h.streams) {
            let at_end = s.at_end().map_err(|e| ops_err(stream_problem(info.name.as_str(), &e)))?;
            if !at_end || s.consumed != info.raw_size {
                return Err(ops_err(format!("stream {} has {} bytes, the header declares {}", info.name, s.consumed, info.raw_size)));
            }
        }
        w.put(&[0u8; BLOCK]).map_err(|e| self.out_err(members, "end of archive", e))?;
        w.put(&tail).map_err(|e| self.out_err(members, "end of archive", e))
    }

    /// After the ops went wrong: the error of the old stream, if it is not the
    /// tar the patch applies to (a wrong base makes sound ops fail: a control
    /// that runs past a source member of another size). Reads the old stream to
    /// its end to tell.
    fn blame_the_base(self) -> Option<ApplyError> {
        let (p, label) = (self.p, self.label);
        match finish_old(self.old) {
            Err(e) => Some(tar_err(p, label, e)),
            Ok((size, sha256)) if !p.header.old.matches_sha256(size, &sha256) => {
                let found = Digests { size, md5: [0; 16], sha256 };
                Some(ApplyError::Old { patch: p.path.clone(), label: label.into(), what: digest_mismatch(&p.header.old, &found) })
            }
            Ok(_) => None,
        }
    }

    /// The rest of the old stream, then both digests: the old one first, since
    /// a wrong base explains a wrong result.
    fn verify<W: Write>(self, w: Out<'_, W>) -> Result<Digests, ApplyError> {
        let (p, label) = (self.p, self.label);
        drop(self.kept);
        let (size, sha256) = finish_old(self.old).map_err(|e| tar_err(p, label, e))?;
        if !p.header.old.matches_sha256(size, &sha256) {
            let found = Digests { size, md5: [0; 16], sha256 };
            return Err(ApplyError::Old { patch: p.path.clone(), label: label.into(), what: digest_mismatch(&p.header.old, &found) });
        }
        let (_, size, md5, sha256) = match w.finish() {
            Ok(done) => done,
            Err(OutError::Write(e)) => return Err(output_err("end of archive", e)),
            // finish writes nothing new, so it cannot pass the limit.
            Err(OutError::TooLong(limit)) => return Err(output_err("end of archive", io::Error::other(format!("past {limit} bytes")))),
        };
        let new_digests = Digests { size, md5, sha256 };
        if !p.header.new.matches(&new_digests) {
            return Err(ApplyError::New { patch: p.path.clone(), what: digest_mismatch(&p.header.new, &new_digests) });
        }
        Ok(new_digests)
    }

    fn old_err(&self, what: String) -> ApplyError {
        ApplyError::Old { patch: self.p.path.clone(), label: self.label.into(), what }
    }
}

/// Reads the old stream to its end (skipping members); returns its size and SHA-256.
fn finish_old(mut old: tario::Reader<OldReader>) -> Result<(u64, [u8; 32]), TarError> {
    while old.next_member()?.is_some() {}
    let (_, stream) = old.finish()?;
    // finish() read to the end of the stream, so the reader has its digest.
    stream.digest().ok_or(TarError::Io { offset: 0, source: io::Error::other("the old stream did not end") })
}

/// Adds the next `out.len()` difference bytes (streams `runs` and `diff`) onto
/// `out`, which holds the old bytes.
fn add_diff(out: &mut [u8], runs: &mut Runs, s: &mut [StreamReader]) -> io::Result<()> {
    let [run_lengths, diff] = s else { return Err(io::Error::other("the runs and diff streams are not both there")) };
    let mut i = 0;
    while i < out.len() {
        if runs.zeros == 0 && runs.nonzeros == 0 {
            runs.zeros = patchfile::read_varint(run_lengths)?;
            runs.nonzeros = patchfile::read_varint(run_lengths)?;
            continue;
        }
        let z = runs.zeros.min((out.len() - i) as u64) as usize;
        (i, runs.zeros) = (i + z, runs.zeros - z as u64);
        while runs.zeros == 0 && runs.nonzeros > 0 && i < out.len() {
            let bytes = diff.fill_buf()?;
            if bytes.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "diff stream ends early"));
            }
            let n = bytes.len().min(out.len() - i).min(runs.nonzeros.min(usize::MAX as u64) as usize);
            for (o, d) in out.iter_mut().skip(i).take(n).zip(bytes) {
                *o = o.wrapping_add(*d);
            }
            diff.consume(n);
            (i, runs.nonzeros) = (i + n, runs.nonzeros - n as u64);
        }
    }
    Ok(())
}

fn tar_err(p: &PatchFile, label: &str, e: TarError) -> ApplyError {
    if let TarError::Io { source, .. } = &e {
        if source.kind() == super::pipe::BROKEN {
            return ApplyError::Stopped { patch: p.path.clone(), what: source.to_string() };
        }
    }
    ApplyError::Old { patch: p.path.clone(), label: label.into(), what: chain(&e) }
}

fn output_err(member: &str, e: io::Error) -> ApplyError {
    ApplyError::Output { what: format!("writing {member}"), source: e }
}

/// A read error in a stream, in words: a truncated or corrupt patch.
fn stream_problem(name: &str, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => format!("{name} stream ends early (truncated patch?)"),
        _ => format!("{name} stream: {}", chain(e)),
    }
}

fn digest_mismatch(expected: &patchfile::TarDigest, found: &Digests) -> String {
    if expected.size != found.size {
        format!("{} bytes, expected {} bytes (SHA-256 {})", found.size, expected.size, expected.sha256)
    } else if expected.sha256 != found.sha256_hex() {
        format!("SHA-256 is {}, expected {}", found.sha256_hex(), expected.sha256)
    } else {
        format!("MD5 is {}, expected {}", found.md5_hex(), expected.md5)
    }
}
