//! A mirror's INDEX, INDEX.minisig and KEYS, checked the way `update` checks
//! them against a pinned key (fuzz/keys/fuzz.pub): never a panic. The input
//! is the three files joined by SEP lines (fuzz/seeds.sh makes them).
use binarydist::index::Index;
use binarydist::sign::{self, Key};
use binarydist::update::trust::{self, Allow, Anchor};

const SEP: &[u8] = b"\n--8<--\n";

fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(SEP.len()).position(|w| w == SEP) {
        parts.push(&rest[..i]);
        rest = &rest[i + SEP.len()..];
    }
    parts.push(rest);
    parts
}

pub fn run(data: &[u8]) {
    let pinned = Key::parse(include_str!("../keys/fuzz.pub")).expect("the fuzzing key");
    let parts = split(data);
    let (text, sig, keys) = (parts[0], parts.get(1).copied().unwrap_or(b""), parts.get(2).copied());
    if let Ok(s) = std::str::from_utf8(text) {
        if let Ok(index) = Index::parse(s) {
            let again = index.to_string();
            assert_eq!(Index::parse(&again).map(|i| i.to_string()).ok(), Some(again));
        }
        let _ = sign::parse_keys(s);
        let _ = Key::parse(s);
    }
    if let Ok(s) = std::str::from_utf8(sig) {
        let _ = sign::signature_key_id(s);
    }
    let anchor = Anchor { pinned, last_serial: 0, revoked: vec![] };
    let _ = trust::check(&anchor, text, sig, keys, &Allow { replay: true, expired: true }, 0);
}
