//! A patch's streams applied to a fixed small base (fuzz/base/base.tar), as
//! `apply` and `update` stream them: never a panic, a hang or an allocation
//! past the bounds the header declares.
//!
//! The input is the patch decoded, so that mutations reach the applier rather
//! than the decompressor: a u32 LE length and the JSON header, then each of the
//! nine streams as a u32 LE length and its raw bytes (fuzz/examples/seed_patch.rs
//! makes seeds from real patches). Here each stream is compressed (zstd level 1),
//! and the sizes and digests that a mutation would break are fixed up, so that
//! what is tried is what a writer that lies about nothing but its ops could send.
use binarydist::apply;
use binarydist::codec;
use binarydist::patchfile::{self, Codec, PatchHeader, StreamInfo, MAX_DICT, STREAMS};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::OnceLock;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
const BASE: &[u8] = include_bytes!("../base/base.tar");

fn take<'a>(data: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u32::from_le_bytes(data.get(..4)?.try_into().ok()?) as usize;
    let chunk = data.get(4..4usize.checked_add(len)?)?;
    *data = &data[4 + len..];
    Some(chunk)
}

pub fn run(data: &[u8]) {
    let mut rest = data;
    let Some(json) = take(&mut rest) else { return };
    let Ok(mut header) = serde_json::from_slice::<PatchHeader>(json) else { return };
    let mut raw = Vec::new();
    for _ in STREAMS {
        raw.push(take(&mut rest).unwrap_or(b""));
    }
    let mut body = Vec::new();
    header.streams.clear();
    for (name, r) in STREAMS.iter().zip(&raw) {
        let dict = codec::dict_for(Codec::Zstd, r.len() as u64, MAX_DICT);
        let mut packed = Vec::new();
        codec::encode(Codec::Zstd, 1, dict, &mut &r[..], &mut packed).expect("zstd into memory");
        header.streams.push(StreamInfo {
            name: name.to_string(),
            codec: Codec::Zstd,
            dict,
            raw_size: r.len() as u64,
            size: packed.len() as u64,
        });
        body.extend_from_slice(&packed);
    }
    header.format = patchfile::FORMAT_VERSION;
    header.streams_sha256 = hex::encode(Sha256::digest(&body));
    let dir = DIR.get_or_init(|| super::scratch::dir("bdfuzz-apply"));
    let path = dir.path().join("input");
    let mut f = std::fs::File::create(&path).expect("scratch file");
    patchfile::write_header(&mut f, &header).expect("scratch write");
    f.write_all(&body).expect("scratch write");
    drop(f);
    let Ok(patches) = apply::open_patches(&[path]) else { return };
    let _ = apply::apply_chain(BASE, "base", &patches, std::io::sink());
}
