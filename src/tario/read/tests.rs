use super::super::Writer;
use super::*;

fn sample() -> Vec<Meta> {
    let mut file = Meta::new("usr/bin/ls", Kind::File);
    file.size = 700;
    file.mode = 0o4755;
    file.mtime = 1_700_000_000;
    file.flags = Some("schg".into());
    let mut long = Meta::new(format!("usr/share/{}", "x".repeat(300)), Kind::File);
    long.size = 3;
    let mut link = Meta::new("usr/bin/list", Kind::HardLink);
    link.link = Some("usr/bin/ls".into());
    let mut sym = Meta::new("usr/lib/libc.so", Kind::Symlink);
    sym.link = Some(PathBuf::from("y".repeat(200)));
    let mut dev = Meta::new("dev/null", Kind::CharDev);
    dev.dev = Some((2, 2));
    vec![Meta::new("usr", Kind::Dir), file, long, link, sym, dev, Meta::new("var/run/fifo", Kind::Fifo)]
}

#[test]
fn writes_and_reads_back_every_kind() {
    let metas = sample();
    let mut w = Writer::new(Vec::new());
    for m in &metas {
        w.append(m, &vec![7u8; m.size as usize][..]).unwrap();
    }
    let tar = w.finish().unwrap();
    let mut r = Reader::new(&tar[..]);
    let mut got = Vec::new();
    while let Some(m) = r.next_member().unwrap() {
        let data = r.read_data_to_vec().unwrap();
        assert_eq!(data.len() as u64, m.meta.size);
        got.push(m.meta);
    }
    assert_eq!(got, metas);
    let (tail, _) = r.finish().unwrap();
    assert_eq!(tail, vec![0u8; BLOCK]);
}

#[test]
fn truncation_and_corruption_are_errors_not_panics() {
    let metas = sample();
    let mut w = Writer::new(Vec::new());
    for m in &metas {
        w.append(m, &vec![7u8; m.size as usize][..]).unwrap();
    }
    let tar = w.finish().unwrap();
    for cut in [1, 511, 513, 1500, tar.len() - 1100] {
        let mut r = Reader::new(&tar[..cut]);
        let res = (|| {
            while r.next_member()?.is_some() {}
            Ok::<_, TarError>(())
        })();
        assert!(res.is_err(), "cut at {cut} accepted");
    }
    let mut bad = tar.clone();
    bad[10] ^= 1;
    assert!(matches!(Reader::new(&bad[..]).next_member(), Err(TarError::Checksum { .. })));
}

/// The header block of `meta` with another type flag, checksum fixed.
fn retyped(meta: &Meta, flag: u8) -> Vec<u8> {
    let mut h = super::super::write::header_bytes(meta);
    h[156] = flag;
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..154].copy_from_slice(format!("{sum:06o}").as_bytes());
    h[154] = 0;
    h
}

/// A global PAX header block with a `size`-byte body of zeros.
fn global_header(size: usize) -> Vec<u8> {
    let mut m = Meta::new("g", Kind::File);
    m.size = size as u64;
    let mut h = retyped(&m, b'g');
    h.resize(BLOCK + size + super::super::write::padding(size as u64), 0);
    h
}

#[test]
fn piled_up_extension_headers_are_refused_not_buffered() {
    // Each is within MAX_EXTENSION; together they would grow without bound.
    let one = global_header(MAX_EXTENSION as usize);
    let stream: Vec<u8> = std::iter::repeat_n(one, 4).flatten().collect();
    let mut r = Reader::new(&stream[..]);
    let err = r.next_member().unwrap_err().to_string();
    assert!(err.contains("member header over"), "{err}");
}

#[test]
fn a_long_name_with_a_newline_reads_back() {
    // PAX records are cut by their length: a newline in a value is data.
    let mut m = Meta::new(format!("usr/share/{}\nnext line", "n".repeat(120)), Kind::File);
    m.size = 2;
    let mut w = Writer::new(Vec::new());
    w.append(&m, &b"ok"[..]).unwrap();
    let tar = w.finish().unwrap();
    let got = Reader::new(&tar[..]).next_member().unwrap().unwrap();
    assert_eq!(got.meta, m);
}

#[test]
fn hostile_names_stay_on_one_line_in_errors() {
    let h = retyped(&Meta::new("bin\nFAKE: ok", Kind::File), b'S');
    let err = Reader::new(&h[..]).next_member().unwrap_err().to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
}

mod props {
    use super::super::super::Writer;
    use super::super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use std::os::unix::ffi::OsStringExt;

    /// A stored path: 1 to 6 components of any bytes but NUL and '/',
    /// never `.` or `..`; long ones need PAX.
    fn path() -> impl Strategy<Value = PathBuf> {
        let component = vec(1u8..=255, 1..60).prop_filter("no / . ..", |c| !c.contains(&b'/') && c != b"." && c != b"..");
        vec(component, 1..6).prop_map(|cs| PathBuf::from(std::ffi::OsString::from_vec(cs.join(&b'/'))))
    }

    fn meta() -> impl Strategy<Value = Meta> {
        let kinds = [Kind::File, Kind::Dir, Kind::Symlink, Kind::HardLink, Kind::Fifo, Kind::CharDev, Kind::BlockDev];
        (
            (path(), proptest::sample::select(kinds.to_vec()), 0..=0o7777u32, any::<u32>(), any::<u32>()),
            (-(1i64 << 40)..(1i64 << 40), 0..3000u64, path(), vec(1u8..=255, 1..200), (0..=0o7777777u32, 0..=0o7777777u32)),
            proptest::option::of("[a-z]{1,8}(,[a-z]{1,8}){0,2}"),
        )
            .prop_map(|((p, kind, mode, uid, gid), (mtime, size, target, symlink, dev), flags)| {
                let mut m = Meta::new(p, kind);
                (m.mode, m.uid, m.gid, m.mtime, m.flags) = (mode, uid, gid, mtime, flags);
                m.size = if kind == Kind::File { size } else { 0 };
                m.link = match kind {
                    Kind::HardLink => Some(target),
                    Kind::Symlink => Some(PathBuf::from(std::ffi::OsString::from_vec(symlink))),
                    _ => None,
                };
                m.dev = matches!(kind, Kind::CharDev | Kind::BlockDev).then_some(dev);
                m
            })
    }

    fn tar_of(metas: &[Meta]) -> Vec<u8> {
        let mut w = Writer::new(Vec::new());
        for (i, m) in metas.iter().enumerate() {
            w.append(m, &vec![i as u8; m.size as usize][..]).unwrap();
        }
        w.finish().unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_members_written_read_back_the_same(metas in vec(meta(), 1..8)) {
            let tar = tar_of(&metas);
            let mut r = Reader::new(&tar[..]);
            for (i, m) in metas.iter().enumerate() {
                let got = r.next_member().unwrap().unwrap();
                prop_assert_eq!(&got.meta, m);
                prop_assert_eq!(r.read_data_to_vec().unwrap(), vec![i as u8; m.size as usize]);
            }
            prop_assert!(r.next_member().unwrap().is_none());
        }

        #[test]
        fn damaged_archives_are_errors_not_panics(metas in vec(meta(), 1..4), hits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>()) {
            let mut tar = tar_of(&metas);
            for (at, byte) in hits {
                let i = at.index(tar.len());
                tar[i] = byte;
            }
            tar.truncate(cut.index(tar.len() + 1));
            // The property is only that reading ends, with members or an error.
            let mut r = Reader::new(&tar[..]);
            while let Ok(Some(_)) = r.next_member() {
                if r.read_data_to_vec().is_err() {
                    break;
                }
            }
        }
    }
}
