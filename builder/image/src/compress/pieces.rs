//! Compression in independent pieces, on several threads, with the same
//! bytes on any number of them.
//!
//! The input is cut into pieces where its content says so (a gear rolling
//! hash over the last 64 bytes, as in content-defined chunking), never
//! where a thread or a write call happens to end. Each piece is compressed
//! on its own:
//! - gzip: raw deflate from a fresh compressor, ended by a sync flush (an
//!   empty stored block, so the piece ends on a byte boundary); the pieces
//!   go behind one gzip header and before an empty final block and the
//!   trailer (CRC-32 combined from the pieces', and the length): one
//!   ordinary gzip member, as pigz writes.
//! - zstd: one complete frame (with checksum) per piece; a zstd stream may
//!   be a sequence of frames.
//!
//! Because a piece depends only on its own bytes, it can be cached by their
//! digest: a [`PieceCache`] returns the compressed piece for input it has
//! seen, so an unchanged layer, or the unchanged parts of a changed one
//! (content-defined cuts find the same pieces again after an insertion),
//! are not compressed again.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crc32fast::Hasher as Crc;
use flate2::{Compress, Compression, FlushCompress};
use sha2::{Digest, Sha256};

/// No cut before this many bytes of a piece.
pub const MIN_PIECE: usize = 256 << 10;
/// A cut at this size at the latest.
pub const MAX_PIECE: usize = 4 << 20;
/// After [`MIN_PIECE`], a cut where the top 20 bits of the rolling hash are
/// zero: on average 1 MiB further.
const CUT_BITS: u32 = 20;

/// The gear table: one pseudo-random word per byte value (splitmix64 from
/// a fixed seed, so the cuts are part of the format).
const GEAR: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut x: u64 = 0x6469_6e76_2d62_6c64; // "dinv-bld"
    let mut i = 0;
    while i < 256 {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        t[i] = z ^ (z >> 31);
        i += 1;
    }
    t
};

/// Where the next cut falls in `data`, given that the current piece
/// already holds `held` bytes: `Some(n)` cuts after `data[..n]`.
fn find_cut(held: usize, data: &[u8], hash: &mut u64) -> Option<usize> {
    let mut i = MIN_PIECE.saturating_sub(held).min(data.len());
    if held + i < MIN_PIECE {
        return None;
    }
    let max = (MAX_PIECE - held).min(data.len());
    let mut h = *hash;
    for (k, &b) in data[i..max].iter().enumerate() {
        h = (h << 1).wrapping_add(GEAR[b as usize]);
        if h >> (64 - CUT_BITS) == 0 {
            *hash = 0;
            return Some(i + k + 1);
        }
    }
    i = max;
    *hash = h;
    if held + i == MAX_PIECE {
        *hash = 0;
        return Some(i);
    }
    None
}

/// The codec of the pieces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Gzip { level: u32 },
    Zstd { level: i32 },
}

/// Compressed pieces by the digest (BLAKE3) of their input and the codec,
/// shared by builds.
pub trait PieceCache: Send + Sync {
    /// The compressed piece for input with this key, and the CRC-32 of the
    /// input, if known and intact.
    fn get(&self, key: &[u8; 32]) -> Option<(Vec<u8>, u32)>;
    /// Remembers a compressed piece and its input's CRC-32 (failures only
    /// cost a later build time).
    fn put(&self, key: &[u8; 32], piece: &[u8], crc: u32);
}

/// How many pieces were written, and how many came from the cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PieceStats {
    pub pieces: u64,
    pub reused: u64,
    /// Uncompressed bytes of the reused pieces.
    pub reused_bytes: u64,
}

