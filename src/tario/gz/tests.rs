use super::*;
use flate2::Compression;

/// Compressible, but not trivially: words with pseudo-random letters.
fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|i| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            if i % 5 == 0 {
                (x >> 59) as u8 + b'a'
            } else {
                b"binarydist packs the world "[i % 27]
            }
        })
        .collect()
}

fn small(threads: usize) -> Options {
    Options { level: LEVEL, block: 4096, threads }
}

/// Writes `input` in pieces of varying size (a pseudo-random walk), as the tar
/// writer does: the bytes must not depend on where writes or flushes fall.
fn compress(input: &[u8], opts: &Options, seed: u64) -> Vec<u8> {
    let mut w = encoder_with(Vec::new(), opts);
    let mut x = seed | 1;
    let mut at = 0;
    while at < input.len() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = ((x % 9000) as usize).min(input.len() - at);
        w.write_all(&input[at..at + n]).unwrap();
        if x % 7 == 0 {
            w.flush().unwrap();
        }
        at += n;
    }
    w.finish().unwrap()
}

fn decompress(gz: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    Reader::new(io::Cursor::new(gz.to_vec()), &small(3)).read_to_end(&mut out)?;
    Ok(out)
}

fn plain_gzip(data: &[u8]) -> Vec<u8> {
    let mut g = flate2::GzBuilder::new().filename("x.tar").write(Vec::new(), Compression::new(6));
    g.write_all(data).unwrap();
    g.finish().unwrap()
}

#[test]
fn same_bytes_on_any_number_of_threads_and_any_timing() {
    let input = data(1, 8 * 4 * 4096 + 1234); // at least 4 blocks per thread at 8 threads
    let reference: Vec<u8> = {
        // The definition: each block of the input, compressed on its own, in order.
        let mut deflate = flate2::Compress::new(Compression::new(LEVEL), false);
        let mut out = Vec::new();
        for block in input.chunks(4096) {
            member::compress(&mut deflate, block, &mut out).unwrap();
        }
        out
    };
    for threads in [1, 2, 8] {
        for run in 0..10 {
            let got = compress(&input, &small(threads), run * 31 + threads as u64);
            assert!(got == reference, "{threads} threads, run {run}: different bytes");
        }
    }
    assert_eq!(decompress(&reference).unwrap(), input);
}

#[test]
fn any_gzip_reader_reads_it_as_one_stream() {
    let input = data(2, 100_000);
    let gz = compress(&input, &small(2), 1);
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
    assert_eq!(out, input);
}

#[test]
fn empty_input_is_one_empty_member() {
    let gz = compress(&[], &small(2), 1);
    assert_eq!(gz.len(), member::HEADER_LEN + 2 + member::TRAILER_LEN);
    assert_eq!(decompress(&gz).unwrap(), b"");
}

#[test]
fn files_of_other_writers_and_concatenations_read_back() {
    let (a, b, c) = (data(3, 50_000), data(4, 70_000), data(5, 10_000));
    let ours = |d: &[u8]| compress(d, &small(2), 9);
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (plain_gzip(&a), a.clone()),
        ([plain_gzip(&a), plain_gzip(&b)].concat(), [&a[..], &b].concat()),
        ([ours(&a), plain_gzip(&b), ours(&c)].concat(), [&a[..], &b, &c].concat()),
        ([plain_gzip(&a), ours(&b)].concat(), [&a[..], &b].concat()),
        ([ours(&a), ours(&b)].concat(), [&a[..], &b].concat()),
    ];
    for (i, (gz, want)) in cases.iter().enumerate() {
        assert!(decompress(gz).unwrap() == *want, "case {i}");
    }
}

#[test]
fn a_stream_that_trickles_in_reads_the_same() {
    struct Trickle(Vec<u8>, usize);
    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(7).min(self.0.len() - self.1);
            buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            Ok(n)
        }
    }
    let input = data(6, 30_000);
    let gz = [compress(&input, &small(2), 3), plain_gzip(&input)].concat();
    let mut out = Vec::new();
    maybe_gunzip(Trickle(gz, 0)).unwrap().read_to_end(&mut out).unwrap();
    assert!(out == [&input[..], &input].concat());
}

