//! One gzip member (RFC 1952) as binarydist writes it, and the parsing of any
//! member's header.
//!
//! A block of the tar is compressed on its own into one member whose header
//! carries an extra subfield `BD` (binarydist) holding the member's total size
//! in bytes, header and trailer included, as BGZF's `BC` field does (BGZF's is
//! 16 bits, too small for our blocks). A reader that finds it can cut the file
//! into members without inflating anything, and inflate them side by side. Any
//! gzip reader skips the extra field and reads the members as one stream.
//!
//! ```text
//! 1f 8b 08 04  00 00 00 00  00 ff  08 00  'B' 'D' 04 00  SIZE(u32 le)
//! deflate data ...  CRC32(u32 le)  ISIZE(u32 le)
//! ```
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use flate2::{Compress, Crc, Decompress, FlushCompress, FlushDecompress, Status};
use std::io;

/// Length of the header we write: 10 fixed bytes, XLEN, one 8-byte subfield.
pub const HEADER_LEN: usize = 20;
/// The trailer: CRC-32 and length of the uncompressed data.
pub const TRAILER_LEN: usize = 8;
/// Our subfield's identifier.
const SUBFIELD: [u8; 2] = *b"BD";

const FHCRC: u8 = 2;
const FEXTRA: u8 = 4;
const FNAME: u8 = 8;
const FCOMMENT: u8 = 16;

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// Compresses `data` into one complete member, appended to `out`. `deflate` is
/// a raw (headerless) compressor; it is reset here, so one can serve many blocks.
pub fn compress(deflate: &mut Compress, data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0x1f, 0x8b, 8, FEXTRA, 0, 0, 0, 0, 0, 0xff, 8, 0, SUBFIELD[0], SUBFIELD[1], 4, 0, 0, 0, 0, 0]);
    deflate.reset();
    // Deflate's worst case is a few bytes per 16 KiB stored block above the input.
    out.reserve(data.len() + data.len() / 1000 + 64);
    loop {
        let consumed = deflate.total_in() as usize;
        let rest = data.get(consumed..).ok_or_else(|| invalid("deflate consumed more than its input"))?;
        match deflate.compress_vec(rest, out, FlushCompress::Finish).map_err(io::Error::other)? {
            Status::StreamEnd => break,
            _ => out.reserve(out.capacity().max(1024)),
        }
    }
    let mut crc = Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    let size = u32::try_from(out.len() - start).map_err(|_| invalid("gzip member over 4 GiB"))?;
    out.get_mut(start + 16..start + 20).ok_or_else(|| invalid("gzip member header"))?.copy_from_slice(&size.to_le_bytes());
    Ok(())
}

/// What a member's header says, as far as the reader needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Bytes the header takes.
    pub len: usize,
    /// The whole member's size, from our `BD` subfield, when it has one.
    pub member_size: Option<u32>,
}

/// Parses a member's header at the start of `buf`. `Ok(None)` means that more
/// bytes are needed to tell.
pub fn parse_header(buf: &[u8]) -> io::Result<Option<Header>> {
    let Some(&[id1, id2, method, flags, ..]) = buf.first_chunk::<10>() else { return Ok(None) };
    if id1 != 0x1f || id2 != 0x8b {
        return Err(invalid("not in gzip format"));
    }
    if method != 8 {
        return Err(invalid(format!("gzip member with unknown compression method {method}")));
    }
    let mut pos = 10;
    let mut member_size = None;
    if flags & FEXTRA != 0 {
        let Some(&xlen) = buf.get(pos..).and_then(|b| b.first_chunk::<2>()) else { return Ok(None) };
        let xlen = u16::from_le_bytes(xlen) as usize;
        let Some(extra) = buf.get(pos + 2..pos + 2 + xlen) else { return Ok(None) };
        member_size = find_member_size(extra);
        pos += 2 + xlen;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            match buf.get(pos..).unwrap_or_default().iter().position(|&b| b == 0) {
                Some(nul) => pos += nul + 1,
                None => return Ok(None),
            }
        }
    }
    if flags & FHCRC != 0 {
        pos += 2;
    }
    if buf.len() < pos {
        return Ok(None);
    }
    Ok(Some(Header { len: pos, member_size }))
}

/// Our subfield among the extra field's subfields (each ID, 2 bytes; LEN, 2 bytes; data).
fn find_member_size(mut extra: &[u8]) -> Option<u32> {
    while let Some(&[a, b, l0, l1]) = extra.first_chunk::<4>() {
        let len = u16::from_le_bytes([l0, l1]) as usize;
        let data = extra.get(4..4 + len)?;
        if [a, b] == SUBFIELD {
            if let Some(&size) = data.first_chunk::<4>().filter(|_| len == 4) {
                return Some(u32::from_le_bytes(size));
            }
        }
        extra = extra.get(4 + len..)?;
    }
    None
}

/// The uncompressed size a whole member's trailer claims (modulo 2^32, as
/// gzip stores it).
pub fn inflated_size(member: &[u8]) -> usize {
    member.last_chunk::<4>().map_or(0, |&b| u32::from_le_bytes(b) as usize)
}

