use super::*;

#[test]
fn commit_round_trips_and_marks_count() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Dir::open_root(tmp.path()).unwrap();
    let c = Commit {
        dist: DistName::parse("DragonFly-world-x86_64-master-20261128T103900Z-v1").unwrap(),
        tar_size: 10240,
        md5: "aa".into(),
        sha256: "bb".into(),
        manifest_sha256: "cc".into(),
        upgrade_src: Some("usr/share/binarydist/upgrade-src".into()),
        reboot: true,
        stats: Stats { written: 3, unchanged: 4, metadata_only: 1, bytes_written: 99 },
        ops: vec![
            Op::KernelSwap { dir: "boot/kernel".into(), staged: "boot/.bdtmp.kernel".into() },
            Op::Rename { temp: "bin/.bdtmp.3".into(), path: "bin/a b".into(), flags: Some("schg".into()) },
            Op::Meta { path: "bin".into(), mode: 0o755, uid: 0, gid: 5, mtime: 17, flags: None },
            Op::Remove { path: "x".into() },
        ],
    };
    write_commit(&d, &c).unwrap();
    mark(&d, "done 2", false).unwrap();
    match read(&d).unwrap() {
        Some(Found::Commit { commit, done, upgraded }) => {
            assert_eq!(*commit, c);
            assert_eq!(done, 2);
            assert!(!upgraded);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn torn_and_damaged_records_are_told_from_whole_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Dir::open_root(tmp.path()).unwrap();
    let j = path(&d);
    let append = |b: &[u8]| std::fs::OpenOptions::new().append(true).open(&j).unwrap().write_all(b).unwrap();
    // A staging log: a torn last line, and a whole line whose check fails.
    let mut log = StagingLog::create(&d).unwrap();
    log.record(&Item::CreatedDir("usr".into())).unwrap();
    append(b"19 00000000 staged usr/.bdtmp.9\n");
    log.record(&Item::Staged("usr/.bdtmp.1".into())).unwrap();
    append(b"18 1a2b3c4d staged usr/.bd");
    match read(&d).unwrap() {
        Some(Found::Staging(items)) => assert_eq!(items, vec![Item::CreatedDir("usr".into()), Item::Staged("usr/.bdtmp.1".into())]),
        other => panic!("{other:?}"),
    }
    // A commit record with a mark torn by a full disk: the next mark is
    // not glued onto it, and both runs' marks count.
    let c = Commit {
        dist: DistName::parse("DragonFly-world-x86_64-master-20261128T103900Z-v1").unwrap(),
        tar_size: 1,
        md5: "aa".into(),
        sha256: "bb".into(),
        manifest_sha256: "cc".into(),
        upgrade_src: None,
        reboot: false,
        stats: Stats::default(),
        ops: (0..3).map(|i| Op::Remove { path: format!("x{i}").into() }).collect(),
    };
    write_commit(&d, &c).unwrap();
    mark(&d, "done 1", false).unwrap();
    append(&frame("done 2").as_bytes()[..5]);
    assert!(matches!(read(&d).unwrap(), Some(Found::Commit { done: 1, .. })));
    mark(&d, "done 2", false).unwrap();
    assert!(matches!(read(&d).unwrap(), Some(Found::Commit { done: 2, .. })));
    // The commit record itself cut short, or damaged before its end.
    let whole = std::fs::read(&j).unwrap();
    std::fs::write(&j, &whole[..whole.len() / 2]).unwrap();
    assert!(matches!(read(&d), Err(JournalError::CutShort { .. })));
    let mut bad = whole.clone();
    let at = whole.len() / 2;
    bad[at] ^= 1;
    std::fs::write(&j, &bad).unwrap();
    assert!(matches!(read(&d), Err(JournalError::CutShort { .. })), "{:?}", read(&d));
    // Not a journal; an empty one.
    std::fs::write(&j, "\x7fELF").unwrap();
    assert!(matches!(read(&d), Err(JournalError::Garbage { .. })));
    std::fs::write(&j, [0u8; 512]).unwrap();
    assert!(matches!(read(&d), Ok(Some(Found::Empty))));
}

#[test]
fn a_format_1_journal_is_read_and_its_torn_marks_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Dir::open_root(tmp.path()).unwrap();
    let v1 = format!(
        "{MAGIC_V1}\nphase commit\ndist DragonFly-world-x86_64-master-20261128T103900Z-v1\ntar 1 aa bb\n\
         base-new var/db/binarydist/world/.base.new.tar.gz\nop remove x\nop remove y\nend\ndone 1\ndone 1done 2\ndone "
    );
    std::fs::write(path(&d), v1).unwrap();
    assert!(matches!(read(&d).unwrap(), Some(Found::Commit { done: 1, .. })));
    mark(&d, "done 2", false).unwrap();
    assert!(matches!(read(&d).unwrap(), Some(Found::Commit { done: 2, .. })));
    assert!(std::fs::read_to_string(path(&d)).unwrap().ends_with("done 1done 2\ndone 2\n"), "unframed, the torn tail cut");
}

#[test]
fn hostile_paths_and_numbers_are_refused_on_read() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Dir::open_root(tmp.path()).unwrap();
    let j = path(&d);
    let framed = |lines: &str| lines.lines().map(frame).collect::<String>();
    let staging = |body: &str| format!("{MAGIC}\n{}", framed(&format!("phase staging\n{body}")));
    let commit = |body: &str| {
        format!(
            "{MAGIC}\n{}",
            framed(&format!("phase commit\ndist DragonFly-world-x86_64-master-20261128T103900Z-v1\ntar 1 aa bb\nop remove a\n{body}\nend"))
        )
    };
    for text in [
        staging("staged ../outside/.bdtmp.1"),
        staging("staged /etc/.bdtmp.1"),
        staging("staged etc/passwd"),
        staging("staged etc/\\000.bdtmp.1"),
        staging("staged-tree boot/kernel"),
        staging("created-dir usr/../.."),
        staging("state-file etc/passwd"),
        staging("state-file var/db/binarydist/world/base.tar.gz"),
        staging("dir-time 1 2000000000 etc"),
        staging("dir-time 1 0 /"),
        commit("op remove ../x"),
        commit("op rename etc/passwd etc/shadow -"),
        commit("op rename etc/.bdtmp.1 /etc/passwd -"),
        commit("op meta bin 755 -1 0 0 -"),
        commit("op meta bin 17777 0 0 0 -"),
        commit("op kernel-swap boot/kernel boot/other"),
        commit("stats -1 0 0 0"),
        commit("upgrade-src ../src"),
        commit("end\ndone -3"),
        commit("end\ndone 2"),
    ] {
        std::fs::write(&j, &text).unwrap();
        match read(&d) {
            Err(JournalError::Syntax { .. }) => {}
            other => panic!("accepted {text:?}: {other:?}"),
        }
    }
    std::fs::write(&j, staging("dir-time 1 999999999 .\nstaged etc/.bdtmp.7")).unwrap();
    assert!(matches!(read(&d), Ok(Some(Found::Staging(items))) if items.len() == 2));
}
