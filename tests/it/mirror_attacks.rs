//! The attacks of The Update Framework's specification, one test (or more)
//! each, as docs/security.md lists them: what an attacker who controls a
//! mirror, the network, or an old signing key can try, and what binarydist
//! does about it.

use crate::httpd::{Fault, Server};
use crate::mirror::{cmd, installed, mirror, one_line_of as one_line, root_with, stderr, stdout, Mirror, KERNEL};
use crate::util::{bin, fails, ok};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn fresh_root(m: &Mirror) -> PathBuf {
    let root = m.t.path().join(format!("fresh{}", std::fs::read_dir(m.t.path()).unwrap().count()));
    std::fs::create_dir(&root).unwrap();
    root
}

fn keygen(m: &Mirror, name: &str) -> (PathBuf, PathBuf) {
    let sk = m.t.path().join(format!("{name}.key"));
    ok(bin().args(["keygen", "--no-password", "--secret"]).arg(&sk));
    (sk.clone(), sk.with_extension("pub"))
}

fn key_id(public: &Path) -> String {
    std::fs::read_to_string(public).unwrap().lines().next().unwrap().rsplit(' ').next().unwrap().to_string()
}

fn plan_kernel(m: &Mirror, root: &Path, mirrors: &[&str]) -> std::process::Command {
    let mut c = cmd("plan", root, m, mirrors);
    c.args(["--series", KERNEL]);
    c
}

#[test]
fn attack_arbitrary_installation_tampered_index_unknown_key_missing_signature_altered_file() {
    let m = mirror();
    let dir = m.dir.to_str().unwrap();
    let root = fresh_root(&m);
    let good = m.index_text();
    // A tampered INDEX under the old signature.
    let sha = good.lines().find(|l| l.starts_with("dist kernel.GENERIC")).unwrap().split(' ').nth(4).unwrap().to_string();
    std::fs::write(m.dir.join("INDEX"), good.replace(&sha, &"0".repeat(64))).unwrap();
    let e = one_line(&fails(&mut plan_kernel(&m, &root, &[dir])), "binarydist: plan");
    assert!(e.contains("bad signature"), "{e}");
    // No signature at all.
    std::fs::write(m.dir.join("INDEX"), &good).unwrap();
    let sig = std::fs::read(m.dir.join("INDEX.minisig")).unwrap();
    std::fs::remove_file(m.dir.join("INDEX.minisig")).unwrap();
    let e = one_line(&fails(&mut plan_kernel(&m, &root, &[dir])), "binarydist: plan");
    assert!(e.contains("INDEX.minisig: missing"), "{e}");
    // Signed, but by a key nobody trusts.
    let (evil, evil_pub) = keygen(&m, "evil");
    m.sign(Some(&evil));
    let e = one_line(&fails(&mut plan_kernel(&m, &root, &[dir])), "binarydist: plan");
    assert!(e.contains(&format!("signed by key {}", key_id(&evil_pub))) && e.contains(&key_id(&m.pubkey)), "{e}");
    std::fs::write(m.dir.join("INDEX.minisig"), &sig).unwrap();
    // An honest INDEX, an altered dist: downloaded, refused, nothing installed.
    let name = m.dist(KERNEL, 3).file_name();
    let mut bytes = std::fs::read(m.dir.join(&name)).unwrap();
    let n = bytes.len();
    bytes[n - 100] ^= 0xff;
    std::fs::write(m.dir.join(&name), &bytes).unwrap();
    let srv = Server::start(&m.dir);
    let e = one_line(&fails(cmd("update", &root, &m, &[&srv.url]).args(["--series", KERNEL])), "binarydist: update");
    assert!(e.contains(&name) && e.contains("no mirror served it intact") && e.contains("SHA-256 is"), "{e}");
    assert!(installed(&root, KERNEL).is_none());
    let downloads = root.join("var/db/binarydist/downloads");
    assert!(!downloads.join(&name).exists());
    assert_eq!(std::fs::metadata(downloads.join(format!("{name}.part"))).map(|md| md.len()).unwrap_or(0), 0, "bad bytes kept");
}

