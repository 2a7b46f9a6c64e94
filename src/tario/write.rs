//! Writing tar members: ustar headers, with PAX extended headers where ustar
//! cannot say it (long names and link targets, large sizes and ids, odd mtimes)
//! and for BSD file flags, as bsdtar writes them (`SCHILY.fflags`), so that
//! DragonFly's own tar restores them.
//!
//! Every byte written is a function of the [`Meta`] alone: numeric owners, no
//! user or group names, no access times, fixed PAX header names. That is what makes
//! a dist reproducible.

use super::{Kind, Meta, BLOCK};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;

pub struct Writer<W: Write> {
    inner: W,
}

impl<W: Write> Writer<W> {
    pub fn new(inner: W) -> Self {
        Writer { inner }
    }

    /// Appends one member; `data` must yield exactly `meta.size` bytes, or the
    /// member would be corrupt: a short or long read is an error naming the path.
    pub fn append(&mut self, meta: &Meta, data: impl Read) -> io::Result<()> {
        self.inner.write_all(&header_bytes(meta))?;
        if meta.kind == Kind::File && meta.size > 0 {
            let copied = io::copy(&mut data.take(meta.size + 1), &mut self.inner)?;
            if copied != meta.size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: size changed while packing ({} bytes, expected {})", meta.path.display(), copied, meta.size),
                ));
            }
            self.inner.write_all(&[0u8; BLOCK][..padding(meta.size)])?;
        }
        Ok(())
    }

    /// Writes the end-of-archive marker (two zero blocks) and returns the stream.
    pub fn finish(mut self) -> io::Result<W> {
        self.inner.write_all(&[0u8; 2 * BLOCK])?;
        Ok(self.inner)
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

/// Zero bytes after `size` bytes of data to reach a block boundary.
pub fn padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

/// The header blocks of one member: a PAX extended header when needed, then the
/// ustar header.
pub fn header_bytes(meta: &Meta) -> Vec<u8> {
    let mut name = meta.path.as_os_str().as_bytes().to_vec();
    if meta.kind == Kind::Dir {
        name.push(b'/');
    }
    let link = meta.link.as_ref().map(|l| l.as_os_str().as_bytes().to_vec()).unwrap_or_default();
    let size = if meta.kind == Kind::File { meta.size } else { 0 };

    let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
    if name.len() > 100 {
        pax.push(("path", name.clone()));
    }
    if link.len() > 100 {
        pax.push(("linkpath", link.clone()));
    }
    if size > OCTAL_11 {
        pax.push(("size", size.to_string().into_bytes()));
    }
    if meta.uid as u64 > OCTAL_7 {
        pax.push(("uid", meta.uid.to_string().into_bytes()));
    }
    if meta.gid as u64 > OCTAL_7 {
        pax.push(("gid", meta.gid.to_string().into_bytes()));
    }
    if meta.mtime < 0 || meta.mtime as u64 > OCTAL_11 {
        pax.push(("mtime", meta.mtime.to_string().into_bytes()));
    }
    if let Some(flags) = meta.flags.as_deref().filter(|f| !f.is_empty()) {
        pax.push(("SCHILY.fflags", flags.as_bytes().to_vec()));
    }
    // Sorted keys: one order, whatever order the code above pushes them in.
    pax.sort_by(|a, b| a.0.cmp(b.0));

    let mut out = Vec::with_capacity(3 * BLOCK);
    if !pax.is_empty() {
        let records = pax_records(&pax);
        let base = meta.path.file_name().map(|b| b.as_bytes()).unwrap_or(b"entry");
        let mut pax_name = b"PaxHeader/".to_vec();
        pax_name.extend_from_slice(&base[..base.len().min(100 - pax_name.len())]);
        let pax_meta = Meta { mode: 0o644, ..meta.clone() };
        out.extend_from_slice(&ustar_block(&pax_name, b"", b'x', records.len() as u64, &pax_meta));
        out.extend_from_slice(&records);
        out.resize(out.len() + padding(records.len() as u64), 0);
    }
    let flag = match meta.kind {
        Kind::File => b'0',
        Kind::HardLink => b'1',
        Kind::Symlink => b'2',
        Kind::CharDev => b'3',
        Kind::BlockDev => b'4',
        Kind::Dir => b'5',
        Kind::Fifo => b'6',
    };
    out.extend_from_slice(&ustar_block(&name, &link, flag, size, meta));
    out
}

const OCTAL_7: u64 = 0o7777777;
const OCTAL_11: u64 = 0o77777777777;

/// PAX records: `"<len> <key>=<value>\n"`, where len counts the whole record.
fn pax_records(pairs: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in pairs {
        let body = key.len() + value.len() + 3; // ' ', '=', '\n'
        let mut len = body + 1;
        while len != body + len.to_string().len() {
            len = body + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {key}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

fn ustar_block(name: &[u8], link: &[u8], flag: u8, size: u64, meta: &Meta) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let cut = |b: &[u8], n: usize| b[..b.len().min(n)].to_vec();
    h[0..100.min(name.len())].copy_from_slice(&cut(name, 100));
    octal(&mut h[100..108], (meta.mode & 0o7777) as u64);
    octal(&mut h[108..116], (meta.uid as u64).min(OCTAL_7));
    octal(&mut h[116..124], (meta.gid as u64).min(OCTAL_7));
    octal(&mut h[124..136], size.min(OCTAL_11));
    octal(&mut h[136..148], meta.mtime.clamp(0, OCTAL_11 as i64) as u64);
    h[156] = flag;
    h[157..157 + 100.min(link.len())].copy_from_slice(&cut(link, 100));
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    if let Some((major, minor)) = meta.dev.filter(|_| matches!(meta.kind, Kind::CharDev | Kind::BlockDev)) {
        octal(&mut h[329..337], (major as u64).min(OCTAL_7));
        octal(&mut h[337..345], (minor as u64).min(OCTAL_7));
    }
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..154].copy_from_slice(format!("{sum:06o}").as_bytes());
    h[154] = 0;
    h[155] = b' ';
    h
}

/// Zero-padded octal, NUL-terminated, filling the field.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    field[..digits].copy_from_slice(format!("{value:0digits$o}").as_bytes());
    field[digits] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        let r = pax_records(&[("path", vec![b'a'; 5])]);
        assert_eq!(r, b"14 path=aaaaa\n");
        let r = pax_records(&[("path", vec![b'a'; 92])]);
        assert_eq!(&r[..4], b"102 ");
        assert_eq!(r.len(), 102);
    }

    #[test]
    fn headers_have_valid_checksums() {
        let mut m = Meta::new("usr/bin/ls", Kind::File);
        m.size = 10;
        let h = header_bytes(&m);
        assert_eq!(h.len(), BLOCK);
        let parsed = tar::Header::from_byte_slice(&h);
        assert_eq!(parsed.cksum().unwrap(), {
            let mut c = h.clone();
            c[148..156].fill(b' ');
            c.iter().map(|&b| b as u32).sum::<u32>()
        });
        assert_eq!(parsed.entry_size().unwrap(), 10);
    }
}
