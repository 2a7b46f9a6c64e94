//! The cheapest way, in bytes to download, from what a target has to the dist
//! it wants, over what an INDEX lists: a chain of patches from the installed
//! dist, a full dist, or a full dist then patches. The kept base counts only
//! when it verifies; otherwise the plan starts from a full dist. Nothing here
//! touches the network or the disk.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::index::{Entry, Index, Kind};
use crate::names::DistName;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("the INDEX has no dist of {0}")]
    NoDist(String),
    #[error("the INDEX has neither {0} nor a chain of patches to it from anything it lists")]
    Unreachable(String),
}

/// How the plan gets there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Way {
    UpToDate,
    Patches,
    Full,
    FullThenPatches,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    pub series: String,
    pub from: Option<String>,
    pub to: String,
    pub way: Way,
    /// Files to download, in the order they apply (a full dist first, if any).
    pub files: Vec<Entry>,
    pub bytes: u64,
    /// Why the kept base was not used, when it was not.
    pub note: Option<String>,
    #[serde(skip)]
    pub to_name: DistName,
}

/// What the target has of this series.
pub struct Have<'a> {
    pub installed: Option<&'a DistName>,
    /// The kept base verifies against the installed record.
    pub base_ok: bool,
}

/// The newest dist of `stream`'s series, arch and branch the INDEX knows
/// (listed as a dist or as the end of a patch).
pub fn newest(index: &Index, stream: &DistName) -> Option<DistName> {
    let dists = index.dists().map(|(d, _)| d);
    let ends = index.patches().map(|(p, _)| &p.to);
    dists.chain(ends).filter(|d| d.same_series(stream)).max().cloned()
}

/// Node of the search: the target's starting point, or a dist.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    Start,
    Dist(DistName),
}

/// Where an edge goes, what it costs, and the file it downloads (none for the kept base).
type Edge<'a> = (Node, u64, Option<&'a Entry>);
/// Best (bytes, steps) found for a node, and the edge it came by.
type Best<'a> = ((u64, usize), Option<(Node, Option<&'a Entry>)>);

