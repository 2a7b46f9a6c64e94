//! `binarydist diff`, `patch` and `info` on patches: round trips on generated
//! tars, chains, determinism, and every kind of bad input.

use crate::util::{bin, fails, ok, sh, tempdir};
use binarydist::tario::{Kind, Meta, Writer};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One member of a generated tar.
pub struct Entry {
    pub meta: Meta,
    pub data: Vec<u8>,
}

pub fn file(path: &str, data: Vec<u8>) -> Entry {
    let mut meta = Meta::new(path, Kind::File);
    meta.size = data.len() as u64;
    meta.mtime = 1_700_000_000;
    Entry { meta, data }
}

pub fn dir(path: &str) -> Entry {
    let mut meta = Meta::new(path, Kind::Dir);
    meta.mtime = 1_700_000_000;
    Entry { meta, data: Vec::new() }
}

pub fn link(path: &str, kind: Kind, target: &str) -> Entry {
    let mut meta = Meta::new(path, kind);
    meta.link = Some(target.into());
    Entry { meta, data: Vec::new() }
}

/// Cheap, reproducible, incompressible bytes.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Bytes that look like a program: some structure, some noise.
pub fn binary(seed: u64, len: usize) -> Vec<u8> {
    let mut v = noise(seed, len);
    for (i, b) in v.iter_mut().enumerate() {
        if i % 16 < 10 {
            *b = (i / 16 % 251) as u8;
        }
    }
    v
}

/// Some edits of a member: a few bytes changed, a few inserted.
pub fn edit(data: &[u8], seed: u64) -> Vec<u8> {
    let mut v = data.to_vec();
    for (n, at) in [v.len() / 7, v.len() / 3, v.len() / 2].into_iter().enumerate() {
        if at < v.len() {
            v[at] ^= 0x55 ^ seed as u8;
            v.splice(at..at, noise(seed + n as u64, 40));
        }
    }
    v
}

pub fn dist_name(stamp_day: u32, rev: &str) -> String {
    format!("DragonFly-world-x86_64-master-202601{stamp_day:02}T000000Z-{rev}.tar")
}

/// Writes a tar of `entries` as `dir/<dist name>`.
pub fn write_world(dir: &Path, day: u32, entries: &[Entry]) -> PathBuf {
    let path = dir.join(dist_name(day, &format!("v{day}")));
    let mut w = Writer::new(std::io::BufWriter::new(fs::File::create(&path).unwrap()));
    for e in entries {
        w.append(&e.meta, &e.data[..]).unwrap();
    }
    w.finish().unwrap().flush().unwrap();
    path
}

pub fn diff(old: &Path, new: &Path, out: &Path, extra: &[&str]) -> PathBuf {
    ok(bin().arg("diff").arg(old).arg(new).arg("-o").arg(out).args(extra));
    let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().strip_suffix(".tar").unwrap().to_string();
    out.join(format!("{}--{}.bdpatch", name(old), name(new)))
}

