//! Names of dists and patches: the one place that formats and parses them.
//!
//! A dist is `DragonFly-<series>-<arch>-<branch>-<stamp>-<rev>`, in the spirit of
//! nrelease's `DragonFly-${MACHINE}-${stamp}-${SBRANCH}-${GITREV}`:
//!
//! - series: `world`, or `kernel.<KERNCONF>` (one series per kernel config);
//! - arch: the MACHINE_ARCH (`x86_64`);
//! - branch: `master`, `DragonFly_RELEASE_6_4`, ...;
//! - stamp: the build time in UTC, `YYYYMMDDTHHMMSSZ`, fixed width so that names of
//!   one series sort chronologically;
//! - rev: `git describe --abbrev=5` with `-` turned into `.` (as newvers.sh does).
//!
//! `-` only ever separates fields, so a name parses without ambiguity; a field holds
//! `[A-Za-z0-9._]` only. A patch is `<from>--<to>.bdpatch`: from its name alone a
//! program can tell which base it applies to and what it makes.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::errors::shown;
use std::cmp::Ordering;
use std::fmt;

/// The fixed first field of every dist name.
pub const PREFIX: &str = "DragonFly";
/// File name suffix of a gzipped dist.
pub const DIST_SUFFIX: &str = ".tar.gz";
/// File name suffix of a patch.
pub const PATCH_SUFFIX: &str = ".bdpatch";
/// Suffixes of the checksum sidecars, which name the uncompressed tar.
pub const MD5_SUFFIX: &str = ".tar.md5";
pub const SHA256_SUFFIX: &str = ".tar.sha256";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("{what} \"{}\" is empty", shown(value))]
    Empty { what: &'static str, value: String },
    #[error("{what} \"{}\" has {bad:?}; a name field may hold only A-Z a-z 0-9 . _", shown(value))]
    BadChar { what: &'static str, value: String, bad: char },
    #[error("{what} \"{}\" is not a build stamp of the form YYYYMMDDTHHMMSSZ", shown(value))]
    BadStamp { what: &'static str, value: String },
    #[error("\"{}\" is not a dist name (DragonFly-<series>-<arch>-<branch>-<YYYYMMDDTHHMMSSZ>-<rev>)", shown(.0))]
    NotDist(String),
    #[error("\"{}\" is not a patch name (<from dist>--<to dist>{PATCH_SUFFIX})", shown(.0))]
    NotPatch(String),
    #[error("patch \"{}\" joins two different series or arches", shown(.0))]
    CrossSeries(String),
    #[error("patch \"{}\" does not go forward in time", shown(.0))]
    Backwards(String),
}

/// Which stream of dists a dist belongs to. Each kernel config has its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Series {
    World,
    Kernel(String),
}

impl Series {
    pub fn parse(s: &str) -> Result<Series, NameError> {
        if s == "world" {
            return Ok(Series::World);
        }
        match s.strip_prefix("kernel.") {
            Some(conf) => {
                check_field("KERNCONF", conf)?;
                Ok(Series::Kernel(conf.to_string()))
            }
            None => Err(NameError::NotDist(s.to_string())),
        }
    }

    /// Builds a series from the `--series world|kernel` and `--kernconf` pair.
    pub fn from_parts(series: &str, kernconf: Option<&str>) -> Result<Series, NameError> {
        match (series, kernconf) {
            ("world", None) => Ok(Series::World),
            ("kernel", Some(conf)) => {
                check_field("KERNCONF", conf)?;
                Ok(Series::Kernel(conf.to_string()))
            }
            _ => Series::parse(series),
        }
    }

    pub fn is_kernel(&self) -> bool {
        matches!(self, Series::Kernel(_))
    }
}

impl fmt::Display for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Series::World => f.write_str("world"),
            Series::Kernel(conf) => write!(f, "kernel.{conf}"),
        }
    }
}

/// The parsed name of one dist.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DistName {
    pub series: Series,
    pub arch: String,
    pub branch: String,
    /// `YYYYMMDDTHHMMSSZ`, UTC.
    pub stamp: String,
    pub rev: String,
}

impl DistName {
    pub fn new(series: Series, arch: &str, branch: &str, stamp: &str, rev: &str) -> Result<Self, NameError> {
        check_field("arch", arch)?;
        check_field("branch", branch)?;
        check_stamp("build stamp", stamp)?;
        check_field("git revision", rev)?;
        Ok(DistName { series, arch: arch.to_string(), branch: branch.to_string(), stamp: stamp.to_string(), rev: rev.to_string() })
    }

    pub fn parse(name: &str) -> Result<Self, NameError> {
        let bad = || NameError::NotDist(name.to_string());
        let fields: Vec<&str> = name.split('-').collect();
        let [prefix, series, arch, branch, stamp, rev] = fields[..] else {
            return Err(bad());
        };
        if prefix != PREFIX {
            return Err(bad());
        }
        let series = Series::parse(series).map_err(|_| bad())?;
        DistName::new(series, arch, branch, stamp, rev)
    }

