//! ROOT/var/log/binarydist.log: one line per install, rollback and update,
//! appended, saying what was done, to what, how much, how long and how it
//! ended. Reached like the state directory: `var` and `log` opened without
//! following a symlink, the file opened `O_APPEND|O_NOFOLLOW`. Best effort: a
//! log that cannot be written is said on stderr and changes no outcome.
//!
//! Only where ROOT/var/log exists, as it does on every installed system: a
//! root being filled (an image, a jail, a refused first install) gets no
//! directory of the log's making, as syslogd makes none.

use crate::statedir::Dir;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// ROOT-relative path of the log.
pub const PATH: &str = "var/log/binarydist.log";

/// Appends `ACTION key=value ...` with the time in UTC first. A log that
/// cannot be written is said on stderr when `say_failure` (not after a run
/// that failed, whose one line already says why: a read-only root, say).
pub fn append(root: &Path, action: &str, fields: &[(&str, String)], took: Duration, say_failure: bool) {
    let mut line = format!("{} {action}", crate::names::stamp_from_epoch(now()));
    for (k, v) in fields {
        // One line, one word per value.
        let v: String = v.chars().map(|c| if c.is_whitespace() || c.is_control() { '_' } else { c }).collect();
        line.push_str(&format!(" {k}={v}"));
    }
    line.push_str(&format!(" seconds={:.3}\n", took.as_secs_f64()));
    if let (Err(e), true) = (write(root, &line), say_failure) {
        eprintln!("binarydist: {}: {}", root.join(PATH).display(), crate::errors::chain(&e));
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn write(root: &Path, line: &str) -> Result<(), crate::statedir::StateDirError> {
    let mut dir = Dir::open_root(root)?;
    for part in ["var", "log"] {
        match dir.subdir(part, false)? {
            Some(d) => dir = d,
            None => return Ok(()),
        }
    }
    let mut f = dir.open("binarydist.log", libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT, 0o644)?.expect("created");
    f.write_all(line.as_bytes()).map_err(|e| crate::statedir::StateDirError::Io { path: root.join(PATH), source: e })
}