/// A fixed gzip header: deflate, no name, mtime 0, extra flags by level,
/// OS "unknown" (255).
fn gzip_header(level: u32) -> [u8; 10] {
    let xfl = match level {
        9 => 2,
        0 | 1 => 4,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

/// An empty final deflate block with fixed codes: BFINAL=1, BTYPE=01, EOB.
const GZIP_FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// gzip's end: an empty final block, the CRC-32 and the length mod 2^32.
fn write_trailer(out: &mut dyn Write, codec: Codec, crc: u32, len: u64) -> io::Result<()> {
    if let Codec::Gzip { .. } = codec {
        out.write_all(&GZIP_FINAL_BLOCK)?;
        out.write_all(&crc.to_le_bytes())?;
        out.write_all(&(len as u32).to_le_bytes())?;
    }
    Ok(())
}

/// Writes the stream a [`PieceWriter`] wrote, from its cached pieces: the
/// header, each piece by key, the trailer. `Ok(false)` when a piece is not
/// in the cache (or damaged), and then `out` holds a partial stream.
pub fn assemble(out: &mut dyn Write, codec: Codec, cache: &dyn PieceCache, keys: &[[u8; 32]], crc: u32, len: u64) -> io::Result<bool> {
    if let Codec::Gzip { level } = codec {
        out.write_all(&gzip_header(level))?;
    }
    for key in keys {
        let Some((bytes, _)) = cache.get(key) else { return Ok(false) };
        out.write_all(&bytes)?;
    }
    write_trailer(out, codec, crc, len)?;
    Ok(true)
}

/// Compresses pieces for one worker, reusing its compressor.
struct PieceCompressor {
    codec: Codec,
    /// Names the codec, level and format in every cache key.
    identity: Arc<str>,
    cache: Option<Arc<dyn PieceCache>>,
    deflate: Option<Compress>,
}

/// One compressed piece and the CRC of its input (gzip's trailer needs it).
struct Piece {
    bytes: Vec<u8>,
    crc: Crc,
    reused: bool,
    len: usize,
    /// The cache key, when there is a cache.
    key: Option<[u8; 32]>,
}

impl PieceCompressor {
    fn new(codec: Codec, identity: Arc<str>, cache: Option<Arc<dyn PieceCache>>) -> Self {
        let deflate = match codec {
            Codec::Gzip { level } => Some(Compress::new(Compression::new(level), false)),
            Codec::Zstd { .. } => None,
        };
        PieceCompressor { codec, identity, cache, deflate }
    }

    fn piece(&mut self, data: &[u8]) -> io::Result<Piece> {
        let key = self.cache.as_ref().map(|_| {
            let mut h = blake3::Hasher::new();
            h.update(self.identity.as_bytes());
            h.update(&[0u8]);
            h.update(data);
            <[u8; 32]>::from(h.finalize())
        });
        if let (Some(cache), Some(key)) = (&self.cache, &key) {
            if let Some((bytes, crc)) = cache.get(key) {
                let crc = Crc::new_with_initial_len(crc, data.len() as u64);
                return Ok(Piece { bytes, crc, reused: true, len: data.len(), key: Some(*key) });
            }
        }
        let mut crc = Crc::new();
        crc.update(data);
        let bytes = match self.codec {
            Codec::Gzip { .. } => deflate_piece(self.deflate.as_mut().expect("gzip compressor"), data)?,
            Codec::Zstd { level } => {
                let mut c = zstd::bulk::Compressor::new(level)?;
                c.include_checksum(true)?;
                c.include_contentsize(true)?;
                c.compress(data)?
            }
        };
        if let (Some(cache), Some(key)) = (&self.cache, &key) {
            cache.put(key, &bytes, crc.clone().finalize());
        }
        Ok(Piece { bytes, crc, reused: false, len: data.len(), key })
    }
}

/// Deflates `data` as one piece with `c` (reset first), ending in a sync flush.
fn deflate_piece(c: &mut Compress, data: &[u8]) -> io::Result<Vec<u8>> {
    c.reset();
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let done = c.total_in() as usize;
        c.compress_vec(&data[done..], &mut out, FlushCompress::Sync).map_err(io::Error::other)?;
        // The flush is complete once all input is in and output space is left.
        if c.total_in() as usize == data.len() && out.len() < out.capacity() {
            return Ok(out);
        }
    }
}

type Job = (u64, Arc<Vec<u8>>);
type Done = (u64, io::Result<Piece>);

/// Worker threads fed pieces by sequence number.
struct Pool {
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    fn new(threads: usize, make: impl Fn() -> PieceCompressor) -> Pool {
        let (jobs, rx) = mpsc::sync_channel::<Job>(threads);
        let rx = Arc::new(Mutex::new(rx));
        let (tx, done) = mpsc::channel::<Done>();
        let workers = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&rx);
                let tx = tx.clone();
                let mut c = make();
                std::thread::spawn(move || loop {
                    let job = rx.lock().map(|r| r.recv());
                    let Ok(Ok((seq, data))) = job else { return };
                    let piece = c.piece(&data);
                    drop(data);
                    if tx.send((seq, piece)).is_err() {
                        return;
                    }
                })
            })
            .collect();
        Pool { jobs: Some(jobs), done, workers }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// The SHA-256 of the uncompressed stream, on its own thread when the
