//! Matching by content when names tell nothing: a new member that the matcher
//! would send literally is diffed against the old member whose content is most
//! alike, judged by a bottom-k MinHash sketch of their 16-byte windows.
//!
//! Measured on worlds 1->2 (research for issue 15): the 19 literal members
//! (new translations of PostgreSQL, `zh_TW` beside `it`, `ko`...) made 258 KB
//! as literals, 166 KB as deltas against their sketch-nearest old members.
//! Sketches are made only of old members within a factor of 4 in size of some
//! literal member, on every core, reading each member once in chunks.

use super::matcher::{Choice, DataFrom};
use super::ordered;
use super::scan::{ScanError, ScannedTar};
use std::io::Read;

/// Members smaller than this are sent literally: a sketch of them says little.
pub const MIN_SIMILAR: u64 = 4096;
/// How many of the smallest window hashes a sketch keeps.
const K: usize = 128;
/// Below this estimated similarity a delta is not worth trying.
const THRESHOLD: f64 = 0.10;

/// The K smallest distinct hashes of a member's 16-byte windows, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sketch(Vec<u64>);

/// Random values for the gear hash, from a fixed seed (splitmix64).
const fn gear() -> [u64; 256] {
    let mut t = [0u64; 256];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut i = 0;
    while i < 256 {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        t[i] = z ^ (z >> 31);
        i += 1;
    }
    t
}
static GEAR: [u64; 256] = gear();

impl Sketch {
    /// The sketch of everything `r` gives. The gear hash shifts by 4 bits a byte,
    /// so a hash depends on the last 16 bytes exactly.
    pub fn of(mut r: impl Read) -> std::io::Result<Sketch> {
        let mut buf = vec![0u8; 256 * 1024];
        let (mut h, mut seen) = (0u64, 0usize);
        let mut keep: Vec<u64> = Vec::with_capacity(4 * K);
        let mut limit = u64::MAX;
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            for &b in &buf[..n] {
                h = (h << 4).wrapping_add(GEAR[b as usize]);
                seen += 1;
                let m = mix(h);
                if seen >= 16 && m < limit {
                    keep.push(m);
                    if keep.len() == 4 * K {
                        limit = prune(&mut keep);
                    }
                }
            }
        }
        prune(&mut keep);
        Ok(Sketch(keep))
    }

    /// Estimated Jaccard similarity of the two members' window sets: the share
    /// of the union's K smallest hashes that both have.
    pub fn similarity(&self, o: &Sketch) -> f64 {
        let (a, b) = (&self.0, &o.0);
        let (mut i, mut j, mut n, mut both) = (0, 0, 0, 0);
        while n < K && (i < a.len() || j < b.len()) {
            let (x, y) = (a.get(i).copied().unwrap_or(u64::MAX), b.get(j).copied().unwrap_or(u64::MAX));
            if x == y {
                both += 1;
                i += 1;
                j += 1;
            } else if x < y {
                i += 1;
            } else {
                j += 1;
            }
            n += 1;
        }
        if n == 0 {
            0.0
        } else {
            both as f64 / n as f64
        }
    }
}

fn mix(h: u64) -> u64 {
    let m = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    m ^ (m >> 29)
}

/// Keeps the K smallest distinct values; returns the largest kept (the bar a
/// new value must pass) once there are K.
fn prune(v: &mut Vec<u64>) -> u64 {
    v.sort_unstable();
    v.dedup();
    v.truncate(K);
    if v.len() == K {
        v[K - 1]
    } else {
        u64::MAX
    }
}

/// For every new member the choices send literally (at least [`MIN_SIMILAR`]
/// bytes), the old member most like it, when alike enough: (new, old) pairs.
pub fn pair_literals(old: &ScannedTar, new: &ScannedTar, choices: &[Choice], threads: usize) -> Result<Vec<(usize, usize)>, ScanError> {
    let literals: Vec<usize> =
        (0..choices.len()).filter(|&i| choices[i].data == DataFrom::Literal && new.members[i].size() >= MIN_SIMILAR).collect();
    if literals.is_empty() {
        return Ok(Vec::new());
    }
    let sizes: Vec<u64> = literals.iter().map(|&i| new.members[i].size()).collect();
    let candidates: Vec<usize> = (0..old.members.len())
        .filter(|&k| {
            let s = old.members[k].size();
            s >= MIN_SIMILAR && sizes.iter().any(|&n| s <= 4 * n && n <= 4 * s)
        })
        .collect();
    let new_sketches = sketches(new, &literals, threads)?;
    let old_sketches = sketches(old, &candidates, threads)?;
    let mut pairs = Vec::new();
    for (&i, s) in literals.iter().zip(&new_sketches) {
        let n = new.members[i].size();
        let mut best: Option<(f64, usize)> = None;
        for (&k, o) in candidates.iter().zip(&old_sketches) {
            let size = old.members[k].size();
            if size > 4 * n || n > 4 * size {
                continue;
            }
            let sim = s.similarity(o);
            if sim >= THRESHOLD && best.is_none_or(|(b, _)| sim > b) {
                best = Some((sim, k));
            }
        }
        if let Some((_, k)) = best {
            pairs.push((i, k));
        }
    }
    Ok(pairs)
}

/// Sketches of the given members of `tar`, in order, on `threads` threads.
fn sketches(tar: &ScannedTar, members: &[usize], threads: usize) -> Result<Vec<Sketch>, ScanError> {
    let costs = vec![1u64; members.len()];
    let mut out = Vec::with_capacity(members.len());
    ordered::run_ordered(
        &costs,
        threads,
        threads as u64 * 4,
        |j| Sketch::of(tar.member_reader(members[j])).map_err(|e| tar.io_error(e)),
        |_, s| {
            out.push(s?);
            Ok(())
        },
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::sais::tests::noise;
    use super::*;

    #[test]
    fn alike_members_score_high_and_others_low() {
        let a = noise(1, 50_000);
        let mut b = a.clone();
        for i in (0..b.len()).step_by(200) {
            b[i] ^= 1;
        }
        let c = noise(2, 50_000);
        let (sa, sb, sc) = (Sketch::of(&a[..]).unwrap(), Sketch::of(&b[..]).unwrap(), Sketch::of(&c[..]).unwrap());
        assert!(sa.similarity(&sb) > 0.5, "{}", sa.similarity(&sb));
        assert!(sa.similarity(&sc) < 0.05, "{}", sa.similarity(&sc));
        assert_eq!(sa.similarity(&sa), 1.0);
        assert_eq!(Sketch::of(&a[..10]).unwrap().similarity(&sa), 0.0);
    }
}
