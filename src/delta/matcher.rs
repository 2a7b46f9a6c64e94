//! The matching engine: for every new member, which old member (if any) its
//! header and data come from. It is one function, [`choose`], so that a smarter
//! engine can replace it without touching the format, the planner or the applier.
//!
//! This one, in order of preference for a member's data:
//! 1. the old member at the same path, when its content is identical (a copy);
//! 2. any old member with identical content (a moved or duplicated file: a copy);
//! 3. the old member at the same path, when it has data (a bsdiff delta);
//! 4. an old member whose path is the same once digit runs are blurred
//!    (`libfoo.so.5` -> `libfoo.so.6`, `python3.11/` -> `python3.12/`), the closest
//!    in size, preferring one whose own path is gone from the new tar (a delta);
//! 5. an earlier new member with identical content (hard-link-like copies):
//!    a reference, the applier keeps that member's data (this comes before 3
//!    and 4, which cost bytes);
//! 6. otherwise literal data (which `similar` may still pair with an old
//!    member by content).
//!
//! A new member's header is written against an old member's raw header (the
//! same bytes, or bytewise differences of the same length): the data's source
//! when there is one, else the old member at the same path.

use super::scan::ScannedMember;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Where a new member's data comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFrom {
    /// The member has no data.
    None,
    /// Identical to the data of this old member.
    Copy(usize),
    /// A bsdiff delta against the data of this old member.
    Delta(usize),
    /// Sent as is.
    Literal,
    /// Identical to the data of this earlier new member.
    NewCopy(usize),
}

/// The choice for one new member. When both the header and the data come from
/// old members, they come from the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    /// The old member whose raw header this member's is written against.
    pub header_from: Option<usize>,
    pub data: DataFrom,
}

impl Choice {
    pub const LITERAL: Choice = Choice { header_from: None, data: DataFrom::Literal };

    /// The old member this choice reads, and whether it needs its data.
    pub fn source(&self) -> Option<(usize, bool)> {
        match self.data {
            DataFrom::Copy(k) | DataFrom::Delta(k) => Some((k, true)),
            DataFrom::None | DataFrom::Literal | DataFrom::NewCopy(_) => self.header_from.map(|k| (k, false)),
        }
    }

    /// The same choice with nothing taken from old members.
    pub fn literal(size: u64) -> Choice {
        Choice { header_from: None, data: if size > 0 { DataFrom::Literal } else { DataFrom::None } }
    }
}

/// Data smaller than this is sent literally: a delta's framing costs more.
const MIN_DELTA: u64 = 64;

/// Chooses a source for every new member. Deterministic: ties go to the lowest
/// old index.
pub fn choose(old: &[ScannedMember], new: &[ScannedMember]) -> Vec<Choice> {
    let by_path: HashMap<&Path, usize> = old.iter().enumerate().map(|(i, m)| (m.meta.path.as_path(), i)).rev().collect();
    let mut by_content: HashMap<(u64, [u8; 32]), usize> = HashMap::new();
    let mut by_blurred: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, m) in old.iter().enumerate() {
        if m.size() > 0 {
            by_content.entry((m.size(), m.content)).or_insert(i);
            by_blurred.entry(blur(&m.meta.path)).or_default().push(i);
        }
    }
    let new_paths: HashSet<&Path> = new.iter().map(|m| m.meta.path.as_path()).collect();
    let mut new_content: HashMap<(u64, [u8; 32]), usize> = HashMap::new();

    new.iter()
        .enumerate()
        .map(|(i, m)| {
            let same_path = by_path.get(m.meta.path.as_path()).copied();
            // Without data from an old member, a header is written against the
            // same path's, when it is as long (a difference is then mostly zeros).
            let header_base = same_path.filter(|&k| old[k].raw_header.len() == m.raw_header.len());
            if m.size() == 0 {
                return Choice { header_from: header_base, data: DataFrom::None };
            }
            let key = (m.size(), m.content);
            let earlier = new_content.get(&key).copied();
            new_content.entry(key).or_insert(i);
            let data = if let Some(k) = same_path.filter(|&k| old[k].size() == m.size() && old[k].content == m.content) {
                DataFrom::Copy(k)
            } else if let Some(&k) = by_content.get(&key) {
                DataFrom::Copy(k)
            } else if let Some(j) = earlier.filter(|_| m.size() >= MIN_DELTA) {
                DataFrom::NewCopy(j)
            } else if m.size() < MIN_DELTA {
                DataFrom::Literal
            } else if let Some(k) = same_path.filter(|&k| old[k].size() > 0) {
                DataFrom::Delta(k)
            } else if let Some(k) = renamed(old, &by_blurred, &new_paths, m) {
                DataFrom::Delta(k)
            } else {
                DataFrom::Literal
            };
            let header_from = match data {
                DataFrom::Copy(k) | DataFrom::Delta(k) => Some(k),
                _ => header_base,
            };
            Choice { header_from, data }
        })
        .collect()
}

/// The old member that a new one is most likely a re-versioned copy of.
fn renamed(
    old: &[ScannedMember],
    by_blurred: &HashMap<String, Vec<usize>>,
    new_paths: &HashSet<&Path>,
    m: &ScannedMember,
) -> Option<usize> {
    let candidates = by_blurred.get(&blur(&m.meta.path))?;
    candidates.iter().copied().min_by_key(|&k| {
        let still_there = new_paths.contains(old[k].meta.path.as_path());
        (still_there, old[k].size().abs_diff(m.size()), k)
    })
}

/// A path with every run of digits replaced by `#`.
pub fn blur(path: &Path) -> String {
    let mut out = String::new();
    let mut in_digits = false;
    for c in path.to_string_lossy().chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tario::{Kind, Meta};

    fn member(path: &str, content: u8, size: u64) -> ScannedMember {
        let mut meta = Meta::new(path, Kind::File);
        meta.size = size;
        ScannedMember { raw_header: crate::tario::write::header_bytes(&meta), meta, data_offset: 0, content: [content; 32] }
    }

    #[test]
    fn blurs_version_numbers() {
        assert_eq!(blur(Path::new("usr/lib/libfoo.so.5")), "usr/lib/libfoo.so.#");
        assert_eq!(blur(Path::new("usr/lib/python3.11/x")), "usr/lib/python#.#/x");
    }

    #[test]
    fn prefers_same_path_then_content_then_renames() {
        let old = vec![member("a", 1, 100), member("b", 2, 100), member("lib/libfoo.so.5", 3, 1000), member("c", 4, 100)];
        let new = vec![
            member("a", 1, 100),
            member("b", 9, 100),
            member("d", 4, 100),
            member("lib/libfoo.so.6", 7, 1100),
            member("e", 8, 100),
            member("f", 8, 100),
        ];
        let c = choose(&old, &new);
        assert_eq!(c[0], Choice { header_from: Some(0), data: DataFrom::Copy(0) });
        assert_eq!(c[1].data, DataFrom::Delta(1));
        assert_eq!(c[2].data, DataFrom::Copy(3));
        assert_eq!(c[3].data, DataFrom::Delta(2));
        assert_eq!(c[4].data, DataFrom::Literal);
        assert_eq!(c[5].data, DataFrom::NewCopy(4));
    }
}