/// pieces are compressed on several: it must see every byte in order, and
/// on the writer's thread it would be the slowest step of an unchanged
/// layer.
enum InputDigest {
    Inline(Sha256),
    Thread { tx: Option<SyncSender<Arc<Vec<u8>>>>, handle: Option<JoinHandle<Sha256>> },
}

impl InputDigest {
    fn new(threads: usize) -> Self {
        if threads == 1 {
            return InputDigest::Inline(Sha256::new());
        }
        let (tx, rx) = mpsc::sync_channel::<Arc<Vec<u8>>>(4);
        let handle = std::thread::spawn(move || {
            let mut h = Sha256::new();
            for piece in rx {
                h.update(&piece[..]);
            }
            h
        });
        InputDigest::Thread { tx: Some(tx), handle: Some(handle) }
    }

    fn update(&mut self, piece: &Arc<Vec<u8>>) -> io::Result<()> {
        match self {
            InputDigest::Inline(h) => {
                h.update(&piece[..]);
                Ok(())
            }
            InputDigest::Thread { tx, .. } => {
                tx.as_ref().expect("open").send(Arc::clone(piece)).map_err(|_| io::Error::other("the digest thread stopped"))
            }
        }
    }

    fn finish(&mut self) -> io::Result<[u8; 32]> {
        let h = match self {
            InputDigest::Inline(h) => std::mem::take(h),
            InputDigest::Thread { tx, handle } => {
                *tx = None;
                handle.take().expect("finished once").join().map_err(|_| io::Error::other("the digest thread panicked"))?
            }
        };
        Ok(h.finalize().into())
    }
}

impl Drop for InputDigest {
    fn drop(&mut self) {
        if let InputDigest::Thread { tx, handle } = self {
            *tx = None;
            if let Some(h) = handle.take() {
                let _ = h.join();
            }
        }
    }
}

/// What [`PieceWriter::finish`] hands back.
pub struct Finished<W> {
    /// The inner writer.
    pub out: W,
    pub stats: PieceStats,
    /// SHA-256 and length of the uncompressed stream (a layer's diff_id).
    pub input_sha256: [u8; 32],
    pub input_len: u64,
    /// CRC-32 of the uncompressed stream (gzip's trailer).
    pub crc: u32,
    /// The cache keys of the pieces in order (empty without a cache): with
    /// the CRC and length, enough to [`assemble`] the same stream again.
    pub keys: Vec<[u8; 32]>,
}