/// `binarydist patch PATCHES < base > out`; returns its output and stderr.
fn patch_stdin(base: &Path, patches: &[&Path]) -> (bool, Vec<u8>, String) {
    let out = bin().arg("patch").args(patches).stdin(fs::File::open(base).unwrap()).output().unwrap();
    (out.status.success(), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn assert_applies(base: &Path, patches: &[&Path], expected: &Path) {
    let (success, out, err) = patch_stdin(base, patches);
    assert!(success, "patch failed: {err}");
    assert!(out == fs::read(expected).unwrap(), "output differs from {}", expected.display());
}

fn header_json(patch: &Path) -> serde_json::Value {
    let out = ok(bin().arg("info").arg("--json").arg(patch));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Old and new worlds with every kind of change the issue lists.
fn sample_worlds(out: &Path) -> (PathBuf, PathBuf) {
    let long_dir = format!("usr/share/{}", "long".repeat(40));
    let prog = binary(1, 200_000);
    let lib5 = binary(2, 150_000);
    let old = vec![
        dir("bin"),
        file("bin/cat", binary(3, 30_000)),
        file("bin/ls", prog.clone()),
        link("bin/ls-hard", Kind::HardLink, "bin/ls"),
        file("bin/removed", binary(4, 5_000)),
        dir("etc"),
        file("etc/motd", b"welcome\n".to_vec()),
        file("etc/old-place.conf", binary(5, 9_000)),
        dir("usr/lib"),
        file("usr/lib/libfoo.so.5", lib5.clone()),
        link("usr/lib/libfoo.so", Kind::Symlink, "libfoo.so.5"),
        dir(&long_dir),
        file(&format!("{long_dir}/{}", "name".repeat(30)), binary(6, 70_000)),
        link(&format!("{long_dir}/hard-{}", "x".repeat(120)), Kind::HardLink, &format!("{long_dir}/{}", "name".repeat(30))),
    ];
    let new = vec![
        dir("bin"),
        file("bin/added", binary(7, 12_000)),
        file("bin/cat", binary(3, 30_000)),
        file("bin/ls", edit(&prog, 1)),
        link("bin/ls-hard", Kind::HardLink, "bin/ls"),
        dir("etc"),
        file("etc/motd", b"welcome to the new world\n".to_vec()),
        file("etc/new-place.conf", binary(5, 9_000)),
        dir("usr/lib"),
        link("usr/lib/libfoo.so", Kind::Symlink, "libfoo.so.6"),
        file("usr/lib/libfoo.so.6", edit(&lib5, 2)),
        dir(&long_dir),
        file(&format!("{long_dir}/{}", "name".repeat(30)), edit(&binary(6, 70_000), 3)),
        link(&format!("{long_dir}/hard-{}", "x".repeat(120)), Kind::HardLink, &format!("{long_dir}/{}", "name".repeat(30))),
    ];
    (write_world(out, 1, &old), write_world(out, 2, &new))
}

#[test]
fn round_trip_with_every_kind_of_change() {
    let t = tempdir();
    let (old, new) = sample_worlds(t.path());
    let p = diff(&old, &new, t.path(), &[]);
    assert_applies(&old, &[&p], &new);
    let h = header_json(&p);
    let stats = &h["header"]["stats"];
    // bin/ls, the long-named file and the re-versioned libfoo.so.6: deltas;
    // bin/cat and the moved etc/new-place.conf: copies.
    assert_eq!(stats["deltas"], 3, "{h:#}");
    assert_eq!(stats["copies"], 2, "{h:#}");
    assert!((fs::metadata(&p).unwrap().len() as f64) < fs::metadata(&new).unwrap().len() as f64 * 0.2);
    // GNU tar reads the result as it reads the original.
    let out = t.path().join("out.tar");
    fs::write(&out, patch_stdin(&old, &[&p]).1).unwrap();
    assert_eq!(sh(&format!("tar tvf {}", out.display())), sh(&format!("tar tvf {}", new.display())));
}

#[test]
fn round_trip_of_packed_dists_gzipped() {
    let t = tempdir();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    sh(&format!(
        "mkdir -p {a}/bin {a}/usr/share/{long} && head -c 100000 /dev/urandom > {a}/bin/prog && ln {a}/bin/prog {a}/bin/prog2 \
         && echo x > {a}/usr/share/{long}/{long} && cp -a {a} {b} && printf zz | dd of={b}/bin/prog bs=1 seek=500 conv=notrunc 2>/dev/null",
        a = a.display(),
        b = b.display(),
        long = "p".repeat(110)
    ));
    let out = t.path().join("dists");
    fs::create_dir_all(&out).unwrap();
    let old = crate::util::pack(&a, &out, "world", "20260101T000000Z", "v1");
    let new = crate::util::pack(&b, &out, "world", "20260102T000000Z", "v2");
    ok(bin().arg("diff").arg(&old).arg(&new).arg("-o").arg(&out));
    let p = out.join(format!(
        "{}--{}.bdpatch",
        old.file_name().unwrap().to_str().unwrap().strip_suffix(".tar.gz").unwrap(),
        new.file_name().unwrap().to_str().unwrap().strip_suffix(".tar.gz").unwrap()
    ));
    let made = t.path().join("made.tar.gz");
    ok(bin().arg("patch").arg(&p).arg("--base").arg(&old).arg("-o").arg(&made));
    assert_eq!(sh(&format!("gunzip -c {} | md5sum", made.display())), sh(&format!("gunzip -c {} | md5sum", new.display())));
    // And from a gzipped pipe, as the seed design has it.
    let piped = sh(&format!("gunzip -c {} | {} patch {} | md5sum", old.display(), env!("CARGO_BIN_EXE_binarydist"), p.display()));
    assert_eq!(piped, sh(&format!("gunzip -c {} | md5sum", new.display())));
}

#[test]
fn identical_and_empty_worlds() {
    let t = tempdir();
    let entries = vec![dir("etc"), file("etc/a", binary(9, 5000))];
    let one = write_world(t.path(), 1, &entries);
    let two = write_world(t.path(), 2, &entries);
    let p = diff(&one, &two, t.path(), &[]);
    assert_applies(&one, &[&p], &two);
    assert!(fs::metadata(&p).unwrap().len() < 2000);
    let empty1 = write_world(t.path(), 3, &[]);
    let empty2 = write_world(t.path(), 4, &[]);
    let p = diff(&empty1, &empty2, t.path(), &[]);
    assert_applies(&empty1, &[&p], &empty2);
    let full = write_world(t.path(), 5, &entries);
    let p = diff(&empty2, &full, t.path(), &[]);
    assert_applies(&empty2, &[&p], &full);
    let empty6 = write_world(t.path(), 6, &[]);
    let p = diff(&full, &empty6, t.path(), &[]);
    assert_applies(&full, &[&p], &empty6);
}

/// Four generations of a world; returns the tars.
fn generations(dir: &Path) -> Vec<PathBuf> {
    let base: Vec<(String, Vec<u8>)> =
        (0..40).map(|i| (format!("usr/bin/prog{i:02}"), binary(100 + i, 20_000 + i as usize * 500))).collect();
    (1..=4u32)
        .map(|g| {
            let entries: Vec<Entry> = base
                .iter()
                .enumerate()
                .filter(|(i, _)| *i as u32 != g * 7) // one member missing per generation
                .map(|(i, (path, data))| {
                    let mut data = data.clone();
                    for step in 1..g {
                        if i as u32 % 5 == step {
                            data = edit(&data, step as u64 * 100 + i as u64);
                        }
                    }
                    file(path, data)
                })
                .collect();
            write_world(dir, g, &entries)
        })
        .collect()
}

#[test]
fn chain_of_three_equals_direct_and_base_output_flags() {
    let t = tempdir();
    let w = generations(t.path());
    let p: Vec<PathBuf> = w.windows(2).map(|pair| diff(&pair[0], &pair[1], t.path(), &[])).collect();
    let chain: Vec<&Path> = p.iter().map(|p| p.as_path()).collect();
    assert_applies(&w[0], &chain, &w[3]);
    let direct = diff(&w[0], &w[3], t.path(), &[]);
    assert_applies(&w[0], &[&direct], &w[3]);
    // --base and -o, gzipped on both sides.
    let gz_base = t.path().join(format!("{}.gz", w[0].file_name().unwrap().to_str().unwrap()));
    sh(&format!("gzip -c {} > {}", w[0].display(), gz_base.display()));
    let out = t.path().join("new.tar.gz");
    ok(bin().arg("patch").args(&chain).arg("--base").arg(&gz_base).arg("-o").arg(&out));
    assert_eq!(sh(&format!("gunzip -c {} | md5sum | cut -c1-32", out.display())), sh(&format!("md5sum < {} | cut -c1-32", w[3].display())));
}

#[test]
fn library_chain_reader_streams_and_reports_at_the_end() {
    use std::io::Read;
    let t = tempdir();
    let w = generations(t.path());
    let p: Vec<PathBuf> = w.windows(2).map(|pair| diff(&pair[0], &pair[1], t.path(), &[])).collect();
    let mut r = binarydist::apply::chain_reader(fs::File::open(&w[0]).unwrap(), &p).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert!(out == fs::read(&w[3]).unwrap());
    assert_eq!(r.finish().unwrap().size, out.len() as u64);
    // A base with one flipped data byte: the stream ends in an error, not a clean end.
    let mut bad = fs::read(&w[0]).unwrap();
    bad[2000] ^= 1;
    let mut r = binarydist::apply::chain_reader(std::io::Cursor::new(bad), &p).unwrap();
    let e = r.read_to_end(&mut Vec::new()).unwrap_err();
    let e = binarydist::apply::ApplyError::from_io(e).expect("an ApplyError inside");
    assert!(e.to_string().contains("old tar (base)"), "{e}");
}

#[test]
fn same_bytes_on_one_or_two_threads() {
    let t = tempdir();
    let w = generations(t.path());
    let (d1, d2) = (t.path().join("t1"), t.path().join("t2"));
    fs::create_dir_all(&d1).unwrap();
    fs::create_dir_all(&d2).unwrap();
    let p1 = diff(&w[0], &w[3], &d1, &["--threads", "1"]);
    let p2 = diff(&w[0], &w[3], &d2, &["--threads", "2"]);
    assert!(fs::read(p1).unwrap() == fs::read(p2).unwrap());
}

#[test]
fn out_of_order_sources_are_kept_within_the_cap() {
    let t = tempdir();
    // New members reuse old content in reverse order: every source but the first
    // is behind the applier's cursor.
    let blobs: Vec<Vec<u8>> = (0..6).map(|i| binary(300 + i, 100_000)).collect();
    let old: Vec<Entry> = blobs.iter().enumerate().map(|(i, b)| file(&format!("a/{i}"), b.clone())).collect();
    let new: Vec<Entry> = blobs.iter().rev().enumerate().map(|(i, b)| file(&format!("b/{i}"), b.clone())).collect();
    let (old, new) = (write_world(t.path(), 1, &old), write_world(t.path(), 2, &new));
    let roomy = t.path().join("roomy");
    let tight = t.path().join("tight");
    fs::create_dir_all(&roomy).unwrap();
    fs::create_dir_all(&tight).unwrap();
    let p = diff(&old, &new, &roomy, &[]);
    let h = header_json(&p);
    assert!(h["header"]["kept_bytes"].as_u64().unwrap() > 300_000, "{h:#}");
    assert_applies(&old, &[&p], &new);
    let p = diff(&old, &new, &tight, &["--keep-cap", "250K"]);
    let h = header_json(&p);
    assert!(h["header"]["kept_bytes"].as_u64().unwrap() <= 250 << 10, "{h:#}");
    assert!(h["header"]["stats"]["literals"].as_u64().unwrap() > 0, "{h:#}");
    assert_applies(&old, &[&p], &new);
}

#[test]
fn info_and_help() {
    let t = tempdir();
    let (old, new) = sample_worlds(t.path());
    let p = diff(&old, &new, t.path(), &[]);
    let text = String::from_utf8(ok(bin().arg("info").arg(&p)).stdout).unwrap();
    assert!(text.contains("from        DragonFly-world-x86_64-master-20260101T000000Z-v1"), "{text}");
    let h = header_json(&p);
    assert_eq!(h["header"]["to"], "DragonFly-world-x86_64-master-20260102T000000Z-v2");
    assert_eq!(h["header"]["new"]["md5"].as_str().unwrap(), sh(&format!("md5sum < {} | cut -c1-32", new.display())).trim());
    let help = String::from_utf8(ok(bin().args(["patch", "--help"])).stdout).unwrap();
    assert!(help.contains("binarydist install"), "{help}");
}

/// Runs `binarydist patch` and checks that it fails with one line that says all of `wanted`.
fn refused(cmd: &mut Command, wanted: &[&str]) {
    let err = fails(cmd.stdout(Stdio::null()));
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("binarydist: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for w in wanted {
        assert!(err.contains(w), "{err:?} does not say {w:?}");
    }
}

fn patch_cmd(base: &Path, patches: &[&Path]) -> Command {
    let mut c = bin();
    c.arg("patch").args(patches).stdin(fs::File::open(base).unwrap());
    c
}

/// Rewrites a patch's header through `change`, keeping the header digest valid.
fn rewrite_header(patch: &Path, out: &Path, change: impl FnOnce(&mut serde_json::Value)) {
    let bytes = fs::read(patch).unwrap();
    let len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let mut json: serde_json::Value = serde_json::from_slice(&bytes[48..48 + len]).unwrap();
    change(&mut json);
    let new_json = serde_json::to_vec(&json).unwrap();
    let mut v = bytes[..8].to_vec();
    v.extend_from_slice(&bytes[8..12]);
    v.extend_from_slice(&(new_json.len() as u32).to_le_bytes());
    use sha2::Digest;
    v.extend_from_slice(&sha2::Sha256::digest(&new_json));
    v.extend_from_slice(&new_json);
    v.extend_from_slice(&bytes[48 + len..]);
    fs::write(out, v).unwrap();
}

#[test]
fn bad_patches_and_bad_bases_are_refused_clearly() {
    let t = tempdir();
    let w = generations(t.path());
    let p: Vec<PathBuf> = w.windows(2).map(|pair| diff(&pair[0], &pair[1], t.path(), &[])).collect();
    let bad = t.path().join("bad");
    fs::create_dir_all(&bad).unwrap();
    let name = p[0].file_name().unwrap();
    let bad_p = bad.join(name);

    // A patch for another base, through stdin and through --base.
    refused(&mut patch_cmd(&w[2], &[&p[0]]), &["old tar (standard input)", "expect"]);
    refused(
        bin().arg("patch").arg(&p[0]).arg("--base").arg(&w[2]),
        &["applies to DragonFly-world-x86_64-master-20260101T000000Z-v1", "is DragonFly-world-x86_64-master-20260103T000000Z-v3"],
    );
    // A chain in the wrong order, before streaming anything.
    refused(&mut patch_cmd(&w[0], &[&p[1], &p[0]]), &["out of order", "makes"]);
    // Truncated patches.
    let bytes = fs::read(&p[0]).unwrap();
    for cut in [3, 30, 100, bytes.len() - 10] {
        fs::write(&bad_p, &bytes[..cut]).unwrap();
        refused(&mut patch_cmd(&w[0], &[&bad_p]), &[name.to_str().unwrap()]);
    }
    fs::write(&bad_p, &bytes[..bytes.len() - 10]).unwrap();
    refused(&mut patch_cmd(&w[0], &[&bad_p]), &["truncated", "the header says"]);
    // Bit flips: in the preamble's digest, in the header, in the streams.
    for (at, says) in [(20, "header SHA-256"), (100, "header SHA-256"), (bytes.len() - 50, "streams SHA-256")] {
        let mut v = bytes.clone();
        v[at] ^= 0x10;
        fs::write(&bad_p, v).unwrap();
        refused(&mut patch_cmd(&w[0], &[&bad_p]), &[says]);
    }
    // Not a patch at all.
    fs::write(&bad_p, b"this is no patch, just text long enough for a preamble, really").unwrap();
    refused(&mut patch_cmd(&w[0], &[&bad_p]), &["not a binarydist patch"]);
    // A newer format version, and the older one: each named, with what to do.
    let mut v = bytes.clone();
    v[8] = 3;
    fs::write(&bad_p, v).unwrap();
    refused(&mut patch_cmd(&w[0], &[&bad_p]), &["format version 3", "reads version 2 only", "upgrade binarydist"]);
    let mut v = bytes.clone();
    v[8] = 1;
    fs::write(&bad_p, v).unwrap();
    refused(&mut patch_cmd(&w[0], &[&bad_p]), &["format version 1", "reads version 2 only", "remake the patch"]);
    // A header whose names disagree with the file name.
    let misnamed = bad.join(p[1].file_name().unwrap());
    fs::copy(&p[0], &misnamed).unwrap();
    refused(&mut patch_cmd(&w[0], &[&misnamed]), &["file name says", "header says"]);
    // Absurd sizes in the header.
    let mut v = bytes.clone();
    v[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    fs::write(&bad_p, v).unwrap();
    refused(&mut patch_cmd(&w[0], &[&bad_p]), &["absurd header", "4294967295"]);
    for (field, value) in [("max_source", 1u64 << 60), ("kept_bytes", 1 << 62), ("tail_size", 1 << 40), ("max_raw_header", 1 << 40)] {
        rewrite_header(&p[0], &bad_p, |j| j[field] = value.into());
        refused(&mut patch_cmd(&w[0], &[&bad_p]), &["absurd header", &value.to_string()]);
    }
    rewrite_header(&p[0], &bad_p, |j| {
        j["keep"] = serde_json::json!([{"index": 1u64 << 50, "header_size": 512, "data_size": 0, "uses": 1}])
    });
    refused(&mut patch_cmd(&w[0], &[&bad_p]), &["absurd header", "keep list"]);
    // A header that lies within its bounds: caught while streaming.
    rewrite_header(&p[0], &bad_p, |j| j["max_source"] = 10.into());
    refused(&mut patch_cmd(&w[0], &[&bad_p]), &["expects delta sources of at most 10"]);
    // A new tar that would grow past the size the header declares: stopped at
    // the first byte too many, before the digests could tell.
    rewrite_header(&p[0], &bad_p, |j| j["new"]["size"] = 5000.into());
    refused(&mut patch_cmd(&w[0], &[&bad_p]), &["makes more than the 5000 bytes the header declares"]);
}

#[test]
fn bad_old_streams_are_refused_and_nothing_is_left_behind() {
    let t = tempdir();
    let w = generations(t.path());
    let p = diff(&w[0], &w[1], t.path(), &[]);
    let old = fs::read(&w[0]).unwrap();
    let feed = |bytes: &[u8]| {
        let f = t.path().join("feed.tar");
        fs::write(&f, bytes).unwrap();
        f
    };
    // Truncated: inside a member, and just before the end-of-archive blocks.
    for cut in [old.len() / 2, old.len() - 1024, 700] {
        refused(&mut patch_cmd(&feed(&old[..cut]), &[&p]), &["old tar (standard input)"]);
    }
    // A flipped data byte: early, the prefix digest catches it; later, only the
    // digests of the whole tar can. Then a flipped header byte.
    let mut v = old.clone();
    v[600] ^= 1;
    refused(&mut patch_cmd(&feed(&v), &[&p]), &["old tar (standard input)", "first 65536 bytes", "wrong base?"]);
    let mut late = old.clone();
    let at = late.len() - 3000;
    late[at] ^= 1;
    refused(&mut patch_cmd(&feed(&late), &[&p]), &["old tar (standard input)", "SHA-256 is", "expected"]);
    let mut v = old.clone();
    v[10] ^= 1;
    refused(&mut patch_cmd(&feed(&v), &[&p]), &["old tar (standard input)", "first 65536 bytes"]);
    // A flipped header byte past the prefix: the tar reader sees it.
    let second_dir = old.windows(8).position(|w| w == b"usr/bin/").map(|at| at + 100_000).unwrap();
    let header = (second_dir / 512..).map(|b| b * 512).find(|&o| old[o..o + 8] == *b"usr/bin/").unwrap();
    let mut v = old.clone();
    v[header + 1] ^= 1;
    refused(&mut patch_cmd(&feed(&v), &[&p]), &["old tar (standard input)", "checksum"]);
    // Longer than the patch expects.
    let mut v = old.clone();
    v.extend_from_slice(&[0u8; 4096]);
    refused(&mut patch_cmd(&feed(&v), &[&p]), &["old tar (standard input)", "longer than"]);
    // With -o, a failure leaves nothing under the final name, nor a temporary file.
    let outdir = t.path().join("out");
    fs::create_dir_all(&outdir).unwrap();
    let mut v = old.clone();
    v[600] ^= 1;
    refused(bin().arg("patch").arg(&p).arg("--base").arg(feed(&v)).arg("-o").arg(outdir.join("new.tar")), &["SHA-256"]);
    assert_eq!(fs::read_dir(&outdir).unwrap().count(), 0);
    // In the middle of a chain, the message names the stage that saw it.
    let p2 = diff(&w[1], &w[2], t.path(), &[]);
    refused(&mut patch_cmd(&feed(&v), &[&p, &p2]), &[p.file_name().unwrap().to_str().unwrap(), "old tar (standard input)"]);
}

#[test]
fn a_member_used_for_its_data_then_for_its_header_only() {
    // Tars may hold a path twice. Here the second new `etc/x` has the first's
    // header (same size and mtime) but other bytes: the applier copies old
    // `etc/x` for the first, then needs only its header for the second.
    let t = tempdir();
    let old = write_world(t.path(), 1, &[file("etc/x", b"0123456789".to_vec())]);
    let new = write_world(t.path(), 2, &[file("etc/x", b"0123456789".to_vec()), file("etc/x", b"abcdefghij".to_vec())]);
    let p = diff(&old, &new, t.path(), &[]);
    let h = header_json(&p);
    assert_eq!(h["header"]["keep"][0]["data_size"], 0, "{h:#}");
    assert_applies(&old, &[&p], &new);
}

/// Format 2's matching: a large member diffed in windows (a small `--memory`
/// makes 1 MiB windows), a renamed member found by its content alone, and a new
/// member sent as a reference to an identical earlier new one.
fn format2_worlds(out: &Path) -> (PathBuf, PathBuf) {
    let big = binary(20, 3 << 20);
    let mut big2 = edit(&big, 21);
    big2.splice(1 << 20..1 << 20, noise(22, 5000));
    let text: Vec<u8> = noise(23, 30_000).iter().map(|b| b"etaoin shrdlu "[*b as usize % 14]).collect();
    let mut translated = text.clone();
    for i in (0..translated.len()).step_by(100) {
        translated[i] = b'#';
    }
    let fresh = noise(24, 50_000);
    let old = vec![dir("usr"), file("usr/lib/big", big), file("usr/share/locale/it/x.mo", text)];
    let new = vec![
        dir("usr"),
        file("usr/bin/a", fresh.clone()),
        file("usr/bin/b", fresh),
        file("usr/lib/big", big2),
        file("usr/share/locale/zh/x.mo", translated),
    ];
    (write_world(out, 1, &old), write_world(out, 2, &new))
}

#[test]
fn format2_windows_similar_content_and_references_round_trip() {
    let t = tempdir();
    let (old, new) = format2_worlds(t.path());
    let (d1, d2, dz) = (t.path().join("t1"), t.path().join("t2"), t.path().join("zstd"));
    for d in [&d1, &d2, &dz] {
        fs::create_dir_all(d).unwrap();
    }
    let p1 = diff(&old, &new, &d1, &["--memory", "32M", "--threads", "1"]);
    let p2 = diff(&old, &new, &d2, &["--memory", "32M", "--threads", "2"]);
    assert!(fs::read(&p1).unwrap() == fs::read(&p2).unwrap(), "windows on two threads made other bytes");
    assert_applies(&old, &[&p1], &new);
    let h = header_json(&p1);
    let s = &h["header"]["stats"];
    assert_eq!(s["deltas"], 2, "{h:#}");
    assert!(s["windows"].as_u64().unwrap() >= 4, "the 3 MiB member in 1 MiB windows: {h:#}");
    assert_eq!(s["similar"], 1, "x.mo found by content: {h:#}");
    assert_eq!(s["new_copies"], 1, "usr/bin/b as a reference to usr/bin/a: {h:#}");
    assert_eq!(h["header"]["new_keep"][0]["index"], 1, "{h:#}");
    assert_eq!(s["literals"], 1, "{h:#}");
    // The literal member and the big member's insertion are most of the patch.
    assert!(fs::metadata(&p1).unwrap().len() < 70_000, "{}", fs::metadata(&p1).unwrap().len());
    // zstd instead of LZMA2: another patch, the same result.
    let pz = diff(&old, &new, &dz, &["--compress", "zstd"]);
    assert_eq!(header_json(&pz)["header"]["streams"][0]["codec"], "zstd");
    assert_applies(&old, &[&pz], &new);
}

#[test]
fn a_reference_to_a_new_member_not_kept_is_refused() {
    // A patch whose new keep list is emptied (the header digest kept valid)
    // asks for data the applier never kept: refused, naming the member.
    let t = tempdir();
    let (old, new) = format2_worlds(t.path());
    let p = diff(&old, &new, t.path(), &[]);
    let bad = t.path().join("bad");
    fs::create_dir_all(&bad).unwrap();
    let bad_p = bad.join(p.file_name().unwrap());
    rewrite_header(&p, &bad_p, |j| {
        j["new_keep"] = serde_json::json!([]);
        j["new_kept_bytes"] = 0.into();
    });
    refused(&mut patch_cmd(&old, &[&bad_p]), &["new member 2", "new keep list does not keep"]);
}