#[test]
fn attack_endless_data_is_never_read_past_what_the_index_declares() {
    let m = mirror();
    let srv = Server::start(&m.dir);
    let name = m.dist(KERNEL, 3).file_name();
    let size = std::fs::metadata(m.dir.join(&name)).unwrap().len();
    srv.fault(&name, Fault::Endless, Some(1));
    let root = fresh_root(&m);
    let start = Instant::now();
    ok(cmd("update", &root, &m, &[&srv.url]).args(["--series", KERNEL]));
    assert!(start.elapsed() < Duration::from_secs(20), "it waited for the end of an endless file");
    assert!(srv.sent(&name) < 64 << 20, "the server could send {} bytes", srv.sent(&name));
    assert_eq!(installed(&root, KERNEL).unwrap(), m.dist(KERNEL, 3).to_string());
    // More than declared, with a Content-Length that says so: the same.
    let root = fresh_root(&m);
    srv.fault(&name, Fault::Extra(1 << 20), Some(1));
    ok(cmd("update", &root, &m, &[&srv.url]).args(["--series", KERNEL]));
    assert_eq!(installed(&root, KERNEL).unwrap(), m.dist(KERNEL, 3).to_string());
    assert!(size < srv.sent(&name));
    // An INDEX without end: refused at its cap, quickly.
    srv.fault("INDEX", Fault::Endless, None);
    let e = one_line(&fails(&mut plan_kernel(&m, &fresh_root(&m), &[&srv.url])), "binarydist: plan");
    assert!(e.contains("INDEX: more than 4194304 bytes; refused"), "{e}");
}

#[test]
fn attack_extraneous_dependencies_nothing_outside_the_index_and_the_targets_series_is_fetched() {
    let m = mirror();
    // A mirror slips in a newer kernel the INDEX does not list.
    let planted = m.dist(KERNEL, 3).file_name().replace("20260921T171320Z-v6.5.0.3.gabcde", "20300101T000000Z-r9");
    std::fs::copy(m.dist_path(KERNEL, 3), m.dir.join(&planted)).unwrap();
    let srv = Server::start(&m.dir);
    let root = root_with(&m, &[(KERNEL, 1)]);
    ok(&mut cmd("update", &root, &m, &[&srv.url]));
    assert_eq!(installed(&root, KERNEL).unwrap(), m.dist(KERNEL, 3).to_string());
    let asked: Vec<String> = srv.requested().into_iter().filter(|p| p.starts_with("DragonFly-")).collect();
    assert_eq!(asked, [m.patch_file(KERNEL, 1, 3)], "only the plan's files: no world, no CUSTOM, no planted r9");
}

#[test]
fn attack_fast_forward_by_an_old_key_after_a_rotation_is_refused() {
    let m = mirror();
    let (k2, _) = keygen(&m, "k2");
    let dir = m.dir.to_str().unwrap().to_string();
    ok(bin()
        .arg("keys")
        .arg("rotate")
        .arg(&m.dir)
        .arg("--key")
        .arg(&m.key)
        .arg("--new")
        .arg(k2.with_extension("pub"))
        .arg("--no-password"));
    m.reindex(Some(&k2));
    let legit = (m.index_text(), std::fs::read(m.dir.join("INDEX.minisig")).unwrap());
    let root = fresh_root(&m);
    ok(cmd("update", &root, &m, &[&dir]).args(["--series", KERNEL]));
    let serial = std::fs::read_to_string(root.join("var/db/binarydist/serial")).unwrap();
    assert_eq!(serial.trim(), m.serial().to_string());
    // The retired key (stolen, say) signs an INDEX with a huge serial.
    let huge = legit.0.replacen(&format!("serial {}", m.serial()), "serial 999999999999", 1);
    m.write_index(&huge, Some(&m.key));
    let e = one_line(&fails(&mut cmd("update", &root, &m, &[&dir])), "binarydist: update");
    assert!(e.contains(&format!("signed by key {}", key_id(&m.pubkey))) && e.contains("serial 999999999999"), "{e}");
    // A target still pinned at the old key refuses it too: KEYS says who signs from then on.
    let e = one_line(&fails(&mut plan_kernel(&m, &fresh_root(&m), &[&dir])), "binarydist: plan");
    assert!(e.contains("signs only serials below") && e.contains("took over"), "{e}");
    assert_eq!(std::fs::read_to_string(root.join("var/db/binarydist/serial")).unwrap(), serial, "the serial moved");
    // The honest INDEX is still taken: the target is not frozen.
    std::fs::write(m.dir.join("INDEX"), &legit.0).unwrap();
    std::fs::write(m.dir.join("INDEX.minisig"), &legit.1).unwrap();
    let out = ok(&mut cmd("update", &root, &m, &[&dir]));
    assert!(stdout(&out).contains("is up to date"), "{}", stdout(&out));
}