/// A writer that compresses what it is given in content-defined pieces on
/// `threads` threads, with bytes independent of the thread count and of how
/// the input is split into write calls. It also takes the SHA-256 of the
/// uncompressed stream. Call [`PieceWriter::finish`] to end the stream.
pub struct PieceWriter<W: Write> {
    out: W,
    codec: Codec,
    /// The current piece's bytes so far.
    block: Vec<u8>,
    hash: u64,
    crc: Crc,
    /// Input bytes so far.
    input_len: u64,
    digest: InputDigest,
    stats: PieceStats,
    /// Inline compressor (one thread) or a pool.
    inline: Option<PieceCompressor>,
    pool: Option<Pool>,
    next_seq: u64,
    next_write: u64,
    ready: BTreeMap<u64, Piece>,
    max_in_flight: u64,
    keys: Vec<[u8; 32]>,
}

impl<W: Write> PieceWriter<W> {
    /// A writer for `codec` on `threads` threads (1 compresses inline).
    /// `identity` names everything that decides the compressed bytes; it is
    /// part of every cache key. Writes the stream header at once.
    pub fn new(mut out: W, codec: Codec, identity: &str, threads: usize, cache: Option<Arc<dyn PieceCache>>) -> io::Result<Self> {
        if let Codec::Gzip { level } = codec {
            out.write_all(&gzip_header(level))?;
        }
        let identity: Arc<str> = Arc::from(identity);
        let threads = threads.max(1);
        let make = || PieceCompressor::new(codec, Arc::clone(&identity), cache.clone());
        let (inline, pool) = if threads == 1 { (Some(make()), None) } else { (None, Some(Pool::new(threads, make))) };
        Ok(PieceWriter {
            out,
            codec,
            block: Vec::with_capacity(2 * MIN_PIECE),
            hash: 0,
            crc: Crc::new(),
            input_len: 0,
            digest: InputDigest::new(threads),
            stats: PieceStats::default(),
            inline,
            pool,
            next_seq: 0,
            next_write: 0,
            ready: BTreeMap::new(),
            max_in_flight: 2 * threads as u64,
            keys: Vec::new(),
        })
    }

    fn write_piece(&mut self, piece: Piece) -> io::Result<()> {
        self.out.write_all(&piece.bytes)?;
        if let Some(k) = piece.key {
            self.keys.push(k);
        }
        self.crc.combine(&piece.crc);
        self.stats.pieces += 1;
        if piece.reused {
            self.stats.reused += 1;
            self.stats.reused_bytes += piece.len as u64;
        }
        Ok(())
    }

    /// Writes every finished piece that is next in order.
    fn drain_ready(&mut self) -> io::Result<()> {
        while let Some(piece) = self.ready.remove(&self.next_write) {
            self.write_piece(piece)?;
            self.next_write += 1;
        }
        Ok(())
    }

    /// Takes one finished piece from the pool, waiting for it if `wait`.
    fn receive(&mut self, wait: bool) -> io::Result<bool> {
        // Every piece still owed is either in `ready` or in flight.
        debug_assert!(!wait || self.next_seq - self.next_write > self.ready.len() as u64, "waiting with nothing in flight");
        let pool = self.pool.as_ref().expect("receive with a pool");
        let (seq, piece) = if wait {
            pool.done.recv().map_err(|_| io::Error::other("a compression thread stopped"))?
        } else {
            match pool.done.try_recv() {
                Ok(d) => d,
                Err(_) => return Ok(false),
            }
        };
        self.ready.insert(seq, piece?);
        Ok(true)
    }

