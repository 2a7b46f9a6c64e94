//! `binarydist update` against real mirrors: the DISTDIR that the fragment
//! built and signed from the sample source tree (bsd.rs, built once per run),
//! served by the tests' own HTTP(S) server (httpd.rs), and misbehaving on
//! purpose. The attacks of docs/security.md are in mirror_attacks.rs.

use crate::httpd::{down_url, Fault, Server};
use crate::util::{bin, fails, is_root, ok, skip, tempdir, Tmpfs};
use binarydist::names::{DistName, PatchName};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const WORLD: &str = "world";
pub const KERNEL: &str = "kernel.GENERIC";

/// A copy of the fragment's signed DISTDIR, to serve or to tamper with.
pub struct Mirror {
    pub t: tempfile::TempDir,
    pub dir: PathBuf,
    pub key: PathBuf,
    pub pubkey: PathBuf,
}

pub fn mirror() -> Mirror {
    let b = crate::bsd::built();
    let t = tempdir();
    let dir = t.path().join("mirror");
    ok(Command::new("cp").arg("-R").arg(&b.dist).arg(&dir));
    Mirror { dir, key: b.key.clone(), pubkey: b.key.with_extension("pub"), t }
}

impl Mirror {
    /// The dists of a series, oldest first.
    pub fn dists(&self, series: &str) -> Vec<DistName> {
        let mut v: Vec<DistName> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| DistName::from_file_name(&e.unwrap().file_name().to_string_lossy()).ok())
            .filter(|d| d.series.to_string() == series)
            .collect();
        v.sort();
        v
    }

    pub fn dist(&self, series: &str, rev: usize) -> DistName {
        self.dists(series)[rev - 1].clone()
    }

    pub fn dist_path(&self, series: &str, rev: usize) -> PathBuf {
        self.dir.join(self.dist(series, rev).file_name())
    }

    pub fn patch_file(&self, series: &str, from: usize, to: usize) -> String {
        PatchName::new(self.dist(series, from), self.dist(series, to)).unwrap().file_name()
    }

    /// `binarydist index` and `sign` again, with `key` (default: the fragment's).
    pub fn reindex(&self, key: Option<&Path>) {
        ok(bin().arg("index").arg(&self.dir));
        self.sign(key);
    }

    pub fn sign(&self, key: Option<&Path>) {
        ok(bin().args(["sign", "--no-password", "--key"]).arg(key.unwrap_or(&self.key)).arg(self.dir.join("INDEX")));
    }

    pub fn index_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("INDEX")).unwrap()
    }

    /// Writes `text` as the INDEX and signs it.
    pub fn write_index(&self, text: &str, key: Option<&Path>) {
        std::fs::write(self.dir.join("INDEX"), text).unwrap();
        self.sign(key);
    }

    pub fn serial(&self) -> u64 {
        self.index_text().lines().nth(1).unwrap().strip_prefix("serial ").unwrap().parse().unwrap()
    }
}

/// A root with these dists installed by `binarydist install` (no network).
pub fn root_with(m: &Mirror, dists: &[(&str, usize)]) -> PathBuf {
    let root = m.t.path().join(format!("root{}", std::fs::read_dir(m.t.path()).unwrap().count()));
    std::fs::create_dir(&root).unwrap();
    for (series, rev) in dists {
        ok(bin().arg("install").arg("--root").arg(&root).args(["--make", "bmake"]).arg(m.dist_path(series, *rev)));
    }
    root
}

/// `binarydist ARGS --root ROOT --pubkey KEY --mirror ...`, quick timeouts, no configuration file.
pub fn cmd(what: &str, root: &Path, m: &Mirror, mirrors: &[&str]) -> Command {
    let mut c = bin();
    c.arg(what).arg("--root").arg(root).arg("--pubkey").arg(&m.pubkey).args(["--config", "/dev/null"]);
    if what == "update" {
        c.args(["--make", "bmake"]);
    }
    for u in mirrors {
        c.args(["--mirror", u]);
    }
    c
}

pub fn installed(root: &Path, series: &str) -> Option<String> {
    let text = std::fs::read_to_string(root.join("var/db/binarydist").join(series).join("installed")).ok()?;
    text.lines().find_map(|l| l.strip_prefix("name ")).map(String::from)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The one line of `err` that starts with `starts` (and checks there is one).
pub fn one_line_of(err: &str, starts: &str) -> String {
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with(starts)).collect();
    assert_eq!(lines.len(), 1, "one line starting {starts:?}: {err}");
    lines[0].to_string()
}

