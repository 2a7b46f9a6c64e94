//! The op interpreter's old side: bringing an op's source member to hand,
//! reading the old stream forward to it and keeping on the way what the
//! header's keep list names, or finding it in the kept set, which frees each
//! member after its last use.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::{tar_err, Applier, ApplyError, Fetched, Kept};
use crate::errors::shown;
use crate::patchfile::Keep;
use crate::tario::Member;

impl Applier<'_> {
    /// The next old member, keeping it if the keep list says so.
    pub(super) fn next_old(&mut self, wanted: u64) -> Result<(u64, Member), ApplyError> {
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
    pub(super) fn fetch(&mut self, k: u64, for_new: u64) -> Result<Fetched, ApplyError> {
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

    pub(super) fn store(&mut self, index: u64, member: Member, keep: &Keep) -> Result<(), ApplyError> {
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
    pub(super) fn read_data(&mut self, size: u64) -> Result<Vec<u8>, ApplyError> {
        let mut v = Vec::with_capacity(size.min(16 << 20) as usize);
        let mut chunk = vec![0u8; 128 * 1024];
        loop {
            let n = self.old.read_data(&mut chunk).map_err(|e| tar_err(self.p, self.label, e))?;
            if n == 0 {
                return Ok(v);
            }
            v.extend_from_slice(chunk.get(..n).unwrap_or(&chunk));
        }
    }

    /// Reads the current old member's data, `size` bytes (checked against
    /// `max_source`), into the reused source buffer. The buffer only grows, and
    /// only as data arrives: a size field that lies reserves nothing.
    pub(super) fn read_source(&mut self, size: u64) -> Result<(), ApplyError> {
        let Ok(size) = usize::try_from(size) else {
            return Err(self.old_err(format!("member of {size} bytes does not fit in memory")));
        };
        let mut at = 0;
        while at < size {
            if at == self.src.len() {
                let grow = self.src.len().max(1 << 20).min(size - at);
                self.src.resize(at + grow, 0);
            }
            let end = self.src.len().min(size);
            let Some(room) = self.src.get_mut(at..end) else {
                return Err(self.old_err(format!("member data ends {} bytes early", size - at)));
            };
            match self.old.read_data(room) {
                Ok(0) => return Err(self.old_err(format!("member data ends {} bytes early", size - at))),
                Ok(n) => at += n,
                Err(e) => return Err(tar_err(self.p, self.label, e)),
            }
        }
        Ok(())
    }

    /// Counts one use of a kept member; frees it after its last.
    pub(super) fn used(&mut self, k: u64) {
        if let Some(kept) = self.kept.get_mut(&k) {
            kept.uses_left = kept.uses_left.saturating_sub(1);
            if kept.uses_left == 0 {
                self.kept.remove(&k);
            }
        }
    }
}