    /// Parses a file name such as `NAME.tar.gz` or `NAME.tar`.
    pub fn from_file_name(file: &str) -> Result<Self, NameError> {
        let base =
            file.strip_suffix(DIST_SUFFIX).or_else(|| file.strip_suffix(".tar")).ok_or_else(|| NameError::NotDist(file.to_string()))?;
        DistName::parse(base)
    }

    pub fn file_name(&self) -> String {
        format!("{self}{DIST_SUFFIX}")
    }

    /// True when `other` is a later (or earlier) dist of the same stream.
    pub fn same_series(&self, other: &DistName) -> bool {
        self.series == other.series && self.arch == other.arch && self.branch == other.branch
    }
}

impl fmt::Display for DistName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}-{}-{}-{}-{}-{}", self.series, self.arch, self.branch, self.stamp, self.rev)
    }
}

/// Within a stream, chronological; across streams, grouped by series, arch, branch.
impl Ord for DistName {
    fn cmp(&self, other: &Self) -> Ordering {
        (&self.series, &self.arch, &self.branch, &self.stamp, &self.rev).cmp(&(
            &other.series,
            &other.arch,
            &other.branch,
            &other.stamp,
            &other.rev,
        ))
    }
}

impl PartialOrd for DistName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The parsed name of one patch: both ends.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PatchName {
    pub from: DistName,
    pub to: DistName,
}

impl PatchName {
    /// A patch joins two dists of one series and arch (a branch change is allowed:
    /// it is the planner's business to refuse it unless asked) and goes forward.
    pub fn new(from: DistName, to: DistName) -> Result<Self, NameError> {
        let name = format!("{from}--{to}");
        if from.series != to.series || from.arch != to.arch {
            return Err(NameError::CrossSeries(name));
        }
        if to.stamp <= from.stamp {
            return Err(NameError::Backwards(name));
        }
        Ok(PatchName { from, to })
    }

    pub fn parse(name: &str) -> Result<Self, NameError> {
        let bad = || NameError::NotPatch(name.to_string());
        let (from, to) = name.split_once("--").ok_or_else(bad)?;
        let from = DistName::parse(from).map_err(|_| bad())?;
        let to = DistName::parse(to).map_err(|_| bad())?;
        PatchName::new(from, to)
    }

    pub fn from_file_name(file: &str) -> Result<Self, NameError> {
        let base = file.strip_suffix(PATCH_SUFFIX).ok_or_else(|| NameError::NotPatch(file.to_string()))?;
        PatchName::parse(base)
    }

    pub fn file_name(&self) -> String {
        format!("{self}{PATCH_SUFFIX}")
    }
}

impl fmt::Display for PatchName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}--{}", self.from, self.to)
    }
}

/// Checks one name field: non-empty, `[A-Za-z0-9._]` only.
pub fn check_field(what: &'static str, value: &str) -> Result<(), NameError> {
    if value.is_empty() {
        return Err(NameError::Empty { what, value: value.into() });
    }
    if let Some(bad) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '_')) {
        return Err(NameError::BadChar { what, value: value.into(), bad });
    }
    Ok(())
}

fn check_stamp(what: &'static str, value: &str) -> Result<(), NameError> {
    let digits = |r: std::ops::Range<usize>| value.get(r).is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()));
    let ok = value.len() == 16
        && value.get(8..9) == Some("T")
        && value.get(15..16) == Some("Z")
        && digits(0..8)
        && digits(9..15)
        && stamp_to_epoch(value).is_some();
    if ok {
        Ok(())
    } else {
        Err(NameError::BadStamp { what, value: value.into() })
    }
}

/// Formats seconds since the epoch as a build stamp, in UTC whatever TZ says.
pub fn stamp_from_epoch(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

/// The inverse of [`stamp_from_epoch`]; `None` for an impossible date.
pub fn stamp_to_epoch(stamp: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| stamp.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&m) || d < 1 || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    if civil_from_days(days) != (y, m, d) {
        return None; // 31 February and friends
    }
    Some(days * 86400 + hh * 3600 + mm * 60 + ss)
}

