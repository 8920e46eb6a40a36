//! Layer compression: gzip (the default, which every docker reads) or zstd
//! (for registries and engines that take `tar+zstd` layers), both written
//! in independent, content-defined pieces on every core (see [`pieces`]):
//! the bytes do not depend on the thread count, and pieces seen before come
//! from a [`PieceCache`] instead of being compressed again.

mod pieces;

use std::io::Write;
use std::sync::Arc;

pub use pieces::{Codec, Finished, PieceCache, PieceStats, PieceWriter, MAX_PIECE, MIN_PIECE};

use crate::media::{MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_LAYER_ZSTD};

/// How layer blobs are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LayerCompression {
    /// gzip at level 1–9.
    Gzip { level: u32 },
    /// zstd at level 1–19.
    Zstd { level: i32 },
}

impl Default for LayerCompression {
    fn default() -> Self {
        LayerCompression::Gzip { level: 6 }
    }
}

impl LayerCompression {
    /// The layer's OCI media type.
    pub fn media_type(&self) -> &'static str {
        match self {
            LayerCompression::Gzip { .. } => MEDIA_TYPE_LAYER_GZIP,
            LayerCompression::Zstd { .. } => MEDIA_TYPE_LAYER_ZSTD,
        }
    }

    /// File name suffix of a blob.
    pub fn extension(&self) -> &'static str {
        match self {
            LayerCompression::Gzip { .. } => "tar.gz",
            LayerCompression::Zstd { .. } => "tar.zst",
        }
    }

    /// Names everything that decides the compressed bytes of a piece: the
    /// algorithm, level, piece format and the encoder's version. Part of
    /// every piece's cache key.
    pub fn identity(&self) -> String {
        let ours = concat!("dinv-image-", env!("CARGO_PKG_VERSION"), "-pieces-1");
        match self {
            LayerCompression::Gzip { level } => format!("gzip-{level}-zlib-rs-{ours}"),
            LayerCompression::Zstd { level } => format!("zstd-{level}-libzstd-{}-{ours}", zstd::zstd_safe::version_string()),
        }
    }

    fn codec(&self) -> Codec {
        match *self {
            LayerCompression::Gzip { level } => Codec::Gzip { level: level.clamp(1, 9) },
            LayerCompression::Zstd { level } => Codec::Zstd { level: level.clamp(1, 19) },
        }
    }

    /// Writes the stream of an earlier encoder from its cached pieces (see
    /// [`Finished::keys`]); `Ok(false)` when a piece is missing.
    pub fn assemble(&self, out: &mut dyn Write, cache: &dyn PieceCache, keys: &[[u8; 32]], crc: u32, len: u64) -> std::io::Result<bool> {
        pieces::assemble(out, self.codec(), cache, keys, crc, len)
    }

    /// An encoder writing into `out` on `threads` threads, reusing pieces
    /// from `cache` when given.
    pub fn encoder<W: Write>(&self, out: W, threads: usize, cache: Option<Arc<dyn PieceCache>>) -> std::io::Result<PieceWriter<W>> {
        PieceWriter::new(out, self.codec(), &self.identity(), threads, cache)
    }
}

