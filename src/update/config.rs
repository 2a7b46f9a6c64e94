//! The target's configuration file, in the sh-variable style of BSD config
//! files (rc.conf): `NAME="value"` lines, `#` comments. Read, never run by a
//! shell. The installed example is etc/binarydist.conf.sample.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the configuration is looked for when `--config` is not given.
pub const DEFAULT_PATH: &str = "/usr/local/etc/binarydist.conf";

pub const KNOWN: &[&str] = &[
    "MIRRORS",
    "PUBKEY",
    "CA_FILE",
    "TIMEOUT",
    "RETRIES",
    "BRANCH",
    "REVOKED_KEYS",
    "MAKE",
    // The installer's (install/admin.rs): also read by install, rollback and status.
    "KEEP_GENERATIONS",
    "LOCAL_CHANGES",
    "SNAPSHOT",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: line {line}: {what}", path.display())]
    Syntax { path: PathBuf, line: usize, what: String },
}

#[derive(Debug, Clone, Default)]
pub struct Config {
    pub values: BTreeMap<String, String>,
}

impl Config {
    /// Reads `path`; a missing file is an empty configuration unless `required`.
    pub fn read(path: &Path, required: bool) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(t) => Config::parse(path, &t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(Config::default()),
            Err(e) => Err(ConfigError::Io { path: path.into(), source: e }),
        }
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let mut values = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let err = |what: String| ConfigError::Syntax { path: path.into(), line: i + 1, what };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, value) = line.split_once('=').ok_or_else(|| err("expected NAME=\"value\"".into()))?;
            if !KNOWN.contains(&name) {
                return Err(err(format!("unknown setting {name:?} (known: {})", KNOWN.join(" "))));
            }
            let value = unquote(value.trim()).ok_or_else(|| err(format!("{name}: unbalanced quotes")))?;
            values.insert(name.to_string(), value);
        }
        Ok(Config { values })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// A whitespace-separated list.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name).map(|v| v.split_whitespace().map(String::from).collect()).unwrap_or_default()
    }
}

/// `"v"`, `'v'` or a bare word, with a trailing `# comment` after a quoted value.
fn unquote(v: &str) -> Option<String> {
    for q in ['"', '\''] {
        if let Some(rest) = v.strip_prefix(q) {
            let end = rest.find(q)?;
            let after = rest[end + 1..].trim();
            return (after.is_empty() || after.starts_with('#')).then(|| rest[..end].to_string());
        }
    }
    Some(v.split(" #").next().unwrap_or("").trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rc_conf_style() {
        let c =
            Config::parse(Path::new("x"), "# comment\nMIRRORS=\"http://a/ http://b/\" # two\nTIMEOUT=5\nPUBKEY='/k.pub'\n\nBRANCH=\"\"\n")
                .unwrap();
        assert_eq!(c.list("MIRRORS"), ["http://a/", "http://b/"]);
        assert_eq!(c.get("TIMEOUT"), Some("5"));
        assert_eq!(c.get("PUBKEY"), Some("/k.pub"));
        assert_eq!(c.get("BRANCH"), None);
        let e = Config::parse(Path::new("x"), "MIRORS=x\n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("MIRORS"), "{e}");
        assert!(Config::parse(Path::new("x"), "MIRRORS=\"x\n").is_err());
    }

    #[test]
    fn the_installed_example_parses_with_every_setting_uncommented() {
        let sample = include_str!("../../etc/binarydist.conf.sample");
        assert!(Config::parse(Path::new("sample"), sample).unwrap().values.is_empty());
        let on: String = sample
            .lines()
            .map(|l| {
                format!(
                    "{}\n",
                    l.strip_prefix('#').filter(|r| r.starts_with(|c: char| c.is_ascii_uppercase()) && r.contains("=\"")).unwrap_or(l)
                )
            })
            .collect();
        let c = Config::parse(Path::new("sample"), &on).unwrap();
        assert_eq!(c.values.len(), KNOWN.len(), "{:?}", c.values.keys());
        assert_eq!(c.get("TIMEOUT"), Some("30"));
    }
}
