//! The gzip of dists and bases: the same bytes on any number of threads, read
//! by gzip, pigz, GNU tar and bsdtar; `binarydist cat` on our files and on
//! anyone else's.

use crate::util::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const MIB: usize = 1 << 20;
const STAMP: &str = "20261201T000000Z";

/// Mostly long repeats (fast to compress, so the test stays quick), with enough
/// variation that every block compresses differently.
fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let word = format!("{:x} ", x % 100_000);
        for _ in 0..(x % 300) {
            out.extend_from_slice(word.as_bytes());
        }
    }
    out.truncate(len);
    out
}

/// A stage of 36 MiB: with 1 MiB blocks, at least 4 blocks per thread on 8 threads.
fn big_stage(root: &Path) {
    for (i, dir) in ["bin", "usr/lib", "usr/share/doc"].iter().enumerate() {
        fs::create_dir_all(root.join(dir)).unwrap();
        for j in 0..3 {
            fs::write(root.join(dir).join(format!("f{j}")), data((i * 10 + j) as u64, 4 * MIB - 1000 * j)).unwrap();
        }
    }
    sh(&format!("find '{}' -exec touch -h -d @1700000000 {{}} +", root.display()));
}

fn pack_with(stage: &Path, out: &Path, threads: usize) -> PathBuf {
    let mut c = bin();
    c.args(["pack", "--series", "world", "--arch", "x86_64", "--branch", "master", "--rev", "g1", "--date", STAMP]);
    c.arg("--threads").arg(threads.to_string()).arg("--stage").arg(stage).arg("-o").arg(out);
    ok(&mut c);
    out.join(format!("DragonFly-world-x86_64-master-{STAMP}-g1.tar.gz"))
}

#[test]
fn packs_on_1_2_and_8_threads_give_one_set_of_bytes_that_every_reader_reads() {
    let t = tempdir();
    let stage = t.path().join("stage");
    big_stage(&stage);
    let out = t.path().join("out");
    let first = fs::read(pack_with(&stage, &out, 2)).unwrap();
    let tar_len = sh(&format!("gzip -dc '{}' | wc -c", out.join(format!("DragonFly-world-x86_64-master-{STAMP}-g1.tar.gz")).display()));
    assert!(tar_len.trim().parse::<usize>().unwrap() >= 32 * MIB, "stage too small for 4 blocks per thread");
    for threads in [1, 2, 8] {
        for run in 0..10 {
            let again = fs::read(pack_with(&stage, &out, threads)).unwrap();
            assert!(again == first, "{threads} threads, run {run}: different bytes");
        }
    }
    let dist = out.join(format!("DragonFly-world-x86_64-master-{STAMP}-g1.tar.gz"));
    let d = dist.display();
    sh(&format!("gzip -t '{d}'"));
    sh(&format!("pigz -t '{d}'")); // tools/test-deps.sh installs it
    let gnu = sh(&format!("tar -tzf '{d}'"));
    let bsd = sh(&format!("bsdtar -tf '{d}'"));
    assert_eq!(gnu, bsd);
    assert_eq!(gnu.lines().filter(|l| l.contains("/f")).count(), 9, "{gnu}");
    // Every member says its size: walking the file by the BD fields lands on its end.
    let (mut at, mut members) = (0, 0);
    while at < first.len() {
        assert_eq!(&first[at..at + 4], [0x1f, 0x8b, 8, 4], "member {members} at {at}");
        assert_eq!(&first[at + 12..at + 16], b"BD\x04\x00");
        at += u32::from_le_bytes(first[at + 16..at + 20].try_into().unwrap()) as usize;
        members += 1;
    }
    assert_eq!(at, first.len());
    assert!(members >= 32, "{members} members");
}

