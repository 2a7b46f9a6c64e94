//! Applying one patch as a stream: old tar in, new tar out, front to back.
//!
//! The old tar is read once, with a cursor on its next member. An op whose source
//! is at or past the cursor reads forward to it (keeping, on the way, what the
//! header's keep list names); a copy streams straight from the old stream to the
//! new one; a delta holds its one source member in memory for bipatch, which
//! needs to seek in it. An op whose source is behind the cursor is served from
//! the kept set, which frees each member after its last use. Memory is thus the
//! zstd window, one source member and the declared kept set.
//!
//! The old stream is hashed as it passes and checked at the end (size, MD5,
//! SHA-256), as is the new one; nothing that the patch says is trusted for an
//! allocation beyond the bounds that `patchfile::read_header` checked.

use super::ApplyError;
use crate::errors::{chain, shown};
use crate::patchfile::{self, Keep, PatchFile};
use crate::tario::{self, Digests, HashingReader, HashingWriter, Member, TarError, BLOCK};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// The old stream, hashed, checked against the patch's prefix digest as soon as
/// that much has passed, and refused past the size the patch expects.
struct OldStream<R> {
    inner: HashingReader<R>,
    expected: u64,
    prefix_len: u64,
    prefix_sha256: String,
    prefix_hash: Sha256,
}

impl<R: Read> Read for OldStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let before = self.inner.bytes_read();
        let n = self.inner.read(buf)?;
        if before < self.prefix_len {
            let take = (self.prefix_len - before).min(n as u64) as usize;
            self.prefix_hash.update(&buf[..take]);
            if before + take as u64 == self.prefix_len {
                let found = hex::encode(std::mem::take(&mut self.prefix_hash).finalize());
                if found != self.prefix_sha256 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "its first {} bytes are not those of the tar the patch applies to (SHA-256 {found}, expected {}): wrong base?",
                            self.prefix_len, self.prefix_sha256
                        ),
                    ));
                }
            }
        }
        if self.inner.bytes_read() > self.expected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("longer than the {} bytes of the tar the patch applies to", self.expected),
            ));
        }
        Ok(n)
    }
}

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

/// What failed while copying: the side matters for the message.
enum CopyError {
    Read(io::Error),
    Write(io::Error),
    Short(u64),
}

struct Applier<'a, R: Read> {
    p: &'a PatchFile,
    label: &'a str,
    old: tario::Reader<OldStream<R>>,
    /// Index of the next old member to read.
    cursor: u64,
    keep: HashMap<u64, &'a Keep>,
    kept: HashMap<u64, Kept>,
}

/// Applies patch `p` to the tar stream `old` (described by `label` in messages),
/// writing the new tar to `out`; returns the new tar's digests once both the
/// old and the new stream have been verified.
pub fn apply_one<R: Read, W: Write>(p: &PatchFile, label: &str, old: R, out: &mut W) -> Result<Digests, ApplyError> {
    let mut ops = open_ops(p)?;
    let mut a = Applier::new(p, label, old);
    let mut w = HashingWriter::new(BufWriter::with_capacity(128 * 1024, out));
    let mut buf = vec![0u8; 128 * 1024];
    let mut index = 0u64;
    while let Some(tag) = a.next_tag(&mut ops, index)? {
        a.apply_op(tag, index, &mut ops, &mut w, &mut buf)?;
        index += 1;
    }
    a.write_end(index, &mut ops, &mut w, &mut buf)?;
    a.verify(w)
}

/// The ops stream of `p`: one zstd frame, its window bounded as the format says.
fn open_ops(p: &PatchFile) -> Result<impl Read, ApplyError> {
    let patch_io = |e| ApplyError::Format(patchfile::FormatError::Io { path: p.path.clone(), source: e });
    let mut file = File::open(&p.path).map_err(patch_io)?;
    file.seek(SeekFrom::Start(p.ops_offset)).map_err(patch_io)?;
    let ops_file = BufReader::with_capacity(128 * 1024, file.take(p.header.ops_size));
    let mut dec = zstd::stream::read::Decoder::with_buffer(ops_file).map_err(patch_io)?.single_frame();
    dec.window_log_max(patchfile::WINDOW_LOG).map_err(patch_io)?;
    Ok(dec)
}