#[test]
fn damage_is_an_error_not_short_output() {
    let input = data(7, 40_000);
    let gz = compress(&input, &small(2), 5);
    let truncated = &gz[..gz.len() - 100];
    assert!(decompress(truncated).is_err());
    let mut flipped = gz.clone();
    flipped[gz.len() / 2] ^= 0x10;
    assert!(decompress(&flipped).is_err());
    let garbage = [&gz[..], b"garbage after the end"].concat();
    assert!(decompress(&garbage).is_err());
    assert!(decompress(&[]).is_err());
    // An error stays an error on the next read.
    let mut r = Reader::new(io::Cursor::new(truncated.to_vec()), &small(2));
    let mut sink = Vec::new();
    assert!(r.read_to_end(&mut sink).is_err());
    assert!(r.read(&mut [0u8; 10]).is_err());
}

#[test]
fn a_lying_size_field_never_gives_wrong_bytes() {
    // A member cut at the wrong place fails its own checks, or (when the
    // trailer it then ends with is too large to trust) goes the general way,
    // which does not care about the field: an error or the right bytes.
    let input = data(8, 20_000);
    let gz = compress(&input, &small(1), 5);
    let size = u32::from_le_bytes(gz[16..20].try_into().unwrap());
    for lie in [size - 1, size + 1, size + 5000, 20, u32::MAX] {
        let mut bad = gz.clone();
        bad[16..20].copy_from_slice(&lie.to_le_bytes());
        if let Ok(got) = decompress(&bad) {
            assert!(got == input, "size field {lie}: wrong bytes");
        }
    }
    let mut huge = gz.clone();
    huge[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(decompress(&huge).unwrap() == input, "past the fast path's limit, the general path reads it");
}

#[test]
fn a_member_larger_than_four_blocks_goes_the_general_way() {
    // Our header, but 5 MiB of zeros in one member (a few KiB compressed): the
    // fast path would have to allocate by the trailer's word; it hands over.
    let zeros = vec![0u8; 5 << 20];
    let mut gz = Vec::new();
    member::compress(&mut flate2::Compress::new(Compression::new(6), false), &zeros, &mut gz).unwrap();
    assert!(gz.len() < 64 << 10);
    let tail = data(10, 3000);
    let gz = [gz, compress(&tail, &small(2), 1)].concat();
    assert!(decompress(&gz).unwrap() == [&zeros[..], &tail].concat());
}

#[test]
fn plain_tars_pass_through() {
    let tar = data(9, 5000);
    let mut out = Vec::new();
    maybe_gunzip(io::Cursor::new(tar.clone())).unwrap().read_to_end(&mut out).unwrap();
    assert_eq!(out, tar);
}

#[test]
fn a_reader_that_is_not_read_holds_a_bounded_number_of_blocks() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    struct Counting(io::Cursor<Vec<u8>>, Arc<AtomicUsize>);
    impl Read for Counting {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1.fetch_add(n, Ordering::SeqCst);
            Ok(n)
        }
    }
    // Incompressible 64 KiB blocks: each member is a little over 64 KiB.
    let mut x = 88172645463325252u64;
    let input: Vec<u8> = (0..100 << 16)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let opts = Options { level: 1, block: 1 << 16, threads: 2 };
    let gz = compress(&input, &opts, 3);
    let pulled = Arc::new(AtomicUsize::new(0));
    let mut r = Reader::new(Counting(io::Cursor::new(gz), pulled.clone()), &opts);
    let mut first = [0u8; 1];
    r.read_exact(&mut first).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // 2 x threads + 2 blocks in flight, one being cut out, and the look-ahead.
    let bound = (2 * 2 + 3) * (66 << 10) + (64 << 10);
    let got = pulled.load(Ordering::SeqCst);
    assert!(got <= bound, "read {got} bytes ahead of the consumer, bound {bound}");
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(first[..] == input[..1] && rest[..] == input[1..]);
}
