//! The member matcher: bsdiff's scan over a suffix array of the old data, with
//! every search capped, and large members cut into windows.
//!
//! The scan is bsdiff 4's (Colin Percival's, BSD licence; as bidiff, MIT/Apache,
//! has it in Rust): walk the new data, find the longest match of what starts
//! there, and cut a control where a match beats the current alignment by more
//! than 8 bytes; extend each side approximately (bsdiff's "lenf"/"lenb"), so
//! that a changed constant or address inside an aligned run stays in the
//! mostly-zero difference bytes instead of breaking the match.
//!
//! Two changes make it fit the bounds:
//! - each search compares at most [`CAP`] bytes: an uncapped search is
//!   quadratic on long repeats (libgs.so: 44 s uncapped, 1.6 s capped, the same
//!   patch size to 0.1%);
//! - a member whose new data is larger than a window, or whose old data is
//!   larger than two, is diffed window by window: each window of new against
//!   two windows' worth of old around the proportional position (measured on
//!   the 129 MB Java `modules`: 859 KB either way). A job never holds more than
//!   [`job_cost`], so the memory of `diff` is bounded by one setting whatever
//!   the member sizes, and the windows of one member run in parallel.

use std::cmp::min;

/// The longest match a search reports.
pub const CAP: usize = 512;

/// One control: seek the old position to `old_start`, add `add` old bytes and
/// as many difference bytes, then copy `copy` bytes of extra data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    pub old_start: u64,
    pub add: u64,
    pub copy: u64,
}

/// What one window of one member makes: its controls, the difference bytes
/// run-length coded (`runs`: varint pairs of zero and non-zero run lengths,
/// `diff`: the non-zero runs' bytes), and the extra bytes.
#[derive(Debug, Default)]
pub struct DeltaOut {
    pub controls: Vec<Control>,
    pub runs: Vec<u8>,
    pub diff: Vec<u8>,
    pub extra: Vec<u8>,
}

/// One job: the new bytes `new_range` of a member against the old bytes
/// `old_range` of its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub new_start: u64,
    pub new_len: u64,
    pub old_start: u64,
    pub old_len: u64,
}

/// The windows of a member of `new_len` bytes diffed against one of `old_len`.
pub fn windows(old_len: u64, new_len: u64, window: u64) -> Vec<Window> {
    if new_len <= window && old_len <= 2 * window {
        return vec![Window { new_start: 0, new_len, old_start: 0, old_len }];
    }
    let span = (2 * window).min(old_len);
    let mut out = Vec::new();
    let mut ns = 0;
    while ns < new_len {
        let len = window.min(new_len - ns);
        let center = (ns as u128 * old_len as u128 / new_len.max(1) as u128) as u64;
        let os = center.saturating_sub(window / 2).min(old_len - span);
        out.push(Window { new_start: ns, new_len: len, old_start: os, old_len: span });
        ns += len;
    }
    out
}

/// The memory a job of this window needs, about: both slices, the suffix
/// array (4 bytes per old byte) and the output (at most the new bytes again).
pub fn job_cost(w: &Window) -> u64 {
    5 * w.old_len + 2 * w.new_len + (1 << 20)
}

/// The window for a memory setting: a thirty-second of it, rounded down to a
/// power of two, between 256 KiB and 16 MiB, so that a job (12 windows and
/// 1 MiB, [`job_cost`]) takes at most 3/8 of the setting and two fit.
pub fn window_for(memory: u64) -> u64 {
    let w = (memory / 32).clamp(256 << 10, 16 << 20);
    1 << (63 - w.leading_zeros())
}

/// A suffix array of `old`, searched with the needle capped at [`CAP`] bytes.
struct Index<'a> {
    old: &'a [u8],
    sa: Vec<i32>,
}

impl<'a> Index<'a> {
    fn new(old: &'a [u8]) -> Self {
        assert!(old.len() < i32::MAX as usize, "windows keep old slices small");
        let mut sa = vec![0i32; old.len()];
        if !old.is_empty() {
            divsufsort::sort_in_place(old, &mut sa);
        }
        Index { old, sa }
    }

    /// Position and length of the longest match (up to [`CAP`]) of `needle`'s start.
    fn longest(&self, needle: &[u8]) -> (usize, usize) {
        if self.sa.is_empty() || needle.is_empty() {
            return (0, 0);
        }
        let needle = &needle[..needle.len().min(CAP)];
        let suffix = |i: usize| {
            let p = self.sa[i] as usize;
            &self.old[p..(p + needle.len()).min(self.old.len())]
        };
        let (mut lo, mut hi) = (0usize, self.sa.len());
        while hi - lo > 2 {
            let mid = (lo + hi) / 2;
            if needle > suffix(mid) {
                lo = mid;
            } else {
                hi = mid + 1;
            }
        }
        let mut best = (0, 0);
        for i in lo..hi {
            let p = self.sa[i] as usize;
            let l = common(self.old, p, needle);
            if l > best.1 {
                best = (p, l);
            }
        }
        best
    }
}

