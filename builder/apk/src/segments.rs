//! apk v2 files are concatenated gzip members; signatures and checksums
//! cover the raw compressed bytes of members, so members are split at their
//! exact compressed boundaries.

use std::io::{self, BufReader, Read};
use std::ops::Range;

use flate2::bufread::{GzDecoder, MultiGzDecoder};

use crate::SegmentError;

/// Decompresses the gzip member starting at `start`; returns its content
/// and the offset just past its last compressed byte.
pub fn read_member(bytes: &[u8], start: usize) -> Result<(Vec<u8>, usize), SegmentError> {
    let mut out = Vec::new();
    let end = read_member_into(bytes, start, &mut out)?;
    Ok((out, end))
}

/// Like [`read_member`], writing the content to `out` (use `io::sink()`
/// to only find the end).
pub fn read_member_into(bytes: &[u8], start: usize, out: &mut dyn io::Write) -> Result<usize, SegmentError> {
    let corrupt = |source| SegmentError::Corrupt { offset: start, source };
    let rest = bytes.get(start..).unwrap_or_default();
    if rest.is_empty() {
        return Err(corrupt(io::Error::new(io::ErrorKind::UnexpectedEof, "no gzip member here (end of file)")));
    }
    // The bufread decoder consumes exactly one member from the slice, so
    // what is left of the slice tells where the member ended.
    let mut dec = GzDecoder::new(rest);
    io::copy(&mut dec, out).map_err(corrupt)?;
    let left = dec.into_inner().len();
    Ok(bytes.len() - left)
}

/// The compressed byte ranges of every member, in order (decompresses all
/// of them; for small files and tests).
pub fn split(bytes: &[u8]) -> Result<Vec<Range<usize>>, SegmentError> {
    let mut ranges = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let end = read_member_into(bytes, pos, &mut io::sink())?;
        ranges.push(pos..end);
        pos = end;
    }
    Ok(ranges)
}

/// A reader of the decompressed content of one or more concatenated
/// members (e.g. a package's data member, read from a cache file).
pub fn decompress<R: Read>(compressed: R) -> MultiGzDecoder<BufReader<R>> {
    MultiGzDecoder::new(BufReader::with_capacity(128 * 1024, compressed))
}

/// Like [`decompress`] over bytes already in memory.
pub fn decompress_slice(compressed: &[u8]) -> MultiGzDecoder<&[u8]> {
    MultiGzDecoder::new(compressed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use rand::{Rng, SeedableRng};
    use std::io::Write;

    fn gz(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::new(level));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn boundaries_are_exact() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        // Members of varied sizes and compressibility, including empty and
        // incompressible ones whose deflate end falls anywhere in a byte.
        let contents: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"x".to_vec(),
            vec![0u8; 100_000],
            (0..70_000).map(|_| rng.gen::<u8>()).collect(),
            b"hello hello hello".repeat(1000),
            (0..3).map(|_| rng.gen::<u8>()).collect(),
        ];
        for level in [0, 1, 6, 9] {
            let members: Vec<Vec<u8>> = contents.iter().map(|c| gz(c, level)).collect();
            let all: Vec<u8> = members.concat();
            let ranges = split(&all).unwrap();
            let mut pos = 0;
            for (i, (r, m)) in ranges.iter().zip(&members).enumerate() {
                assert_eq!(*r, pos..pos + m.len(), "level {level} member {i}");
                pos += m.len();
                assert_eq!(read_member(&all, r.start).unwrap().0, contents[i]);
            }
            assert_eq!(ranges.len(), members.len());
            let mut whole = Vec::new();
            decompress(&all[..]).read_to_end(&mut whole).unwrap();
            assert_eq!(whole, contents.concat());
        }
    }

    #[test]
    fn corrupt_members_are_errors() {
        let mut m = gz(&b"some data that compresses".repeat(50), 6);
        let n = m.len();
        m[n - 6] ^= 0xff; // inside the CRC/ISIZE trailer
        assert!(read_member(&m, 0).is_err());
        let m = gz(b"abc", 6);
        assert!(read_member(&m[..m.len() - 3], 0).is_err(), "truncated member");
        assert!(read_member(b"not gzip at all", 0).is_err());
        assert!(read_member(&m, m.len()).is_err(), "nothing at the end");
    }
}