// Howard Hinnant's civil calendar algorithms: exact for the proleptic Gregorian
// calendar, and they keep the build stamp independent of TZ and of any crate.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(series: Series, stamp: &str) -> DistName {
        DistName::new(series, "x86_64", "DragonFly_RELEASE_6_4", stamp, "v6.4.0.12.gabcde").unwrap()
    }

    #[test]
    fn dist_names_round_trip() {
        for series in [Series::World, Series::Kernel("X86_64_GENERIC".into()), Series::Kernel("MY_K3RN.2".into())] {
            let d = dist(series, "20261128T103900Z");
            let s = d.to_string();
            assert_eq!(DistName::parse(&s).unwrap(), d);
            assert_eq!(DistName::from_file_name(&d.file_name()).unwrap(), d);
        }
        assert_eq!(
            dist(Series::Kernel("X86_64_GENERIC".into()), "20261128T103900Z").to_string(),
            "DragonFly-kernel.X86_64_GENERIC-x86_64-DragonFly_RELEASE_6_4-20261128T103900Z-v6.4.0.12.gabcde"
        );
    }

    #[test]
    fn patch_names_round_trip_and_chain() {
        let a = dist(Series::World, "20260101T000000Z");
        let b = dist(Series::World, "20260201T000000Z");
        let p = PatchName::new(a.clone(), b.clone()).unwrap();
        let parsed = PatchName::from_file_name(&p.file_name()).unwrap();
        assert_eq!(parsed, p);
        assert_eq!(parsed.from, a);
        assert!(PatchName::new(b.clone(), a.clone()).is_err());
        let k = dist(Series::Kernel("GENERIC".into()), "20260301T000000Z");
        assert!(matches!(PatchName::new(a, k), Err(NameError::CrossSeries(_))));
    }

    #[test]
    fn names_sort_chronologically_within_a_series() {
        let mut v: Vec<DistName> =
            ["20261128T000000Z", "20251231T235959Z", "20261001T120000Z"].iter().map(|s| dist(Series::World, s)).collect();
        v.sort();
        let stamps: Vec<&str> = v.iter().map(|d| d.stamp.as_str()).collect();
        assert_eq!(stamps, ["20251231T235959Z", "20261001T120000Z", "20261128T000000Z"]);
        let mut strings: Vec<String> = v.iter().rev().map(|d| d.to_string()).collect();
        strings.sort();
        assert_eq!(strings, v.iter().map(|d| d.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn bad_names_are_refused_clearly() {
        for bad in [
            "",
            "DragonFly-world-x86_64-master-20261128T103900Z",
            "DragonFly-world-x86_64-mas/ter-20261128T103900Z-v1",
            "NetBSD-world-x86_64-master-20261128T103900Z-v1",
            "DragonFly-kernel-x86_64-master-20261128T103900Z-v1",
            "DragonFly-world-x86_64-master-20261328T103900Z-v1",
            "DragonFly-world-x86_64-master-20260231T103900Z-v1",
            "DragonFly-world-x86_64-master-2026112T103900Z-v1",
            "DragonFly-world-x86_64-master-20261128T103900Z-v1-extra",
        ] {
            assert!(DistName::parse(bad).is_err(), "{bad:?} parsed");
        }
        let e = check_field("branch", "my branch").unwrap_err();
        assert!(e.to_string().contains("' '"), "{e}");
        assert!(check_field("branch", "a-b").is_err());
        assert!(PatchName::parse("DragonFly-world-x86_64-master-20261128T103900Z-v1").is_err());
    }

    #[test]
    fn stamps_are_utc_and_invert() {
        assert_eq!(stamp_from_epoch(0), "19700101T000000Z");
        assert_eq!(stamp_from_epoch(1_700_000_000), "20231114T221320Z");
        for secs in [0, 951_782_400, 1_700_000_000, 4_102_444_799] {
            assert_eq!(stamp_to_epoch(&stamp_from_epoch(secs)), Some(secs));
        }
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        fn field() -> impl Strategy<Value = String> {
            "[A-Za-z0-9._]{1,24}"
        }

        fn series() -> impl Strategy<Value = Series> {
            prop_oneof![Just(Series::World), field().prop_map(Series::Kernel)]
        }

        /// Up to 9999-12-31T23:59:59Z, the last time a stamp can say.
        const LAST: i64 = 253_402_300_799;

        fn dist() -> impl Strategy<Value = DistName> {
            (series(), field(), field(), 0..=LAST, field())
                .prop_map(|(s, arch, branch, t, rev)| DistName::new(s, &arch, &branch, &stamp_from_epoch(t), &rev).unwrap())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            #[test]
            fn any_dist_name_round_trips_in_the_allowed_bytes(d in dist()) {
                let s = d.to_string();
                prop_assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)), "{}", s);
                prop_assert_eq!(DistName::parse(&s).unwrap(), d.clone());
                prop_assert_eq!(DistName::from_file_name(&d.file_name()).unwrap(), d);
            }

            #[test]
            fn any_patch_name_round_trips(from in dist(), later in 1..=1_000_000_000i64, rev in field()) {
                let t = stamp_to_epoch(&from.stamp).unwrap().saturating_add(later).min(LAST);
                prop_assume!(t > stamp_to_epoch(&from.stamp).unwrap());
                let to = DistName::new(from.series.clone(), &from.arch, &from.branch, &stamp_from_epoch(t), &rev).unwrap();
                let p = PatchName::new(from, to).unwrap();
                prop_assert_eq!(PatchName::from_file_name(&p.file_name()).unwrap(), p);
            }

            #[test]
            fn stamps_invert_and_sort_like_the_times_they_say(a in 0..=LAST, b in 0..=LAST) {
                prop_assert_eq!(stamp_to_epoch(&stamp_from_epoch(a)), Some(a));
                prop_assert_eq!(stamp_from_epoch(a).cmp(&stamp_from_epoch(b)), a.cmp(&b));
            }

            #[test]
            fn no_string_makes_the_parsers_panic(s in "\\PC{0,90}") {
                let _ = DistName::parse(&s);
                let _ = PatchName::parse(&s);
                let _ = stamp_to_epoch(&s);
            }
        }
    }
}