/// Length of the common prefix of `a[i..]` and `b`.
fn common(a: &[u8], i: usize, b: &[u8]) -> usize {
    let a = &a[i..];
    let n = min(a.len(), b.len());
    let mut k = 0;
    while k + 8 <= n {
        let x = u64::from_le_bytes(a[k..k + 8].try_into().unwrap()) ^ u64::from_le_bytes(b[k..k + 8].try_into().unwrap());
        if x != 0 {
            return k + (x.trailing_zeros() / 8) as usize;
        }
        k += 8;
    }
    while k < n && a[k] == b[k] {
        k += 1;
    }
    k
}

/// The delta of `new` (a window starting at `new_base` in its member) against
/// `old` (starting at `old_base` in the source member).
pub fn diff(old: &[u8], old_base: u64, new: &[u8]) -> DeltaOut {
    let index = Index::new(old);
    let mut out = DeltaOut::default();
    let mut rle = Rle::default();
    scan(old, new, &index, |lastpos, lastscan, lenf, copy_end| {
        for i in 0..lenf {
            rle.push(new[lastscan + i].wrapping_sub(old[lastpos + i]), &mut out);
        }
        out.extra.extend_from_slice(&new[lastscan + lenf..copy_end]);
        out.controls.push(Control { old_start: old_base + lastpos as u64, add: lenf as u64, copy: (copy_end - lastscan - lenf) as u64 });
    });
    rle.finish(&mut out);
    out
}

/// bsdiff's scan; calls `emit(old_pos, new_pos, add_len, copy_end)` for every
/// control, in order; the controls cover `new` exactly.
fn scan(old: &[u8], new: &[u8], index: &Index, mut emit: impl FnMut(usize, usize, usize, usize)) {
    let (oldsize, newsize) = (old.len() as i64, new.len());
    let at = |i: i64| if (0..oldsize).contains(&i) { Some(old[i as usize]) } else { None };
    let (mut scan, mut pos, mut len) = (0usize, 0usize, 0usize);
    let (mut lastscan, mut lastpos, mut lastoffset) = (0usize, 0usize, 0i64);
    while scan < newsize {
        let mut oldscore = 0i64;
        scan += len;
        let mut scsc = scan;
        while scan < newsize {
            (pos, len) = index.longest(&new[scan..]);
            while scsc < scan + len {
                if at(scsc as i64 + lastoffset) == Some(new[scsc]) {
                    oldscore += 1;
                }
                scsc += 1;
            }
            if (len as i64 == oldscore && len != 0) || len as i64 > oldscore + 8 {
                break;
            }
            if at(scan as i64 + lastoffset) == Some(new[scan]) {
                oldscore -= 1;
            }
            scan += 1;
        }
        if len as i64 != oldscore || scan >= newsize {
            let scan_end = scan.min(newsize);
            // How far the last alignment extends forward...
            let (mut s, mut best, mut lenf) = (0i64, 0i64, 0usize);
            let mut i = 0;
            while lastscan + i < scan_end && lastpos + i < old.len() {
                if old[lastpos + i] == new[lastscan + i] {
                    s += 1;
                }
                i += 1;
                if s * 2 - i as i64 > best * 2 - lenf as i64 {
                    best = s;
                    lenf = i;
                }
            }
            // ... and the new one backward.
            let mut lenb = 0usize;
            if scan < newsize {
                let (mut s, mut best) = (0i64, 0i64);
                let mut i = 1;
                while scan >= lastscan + i && pos >= i {
                    if old[pos - i] == new[scan - i] {
                        s += 1;
                    }
                    if s * 2 - i as i64 > best * 2 - lenb as i64 {
                        best = s;
                        lenb = i;
                    }
                    i += 1;
                }
            }
            if lastscan + lenf > scan_end - lenb {
                let overlap = (lastscan + lenf) - (scan_end - lenb);
                let (mut s, mut best, mut lens) = (0i64, 0i64, 0usize);
                for i in 0..overlap {
                    if new[lastscan + lenf - overlap + i] == old[lastpos + lenf - overlap + i] {
                        s += 1;
                    }
                    if new[scan_end - lenb + i] == old[pos - lenb + i] {
                        s -= 1;
                    }
                    if s > best {
                        best = s;
                        lens = i + 1;
                    }
                }
                lenf = lenf + lens - overlap;
                lenb -= lens;
            }
            emit(lastpos, lastscan, lenf, scan_end - lenb);
            lastscan = scan_end - lenb;
            lastpos = pos - lenb;
            lastoffset = pos as i64 - scan as i64;
        }
    }
}

