//! The gzip reader of dists and kept bases (parallel, member by member):
//! never a panic, and never more output than the input could make.
use binarydist::tario::gz;
use std::io::Read;

pub fn run(data: &[u8]) {
    let mut r = gz::decoder(std::io::Cursor::new(data.to_vec()));
    // Deflate expands at most ~1032:1; read a little past that to catch a reader
    // that invents data.
    let cap = (data.len() as u64 + 64) * 1100;
    let mut sink = Vec::new();
    let _ = (&mut r).take(cap).read_to_end(&mut sink);
}