/// Inflates one whole member (`member` holds exactly its bytes) into `out`,
/// which is cleared first; checks that the deflate data ends exactly at the
/// trailer, and the trailer's CRC-32 and length. At most `max_out` bytes are
/// produced: a member whose trailer claims more is refused before inflating.
pub fn decompress(inflate: &mut Decompress, member: &[u8], max_out: usize, out: &mut Vec<u8>) -> io::Result<()> {
    let header = parse_header(member)?.ok_or_else(|| invalid("truncated gzip header"))?;
    let body = member.get(header.len..).filter(|b| b.len() >= TRAILER_LEN).ok_or_else(|| invalid("truncated gzip member"))?;
    let (data, trailer) = body.split_at(body.len() - TRAILER_LEN);
    let crc_want = u32::from_le_bytes(*trailer.first_chunk::<4>().ok_or_else(|| invalid("truncated gzip member"))?);
    let isize = inflated_size(member);
    if isize > max_out {
        return Err(invalid(format!("gzip member claims {isize} bytes, more than a block")));
    }
    out.clear();
    // One byte of room past the claimed size, so that a member that inflates to
    // more is caught (decompress_vec writes into spare capacity, never grows).
    out.reserve(isize + 1);
    inflate.reset(false);
    let status = inflate.decompress_vec(data, out, FlushDecompress::Finish).map_err(|e| invalid(format!("corrupt deflate data: {e}")))?;
    if out.len() > isize {
        return Err(invalid("gzip member inflates to more than its trailer says"));
    }
    if status != Status::StreamEnd {
        return Err(invalid("corrupt gzip member: deflate data ends early"));
    }
    if inflate.total_in() as usize != data.len() {
        return Err(invalid("corrupt gzip member: deflate data ends before the trailer"));
    }
    if out.len() != isize {
        return Err(invalid("gzip member length does not match its trailer"));
    }
    let mut crc = Crc::new();
    crc.update(out);
    if crc.sum() != crc_want {
        return Err(invalid("gzip member CRC-32 does not match its data"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use std::io::Read;

    fn one(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        compress(&mut Compress::new(Compression::new(6), false), data, &mut out).unwrap();
        out
    }

    #[test]
    fn a_member_says_its_size_and_any_gzip_reader_reads_it() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8 ^ (i / 1000) as u8).collect();
        let m = one(&data);
        let h = parse_header(&m).unwrap().unwrap();
        assert_eq!(h, Header { len: HEADER_LEN, member_size: Some(m.len() as u32) });
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&m[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        let mut fast = Vec::new();
        decompress(&mut Decompress::new(false), &m, data.len(), &mut fast).unwrap();
        assert_eq!(fast, data);
    }

    #[test]
    fn damaged_members_are_refused() {
        let data = vec![7u8; 10_000];
        let m = one(&data);
        let mut inflate = Decompress::new(false);
        let mut out = Vec::new();
        let mut bad_crc = m.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        assert!(decompress(&mut inflate, &bad_crc, 1 << 20, &mut out).unwrap_err().to_string().contains("CRC"));
        let mut short_len = m.clone();
        short_len[n - 4..].copy_from_slice(&9_999u32.to_le_bytes());
        assert!(decompress(&mut inflate, &short_len, 1 << 20, &mut out).unwrap_err().to_string().contains("more than its trailer"));
        let mut long_len = m.clone();
        long_len[n - 4..].copy_from_slice(&10_001u32.to_le_bytes());
        assert!(decompress(&mut inflate, &long_len, 1 << 20, &mut out).is_err());
        assert!(decompress(&mut inflate, &m, 9_000, &mut out).unwrap_err().to_string().contains("more than a block"));
        let cut = [&m[..n - 12], &m[n - 8..]].concat();
        assert!(decompress(&mut inflate, &cut, 1 << 20, &mut out).is_err());
        assert!(decompress(&mut inflate, &m[..15], 1 << 20, &mut out).is_err());
    }

    #[test]
    fn headers_of_other_writers_parse() {
        // gzip -n: no extra field, no name.
        assert_eq!(parse_header(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1]).unwrap(), Some(Header { len: 10, member_size: None }));
        // gzip with a name: needs the whole name to tell.
        let named = [&[0x1f, 0x8b, 8, FNAME, 0, 0, 0, 0, 0, 3][..], b"file.tar\0"].concat();
        assert_eq!(parse_header(&named[..14]).unwrap(), None);
        assert_eq!(parse_header(&named).unwrap(), Some(Header { len: 19, member_size: None }));
        // BGZF's BC subfield is not ours.
        let bgzf = [0x1f, 0x8b, 8, FEXTRA, 0, 0, 0, 0, 0, 0xff, 6, 0, b'B', b'C', 2, 0, 0x1b, 0];
        assert_eq!(parse_header(&bgzf).unwrap(), Some(Header { len: 18, member_size: None }));
        assert!(parse_header(b"PK\x03\x04 not gzip").is_err());
    }
}