pub fn make(index: &Index, have: &Have, to: &DistName) -> Result<Plan, PlanError> {
    let series = to.series.to_string();
    let from = have.installed.map(|d| d.to_string());
    if have.installed == Some(to) {
        return Ok(Plan { series, from, to: to.to_string(), way: Way::UpToDate, files: vec![], bytes: 0, note: None, to_name: to.clone() });
    }
    // Edges: Start -> installed (free, when the base verifies); Start -> any
    // listed dist of the stream (its size); a patch within the stream.
    let mut edges: BTreeMap<Node, Vec<Edge>> = BTreeMap::new();
    let usable_base = have.installed.filter(|_| have.base_ok);
    if let Some(i) = usable_base {
        edges.entry(Node::Start).or_default().push((Node::Dist(i.clone()), 0, None));
    }
    for e in &index.entries {
        match &e.kind {
            Kind::Dist(d) if d.same_series(to) => edges.entry(Node::Start).or_default().push((Node::Dist(d.clone()), e.size, Some(e))),
            Kind::Patch(p) if p.from.same_series(to) && p.to.same_series(to) && p.to <= *to => {
                edges.entry(Node::Dist(p.from.clone())).or_default().push((Node::Dist(p.to.clone()), e.size, Some(e)))
            }
            _ => {}
        }
    }
    if !edges.contains_key(&Node::Start) {
        return Err(PlanError::NoDist(format!("{} for {} on {}", to.series, to.arch, to.branch)));
    }
    // Dijkstra on (bytes, steps): a handful of nodes, so a sorted set will do.
    let mut best: BTreeMap<Node, Best> = BTreeMap::new();
    let mut queue = BTreeSet::new();
    best.insert(Node::Start, ((0, 0), None));
    queue.insert(((0u64, 0usize), Node::Start));
    let mut done = BTreeSet::new();
    while let Some((cost, node)) = queue.pop_first() {
        if !done.insert(node.clone()) {
            continue;
        }
        for (next, bytes, entry) in edges.get(&node).into_iter().flatten() {
            let c = (cost.0 + bytes, cost.1 + usize::from(entry.is_some()));
            if best.get(next).is_none_or(|(b, _)| c < *b) {
                best.insert(next.clone(), (c, Some((node.clone(), *entry))));
                queue.insert((c, next.clone()));
            }
        }
    }
    let target = Node::Dist(to.clone());
    let Some(((bytes, _), _)) = best.get(&target) else {
        return Err(PlanError::Unreachable(to.to_string()));
    };
    let mut files = Vec::new();
    let mut through_base = false;
    let mut at = target.clone();
    while let Some((_, Some((prev, entry)))) = best.get(&at) {
        match entry {
            Some(e) => files.push((*e).clone()),
            None => through_base = true,
        }
        at = prev.clone();
    }
    files.reverse();
    let way = match (through_base, files.first().map(|e| &e.kind)) {
        (true, _) => Way::Patches,
        (false, Some(Kind::Dist(d))) if d == to => Way::Full,
        _ => Way::FullThenPatches,
    };
    let note = match (have.installed, have.base_ok) {
        (Some(i), false) => Some(format!("the kept base of {i} does not verify: starting from a full dist")),
        _ => None,
    };
    Ok(Plan { series, from, to: to.to_string(), way, files, bytes: *bytes, note, to_name: to.clone() })
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let from = self.from.as_deref().unwrap_or("nothing");
        if self.way == Way::UpToDate {
            return writeln!(f, "{}: {} is up to date", self.series, self.to);
        }
        writeln!(f, "{}: {from} -> {} by {:?}, {} bytes to download", self.series, self.to, self.way, self.bytes)?;
        if let Some(n) = &self.note {
            writeln!(f, "  note: {n}")?;
        }
        for e in &self.files {
            writeln!(f, "  {} ({} bytes)", e.file, e.size)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{Entry, TarSum};
    use crate::names::{PatchName, Series};

    fn d(rev: u32) -> DistName {
        DistName::new(Series::World, "x86_64", "master", &format!("2026010{rev}T000000Z"), &format!("r{rev}")).unwrap()
    }

    fn dist(rev: u32, size: u64) -> Entry {
        let tar = TarSum { size: 1, md5: "0".repeat(32), sha256: "0".repeat(64) };
        Entry { file: d(rev).file_name(), series: Series::World, size, sha256: "0".repeat(64), tar, kind: Kind::Dist(d(rev)) }
    }

    fn patch(a: u32, b: u32, size: u64) -> Entry {
        let p = PatchName::new(d(a), d(b)).unwrap();
        let tar = TarSum { size: 1, md5: "0".repeat(32), sha256: "0".repeat(64) };
        Entry { file: p.file_name(), series: Series::World, size, sha256: "0".repeat(64), tar, kind: Kind::Patch(p) }
    }

    fn index(entries: Vec<Entry>) -> Index {
        Index { serial: 1, created: 0, expires: 1, entries }
    }

    fn files(p: &Plan) -> Vec<String> {
        p.files.iter().map(|e| e.file.clone()).collect()
    }

    #[test]
    fn the_cheapest_way_wins() {
        let i = index(vec![dist(1, 1000), dist(2, 1000), dist(3, 1000), patch(1, 2, 10), patch(2, 3, 10), patch(1, 3, 30)]);
        let have = |r: u32, ok: bool| (d(r), ok);
        let (r1, _) = have(1, true);
        let p = make(&i, &Have { installed: Some(&r1), base_ok: true }, &d(3)).unwrap();
        assert_eq!((p.way, p.bytes), (Way::Patches, 20));
        assert_eq!(files(&p), [patch(1, 2, 0).file, patch(2, 3, 0).file]);
        let r2 = d(2);
        let p = make(&i, &Have { installed: Some(&r2), base_ok: true }, &d(3)).unwrap();
        assert_eq!((p.way, p.bytes, p.files.len()), (Way::Patches, 10, 1));
        let p = make(&i, &Have { installed: None, base_ok: false }, &d(3)).unwrap();
        assert_eq!((p.way, p.bytes), (Way::Full, 1000));
        // A damaged base: full dist, even though patches are cheap.
        let p = make(&i, &Have { installed: Some(&r1), base_ok: false }, &d(3)).unwrap();
        assert_eq!(p.way, Way::Full);
        assert!(p.note.unwrap().contains("does not verify"));
        let p = make(&i, &Have { installed: Some(&d(3)), base_ok: true }, &d(3)).unwrap();
        assert_eq!(p.way, Way::UpToDate);
    }

    #[test]
    fn a_chain_dearer_than_the_full_dist_loses_and_full_then_patches_is_found() {
        let i = index(vec![dist(1, 1000), dist(3, 500), patch(1, 2, 400), patch(2, 3, 400)]);
        let r1 = d(1);
        let p = make(&i, &Have { installed: Some(&r1), base_ok: true }, &d(3)).unwrap();
        assert_eq!((p.way, p.bytes), (Way::Full, 500));
        // The newest full dist is gone (or large); an older one plus a patch is cheaper.
        let i = index(vec![dist(2, 300), dist(3, 5000), patch(2, 3, 50)]);
        let p = make(&i, &Have { installed: None, base_ok: false }, &d(3)).unwrap();
        assert_eq!((p.way, p.bytes), (Way::FullThenPatches, 350));
        assert_eq!(files(&p), [dist(2, 0).file, patch(2, 3, 0).file]);
    }

    #[test]
    fn other_streams_are_never_used() {
        let k = DistName::new(Series::Kernel("GENERIC".into()), "x86_64", "master", "20260102T000000Z", "r2").unwrap();
        let mut other = dist(2, 1);
        other.kind = Kind::Dist(k.clone());
        let i = index(vec![other, dist(2, 100)]);
        let p = make(&i, &Have { installed: None, base_ok: false }, &d(2)).unwrap();
        assert_eq!(files(&p), [dist(2, 0).file]);
        assert_eq!(make(&i, &Have { installed: None, base_ok: false }, &d(3)).unwrap_err(), PlanError::Unreachable(d(3).to_string()));
    }
}
