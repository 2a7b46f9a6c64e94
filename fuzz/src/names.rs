//! Dist and patch names, as a mirror's file names and INDEX lines give them:
//! never a panic, and whatever parses formats back to the same name.
use binarydist::names::{stamp_from_epoch, stamp_to_epoch, DistName, PatchName, Series};

pub fn run(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(d) = DistName::parse(s) {
        assert_eq!(d.to_string(), s);
        assert_eq!(DistName::from_file_name(&d.file_name()).ok(), Some(d.clone()));
    }
    if let Ok(d) = DistName::from_file_name(s) {
        assert_eq!(DistName::parse(&d.to_string()).ok(), Some(d));
    }
    if let Ok(p) = PatchName::parse(s) {
        assert_eq!(p.to_string(), s);
        assert_eq!(PatchName::from_file_name(&p.file_name()).ok(), Some(p));
    }
    let _ = PatchName::from_file_name(s);
    if let Ok(series) = Series::parse(s) {
        assert_eq!(Series::parse(&series.to_string()).ok(), Some(series));
    }
    if let Some(t) = stamp_to_epoch(s) {
        assert_eq!(stamp_to_epoch(&stamp_from_epoch(t)), Some(t));
    }
}