/// Threads to compress on: `DINV_THREADS` when set, else every core.
pub fn default_threads() -> usize {
    std::env::var("DINV_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::Read;
    use sha2::Digest;
    use std::sync::Mutex;

    /// Compressible but not trivial input: text-like runs and noise.
    fn sample(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if (i / 4096) % 3 == 0 {
                    (x % 251) as u8
                } else {
                    b"dinv-build layer "[i % 17]
                }
            })
            .collect()
    }

    fn compress_with(c: LayerCompression, data: &[u8], threads: usize, chunk: usize, cache: Option<Arc<dyn PieceCache>>) -> (Vec<u8>, PieceStats) {
        let mut e = c.encoder(Vec::new(), threads, cache).unwrap();
        for piece in data.chunks(chunk.max(1)) {
            e.write_all(piece).unwrap();
            // Callers' flushes must not change the bytes.
            e.flush().unwrap();
        }
        let f = e.finish().unwrap();
        assert_eq!(f.input_len, data.len() as u64);
        assert_eq!(f.input_sha256[..], sha2::Sha256::digest(data)[..], "the input digest");
        (f.out, f.stats)
    }

    fn compress(c: LayerCompression, data: &[u8], threads: usize, chunk: usize) -> Vec<u8> {
        compress_with(c, data, threads, chunk, None).0
    }

    fn gunzip(blob: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(blob).read_to_end(&mut out).unwrap();
        out
    }

    /// An in-memory piece cache that counts what it is asked.
    #[derive(Default)]
    struct MemCache(Mutex<HashMap<[u8; 32], (Vec<u8>, u32)>>);

    impl PieceCache for MemCache {
        fn get(&self, key: &[u8; 32]) -> Option<(Vec<u8>, u32)> {
            self.0.lock().unwrap().get(key).cloned()
        }
        fn put(&self, key: &[u8; 32], piece: &[u8], crc: u32) {
            self.0.lock().unwrap().insert(*key, (piece.to_vec(), crc));
        }
    }

    #[test]
    fn gzip_bytes_do_not_depend_on_threads_or_write_sizes() {
        let data = sample(3 * MAX_PIECE + 12_345);
        let gz = LayerCompression::Gzip { level: 6 };
        let (one, stats) = compress_with(gz, &data, 1, 1 << 16, None);
        assert!(stats.pieces >= 3, "several pieces: {stats:?}");
        for (threads, chunk) in [(2, 7_919), (8, 1 << 20), (8, 3 << 20)] {
            assert_eq!(compress(gz, &data, threads, chunk), one, "{threads} threads, {chunk}-byte writes");
        }
        // One byte at a time (a prefix: it is slow in debug builds).
        let small = &data[..MIN_PIECE + 100_000];
        assert_eq!(compress(gz, small, 2, 1), compress(gz, small, 1, 4096), "1-byte writes");
        // One gzip member that a single-member decoder reads whole.
        assert_eq!(&one[..4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(gunzip(&one), data);
        // Trailer: CRC-32 and length of the input.
        let n = one.len();
        let mut crc = flate2::Crc::new();
        crc.update(&data);
        assert_eq!(&one[n - 8..n - 4], &crc.sum().to_le_bytes());
        assert_eq!(&one[n - 4..], &(data.len() as u32).to_le_bytes());
    }

    #[test]
    fn many_pieces_in_flight_finish_in_order() {
        // Many pieces on many threads finish out of order, and results
        // arrive while the writer is between waits: the pool must neither
        // stall nor reorder.
        let data = pieces::tests::noise(40 << 20, 5);
        let gz = LayerCompression::Gzip { level: 1 };
        let reference = compress(gz, &data, 1, 1 << 20);
        for threads in [2, 3, 8] {
            assert_eq!(compress(gz, &data, threads, 1_000_003), reference, "{threads} threads");
        }
        assert_eq!(gunzip(&reference), data);
    }

    #[test]
    fn gzip_tool_accepts_a_multi_piece_stream() {
        let data = sample(3 * MAX_PIECE + 77);
        let blob = compress(LayerCompression::Gzip { level: 6 }, &data, 2, 1 << 16);
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("layer.tar.gz");
        std::fs::write(&p, &blob).unwrap();
        let t = std::process::Command::new("gzip").arg("-t").arg(&p).output().expect("gzip is installed");
        assert!(t.status.success(), "gzip -t: {}", String::from_utf8_lossy(&t.stderr));
        let l = std::process::Command::new("gzip").arg("-lv").arg(&p).output().unwrap();
        let listing = String::from_utf8_lossy(&l.stdout);
        let mut crc = flate2::Crc::new();
        crc.update(&data);
        assert!(listing.contains(&format!("{:08x}", crc.sum())) && listing.contains(&data.len().to_string()), "{listing}");
    }

    #[test]
    fn edge_sizes_round_trip() {
        for len in [0, 1, MIN_PIECE - 1, MIN_PIECE, MIN_PIECE + 1, MAX_PIECE, MAX_PIECE + 1, 2 * MAX_PIECE] {
            let data = sample(len);
            let gz = LayerCompression::Gzip { level: 6 };
            let a = compress(gz, &data, 1, 1 << 16);
            assert_eq!(a, compress(gz, &data, 3, 1 << 16), "len {len}");
            assert_eq!(gunzip(&a), data, "len {len}");
            let z = LayerCompression::Zstd { level: 3 };
            assert_eq!(zstd::decode_all(&compress(z, &data, 2, 1 << 16)[..]).unwrap(), data, "zstd, len {len}");
        }
        for level in [1, 9] {
            let data = sample(MIN_PIECE + 5);
            assert_eq!(gunzip(&compress(LayerCompression::Gzip { level }, &data, 2, 1 << 16)), data, "level {level}");
        }
    }

    #[test]
    fn zstd_bytes_do_not_depend_on_threads() {
        let data = sample(17 << 20);
        let z = LayerCompression::Zstd { level: 3 };
        let one = compress(z, &data, 1, 1 << 16);
        for threads in [2, 8] {
            assert_eq!(compress(z, &data, threads, 1 << 20), one, "{threads} threads");
        }
        assert_eq!(&one[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        assert_eq!(zstd::decode_all(&one[..]).unwrap(), data);
    }

    #[test]
    fn cached_pieces_give_the_same_bytes_and_changed_input_reuses_the_rest() {
        for c in [LayerCompression::Gzip { level: 6 }, LayerCompression::Zstd { level: 3 }] {
            let cache: Arc<dyn PieceCache> = Arc::new(MemCache::default());
            let data = pieces::tests::noise(12 << 20, 9);
            let (cold, s1) = compress_with(c, &data, 2, 1 << 20, Some(cache.clone()));
            // The same stream again from the cached pieces alone.
            let mut e = c.encoder(Vec::new(), 2, Some(cache.clone())).unwrap();
            e.write_all(&data).unwrap();
            let f = e.finish().unwrap();
            assert_eq!(f.keys.len() as u64, f.stats.pieces);
            let mut again = Vec::new();
            assert!(c.assemble(&mut again, &*cache, &f.keys, f.crc, f.input_len).unwrap());
            assert_eq!(again, cold, "{c:?}: assembled from the cache");
            let mut partial = Vec::new();
            assert!(!c.assemble(&mut partial, &MemCache::default(), &f.keys, f.crc, f.input_len).unwrap(), "an empty cache has no pieces");
            assert_eq!(s1.reused, 0);
            assert_eq!(cold, compress(c, &data, 1, 1 << 20), "{c:?}: a cache does not change the bytes");
            let (warm, s2) = compress_with(c, &data, 2, 1 << 20, Some(cache.clone()));
            assert_eq!((warm == cold, s2.reused, s2.reused_bytes), (true, s2.pieces, data.len() as u64), "{c:?}");
            // 4 KiB inserted early: the pieces after it are found again.
            let mut changed = data.clone();
            changed.splice(2_000_000..2_000_000, pieces::tests::noise(4096, 1));
            let (bytes, s3) = compress_with(c, &changed, 2, 1 << 20, Some(cache.clone()));
            assert!(s3.reused + 2 >= s3.pieces, "{c:?}: {s3:?}");
            assert_eq!(bytes, compress(c, &changed, 1, 1 << 20), "{c:?}");
        }
    }

    #[test]
    fn identities_differ_by_setting() {
        let ids = [LayerCompression::Gzip { level: 6 }, LayerCompression::Gzip { level: 9 }, LayerCompression::Zstd { level: 3 }].map(|c| c.identity());
        assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "{ids:?}");
        assert_eq!(LayerCompression::default().media_type(), "application/vnd.oci.image.layer.v1.tar+gzip");
        assert_eq!(LayerCompression::Zstd { level: 3 }.media_type(), "application/vnd.oci.image.layer.v1.tar+zstd");
    }
}