/// Only the dist and patch files a server was asked for.
fn files_requested(s: &Server) -> Vec<String> {
    s.requested().into_iter().filter(|p| p.starts_with("DragonFly-")).collect()
}

#[test]
fn mirror_update_from_nothing_installs_kernel_then_world_and_check_says_so() {
    let m = mirror();
    let srv = Server::start(&m.dir);
    let root = m.t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let check = |root: &Path| {
        let mut c = cmd("update", root, &m, &[&srv.url]);
        c.args(["--check", "--series", WORLD, "--series", KERNEL]);
        c.output().unwrap()
    };
    let out = check(&root);
    assert_eq!(out.status.code(), Some(3), "update --check exits 3 when an update is available: {}", stderr(&out));
    assert!(stdout(&out).contains("update available: world nothing -> DragonFly-world-"), "{}", stdout(&out));
    assert!(!root.join("var").exists(), "--check changed the root");
    let mut c = cmd("update", &root, &m, &[&srv.url]);
    let out = ok(c.args(["--series", WORLD, "--series", KERNEL]));
    let text = stdout(&out);
    let k = text.find("installed DragonFly-kernel.GENERIC-").expect(&text);
    let w = text.find("installed DragonFly-world-").expect(&text);
    assert!(k < w, "kernel first, then world: {text}");
    assert!(text.contains("reboot needed"), "{text}");
    assert_eq!(installed(&root, WORLD).unwrap(), m.dist(WORLD, 3).to_string());
    assert_eq!(installed(&root, KERNEL).unwrap(), m.dist(KERNEL, 3).to_string());
    assert!(root.join("etc/mail.rc").is_file(), "make upgrade ran");
    // Full dists only, and nothing else.
    let mut got = files_requested(&srv);
    got.sort();
    assert_eq!(got, [m.dist(KERNEL, 3).file_name(), m.dist(WORLD, 3).file_name()]);
    let state = root.join("var/db/binarydist");
    assert_eq!(std::fs::read_to_string(state.join("serial")).unwrap().trim(), m.serial().to_string());
    assert_eq!(std::fs::read_to_string(state.join("keys/pinned.pub")).unwrap(), std::fs::read_to_string(&m.pubkey).unwrap());
    assert!(std::fs::read_dir(state.join("downloads")).unwrap().next().is_none(), "downloads left behind");
    let out = check(&root);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("up to date"));
    // Run again: nothing to do, nothing downloaded.
    let before = files_requested(&srv).len();
    let out = ok(&mut cmd("update", &root, &m, &[&srv.url]));
    assert!(stdout(&out).contains("is up to date"), "{}", stdout(&out));
    assert_eq!(files_requested(&srv).len(), before);
}

#[test]
fn mirror_update_from_rev1_walks_the_chain_and_from_rev2_takes_one_patch() {
    let m = mirror();
    // Without the direct r1 -> r3 patch, the cheapest way from r1 is the chain.
    std::fs::remove_file(m.dir.join(m.patch_file(WORLD, 1, 3))).unwrap();
    m.reindex(None);
    let srv = Server::start(&m.dir);
    let root = root_with(&m, &[(WORLD, 1)]);
    assert!(root.join("usr/bin/oldtool").is_file());
    let plan = ok(cmd("plan", &root, &m, &[&srv.url]).arg("--json"));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["plans"][0]["way"], "patches", "{plan}");
    ok(&mut cmd("update", &root, &m, &[&srv.url]));
    assert_eq!(files_requested(&srv), [m.patch_file(WORLD, 1, 2), m.patch_file(WORLD, 2, 3)]);
    assert_eq!(installed(&root, WORLD).unwrap(), m.dist(WORLD, 3).to_string());
    assert!(!root.join("usr/bin/oldtool").exists() && root.join("usr/bin/newtool").is_file(), "make upgrade removed what r2 retired");

    let srv2 = Server::start(&m.dir);
    let root2 = root_with(&m, &[(WORLD, 2)]);
    ok(&mut cmd("update", &root2, &m, &[&srv2.url]));
    assert_eq!(files_requested(&srv2), [m.patch_file(WORLD, 2, 3)]);
    assert_eq!(installed(&root2, WORLD).unwrap(), m.dist(WORLD, 3).to_string());
}

