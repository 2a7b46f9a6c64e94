//! The memory bounds of `binarydist diff` and `patch`: a generated world of more
//! than 1 GiB (made here, in a temporary directory) with a 72 MiB member, one
//! diff under a `--memory` setting, a chain of three patches applied from a
//! pipe, and the peak RSS of each child measured by /usr/bin/time.

use crate::patch::{diff, edit, file, noise, write_world, Entry};
use crate::util::{bin, sh, tempdir};
use std::path::Path;

const MIB: usize = 1 << 20;
/// The member larger than 64 MiB; it changes in the first patch only.
const BIG: usize = 72 * MIB;
const MEMBERS: usize = 240;
const MEMBER: usize = 4 * MIB;

/// Generation `g` of the world: a big member, then `MEMBERS` incompressible
/// ones; each generation edits a few, adds one, drops one, moves one.
fn generation(g: u32) -> Vec<Entry> {
    let mut big = noise(1, BIG);
    if g >= 2 {
        big = edit(&big, 1);
    }
    let mut entries = vec![file("boot/kernel/big", big)];
    for i in 0..MEMBERS {
        if g >= 2 && i == 17 {
            continue; // removed in generation 2
        }
        let mut data = noise(1000 + i as u64, MEMBER);
        for step in 2..=g {
            if i % 60 == step as usize * 7 {
                data = edit(&data, step as u64 * 1000 + i as u64);
            }
        }
        let path = if g >= 4 && i == 100 { "usr/moved/file100".to_string() } else { format!("usr/data/file{i:03}") };
        entries.push(file(&path, data));
    }
    if g >= 3 {
        entries.push(file("usr/data/zz-added", noise(9, MIB)));
    }
    entries.sort_by(|a, b| a.meta.path.cmp(&b.meta.path));
    entries
}

fn write(dir: &Path, g: u32) -> std::path::PathBuf {
    write_world(dir, g, &generation(g))
}

/// The peak RSS that /usr/bin/time -f %M wrote.
fn peak_kib(path: &Path) -> u64 {
    std::fs::read_to_string(path).unwrap().trim().lines().last().unwrap().parse().unwrap()
}

#[test]
fn memory_stays_bounded_diffing_and_applying_a_chain_to_a_1gib_world_from_a_pipe() {
    assert!(Path::new("/usr/bin/time").exists(), "/usr/bin/time is missing: run `make test-deps`");
    let t = tempdir();
    let worlds: Vec<_> = (1..=4).map(|g| write(t.path(), g)).collect();
    let size = std::fs::metadata(&worlds[0]).unwrap().len();
    assert!(size >= 1 << 30, "world is only {size} bytes");
    // The first diff under a setting that the 72 MiB member alone (with its
    // suffix array, 5 times the old data) would pass twice over: it is diffed
    // in windows, and the whole diff stays under the setting.
    let setting = 160 * MIB as u64;
    let rss = t.path().join("diff-rss");
    crate::util::ok(
        std::process::Command::new("/usr/bin/time")
            .args(["-f", "%M", "-o"])
            .arg(&rss)
            .arg(env!("CARGO_BIN_EXE_binarydist"))
            .arg("diff")
            .args([&worlds[0], &worlds[1]])
            .arg("-o")
            .arg(t.path())
            .args(["--memory", &setting.to_string()]),
    );
    let diff_kib = peak_kib(&rss);
    eprintln!("diff: peak RSS {diff_kib} KiB, setting {} KiB", setting / 1024);
    assert!(diff_kib * 1024 < setting, "diff: peak RSS {diff_kib} KiB exceeds the --memory setting of {} KiB", setting / 1024);
    let patches: Vec<_> = worlds.windows(2).map(|w| diff(&w[0], &w[1], t.path(), &[])).collect();

    // Apply: a small constant, the largest source member, the kept sets, and the
    // streams' dictionaries (format 2 decodes nine streams, each with its own).
    let mut bound = 64 * MIB as u64;
    let mut largest_source = 0;
    for p in &patches {
        let out = crate::util::ok(bin().arg("info").arg("--json").arg(p));
        let h: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        largest_source = largest_source.max(h["header"]["max_source"].as_u64().unwrap());
        bound += h["header"]["kept_bytes"].as_u64().unwrap() + h["header"]["new_kept_bytes"].as_u64().unwrap();
        bound += h["header"]["streams"].as_array().unwrap().iter().map(|s| s["dict"].as_u64().unwrap()).sum::<u64>();
    }
    assert!(largest_source > 64 * MIB as u64, "the big member should be patched, not copied");
    bound += largest_source;

    let rss = t.path().join("rss");
    let got = sh(&format!(
        "cat {base} | /usr/bin/time -f %M -o {rss} {bin} patch {p1} {p2} {p3} | md5sum | cut -c1-32",
        base = worlds[0].display(),
        rss = rss.display(),
        bin = env!("CARGO_BIN_EXE_binarydist"),
        p1 = patches[0].display(),
        p2 = patches[1].display(),
        p3 = patches[2].display(),
    ));
    assert_eq!(got, sh(&format!("md5sum < {} | cut -c1-32", worlds[3].display())));
    let rss_kib = peak_kib(&rss);
    eprintln!("peak RSS {} KiB, bound {} KiB", rss_kib, bound / 1024);
    assert!(rss_kib * 1024 < bound, "peak RSS {rss_kib} KiB exceeds the bound of {} KiB", bound / 1024);
}