#[test]
fn attack_indefinite_freeze_an_expired_index_is_refused() {
    let m = mirror();
    let text = m.index_text();
    let expires = text.lines().find(|l| l.starts_with("expires ")).unwrap().to_string();
    m.write_index(&text.replace(&expires, "expires 20200101T000000Z"), None);
    let root = fresh_root(&m);
    let dir = m.dir.to_str().unwrap();
    let e = one_line(&fails(&mut plan_kernel(&m, &root, &[dir])), "binarydist: plan");
    assert!(e.contains("INDEX expired at 20200101T000000Z") && e.contains("--allow-expired"), "{e}");
    ok(plan_kernel(&m, &root, &[dir]).arg("--allow-expired"));
}

#[test]
fn attack_rollback_a_replayed_index_is_refused_and_a_mirror_behind_does_not_stop_the_update() {
    let m = mirror();
    let old = m.t.path().join("old-mirror");
    ok(std::process::Command::new("cp").arg("-R").arg(&m.dir).arg(&old));
    m.reindex(None);
    let root = root_with(&m, &[(KERNEL, 1)]);
    let dir = m.dir.to_str().unwrap();
    ok(&mut cmd("update", &root, &m, &[dir]));
    let old_url = old.to_str().unwrap();
    let e = one_line(&fails(&mut cmd("update", &root, &m, &[old_url])), "binarydist: update");
    assert!(e.contains(&format!("older than serial {}", m.serial())) && e.contains("replayed"), "{e}");
    // Listed first, the mirror behind is passed over.
    let out = ok(&mut cmd("update", &root, &m, &[old_url, dir]));
    assert!(stderr(&out).contains("replayed INDEX") && stdout(&out).contains("is up to date"), "{}", stderr(&out));
    ok(cmd("plan", &root, &m, &[old_url]).arg("--allow-replay"));
    // Asking for an older dist than the installed one is a downgrade.
    let r1 = m.dist(KERNEL, 1).to_string();
    let e = one_line(&fails(cmd("update", &root, &m, &[dir]).args(["--to", &r1])), "binarydist: update");
    assert!(e.contains("is older than the installed") && e.contains("--allow-downgrade"), "{e}");
    let out = ok(cmd("plan", &root, &m, &[dir]).args(["--to", &r1, "--allow-downgrade", "--json"]));
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(p["plans"][0]["way"], "full", "{p}");
}

#[test]
fn attack_mix_and_match_of_index_signature_and_files_from_different_moments() {
    let m = mirror();
    let old_sig = std::fs::read(m.dir.join("INDEX.minisig")).unwrap();
    m.reindex(None);
    std::fs::write(m.dir.join("INDEX.minisig"), &old_sig).unwrap();
    let root = fresh_root(&m);
    let dir = m.dir.to_str().unwrap();
    let e = one_line(&fails(&mut plan_kernel(&m, &root, &[dir])), "binarydist: plan");
    assert!(e.contains("bad signature"), "the signature of another INDEX: {e}");
    m.sign(None);
    // Another build's file under this name (CUSTOM's kernel as GENERIC's).
    let (swap, good) = (Server::start(&m.dir), Server::start(&m.dir));
    let name = m.dist(KERNEL, 3).file_name();
    swap.fault(&name, Fault::Swap(m.dist("kernel.CUSTOM", 3).file_name()), None);
    let out = ok(cmd("update", &root, &m, &[&swap.url, &good.url]).args(["--series", KERNEL]));
    assert!(stderr(&out).contains("the INDEX says"), "{}", stderr(&out));
    assert_eq!(installed(&root, KERNEL).unwrap(), m.dist(KERNEL, 3).to_string());
}

#[test]
fn attack_wrong_software_another_arch_or_branch_is_never_taken_unasked() {
    let m = mirror();
    let root = root_with(&m, &[(KERNEL, 1)]);
    let dir = m.dir.to_str().unwrap();
    let other = m.dist(KERNEL, 3).to_string().replace("-x86_64-", "-aarch64-");
    let e = one_line(&fails(cmd("update", &root, &m, &[dir]).args(["--to", &other])), "binarydist: update");
    assert!(e.contains("is for aarch64, this machine runs x86_64") && e.contains("--allow-other-arch"), "{e}");
    let e = one_line(&fails(cmd("update", &root, &m, &[dir]).args(["--branch", "DragonFly_RELEASE_6_4"])), "binarydist: update");
    assert!(e.contains("no dist for x86_64 on branch DragonFly_RELEASE_6_4"), "{e}");
    assert_eq!(installed(&root, KERNEL).unwrap(), m.dist(KERNEL, 1).to_string());
}