impl<'a, R: Read> Applier<'a, R> {
    fn new(p: &'a PatchFile, label: &'a str, old: R) -> Self {
        let h = &p.header;
        Applier {
            p,
            label,
            old: tario::Reader::new(OldStream {
                inner: HashingReader::new(old),
                expected: h.old.size,
                prefix_len: h.old_prefix.size,
                prefix_sha256: h.old_prefix.sha256.clone(),
                prefix_hash: Sha256::new(),
            }),
            cursor: 0,
            keep: h.keep.iter().map(|k| (k.index, k)).collect(),
            kept: HashMap::new(),
        }
    }
}

impl<R: Read> Applier<'_, R> {
    fn ops_err(&self, member: u64, what: String) -> ApplyError {
        ApplyError::Ops { patch: self.p.path.clone(), member, what }
    }

    /// The tag of op `index`; `None` at the end op.
    fn next_tag(&self, ops: &mut impl Read, index: u64) -> Result<Option<u8>, ApplyError> {
        let mut tag = [0u8];
        ops.read_exact(&mut tag).map_err(|e| self.ops_err(index, stream_problem(&e)))?;
        if tag[0] == patchfile::TAG_END {
            return Ok(None);
        }
        if index >= self.p.header.new_members {
            return Err(self.ops_err(index, format!("more ops than the {} members the header declares", self.p.header.new_members)));
        }
        Ok(Some(tag[0]))
    }

    /// Op `index`: its source, its header, its data, written as new member `index`.
    fn apply_op(
        &mut self,
        tag: u8,
        index: u64,
        ops: &mut impl Read,
        w: &mut HashingWriter<impl Write>,
        buf: &mut [u8],
    ) -> Result<(), ApplyError> {
        let (header_op, data_op) = (tag & 3, (tag >> 2) & 3);
        if tag >> 4 != 0 || header_op > patchfile::HDR_SAME {
            return Err(self.ops_err(index, format!("unknown op tag {tag:#04x}")));
        }
        let needs_source = header_op == patchfile::HDR_SAME || matches!(data_op, patchfile::DATA_COPY | patchfile::DATA_DELTA);
        let source = if needs_source { Some(self.source(index, ops)?) } else { None };
        let new = self.write_header(header_op, source.as_ref(), index, ops, w)?;
        let (size, path) = (new.size, new.path.as_str());
        self.room(w.bytes_written(), size + tario::write::padding(size) as u64, path)?;
        match data_op {
            patchfile::DATA_NONE if size == 0 => {}
            patchfile::DATA_NONE if header_op == patchfile::HDR_SAME => {
                return Err(self.old_err(format!("old member {path} has {size} bytes of data, the patch expects none: wrong base?")))
            }
            patchfile::DATA_NONE => return Err(self.ops_err(index, format!("{path}: {size} bytes of data but no data op"))),
            patchfile::DATA_COPY => self.copy_data(source.as_ref().expect("copy has a source"), &new, w, buf)?,
            patchfile::DATA_DELTA => self.delta_data(source.as_ref().expect("delta has a source"), &new, ops, w, buf)?,
            patchfile::DATA_LITERAL => match copy_exact(ops, w, size, buf) {
                Ok(()) => {}
                Err(CopyError::Write(e)) => return Err(output_err(path, e)),
                Err(CopyError::Read(e)) => return Err(self.ops_err(index, format!("{path}: {}", stream_problem(&e)))),
                Err(CopyError::Short(n)) => return Err(self.ops_err(index, format!("{path}: literal data ends {n} bytes early"))),
            },
            _ => unreachable!("two bits"),
        }
        w.write_all(&[0u8; BLOCK][..tario::write::padding(size)]).map_err(|e| output_err(path, e))?;
        if let Some((k, Fetched::Stored)) = source {
            self.used(k);
        }
        Ok(())
    }

    /// The old member an op names (relative to the cursor), brought to hand.
    fn source(&mut self, index: u64, ops: &mut impl Read) -> Result<(u64, Fetched), ApplyError> {
        let rel = patchfile::unzigzag(patchfile::read_varint(ops).map_err(|e| self.ops_err(index, stream_problem(&e)))?);
        let k = i64::try_from(self.cursor).ok().and_then(|c| c.checked_add(rel)).and_then(|k| u64::try_from(k).ok());
        let Some(k) = k.filter(|k| *k < self.p.header.old_members) else {
            return Err(self.ops_err(index, format!("source {rel:+} from old member {} is outside the old tar", self.cursor)));
        };
        Ok((k, self.fetch(k, index)?))
    }

    /// Writes the new member's raw header (its source's, or the one the op
    /// sends) and returns what it says.
    fn write_header(
        &self,
        header_op: u8,
        source: Option<&(u64, Fetched)>,
        index: u64,
        ops: &mut impl Read,
        w: &mut HashingWriter<impl Write>,
    ) -> Result<NewMember, ApplyError> {
        let literal;
        let raw: &[u8] = match (header_op, source) {
            (patchfile::HDR_SAME, Some((_, Fetched::Current(m)))) => &m.raw_header,
            (patchfile::HDR_SAME, Some((k, Fetched::Stored))) => &self.kept[k].header,
            (patchfile::HDR_SAME, None) => unreachable!("HDR_SAME always has a source"),
            _ => {
                let len = patchfile::read_varint(ops).map_err(|e| self.ops_err(index, stream_problem(&e)))?;
                let max = self.p.header.max_raw_header;
                if len > max {
                    return Err(self.ops_err(index, format!("raw header of {len} bytes, the header declares at most {max}")));
                }
                let mut v = vec![0u8; usize::try_from(len).expect("bounded by max_raw_header")];
                ops.read_exact(&mut v).map_err(|e| self.ops_err(index, stream_problem(&e)))?;
                literal = v;
                &literal
            }
        };
        let member = match tario::Reader::new(raw).next_member() {
            Ok(Some(m)) if m.raw_header.len() == raw.len() => m,
            Ok(_) => return Err(self.ops_err(index, "raw header is not exactly one member header".into())),
            Err(e) => return Err(self.ops_err(index, format!("raw header: {e}"))),
        };
        let path = format!("\"{}\"", shown(&member.meta.path));
        self.room(w.bytes_written(), raw.len() as u64, &path)?;
        w.write_all(raw).map_err(|e| output_err(&path, e))?;
        Ok(NewMember { index, size: member.meta.size, path })
    }

    fn source_size(&self, src: &(u64, Fetched)) -> u64 {
        match src {
            (_, Fetched::Current(m)) => m.meta.size,
            (k, Fetched::Stored) => self.kept[k].data.len() as u64,
        }
    }

    /// DATA_COPY: the source member's data, unchanged.
    fn copy_data(&mut self, src: &(u64, Fetched), new: &NewMember, w: &mut impl Write, buf: &mut [u8]) -> Result<(), ApplyError> {
        let (size, path) = (new.size, new.path.as_str());
        let have = self.source_size(src);
        if have != size {
            return Err(self
                .old_err(format!("old member {} is {have} bytes, the patch copies {size} bytes from it into {path}: wrong base?", src.0)));
        }
        match src {
            (_, Fetched::Current(_)) => match copy_exact(&mut self.old.data(), w, size, buf) {
                Ok(()) => Ok(()),
                Err(CopyError::Write(e)) => Err(output_err(path, e)),
                Err(CopyError::Read(e)) => Err(self.old_io_err(e)),
                Err(CopyError::Short(n)) => Err(self.old_err(format!("member data ends {n} bytes early"))),
            },
            (k, Fetched::Stored) => w.write_all(&self.kept[k].data).map_err(|e| output_err(path, e)),
        }
    }

    /// DATA_DELTA: a bipatch stream against the source member's data, held in
    /// memory (bipatch seeks in it).
    fn delta_data(
        &mut self,
        src: &(u64, Fetched),
        new: &NewMember,
        ops: &mut impl Read,
        w: &mut impl Write,
        buf: &mut [u8],
    ) -> Result<(), ApplyError> {
        let (index, size, path) = (new.index, new.size, new.path.as_str());
        let len = patchfile::read_varint(ops).map_err(|e| self.ops_err(index, stream_problem(&e)))?;
        let held;
        let old_data: &[u8] = match src {
            (k, Fetched::Current(m)) => {
                let max = self.p.header.max_source;
                if m.meta.size > max {
                    return Err(self.old_err(format!(
                        "old member {k} (\"{}\") is {} bytes, the patch expects delta sources of at most {max}: wrong base?",
                        shown(&m.meta.path),
                        m.meta.size
                    )));
                }
                held = self.read_data(m.meta.size)?;
                &held
            }
            (k, Fetched::Stored) => &self.kept[k].data,
        };
        let delta_err = |what: String| ApplyError::Ops { patch: self.p.path.clone(), member: index, what: format!("{path}: {what}") };
        let mut delta = ops.take(len);
        let mut patched =
            bipatch::Reader::new(&mut delta, io::Cursor::new(old_data)).map_err(|e| delta_err(format!("delta: {}", chain(&e))))?;
        match copy_exact(&mut patched, w, size, buf) {
            Ok(()) => {}
            Err(CopyError::Write(e)) => return Err(output_err(path, e)),
            Err(CopyError::Read(e)) => return Err(delta_err(format!("delta: {}", stream_problem(&e)))),
            Err(CopyError::Short(n)) => return Err(delta_err(format!("delta makes {n} bytes fewer than {size}"))),
        }
        let extra = patched.read(&mut buf[..1]).map_err(|e| delta_err(format!("delta: {}", chain(&e))))?;
        drop(patched);
        if extra != 0 || delta.limit() != 0 {
            return Err(delta_err(format!("delta longer than the {size} bytes it makes")));
        }
        Ok(())
    }

    /// The end op, after `members` ops: the tail that follows the
    /// end-of-archive block, and nothing after it.
    fn write_end(&self, members: u64, ops: &mut impl Read, w: &mut HashingWriter<impl Write>, buf: &mut [u8]) -> Result<(), ApplyError> {
        let h = &self.p.header;
        let end_err = |what: String| self.ops_err(members, what);
        if members != h.new_members {
            return Err(end_err(format!("{members} members, the header declares {}", h.new_members)));
        }
        let tail_len = patchfile::read_varint(ops).map_err(|e| end_err(stream_problem(&e)))?;
        if tail_len > h.tail_size {
            return Err(end_err(format!("tail of {tail_len} bytes, the header declares {}", h.tail_size)));
        }
        self.room(w.bytes_written(), BLOCK as u64 + tail_len, "end of archive")?;
        let mut tail = vec![0u8; usize::try_from(tail_len).expect("bounded by tail_size")];
        ops.read_exact(&mut tail).map_err(|e| end_err(stream_problem(&e)))?;
        if ops.read(&mut buf[..1]).map_err(|e| end_err(stream_problem(&e)))? != 0 {
            return Err(end_err("data after the end op".into()));
        }
        w.write_all(&[0u8; BLOCK]).map_err(|e| output_err("end of archive", e))?;
        w.write_all(&tail).map_err(|e| output_err("end of archive", e))
    }

    /// The rest of the old stream, then both digests: the old one first, since
    /// a wrong base explains a wrong result.
    fn verify<W: Write>(self, w: HashingWriter<BufWriter<W>>) -> Result<Digests, ApplyError> {
        let (p, label) = (self.p, self.label);
        drop(self.kept);
        let old_digests = finish_old(self.old).map_err(|e| tar_err(p, label, e))?;
        if !p.header.old.matches(&old_digests) {
            return Err(ApplyError::Old { patch: p.path.clone(), label: label.into(), what: digest_mismatch(&p.header.old, &old_digests) });
        }
        let (buffered, new_digests) = w.finish();
        buffered
            .into_inner()
            .map_err(|e| output_err("end of archive", e.into_error()))?
            .flush()
            .map_err(|e| output_err("end of archive", e))?;
        if !p.header.new.matches(&new_digests) {
            return Err(ApplyError::New { patch: p.path.clone(), what: digest_mismatch(&p.header.new, &new_digests) });
        }
        Ok(new_digests)
    }

    /// Refuses to write `more` bytes (for `what`) after `written` when that
    /// would take the new tar past the size the header declares: a small
    /// patch must not fill a disk before its digests are checked at the end.
    fn room(&self, written: u64, more: u64, what: &str) -> Result<(), ApplyError> {
        let declared = self.p.header.new.size;
        match written.checked_add(more) {
            Some(end) if end <= declared => Ok(()),
            end => Err(ApplyError::New {
                patch: self.p.path.clone(),
                what: format!(
                    "{what} takes it to {} bytes, past the {declared} bytes its header declares; stopped there",
                    end.map_or("more than 2^64".to_string(), |e| e.to_string())
                ),
            }),
        }
    }

    fn old_err(&self, what: String) -> ApplyError {
        ApplyError::Old { patch: self.p.path.clone(), label: self.label.into(), what }
    }

    fn old_io_err(&self, e: io::Error) -> ApplyError {
        match e.into_inner().map(|inner| inner.downcast::<TarError>()) {
            Some(Ok(tar)) => tar_err(self.p, self.label, *tar),
            Some(Err(other)) => self.old_err(chain(&*other)),
            None => self.old_err("read error".into()),
        }
    }

    /// The next old member, keeping it if the keep list says so.
    fn next_old(&mut self, wanted: u64) -> Result<(u64, Member), ApplyError> {
        let member = self.old.next_member().map_err(|e| tar_err(self.p, self.label, e))?;
        let Some(member) = member else {
            return Err(self.old_err(format!(
                "ends after {} members, the patch needs member {wanted} (of {}): wrong base or truncated stream?",
                self.cursor, self.p.header.old_members
            )));
        };
        let index = self.cursor;
        self.cursor += 1;
        Ok((index, member))
    }

    /// Brings old member `k` to hand for new member `for_new`.
    fn fetch(&mut self, k: u64, for_new: u64) -> Result<Fetched, ApplyError> {
        if k < self.cursor {
            return if self.kept.contains_key(&k) {
                Ok(Fetched::Stored)
            } else {
                Err(ApplyError::Ops {
                    patch: self.p.path.clone(),
                    member: for_new,
                    what: format!("refers back to old member {k}, which its keep list does not keep"),
                })
            };
        }
        loop {
            let (index, member) = self.next_old(k)?;
            if let Some(keep) = self.keep.get(&index).copied() {
                if index == k && keep.data_size == 0 {
                    // Later ops need only its header; this one may need its data,
                    // which streams from the old tar as for any current member.
                    self.store(index, member.clone(), keep)?;
                    self.used(k);
                    return Ok(Fetched::Current(member));
                }
                self.store(index, member, keep)?;
                if index == k {
                    return Ok(Fetched::Stored);
                }
            } else if index == k {
                return Ok(Fetched::Current(member));
            }
        }
    }

    fn store(&mut self, index: u64, member: Member, keep: &Keep) -> Result<(), ApplyError> {
        let path = shown(&member.meta.path);
        if member.raw_header.len() as u64 != keep.header_size || (keep.data_size > 0 && member.meta.size != keep.data_size) {
            return Err(self.old_err(format!(
                "old member {index} ({path}) has a {}-byte header and {} bytes of data, the patch expects {} and {}: wrong base?",
                member.raw_header.len(),
                member.meta.size,
                keep.header_size,
                if keep.data_size > 0 { keep.data_size.to_string() } else { "any".into() }
            )));
        }
        let data = if keep.data_size > 0 { self.read_data(keep.data_size)? } else { Vec::new() };
        self.kept.insert(index, Kept { header: member.raw_header, data, uses_left: keep.uses });
        Ok(())
    }

    /// Reads the current old member's data, `size` bytes (already checked
    /// against the header's bounds), into memory. The buffer grows with what
    /// actually arrives, so a lying size costs nothing up front.
    fn read_data(&mut self, size: u64) -> Result<Vec<u8>, ApplyError> {
        let mut v = Vec::with_capacity(size.min(16 << 20) as usize);
        let mut chunk = vec![0u8; 128 * 1024];
        loop {
            let n = self.old.read_data(&mut chunk).map_err(|e| tar_err(self.p, self.label, e))?;
            if n == 0 {
                return Ok(v);
            }
            v.extend_from_slice(&chunk[..n]);
        }
    }

    /// Counts one use of a kept member; frees it after its last.
    fn used(&mut self, k: u64) {
        if let Some(kept) = self.kept.get_mut(&k) {
            kept.uses_left = kept.uses_left.saturating_sub(1);
            if kept.uses_left == 0 {
                self.kept.remove(&k);
            }
        }
    }
}

/// Reads the old stream to its end (skipping members) and returns its digests.
fn finish_old<R: Read>(mut old: tario::Reader<OldStream<R>>) -> Result<Digests, TarError> {
    while old.next_member()?.is_some() {}
    let (_, stream) = old.finish()?;
    Ok(stream.inner.finish().1)
}

fn copy_exact(r: &mut impl Read, w: &mut impl Write, n: u64, buf: &mut [u8]) -> Result<(), CopyError> {
    let mut left = n;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let got = match r.read(&mut buf[..want]) {
            Ok(0) => return Err(CopyError::Short(left)),
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        w.write_all(&buf[..got]).map_err(CopyError::Write)?;
        left -= got as u64;
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

/// A read error in the ops stream, in words: a truncated or corrupt patch.
fn stream_problem(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => "ops stream ends early (truncated patch?)".into(),
        _ => format!("ops stream: {}", chain(e)),
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