#[test]
fn mirror_plan_takes_the_full_dist_when_the_chain_costs_more_or_the_kept_base_is_damaged() {
    let m = mirror();
    let srv = Server::start(&m.dir);
    let root = root_with(&m, &[(KERNEL, 1)]);
    let plan = |root: &Path| -> serde_json::Value {
        let out = ok(cmd("plan", root, &m, &[&srv.url]).arg("--json"));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let p = plan(&root);
    assert_eq!(p["plans"][0]["way"], "patches", "{p}");
    assert_eq!(p["plans"][0]["files"][0]["file"], m.patch_file(KERNEL, 1, 3));

    // The kept base no longer verifies: the full dist, though patches are there.
    let base = root.join("var/db/binarydist/kernel.GENERIC/base.tar.gz");
    let good = std::fs::read(&base).unwrap();
    let mut bad = good.clone();
    let n = bad.len();
    bad[n / 2] ^= 1;
    std::fs::write(&base, &bad).unwrap();
    let p = plan(&root);
    assert_eq!(p["plans"][0]["way"], "full", "{p}");
    assert!(p["plans"][0]["note"].as_str().unwrap().contains("does not verify"), "{p}");
    ok(&mut cmd("update", &root, &m, &[&srv.url]));
    assert_eq!(files_requested(&srv), [m.dist(KERNEL, 3).file_name()]);
    assert_eq!(installed(&root, KERNEL).unwrap(), m.dist(KERNEL, 3).to_string());

    // Patches that cost more than the full dist (as the signed INDEX says).
    let root = root_with(&m, &[(KERNEL, 1)]);
    let text: String = m
        .index_text()
        .lines()
        .map(|l| {
            let mut w: Vec<String> = l.split(' ').map(String::from).collect();
            if w[0] == "patch" {
                w[3] = "100000000".into();
            }
            w.join(" ") + "\n"
        })
        .collect();
    m.write_index(&text, None);
    let p = plan(&root);
    assert_eq!(p["plans"][0]["way"], "full", "{p}");
    assert_eq!(p["plans"][0]["bytes"], std::fs::metadata(m.dist_path(KERNEL, 3)).unwrap().len());
}

#[test]
fn mirror_fails_over_from_a_down_a_hanging_and_a_corrupting_mirror_to_a_good_one() {
    let m = mirror();
    let (hang, corrupt, good) = (Server::start(&m.dir), Server::start(&m.dir), Server::start(&m.dir));
    hang.fault("", Fault::Hang, None);
    corrupt.fault("DragonFly-", Fault::Corrupt, None);
    let root = m.t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let start = Instant::now();
    let mut c = cmd("update", &root, &m, &[&down_url(), &hang.url, &corrupt.url, &good.url]);
    c.args(["--timeout", "2", "--series", KERNEL]);
    let out = ok(&mut c);
    let took = start.elapsed();
    eprintln!("fail-over update took {took:?}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert_eq!(installed(&root, KERNEL).unwrap(), m.dist(KERNEL, 3).to_string());
    let log = stderr(&out);
    assert!(log.contains("timed out"), "{log}");
    assert!(log.contains("SHA-256 is") && log.contains("the INDEX says"), "the corrupt file was caught: {log}");
    assert_eq!(files_requested(&corrupt), [m.dist(KERNEL, 3).file_name()]);
    assert_eq!(files_requested(&good), [m.dist(KERNEL, 3).file_name()]);
    assert!(files_requested(&hang).is_empty(), "the hanging mirror was tried again for a file");
}

#[test]
fn mirror_a_cut_download_resumes_where_it_stopped() {
    let m = mirror();
    let srv = Server::start(&m.dir);
    let name = m.dist(KERNEL, 3).file_name();
    let size = std::fs::metadata(m.dir.join(&name)).unwrap().len();
    srv.fault(&name, Fault::CutAfter(3000), Some(1));
    let root = m.t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let out = ok(cmd("update", &root, &m, &[&srv.url]).args(["--series", KERNEL]));
    assert!(stderr(&out).contains("after 3000 of") && stderr(&out).contains("retrying"), "{}", stderr(&out));
    let reqs: Vec<(String, Option<u64>)> = srv.stats().requests.into_iter().filter(|(p, _)| *p == name).collect();
    assert_eq!(reqs, [(name.clone(), None), (name.clone(), Some(3000))], "resumed with a Range from byte 3000");
    assert_eq!(srv.sent(&name), size, "every byte sent once");
    assert_eq!(installed(&root, KERNEL).unwrap(), m.dist(KERNEL, 3).to_string());
}

#[test]
fn mirror_bad_bytes_before_a_resume_are_not_blamed_on_the_resuming_mirror() {
    let m = mirror();
    let srv = Server::start(&m.dir);
    let name = m.dist(KERNEL, 3).file_name();
    srv.fault(&name, Fault::CorruptThenCut(3000), Some(1));
    let root = m.t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let out = ok(cmd("update", &root, &m, &[&srv.url]).args(["--series", KERNEL]));
    assert!(stderr(&out).contains("after resuming at byte 3000; starting over"), "{}", stderr(&out));
    let ranges: Vec<Option<u64>> = srv.stats().requests.into_iter().filter(|(p, _)| *p == name).map(|(_, r)| r).collect();
    assert_eq!(ranges, [None, Some(3000), None], "cut, resumed, then from nothing on the same mirror");
    assert_eq!(installed(&root, KERNEL).unwrap(), m.dist(KERNEL, 3).to_string());
}

#[test]
fn mirror_a_download_killed_half_way_resumes_on_the_next_run() {
    let m = mirror();
    let srv = Server::start(&m.dir);
    let name = m.dist(KERNEL, 3).file_name();
    let size = std::fs::metadata(m.dir.join(&name)).unwrap().len();
    srv.fault(&name, Fault::StallAfter(4096), Some(1));
    let root = m.t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let mut child = cmd("update", &root, &m, &[&srv.url]).args(["--series", KERNEL, "--timeout", "60"]).spawn().unwrap();
    let part = root.join("var/db/binarydist/downloads").join(format!("{name}.part"));
    let start = Instant::now();
    while std::fs::metadata(&part).map(|md| md.len()).unwrap_or(0) < 4096 {
        assert!(start.elapsed() < Duration::from_secs(20), "the download never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(std::fs::metadata(&part).unwrap().len(), 4096);
    assert!(installed(&root, KERNEL).is_none());
    ok(cmd("update", &root, &m, &[&srv.url]).args(["--series", KERNEL]));
    let last = srv.stats().requests.into_iter().rfind(|(p, _)| *p == name).unwrap();
    assert_eq!(last.1, Some(4096), "the rerun resumed from the partial file");
    assert_eq!(srv.sent(&name), size);
    assert_eq!(installed(&root, KERNEL).unwrap(), m.dist(KERNEL, 3).to_string());
}

/// A certificate for localhost and 127.0.0.1, made with the openssl CLI.
/// A private CA and a server certificate it signed for 127.0.0.1, made with
/// the openssl CLI; returns (CA certificate, server certificate, server key).
fn make_cert(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let script = "set -e
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
            -subj /CN=binarydist-test-CA -keyout ca.key -out ca.pem 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 \
            -keyout server.key -out server.csr 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' > ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext -out server.pem 2>/dev/null";
    ok(Command::new("sh").arg("-c").arg(script).current_dir(dir));
    (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"))
}

#[test]
fn mirror_https_with_a_private_ca_is_trusted_through_ca_file_and_refused_without_it() {
    let m = mirror();
    let (ca, cert, key) = make_cert(m.t.path());
    let srv = Server::start_tls(&m.dir, &cert, &key);
    let root = m.t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let err = fails(cmd("plan", &root, &m, &[&srv.url]).args(["--series", KERNEL]));
    assert_eq!(err.lines().filter(|l| l.starts_with("binarydist: plan")).count(), 1, "{err}");
    assert!(err.to_lowercase().contains("certificate") || err.contains("UnknownIssuer"), "{err}");
    assert!(files_requested(&srv).is_empty());
    let out = ok(cmd("update", &root, &m, &[&srv.url]).args(["--series", KERNEL, "--ca-file"]).arg(&ca));
    assert!(stdout(&out).contains("installed DragonFly-kernel.GENERIC-"), "{}", stdout(&out));
    assert_eq!(files_requested(&srv), [m.dist(KERNEL, 3).file_name()]);
}

#[test]
fn mirror_file_urls_and_plain_directories_work_the_same_way() {
    let m = mirror();
    let root = m.t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let url = format!("file://{}", m.dir.display());
    let plan = ok(cmd("plan", &root, &m, &[&url]).args(["--series", KERNEL]));
    assert!(stdout(&plan).contains("by Full"), "{}", stdout(&plan));
    ok(cmd("update", &root, &m, &[m.dir.to_str().unwrap()]).args(["--series", KERNEL]));
    assert_eq!(installed(&root, KERNEL).unwrap(), m.dist(KERNEL, 3).to_string());
}

#[test]
fn mirror_a_held_series_is_left_alone_until_update_to() {
    let m = mirror();
    let srv = Server::start(&m.dir);
    let root = root_with(&m, &[(KERNEL, 1)]);
    std::fs::write(root.join("var/db/binarydist/kernel.GENERIC/hold"), "rollback to r1 on 2026-12-01\n").unwrap();
    let out = ok(cmd("update", &root, &m, &[&srv.url]).arg("--check"));
    assert!(stderr(&out).contains("kernel.GENERIC is held (rollback to r1 on 2026-12-01)"), "{}", stderr(&out));
    let out = ok(&mut cmd("update", &root, &m, &[&srv.url]));
    assert!(stderr(&out).contains("is held"));
    assert_eq!(installed(&root, KERNEL).unwrap(), m.dist(KERNEL, 1).to_string());
    assert!(files_requested(&srv).is_empty());
    ok(cmd("update", &root, &m, &[&srv.url]).arg("--to").arg(m.dist(KERNEL, 2).to_string()));
    assert_eq!(installed(&root, KERNEL).unwrap(), m.dist(KERNEL, 2).to_string());
    assert!(!root.join("var/db/binarydist/kernel.GENERIC/hold").exists(), "update --to ends the hold");
}

#[test]
fn mirror_install_of_a_local_dist_checks_it_against_the_index_or_says_it_is_not_authenticated() {
    let m = mirror();
    let root = m.t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let dist = m.dist_path(KERNEL, 1);
    let install = || {
        let mut c = bin();
        c.arg("install").arg("--root").arg(&root).args(["--config", "/dev/null", "--pubkey"]).arg(&m.pubkey);
        c
    };
    // A dist whose bytes are not the INDEX's (sidecars made to match).
    let evil_dir = m.t.path().join("evil");
    std::fs::create_dir(&evil_dir).unwrap();
    let evil = evil_dir.join(dist.file_name().unwrap());
    ok(Command::new("sh").arg("-c").arg(format!("gunzip -c '{}' | gzip -1 > '{}'", dist.display(), evil.display())));
    let base = m.dist(KERNEL, 1).to_string();
    for f in [format!("{base}.tar.md5"), format!("{base}.tar.sha256"), "INDEX.minisig".into()] {
        std::fs::copy(m.dir.join(&f), evil_dir.join(&f)).unwrap();
    }
    std::fs::copy(m.dir.join("INDEX"), evil_dir.join("INDEX")).unwrap();
    let err = fails(install().arg("--index").arg(evil_dir.join("INDEX")).arg(&evil));
    assert!(err.contains("the INDEX says") && err.contains("refused"), "{err}");
    assert!(installed(&root, KERNEL).is_none());

    let out = ok(install().arg("--index").arg(m.dir.join("INDEX")).arg(&dist));
    assert!(stderr(&out).contains("verified against"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("not authenticated"));
    assert_eq!(installed(&root, KERNEL).unwrap(), m.dist(KERNEL, 1).to_string());
    let out = ok(install().arg("--patch").arg(m.dir.join(m.patch_file(KERNEL, 1, 2))));
    let log = stderr(&out);
    let warn: Vec<&str> = log.lines().filter(|l| l.contains("not authenticated")).collect();
    assert_eq!(warn.len(), 1, "{log}");
    assert!(warn[0].starts_with("binarydist: warning:") && warn[0].contains("--index"), "{warn:?}");
}

#[test]
fn mirror_the_minisign_cli_and_binarydist_check_each_other() {
    let m = mirror();
    // The fragment's INDEX, signed by binarydist: minisign -V agrees.
    let out = ok(Command::new("minisign").arg("-Vm").arg(m.dir.join("INDEX")).arg("-p").arg(&m.pubkey));
    let said = stdout(&out) + &stderr(&out);
    assert!(said.contains(&format!("serial {}", m.serial())), "the trusted comment repeats the serial: {said}");
    // A tampered INDEX: minisign -V refuses too.
    let text = m.index_text();
    std::fs::write(m.dir.join("INDEX"), text.replacen("serial ", "serial 9", 1)).unwrap();
    assert!(!Command::new("minisign").arg("-Vm").arg(m.dir.join("INDEX")).arg("-p").arg(&m.pubkey).output().unwrap().status.success());
    std::fs::write(m.dir.join("INDEX"), &text).unwrap();

    // An INDEX signed by the minisign CLI with a key it made: binarydist accepts it.
    let (sk, pk) = (m.t.path().join("cli.key"), m.t.path().join("cli.pub"));
    ok(Command::new("minisign").args(["-G", "-W", "-p"]).arg(&pk).arg("-s").arg(&sk));
    ok(Command::new("minisign").args(["-S", "-s"]).arg(&sk).args(["-t", "signed by the minisign CLI", "-m"]).arg(m.dir.join("INDEX")));
    let root = m.t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let mut c = bin();
    c.args(["plan", "--config", "/dev/null", "--series", KERNEL, "--root"]).arg(&root).arg("--pubkey").arg(&pk).arg("--mirror").arg(&m.dir);
    let out = ok(&mut c);
    assert!(stdout(&out).contains(&format!("INDEX serial {}", m.serial())), "{}", stdout(&out));
    // ... and refuses it with the fragment's key, whose signature it is not.
    let err = fails(cmd("plan", &root, &m, &[m.dir.to_str().unwrap()]).args(["--series", KERNEL]));
    assert!(err.contains("signed by key") && err.contains("the pinned key"), "{err}");
}

#[test]
fn mirror_a_disk_that_fills_during_the_download_fails_in_one_line_and_installs_nothing() {
    if !is_root() {
        skip("needs root to mount a tmpfs");
        return;
    }
    let m = mirror();
    let srv = Server::start(&m.dir);
    let root = m.t.path().join("root");
    let downloads = root.join("var/db/binarydist/downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let Some(_fs) = Tmpfs::mount(&downloads, "2m") else { return };
    // Too small from the start: refused before a byte is downloaded.
    ok(Command::new("mount").args(["-o", "remount,size=512k"]).arg(&downloads));
    let err = fails(cmd("update", &root, &m, &[&srv.url]).args(["--series", WORLD]));
    let line = one_line_of(&err, "binarydist: update");
    assert!(line.contains("not enough room in") && line.contains("nothing was downloaded"), "{err}");
    assert!(files_requested(&srv).is_empty(), "downloaded before checking the space");
    ok(Command::new("mount").args(["-o", "remount,size=2m"]).arg(&downloads));
    // The check passes (2 MiB free); then, once the download has begun,
    // something else fills the file system.
    let filler = downloads.join("filler");
    let name = m.dist(WORLD, 3).file_name();
    srv.fault(&name, Fault::StallAfter(4096), Some(1));
    let f2 = filler.clone();
    srv.on_send(move |path, _| {
        if path.ends_with(".tar.gz") && !f2.exists() {
            let _ = std::fs::write(&f2, vec![0u8; 4 << 20]);
        }
    });
    // The stall makes the client retry after its timeout, into a full disk.
    let err = fails(cmd("update", &root, &m, &[&srv.url]).args(["--series", WORLD, "--timeout", "1"]));
    let line = one_line_of(&err, "binarydist: update");
    assert!(line.contains("No space left on device") && line.contains(".part"), "{err}");
    assert!(installed(&root, WORLD).is_none());
    assert!(!downloads.join(&name).exists(), "an unverified file under its final name");
}

#[test]
fn mirror_proxies_are_taken_from_the_environment_as_fetch_does() {
    let m = mirror();
    let srv = Server::start(&m.dir);
    let proxy = crate::httpd::Proxy::start();
    let root = m.t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let port = srv.url.trim_end_matches('/').rsplit(':').next().unwrap().to_string();
    let plan = |env: &[(&str, &str)]| {
        let mut c = cmd("plan", &root, &m, &[&srv.url]);
        c.args(["--series", KERNEL]);
        for v in ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "ALL_PROXY", "all_proxy", "no_proxy", "NO_PROXY"] {
            c.env_remove(v);
        }
        c.envs(env.iter().copied());
        ok(&mut c);
        std::mem::take(&mut *proxy.targets.lock().unwrap())
    };
    let through = plan(&[("http_proxy", &proxy.url)]);
    assert!(!through.is_empty() && through.iter().all(|t| *t == format!("127.0.0.1:{port}")), "{through:?}");
    assert!(plan(&[("HTTP_PROXY", &proxy.url), ("no_proxy", "127.0.0.1")]).is_empty(), "no_proxy bypasses it");
    assert!(plan(&[("https_proxy", &proxy.url)]).is_empty(), "https_proxy is for https mirrors only");
}

#[test]
fn mirror_download_progress_shows_on_a_terminal_only() {
    let m = mirror();
    let srv = Server::start(&m.dir);
    let root = m.t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let c = cmd("update", &root, &m, &[&srv.url]);
    let line: Vec<String> = std::iter::once(c.get_program()).chain(c.get_args()).map(|a| format!("'{}'", a.to_string_lossy())).collect();
    // script(1) gives the update a pseudo-terminal.
    let run = format!("{} --series {KERNEL}", line.join(" "));
    let Ok(out) = Command::new("script").args(["-qec", &run, "/dev/null"]).output() else {
        skip("no script(1)");
        return;
    };
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(seen.contains(&format!("{}: 0.0 of 0.0 MiB", m.dist(KERNEL, 3).file_name())) && seen.contains("(100%)"), "{seen}");
    // Off a terminal (every other test), no progress line.
    let root = m.t.path().join("root2");
    std::fs::create_dir(&root).unwrap();
    let out = ok(cmd("update", &root, &m, &[&srv.url]).args(["--series", KERNEL]));
    assert!(!stderr(&out).contains("MiB ("), "{}", stderr(&out));
}

#[test]
fn mirror_a_full_dist_then_patches_when_the_newest_full_dist_is_not_on_the_mirror() {
    let m = mirror();
    let (r2, r3) = (m.dist(KERNEL, 2), m.dist(KERNEL, 3));
    std::fs::remove_file(m.dist_path(KERNEL, 3)).unwrap();
    m.reindex(None);
    let srv = Server::start(&m.dir);
    let root = m.t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let out = ok(cmd("update", &root, &m, &[&srv.url]).args(["--series", KERNEL]));
    assert!(stdout(&out).contains(&format!("installed {}", r3)), "{}", stdout(&out));
    assert_eq!(
        files_requested(&srv),
        [r2.file_name(), PatchName::new(r2.clone(), r3.clone()).unwrap().file_name()],
        "the cheapest: r2 whole, then r2 -> r3"
    );
    assert_eq!(installed(&root, KERNEL).unwrap(), r3.to_string());
    // The kept base is r3's tar (as the INDEX gives it): the next update patches from it.
    let base = root.join("var/db/binarydist/kernel.GENERIC/base.tar.gz");
    let got = crate::util::sh(&format!("gunzip -c '{}' | sha256sum | cut -d' ' -f1", base.display()));
    let name = r3.to_string();
    let line = m.index_text().lines().find(|l| l.contains(&format!("--{name} "))).unwrap().to_string();
    assert_eq!(got.trim(), line.rsplit(' ').next().unwrap());
}

#[test]
fn mirror_the_fragments_index_names_exactly_the_directory_after_prune_and_resign_refreshes_it() {
    let m = mirror();
    let b = crate::bsd::built();
    let listed = |m: &Mirror| -> Vec<String> {
        let i = binarydist::index::Index::parse(&m.index_text()).unwrap();
        let mut v: Vec<String> = i.entries.iter().map(|e| e.file.clone()).collect();
        v.sort();
        v
    };
    let on_disk = |m: &Mirror| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&m.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tar.gz") || n.ends_with(".bdpatch"))
            .collect();
        v.sort();
        v
    };
    assert_eq!(listed(&m), on_disk(&m));
    assert_eq!(listed(&m).len(), 18, "3 series, 3 dists and 3 patches each");
    let frag = b.root.join("usr/src/binarydists");
    let make = |targets: &[&str]| {
        let mut args: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
        args.extend([
            "KERNCONFS=GENERIC CUSTOM".into(),
            "BRANCH=master".into(),
            "BINDIST_KEEP=1".into(),
            format!("DISTDIR={}", m.dir.display()),
            format!("BINDIST_SIGNKEY={}", m.key.display()),
        ]);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(&mut crate::bsd::bmake(&frag, &b.root.join("obj"), &argv));
    };
    let (serial, entries) = (m.serial(), listed(&m));
    make(&["resign"]);
    assert!(m.serial() > serial);
    assert_eq!(listed(&m), entries, "resign keeps the entries");
    ok(Command::new("minisign").arg("-qVm").arg(m.dir.join("INDEX")).arg("-p").arg(&m.pubkey));
    // A prune, then the index step: the INDEX never names a file that is gone.
    make(&["prune.world", "index"]);
    assert_eq!(listed(&m), on_disk(&m));
    assert_eq!(listed(&m).len(), 15, "world pruned to 2 dists and 1 patch");
    // --resign after files went: refused, with what to do.
    std::fs::remove_file(m.dist_path(KERNEL, 1)).unwrap();
    let e = fails(bin().args(["index", "--resign"]).arg(&m.dir));
    assert!(e.contains("it is gone (run `binarydist index` again, not --resign)"), "{e}");
}

#[test]
fn mirror_keys_are_made_0600_and_a_password_comes_from_a_file_or_is_refused_explicitly() {
    let t = tempdir();
    let (sk, pk) = (t.path().join("k.key"), t.path().join("k.pub"));
    let e = fails(bin().args(["keygen", "--secret"]).arg(&sk));
    assert!(e.contains("--password-file") && e.contains("--no-password") && !sk.exists(), "{e}");
    let pw = t.path().join("pw");
    std::fs::write(&pw, "correct horse\n").unwrap();
    let out = ok(bin().args(["keygen", "--secret"]).arg(&sk).arg("--password-file").arg(&pw));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&sk).unwrap().permissions().mode() & 0o777, 0o600);
    let secret = std::fs::read_to_string(&sk).unwrap();
    assert!(!stdout(&out).contains(secret.lines().nth(1).unwrap()), "the secret key was printed");
    let e = fails(bin().args(["keygen", "--no-password", "--secret"]).arg(&sk));
    assert!(e.contains("exists") && std::fs::read_to_string(&sk).unwrap() == secret, "{e}");
    let file = t.path().join("INDEX");
    std::fs::write(&file, "binarydist-index 1\nserial 7\ncreated 20260101T000000Z\nexpires 20260201T000000Z\nend\n").unwrap();
    let e = fails(bin().args(["sign", "--no-password", "--key"]).arg(&sk).arg(&file));
    assert!(e.contains("encrypted") && e.contains("--password-file"), "{e}");
    std::fs::write(&pw, "wrong\n").unwrap();
    let e = fails(bin().args(["sign", "--key"]).arg(&sk).arg("--password-file").arg(&pw).arg(&file));
    assert!(e.contains("wrong password"), "{e}");
    std::fs::write(&pw, "correct horse\n").unwrap();
    ok(bin().args(["sign", "--key"]).arg(&sk).arg("--password-file").arg(&pw).arg(&file));
    let out = ok(Command::new("minisign").arg("-Vm").arg(&file).arg("-p").arg(&pk));
    assert!(stdout(&out).contains("binarydist INDEX serial 7 created 20260101T000000Z expires 20260201T000000Z"), "{}", stdout(&out));
}

#[test]
fn mirror_the_fragment_indexes_after_the_last_pack_whatever_targets_run_together() {
    let (t, src) = crate::bsd::check_tree("order");
    let frag = src.join("binarydists");
    let out = ok(&mut crate::bsd::bmake(
        &frag,
        &t.path().join("obj"),
        &[
            "-n",
            "binarydist",
            "binarykernel",
            "KERNCONFS=GENERIC CUSTOM",
            "BRANCH=master",
            "GITREV=r1",
            "SOURCE_DATE_EPOCH=1790000000",
            "BINDIST_SIGNKEY=/k.key",
            &format!("DISTDIR={}", t.path().join("dist").display()),
            &format!("STAGE={}", t.path().join("stage").display()),
        ],
    ));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    let last = |what: &str| lines.iter().rposition(|l| l.contains(what)).unwrap_or_else(|| panic!("no {what:?} in:\n{text}"));
    assert!(last("binarydist index --valid 30d") > last("binarydist pack --stage"), "{text}");
    assert!(last("binarydist sign --key /k.key --no-password") > last("binarydist index"), "{text}");
    assert_eq!(lines.iter().filter(|l| l.contains("binarydist index")).count(), 2, "after the world, and after the kernels: {text}");
}