/// Run-length coding of the difference bytes, as the format has it.
#[derive(Default)]
struct Rle {
    zeros: u64,
    nonzeros: u64,
}

impl Rle {
    fn push(&mut self, b: u8, out: &mut DeltaOut) {
        if b == 0 {
            if self.nonzeros > 0 {
                self.flush(out);
            }
            self.zeros += 1;
        } else {
            self.nonzeros += 1;
            out.diff.push(b);
        }
    }

    fn flush(&mut self, out: &mut DeltaOut) {
        crate::patchfile::push_varint(&mut out.runs, self.zeros);
        crate::patchfile::push_varint(&mut out.runs, self.nonzeros);
        (self.zeros, self.nonzeros) = (0, 0);
    }

    fn finish(&mut self, out: &mut DeltaOut) {
        if self.zeros > 0 || self.nonzeros > 0 {
            self.flush(out);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Reproducible incompressible bytes, for the matcher's tests and `similar`'s.
    pub(crate) fn noise(seed: u32, n: usize) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect()
    }

    /// Applies a delta the way the applier does, from whole members.
    fn apply(old: &[u8], outs: &[DeltaOut]) -> Vec<u8> {
        let mut new = Vec::new();
        for d in outs {
            let mut runs = &d.runs[..];
            let mut diff = d.diff.iter();
            let mut pairs = std::iter::from_fn(|| {
                let z = crate::patchfile::read_varint(&mut runs).ok()?;
                Some((z, crate::patchfile::read_varint(&mut runs).unwrap()))
            });
            let (mut zeros, mut nonzeros) = (0, 0);
            let mut extra = d.extra.iter();
            for c in &d.controls {
                for k in 0..c.add {
                    while zeros == 0 && nonzeros == 0 {
                        (zeros, nonzeros) = pairs.next().unwrap();
                    }
                    let add = if zeros > 0 {
                        zeros -= 1;
                        0
                    } else {
                        nonzeros -= 1;
                        *diff.next().unwrap()
                    };
                    new.push(old[(c.old_start + k) as usize].wrapping_add(add));
                }
                new.extend(extra.by_ref().take(c.copy as usize));
            }
        }
        new
    }

    #[test]
    fn deltas_rebuild_the_new_data_whole_and_in_windows() {
        let old = noise(1, 300_000);
        let mut new = old.clone();
        for i in (0..new.len()).step_by(997) {
            new[i] ^= 0x55;
        }
        new.splice(5000..5000, noise(2, 300));
        new.drain(90_000..91_000);
        new.extend(noise(3, 20_000));
        let whole = diff(&old, 0, &new);
        assert_eq!(apply(&old, std::slice::from_ref(&whole)), new);
        assert!(whole.extra.len() < 25_000 && whole.diff.len() < 1000, "{} {}", whole.extra.len(), whole.diff.len());
        // Windows find what moved less than half a window from its proportional place.
        for window in [64 << 10, 128 << 10] {
            let ws = windows(old.len() as u64, new.len() as u64, window);
            assert!(ws.len() > 1);
            let outs: Vec<DeltaOut> = ws
                .iter()
                .map(|w| {
                    let o = &old[w.old_start as usize..(w.old_start + w.old_len) as usize];
                    diff(o, w.old_start, &new[w.new_start as usize..(w.new_start + w.new_len) as usize])
                })
                .collect();
            assert_eq!(apply(&old, &outs), new);
            let extra: usize = outs.iter().map(|o| o.extra.len()).sum();
            assert!(extra < 30_000, "window {window}: {extra} bytes of extra");
        }
        // Nothing old, nothing new.
        assert_eq!(apply(&[], &[diff(&[], 0, &new)]), new);
        assert!(diff(&old, 0, &[]).controls.is_empty());
    }

    #[test]
    fn windows_cover_the_new_member_and_stay_inside_the_old() {
        for (old_len, new_len) in [(10u64, 100u64), (1000, 1000), (5000, 300), (0, 700), (333, 0)] {
            let ws = windows(old_len, new_len, 64);
            let mut at = 0;
            for w in &ws {
                assert_eq!(w.new_start, at);
                assert!(w.old_start + w.old_len <= old_len && w.old_len <= 128 && w.new_len <= 64.max(new_len));
                at += w.new_len;
            }
            assert_eq!(at, new_len);
        }
        assert_eq!(window_for(512 << 20), 16 << 20);
        assert_eq!(window_for(100 << 20), 2 << 20);
    }
}
