//! The update configuration file (/etc/binarydist.conf): never a panic.
use binarydist::update::config::Config;
use std::path::Path;

pub fn run(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(c) = Config::parse(Path::new("binarydist.conf"), s) {
        for name in c.values.keys() {
            let _ = c.list(name);
        }
    }
}