    /// Hands the current piece to a compressor (and to the digest).
    fn submit(&mut self) -> io::Result<()> {
        self.hash = 0;
        if self.block.is_empty() {
            return Ok(());
        }
        self.input_len += self.block.len() as u64;
        let data = Arc::new(std::mem::replace(&mut self.block, Vec::with_capacity(2 * MIN_PIECE)));
        self.digest.update(&data)?;
        if let Some(c) = self.inline.as_mut() {
            let piece = c.piece(&data)?;
            return self.write_piece(piece);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let jobs = self.pool.as_ref().and_then(|p| p.jobs.as_ref()).expect("pool is running");
        jobs.send((seq, data)).map_err(|_| io::Error::other("the compression threads stopped"))?;
        // Take what is finished; block only while too many are in flight.
        // Pieces already received are written before waiting, or the wait
        // could be for a piece that is no longer in flight.
        while self.receive(false)? {}
        self.drain_ready()?;
        while self.next_seq - self.next_write > self.max_in_flight {
            self.receive(true)?;
            self.drain_ready()?;
        }
        Ok(())
    }

    /// Compresses what is left, ends the stream and returns the inner
    /// writer, the piece counts and the input's digest.
    pub fn finish(mut self) -> io::Result<Finished<W>> {
        if matches!(self.codec, Codec::Zstd { .. }) && self.next_seq == 0 && self.stats.pieces == 0 && self.block.is_empty() {
            // A zstd stream needs at least one frame: an empty one.
            let mut c = PieceCompressor::new(self.codec, Arc::from(""), None);
            let piece = c.piece(&[])?;
            self.write_piece(piece)?;
        }
        self.submit()?;
        if self.pool.is_some() {
            self.drain_ready()?;
            while self.next_write < self.next_seq {
                self.receive(true)?;
                self.drain_ready()?;
            }
        }
        let crc = self.crc.clone().finalize();
        write_trailer(&mut self.out, self.codec, crc, self.input_len)?;
        self.out.flush()?;
        let input_sha256 = self.digest.finish()?;
        // Joins the workers (no Drop on this type, so `out` can move out).
        self.pool = None;
        let keys = if self.keys.len() as u64 == self.stats.pieces { self.keys } else { Vec::new() };
        Ok(Finished { out: self.out, stats: self.stats, input_sha256, input_len: self.input_len, crc, keys })
    }
}

impl<W: Write> Write for PieceWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match find_cut(self.block.len(), buf, &mut self.hash) {
            Some(n) => {
                self.block.extend_from_slice(&buf[..n]);
                self.submit()?;
                Ok(n)
            }
            None => {
                self.block.extend_from_slice(buf);
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        // Flushing never cuts a piece: the bytes would then depend on when
        // callers flush. Only what is already compressed is passed on.
        self.out.flush()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Cut points of a whole input.
    fn cuts(data: &[u8], write: usize) -> Vec<usize> {
        let (mut held, mut hash, mut out, mut pos) = (0usize, 0u64, Vec::new(), 0usize);
        for chunk in data.chunks(write) {
            let mut rest = chunk;
            while let Some(n) = find_cut(held, rest, &mut hash) {
                pos += n;
                out.push(pos);
                held = 0;
                rest = &rest[n..];
            }
            held += rest.len();
            pos += rest.len();
        }
        out
    }

    pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn cuts_depend_on_content_not_on_write_sizes() {
        let data = noise(12 << 20, 7);
        let a = cuts(&data, 1 << 20);
        assert_eq!(a, cuts(&data, 4093));
        assert_eq!(a, cuts(&data, 3 << 20));
        let mut last = 0;
        for &c in &a {
            assert!((MIN_PIECE..=MAX_PIECE).contains(&(c - last)), "piece of {} bytes", c - last);
            last = c;
        }
        assert!(a.len() >= 6, "about one cut per 1.25 MiB: {a:?}");
    }

    #[test]
    fn cuts_find_their_place_again_after_an_insertion() {
        let data = noise(16 << 20, 11);
        let mut shifted = data.clone();
        shifted.splice(100_000..100_000, noise(4096, 3));
        let a = cuts(&data, 1 << 16);
        let b: Vec<usize> = cuts(&shifted, 1 << 16).into_iter().map(|c| c - 4096).collect();
        let common = a.iter().filter(|c| b.contains(c)).count();
        assert!(common + 2 >= a.len(), "cuts after the insertion are the same: {a:?} vs {b:?}");
    }

    #[test]
    fn zeros_are_cut_at_the_maximum() {
        assert_eq!(cuts(&vec![0u8; 9 << 20], 1 << 20), vec![MAX_PIECE, 2 * MAX_PIECE]);
    }
}
