//! Errors print their own message only; what caused them is their `source()`,
//! and the whole chain is printed once, on one line, `outer: cause: cause`:
//! by `main` (anyhow's `{:#}`), and by [`chain`] where an error must become
//! text inside another (a stage of a patch chain reporting through a reader).
//!
//! A name that comes from an archive, a patch, an INDEX or a journal is shown
//! through [`shown`], so that a message stays one honest line: a newline or an
//! escape sequence in a name could otherwise print a fake second line, and a
//! name of megabytes a message of megabytes.

use std::error::Error;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;

/// How much of an untrusted name a message shows (escaped bytes), at most.
pub const SHOWN_MAX: usize = 256;

/// `name`, fit for one line of a message: control characters (C0, DEL, C1),
/// Unicode line separators and bidirectional overrides are escaped as `\n`,
/// `\t`, `\r`, `\xNN` or `\u{NNNN}`, a byte that is not UTF-8 as `\xNN`,
/// a backslash as `\\`; past [`SHOWN_MAX`] bytes of that it is cut, with an
/// ellipsis and its whole length. For every name from an archive, a patch, an
/// INDEX or a journal.
pub fn shown(name: impl AsRef<OsStr>) -> String {
    let bytes = name.as_ref().as_bytes();
    let mut out = String::new();
    let mut rest = bytes;
    'outer: for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if out.len() >= SHOWN_MAX {
                break 'outer;
            }
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if (c as u32) < 0x80 && c.is_control() => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') => {
                    let _ = write!(out, "\\u{{{:04x}}}", c as u32);
                }
                c => out.push(c),
            }
            rest = &rest[c.len_utf8()..];
        }
        for b in chunk.invalid() {
            if out.len() >= SHOWN_MAX {
                break 'outer;
            }
            let _ = write!(out, "\\x{b:02x}");
            rest = &rest[1..];
        }
    }
    if !rest.is_empty() {
        let _ = write!(out, "\u{2026} ({} bytes)", bytes.len());
    }
    out
}

/// `e` and every error under it, joined by ": ".
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::shown;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn untrusted_names_are_escaped_and_cut() {
        assert_eq!(shown("usr/bin/ls"), "usr/bin/ls");
        assert_eq!(shown("a\nb\x1b[2K\\c\u{85}\u{202e}é"), "a\\nb\\x1b[2K\\\\c\\u{0085}\\u{202e}é");
        assert_eq!(shown(OsStr::from_bytes(b"x\xff\xc3")), "x\\xff\\xc3");
        let long = "y".repeat(5000);
        let s = shown(&long);
        assert!(s.starts_with(&"y".repeat(super::SHOWN_MAX)) && s.ends_with("\u{2026} (5000 bytes)"), "{s}");
        assert_eq!(shown("z".repeat(super::SHOWN_MAX)), "z".repeat(super::SHOWN_MAX));
    }

    #[test]
    fn a_chain_is_one_line_of_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = crate::sidecar::SidecarError::Io { path: "x.tar.md5".into(), source: io };
        assert_eq!(super::chain(&e), "x.tar.md5: gone");
    }
}