#[test]
fn attack_key_compromise_two_rotations_walked_and_revoked_keys_refused() {
    let m = mirror();
    let dir = m.dir.to_str().unwrap().to_string();
    let (k2, k2_pub) = keygen(&m, "k2");
    let (k3, k3_pub) = keygen(&m, "k3");
    let rotate = |old: &Path, new: &Path| {
        ok(bin().arg("keys").arg("rotate").arg(&m.dir).arg("--key").arg(old).arg("--new").arg(new).arg("--no-password"));
    };
    rotate(&m.key, &k2_pub);
    m.reindex(Some(&k2));
    rotate(&k2, &k3_pub);
    m.reindex(Some(&k3));
    ok(bin().arg("keys").arg("revoke").arg(&m.dir).arg("--key").arg(&k3).arg("--revoke").arg(&m.pubkey).arg("--no-password"));
    // A target pinned at the first key, offline through both rotations.
    let root = fresh_root(&m);
    let e = one_line(
        &fails(cmd("update", &root, &m, &[&dir]).args(["--series", KERNEL, "--revoked-key", &key_id(&k3_pub)])),
        "binarydist: update",
    );
    assert!(e.contains(&format!("key {}, which is revoked (the local revoked list)", key_id(&k3_pub))), "{e}");
    ok(cmd("update", &root, &m, &[&dir]).args(["--series", KERNEL]));
    assert_eq!(installed(&root, KERNEL).unwrap(), m.dist(KERNEL, 3).to_string());
    let keys = root.join("var/db/binarydist/keys");
    assert_eq!(
        std::fs::read_to_string(keys.join("pinned.pub")).unwrap(),
        std::fs::read_to_string(&k3_pub).unwrap(),
        "pinned the end of the chain"
    );
    let first_b64 = std::fs::read_to_string(&m.pubkey).unwrap().lines().nth(1).unwrap().to_string();
    assert!(std::fs::read_to_string(keys.join("revoked")).unwrap().contains(&first_b64), "the revocation is remembered");

    // The current key is revoked (by itself: it was stolen); it still signs validly.
    ok(bin().arg("keys").arg("revoke").arg(&m.dir).arg("--key").arg(&k3).arg("--revoke").arg(&k3_pub).arg("--no-password"));
    m.reindex(Some(&k3));
    let e = one_line(&fails(&mut cmd("update", &root, &m, &[&dir])), "binarydist: update");
    assert!(e.contains(&format!("key {}, which is revoked (a revocation in KEYS)", key_id(&k3_pub))), "{e}");
    // The first key, remembered as revoked, signs nothing any more.
    m.sign(None);
    let e = one_line(&fails(&mut cmd("update", &root, &m, &[&dir])), "binarydist: update");
    assert!(e.contains(&format!("signed by key {}", key_id(&m.pubkey))), "{e}");
}

#[test]
fn attack_symlinks_planted_in_the_state_directory_are_refused_not_followed() {
    let m = mirror();
    let dir = m.dir.to_str().unwrap();
    let outside = m.t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let root = fresh_root(&m);
    std::os::unix::fs::symlink(&outside, root.join("var")).unwrap();
    let e = one_line(&fails(cmd("update", &root, &m, &[dir]).args(["--series", KERNEL])), "binarydist: update");
    assert!(e.contains("not a real directory"), "{e}");
    assert!(std::fs::read_dir(&outside).unwrap().next().is_none(), "created outside the root");

    let root = fresh_root(&m);
    let downloads = root.join("var/db/binarydist/downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let victim = outside.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let name = m.dist(KERNEL, 3).file_name();
    std::os::unix::fs::symlink(&victim, downloads.join(format!("{name}.part"))).unwrap();
    let e = one_line(&fails(cmd("update", &root, &m, &[dir]).args(["--series", KERNEL])), "binarydist: update");
    assert!(e.contains(".part: not a regular file"), "{e}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}
