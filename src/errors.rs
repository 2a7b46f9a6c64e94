//! Errors print their own message only; what caused them is their `source()`,
//! and the whole chain is printed once, on one line, `outer: cause: cause`:
//! by `main` (anyhow's `{:#}`), and by [`chain`] where an error must become
//! text inside another (a stage of a patch chain reporting through a reader).

use std::error::Error;

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
    #[test]
    fn a_chain_is_one_line_of_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = crate::sidecar::SidecarError::Io { path: "x.tar.md5".into(), source: io };
        assert_eq!(super::chain(&e), "x.tar.md5: gone");
    }
}
