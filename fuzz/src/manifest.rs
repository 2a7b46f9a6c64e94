//! The `+MANIFEST` member's text: never a panic, and whatever parses
//! writes back to text that parses to the same manifest.
use binarydist::manifest::Manifest;

pub fn run(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(m) = Manifest::parse(s) {
        let text = m.to_text();
        let again = Manifest::parse(&text).expect("a written manifest parses");
        assert_eq!(again.to_text(), text);
        let _ = m.content_sha256();
    }
}
