//! Turns real patches into seeds for the patch_apply target: the JSON header,
//! then each stream decoded, each behind a u32 LE length.
//!
//! cargo run --release --manifest-path fuzz/Cargo.toml --example seed_patch -- PATCH OUT
use binarydist::codec;
use binarydist::patchfile;
use std::io::{BufReader, Read, Seek, SeekFrom};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, patch, out] = &args[..] else {
        eprintln!("usage: seed_patch PATCH OUT");
        std::process::exit(2)
    };
    let p = patchfile::read_header(patch.as_ref()).unwrap_or_else(|e| panic!("{e}"));
    let mut seed = Vec::new();
    let json = serde_json::to_vec(&p.header).expect("json");
    seed.extend_from_slice(&(json.len() as u32).to_le_bytes());
    seed.extend_from_slice(&json);
    for (info, &offset) in p.header.streams.iter().zip(&p.offsets) {
        let mut f = std::fs::File::open(patch).expect("patch");
        f.seek(SeekFrom::Start(offset)).expect("seek");
        let packed = BufReader::new(f.take(info.size));
        let mut raw = Vec::new();
        codec::decoder(info.codec, info.dict, packed).expect("decoder").read_to_end(&mut raw).expect("decode");
        seed.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        seed.extend_from_slice(&raw);
    }
    std::fs::write(out, seed).expect("write");
}
