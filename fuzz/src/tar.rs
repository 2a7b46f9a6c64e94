//! The tar reader as install and info use it: the manifest member first, then
//! every member's header, path check and data, then the tail. Never a panic,
//! never an allocation sized by a header field alone.
use binarydist::manifest;
use binarydist::tario::{check_relative, Reader};

pub fn run(data: &[u8]) {
    let mut reader = Reader::new(data);
    let _ = manifest::read_member(&mut reader);
    let mut reader = Reader::new(data);
    loop {
        match reader.next_member() {
            Ok(Some(m)) => {
                let _ = check_relative(&m.meta.path);
                if let Some(t) = &m.meta.link {
                    let _ = check_relative(t);
                }
                if reader.sha256_data().is_err() {
                    return;
                }
            }
            Ok(None) => break,
            Err(_) => return,
        }
    }
    let _ = reader.finish();
}