#[test]
fn cat_gives_the_tar_of_our_files_and_of_anyone_elses() {
    let t = tempdir();
    let p = |n: &str| t.path().join(n).display().to_string();
    fs::write(t.path().join("a"), data(1, 3 * MIB)).unwrap();
    fs::write(t.path().join("b"), data(2, MIB / 2)).unwrap();
    sh(&format!("gzip -c '{}' > '{}'; gzip -c '{}' > '{}'", p("a"), p("a.gz"), p("b"), p("b.gz")));
    sh(&format!("cat '{}' '{}' > '{}'", p("a.gz"), p("b.gz"), p("ab.gz")));
    let md5 = |cmd: &mut Command| binarydist::tario::Digests::of(&ok(cmd).stdout).md5_hex();
    let md5_sh = |script: &str| sh(&format!("{script} | md5sum"))[..32].to_string();
    let want_ab = md5_sh(&format!("cat '{}' '{}'", p("a"), p("b")));
    // gzip's single-member file, a concatenation, a plain file, and standard input.
    assert_eq!(md5(bin().arg("cat").arg(p("a.gz"))), md5_sh(&format!("cat '{}'", p("a"))));
    assert_eq!(md5(bin().arg("cat").arg(p("ab.gz"))), want_ab);
    assert_eq!(md5(bin().arg("cat").arg(p("a"))), md5_sh(&format!("cat '{}'", p("a"))));
    assert_eq!(md5_sh(&format!("'{}' cat - < '{}'", env!("CARGO_BIN_EXE_binarydist"), p("ab.gz"))), want_ab);

    // A dist, then a dist with gzip's output appended: both read back whole.
    let stage = t.path().join("stage");
    fs::create_dir_all(stage.join("bin")).unwrap();
    fs::write(stage.join("bin/sh"), data(3, 3 * MIB)).unwrap();
    let dist = pack(&stage, &t.path().join("out"), "world", STAMP, "g1");
    let side = fs::read_to_string(dist.with_extension("").with_extension("tar.md5")).unwrap();
    let got = md5(bin().arg("cat").arg(&dist));
    assert!(side.ends_with(&format!("= {got}\n")), "{side} vs {got}");
    sh(&format!("cat '{}' '{}' > '{}'", dist.display(), p("b.gz"), p("mixed.gz")));
    assert_eq!(md5(bin().arg("cat").arg(p("mixed.gz"))), md5_sh(&format!("(gzip -dc '{}'; cat '{}')", dist.display(), p("b"))));
}

#[test]
fn cat_of_a_damaged_file_fails_in_one_line_naming_it() {
    let t = tempdir();
    let stage = t.path().join("stage");
    fs::create_dir_all(stage.join("bin")).unwrap();
    fs::write(stage.join("bin/sh"), data(4, 3 * MIB)).unwrap();
    let dist = pack(&stage, &t.path().join("out"), "world", STAMP, "g1");
    let bytes = fs::read(&dist).unwrap();
    let cut = t.path().join("cut.tar.gz");
    fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let err = fails(bin().arg("cat").arg(&cut));
    assert!(err.contains("cut.tar.gz") && err.contains("ends inside a member"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x40;
    fs::write(&cut, &flipped).unwrap();
    let err = fails(bin().arg("cat").arg(&cut));
    assert!(err.contains("cut.tar.gz"), "{err}");
    let err = fails(bin().arg("cat").arg(t.path().join("missing.tar.gz")));
    assert!(err.contains("missing.tar.gz"), "{err}");
}

#[test]
fn patch_o_writes_the_new_dist_byte_for_byte() {
    // One writer for dists and `patch -o`: the rebuilt .tar.gz is the packed one.
    let t = tempdir();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    for (stage, seed) in [(&a, 5), (&b, 6)] {
        fs::create_dir_all(stage.join("bin")).unwrap();
        fs::write(stage.join("bin/sh"), data(5, 3 * MIB)).unwrap();
        fs::write(stage.join("bin/ls"), data(seed, MIB + 17)).unwrap();
        sh(&format!("find '{}' -exec touch -h -d @1700000000 {{}} +", stage.display()));
    }
    let out = t.path().join("out");
    let old = pack(&a, &out, "world", "20261201T000000Z", "g1");
    let new = pack(&b, &out, "world", "20261202T000000Z", "g2");
    ok(bin().arg("diff").arg(&old).arg(&new).arg("-o").arg(&out));
    let patch = out.join("DragonFly-world-x86_64-master-20261201T000000Z-g1--DragonFly-world-x86_64-master-20261202T000000Z-g2.bdpatch");
    let made = t.path().join("made.tar.gz");
    ok(bin().arg("patch").arg(&patch).arg("--base").arg(&old).arg("-o").arg(&made));
    assert!(fs::read(&made).unwrap() == fs::read(&new).unwrap(), "patch -o output differs from the packed dist");
}
