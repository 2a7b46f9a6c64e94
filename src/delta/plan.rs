//! Planning what the applier must keep in memory, by simulating its cursor.
//!
//! The applier reads the old tar once, front to back. An op whose source is at or
//! past its cursor moves the cursor there (skipping what lies between); an op
//! whose source the cursor has already passed can only be served from the kept
//! set, which the patch header declares in advance. The planner caps that set:
//! a reference that would need more than the cap is turned into literal data,
//! and a jump far ahead that would force too much to be kept is refused the same
//! way, so memory stays bounded whatever the matcher asked for.

use super::matcher::{Choice, DataFrom};
use super::scan::ScannedMember;
use crate::patchfile::{Keep, NewKeep};
use std::collections::BTreeMap;

/// Applies the cap to the matcher's choices; returns the choices the ops will
/// follow (some turned literal).
pub fn cap_choices(old: &[ScannedMember], choices: &[Choice], new: &[ScannedMember], cap: u64) -> Vec<Choice> {
    // For every old member, the ops that refer to it, in order, and whether each needs data.
    let mut refs: Vec<Vec<(usize, bool)>> = vec![Vec::new(); old.len()];
    for (i, c) in choices.iter().enumerate() {
        if let Some((k, data)) = c.source() {
            refs[k].push((i, data));
        }
    }
    // What keeping old member j costs if the cursor passes it just before op i:
    // its header, plus its data if a later op needs that; None if nothing later uses it.
    let later_cost = |j: usize, i: usize| -> Option<u64> {
        let later: Vec<bool> = refs[j].iter().filter(|(at, _)| *at > i).map(|(_, d)| *d).collect();
        if later.is_empty() {
            return None;
        }
        let data = if later.iter().any(|d| *d) { old[j].size() } else { 0 };
        Some(old[j].raw_header.len() as u64 + data)
    };

    let mut out = Vec::with_capacity(choices.len());
    // Old members kept, and whether with their data.
    let mut kept: BTreeMap<usize, bool> = BTreeMap::new();
    let mut kept_bytes = 0u64;
    let mut cursor = 0usize;
    for (i, c) in choices.iter().enumerate() {
        let Some((k, needs_data)) = c.source() else {
            out.push(*c);
            continue;
        };
        if k >= cursor {
            // The cursor passes cursor..=k: whatever of that a later op uses must be kept.
            let mut to_keep = Vec::new();
            let mut cost = 0u64;
            for j in cursor..=k {
                if let Some(c) = later_cost(j, i) {
                    to_keep.push((j, c));
                    cost += c;
                }
            }
            if kept_bytes + cost > cap && k > cursor {
                // Refuse the jump; the members stay ahead of the cursor for later ops.
                out.push(Choice::literal(new[i].size()));
                continue;
            }
            for (j, c) in to_keep {
                if kept_bytes + c <= cap {
                    kept_bytes += c;
                    kept.insert(j, c > old[j].raw_header.len() as u64 || old[j].size() == 0);
                }
            }
            cursor = k + 1;
            out.push(*c);
        } else {
            match kept.get(&k) {
                Some(&with_data) if with_data || !needs_data => out.push(*c),
                _ => out.push(Choice::literal(new[i].size())),
            }
        }
    }
    out
}

/// The keep list of a final list of choices, exactly as the applier will need it,
/// and its total in bytes.
pub fn keep_list(old: &[ScannedMember], choices: &[Choice]) -> (Vec<Keep>, u64) {
    let mut uses: BTreeMap<usize, u64> = BTreeMap::new();
    // Members the applier serves after its cursor passed them, and whether with data.
    let mut backward: BTreeMap<usize, bool> = BTreeMap::new();
    let mut cursor = 0usize;
    for c in choices {
        if let Some((k, data)) = c.source() {
            *uses.entry(k).or_default() += 1;
            if k < cursor {
                *backward.entry(k).or_default() |= data;
            } else {
                cursor = k + 1;
            }
        }
    }
    let mut total = 0;
    let keeps = backward
        .into_iter()
        .map(|(k, data)| {
            let keep = Keep {
                index: k as u64,
                header_size: old[k].raw_header.len() as u64,
                data_size: if data { old[k].size() } else { 0 },
                uses: uses[&k],
            };
            total += keep.header_size + keep.data_size;
            keep
        })
        .collect();
    (keeps, total)
}

/// Caps the new members kept for later references (DATA_NEW) at `cap` bytes in
/// all: a reference past it sends its data literally.
pub fn cap_new_copies(choices: &mut [Choice], new: &[ScannedMember], cap: u64) {
    let mut kept = std::collections::BTreeSet::new();
    let mut total = 0u64;
    for c in choices.iter_mut() {
        if let DataFrom::NewCopy(j) = c.data {
            if kept.contains(&j) {
                continue;
            }
            if total + new[j].size() <= cap {
                total += new[j].size();
                kept.insert(j);
            } else {
                c.data = DataFrom::Literal;
            }
        }
    }
}

/// The new keep list of a final list of choices, and its total in bytes.
pub fn new_keep_list(choices: &[Choice], new: &[ScannedMember]) -> (Vec<NewKeep>, u64) {
    let mut uses: BTreeMap<usize, u64> = BTreeMap::new();
    for c in choices {
        if let DataFrom::NewCopy(j) = c.data {
            *uses.entry(j).or_default() += 1;
        }
    }
    let keeps: Vec<NewKeep> = uses.into_iter().map(|(j, uses)| NewKeep { index: j as u64, size: new[j].size(), uses }).collect();
    let total = keeps.iter().map(|k| k.size).sum();
    (keeps, total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tario::{Kind, Meta};

    fn member(size: u64) -> ScannedMember {
        let mut meta = Meta::new("f", Kind::File);
        meta.size = size;
        ScannedMember { raw_header: vec![0; 512], meta, data_offset: 0, content: [0; 32] }
    }

    #[test]
    fn backward_refs_are_kept_within_the_cap() {
        let old: Vec<_> = [1000, 2000, 3000].into_iter().map(member).collect();
        let new: Vec<_> = [3000, 1000, 2000].into_iter().map(member).collect();
        let choices = vec![
            Choice { header_from: None, data: DataFrom::Copy(2) },
            Choice { header_from: None, data: DataFrom::Copy(0) },
            Choice { header_from: None, data: DataFrom::Delta(1) },
        ];
        let planned = cap_choices(&old, &choices, &new, 1 << 20);
        assert_eq!(planned, choices);
        let (keeps, total) = keep_list(&old, &planned);
        assert_eq!(keeps.iter().map(|k| k.index).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(total, 512 + 1000 + 512 + 2000);
        // With a small cap the jump to member 2 is refused: everything stays in order.
        let planned = cap_choices(&old, &choices, &new, 1000);
        assert_eq!(planned[0], Choice::LITERAL);
        assert_eq!(&planned[1..], &choices[1..]);
        assert!(keep_list(&old, &planned).0.is_empty());
    }
}
