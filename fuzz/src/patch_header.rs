//! A patch file's preamble, JSON header and bounds, as `apply` and `update`
//! read them before streaming. The header's SHA-256 in the preamble is fixed
//! up before reading (else nearly every mutation would stop there), so that
//! the JSON and every bound check are reached. Never a panic.
use binarydist::patchfile::{self, PREAMBLE_LEN};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

pub fn run(data: &[u8]) {
    let dir = DIR.get_or_init(|| super::scratch::dir("bdfuzz-patch"));
    let mut data = data.to_vec();
    if data.len() >= PREAMBLE_LEN {
        let len = u32::from_le_bytes([data[12], data[13], data[14], data[15]]) as usize;
        if let Some(json) = data.get(PREAMBLE_LEN..PREAMBLE_LEN.saturating_add(len)) {
            let sha: [u8; 32] = Sha256::digest(json).into();
            data[16..48].copy_from_slice(&sha);
        }
    }
    let path = dir.path().join("input");
    std::fs::write(&path, &data).expect("scratch write");
    if let Ok(p) = patchfile::read_header(&path) {
        let _ = patchfile::verify_streams(&p);
        let _ = p.to_string();
    }
}
