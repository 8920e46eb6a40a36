//! Layers: a tree as a deterministic compressed tar, streamed to a file
//! while both the tar (diff_id) and the compressed blob (digest) are hashed,
//! so a large layer is never held in memory. Compression runs on several
//! threads and gives the same bytes on any number of them.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use dinv_fstree::tar::{write_tree, TarBuilder, TreeTarOptions};
use dinv_fstree::Tree;
use crate::blob::HashingWriter;
use std::sync::Arc;

use crate::compress::{default_threads, LayerCompression, PieceCache, PieceStats, PieceWriter};
use crate::{Blob, ImageError};

/// A compressed layer blob on disk and its digests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// The blob file (`<dir>/<hex>.tar.gz` or `.tar.zst`).
    pub path: PathBuf,
    /// OCI media type (`…tar+gzip` or `…tar+zstd`).
    pub media_type: String,
    /// `sha256:` of the compressed blob (manifest descriptor).
    pub digest: String,
    /// `sha256:` of the uncompressed tar (config `rootfs.diff_ids`).
    pub diff_id: String,
    /// Size of the compressed blob in bytes.
    pub size: u64,
    /// Size of the uncompressed tar in bytes.
    pub uncompressed_size: u64,
    /// History line for the image config (`created_by`).
    pub created_by: String,
}

/// How a layer was compressed: piece counts, and (with a piece cache) the
/// pieces' keys and the stream's CRC, enough for
/// [`LayerBuilder::from_pieces`] to write it again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerPieces {
    pub stats: PieceStats,
    pub keys: Vec<[u8; 32]>,
    pub crc: u32,
}

/// How [`LayerBuilder::from_tree`] writes a layer.
#[derive(Clone)]
pub struct LayerOptions {
    /// Directory the blob is written into (created if missing).
    pub dir: PathBuf,
    /// Replace every mtime by this (usually SOURCE_DATE_EPOCH); `None`
    /// keeps the tree's (already clamped) times.
    pub mtime: Option<i64>,
    /// History line recorded in the image config.
    pub created_by: String,
    /// Compression algorithm and level.
    pub compression: LayerCompression,
    /// Threads to compress on (the bytes do not depend on it).
    pub threads: usize,
    /// Compressed pieces seen before, reused instead of compressed again
    /// (the bytes do not depend on it either).
    pub pieces: Option<Arc<dyn PieceCache>>,
}

impl std::fmt::Debug for LayerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerOptions")
            .field("dir", &self.dir)
            .field("mtime", &self.mtime)
            .field("created_by", &self.created_by)
            .field("compression", &self.compression)
            .field("threads", &self.threads)
            .field("pieces", &self.pieces.is_some())
            .finish()
    }
}

impl LayerOptions {
    /// Options writing into `dir` with gzip level 6 on every core and the
    /// tree's own mtimes.
    pub fn new(dir: impl Into<PathBuf>, created_by: impl Into<String>) -> Self {
        LayerOptions {
            dir: dir.into(),
            mtime: None,
            created_by: created_by.into(),
            compression: LayerCompression::default(),
            threads: default_threads(),
            pieces: None,
        }
    }

    fn tar_options(&self) -> TreeTarOptions {
        TreeTarOptions { mtime: self.mtime, under: None, skip_root: true }
    }
}

/// Builds layer blobs.
pub struct LayerBuilder;

type Pipeline = PieceWriter<HashingWriter<BufWriter<File>>>;

impl LayerBuilder {
    /// Writes the whole tree (without a `./` entry) as a compressed tar layer.
    pub fn from_tree(tree: &Tree, opts: &LayerOptions) -> Result<Layer, ImageError> {
        Self::from_tree_observed(tree, opts, &mut |_| {}).map(|(layer, _)| layer)
    }

    /// A layer written before, again, from its pieces in `opts.pieces`:
    /// no tree is read and nothing is compressed. `Ok(None)` when a piece
    /// is missing or damaged (build it from the tree then). The caller
    /// checks the digest against the one recorded.
    pub fn from_pieces(opts: &LayerOptions, pieces: &LayerPieces, diff_id: &str, uncompressed_size: u64) -> Result<Option<Layer>, ImageError> {
        let Some(cache) = &opts.pieces else { return Ok(None) };
        std::fs::create_dir_all(&opts.dir).map_err(ImageError::io(&opts.dir))?;
        let tmp = crate::output_temp_file(&opts.dir, ".layer-").map_err(ImageError::io(&opts.dir))?;
        let file = tmp.as_file().try_clone().map_err(ImageError::io(tmp.path()))?;
        let mut out = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
        let whole = opts.compression.assemble(&mut out, &**cache, &pieces.keys, pieces.crc, uncompressed_size).map_err(ImageError::io(tmp.path()))?;
        if !whole {
            return Ok(None);
        }
        let (mut file, blob) = out.finish();
        file.flush().map_err(ImageError::io(tmp.path()))?;
        let path = opts.dir.join(format!("{}.{}", blob.hex(), opts.compression.extension()));
        tmp.persist(&path).map_err(|e| ImageError::Io { path: path.clone(), source: e.error })?;
        Ok(Some(Layer {
            path,
            media_type: opts.compression.media_type().to_string(),
            digest: blob.digest,
            diff_id: diff_id.to_string(),
            size: blob.size,
            uncompressed_size,
            created_by: opts.created_by.clone(),
        }))
    }

    /// [`LayerBuilder::from_tree`], calling `observe` with the number of
    /// uncompressed tar bytes written so far (for progress bars); also
    /// returns how many pieces came from the piece cache, and their keys.
    pub fn from_tree_observed(tree: &Tree, opts: &LayerOptions, observe: &mut dyn FnMut(u64)) -> Result<(Layer, LayerPieces), ImageError> {
        std::fs::create_dir_all(&opts.dir).map_err(ImageError::io(&opts.dir))?;
        let tmp = crate::output_temp_file(&opts.dir, ".layer-").map_err(ImageError::io(&opts.dir))?;
        let file = tmp.as_file().try_clone().map_err(ImageError::io(tmp.path()))?;
        let encoder = opts.compression.encoder(HashingWriter::new(BufWriter::with_capacity(1 << 20, file)), opts.threads, opts.pieces.clone()).map_err(ImageError::io(tmp.path()))?;
        // The encoder takes the uncompressed digest (the diff_id) itself.
        let mut tar = TarBuilder::new(Observed { inner: encoder, observe, count: 0, reported: 0 });
        let finish = |tar: TarBuilder<Observed<Pipeline>>| -> io::Result<_> {
            let done = tar.finish()?.inner.finish()?;
            let (mut file, blob) = done.out.finish();
            file.flush()?;
            let diff = Blob { digest: format!("sha256:{}", hex::encode(done.input_sha256)), size: done.input_len };
            Ok((diff, blob, LayerPieces { stats: done.stats, keys: done.keys, crc: done.crc }))
        };
        let (diff, blob, stats) = write_tree(tree, &mut tar, &opts.tar_options())
            .and_then(|()| finish(tar))
            .map_err(ImageError::io(tmp.path()))?;
        let path = opts.dir.join(format!("{}.{}", blob.hex(), opts.compression.extension()));
        tmp.persist(&path).map_err(|e| ImageError::Io { path: path.clone(), source: e.error })?;
        let layer = Layer {
            path,
            media_type: opts.compression.media_type().to_string(),
            digest: blob.digest,
            diff_id: diff.digest,
            size: blob.size,
            uncompressed_size: diff.size,
            created_by: opts.created_by.clone(),
        };
        Ok((layer, stats))
    }

    /// Describes an existing gzip or zstd tar blob (e.g. a cached layer) by
    /// reading it once: digest of the file, diff_id of its decompressed
    /// content. The format is told by the magic bytes.
    pub fn from_blob(path: &Path, created_by: impl Into<String>) -> Result<Layer, ImageError> {
        let bad = |why: String| ImageError::BadLayer { path: path.to_path_buf(), why };
        let mut magic = [0u8; 4];
        let mut file = File::open(path).map_err(ImageError::io(path))?;
        let got = io::Read::read(&mut file, &mut magic).map_err(ImageError::io(path))?;
        io::Seek::rewind(&mut file).map_err(ImageError::io(path))?;
        let mut compressed = HashingReader::new(io::BufReader::new(file));
        let mut diff = HashingWriter::new(io::sink());
        let media_type = if got >= 2 && magic[..2] == [0x1f, 0x8b] {
            let mut gz = flate2::read::GzDecoder::new(&mut compressed);
            io::copy(&mut gz, &mut diff).map_err(|e| bad(format!("not a gzip stream: {e}")))?;
            crate::MEDIA_TYPE_LAYER_GZIP
        } else if got == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
            let mut z = zstd::stream::read::Decoder::new(&mut compressed).map_err(|e| bad(format!("not a zstd stream: {e}")))?;
            io::copy(&mut z, &mut diff).map_err(|e| bad(format!("not a zstd stream: {e}")))?;
            crate::MEDIA_TYPE_LAYER_ZSTD
        } else {
            return Err(bad("not a gzip or zstd stream (unknown magic bytes)".into()));
        };
        // Trailing bytes after the stream would change the digest but not
        // the content: read them so the digest matches the file.
        io::copy(&mut compressed, &mut io::sink()).map_err(ImageError::io(path))?;
        let (_, diff) = diff.finish();
        let blob = compressed.finish();
        Ok(Layer {
            path: path.to_path_buf(),
            media_type: media_type.to_string(),
            digest: blob.digest,
            diff_id: diff.digest,
            size: blob.size,
            uncompressed_size: diff.size,
            created_by: created_by.into(),
        })
    }
}

/// A writer that reports how many bytes went through it, every 4 MiB.
struct Observed<'a, W> {
    inner: W,
    observe: &'a mut dyn FnMut(u64),
    count: u64,
    reported: u64,
}

impl<W: Write> Write for Observed<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        if self.count - self.reported >= 4 << 20 {
            self.reported = self.count;
            (self.observe)(self.count);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes what is read through it.
struct HashingReader<R> {
    inner: R,
    hash: HashingWriter<io::Sink>,
}

impl<R: io::Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader { inner, hash: HashingWriter::new(io::sink()) }
    }

    fn finish(self) -> crate::Blob {
        self.hash.finish().1
    }
}

impl<R: io::Read> io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.write_all(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dinv_fstree::{Meta, TreePath};

    fn tree() -> Tree {
        let mut t = Tree::new();
        t.write_file(&TreePath::new("etc/hostname"), "dinv\n", Meta::root(0o644)).unwrap();
        t.write_file(&TreePath::new("usr/bin/tool"), vec![7u8; 100_000], Meta::root(0o755)).unwrap();
        t.symlink(&TreePath::new("bin"), "usr/bin").unwrap();
        t
    }

    #[test]
    fn same_tree_same_digests_and_blob_rescan_agrees() {
        let d = tempfile::tempdir().unwrap();
        let mut opts = LayerOptions::new(d.path().join("a"), "test");
        opts.mtime = Some(1_700_000_000);
        let a = LayerBuilder::from_tree(&tree(), &opts).unwrap();
        opts.dir = d.path().join("b");
        let b = LayerBuilder::from_tree(&tree(), &opts).unwrap();
        assert_eq!((&a.digest, &a.diff_id, a.size), (&b.digest, &b.diff_id, b.size));
        assert_eq!(std::fs::read(&a.path).unwrap(), std::fs::read(&b.path).unwrap());

        let bytes = std::fs::read(&a.path).unwrap();
        assert_eq!(crate::sha256_digest(&bytes), a.digest);
        assert_eq!(bytes.len() as u64, a.size);
        // Fixed gzip header: magic, deflate, no flags, mtime 0, OS unknown.
        assert_eq!(&bytes[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
        assert_eq!(bytes[9], 255);
        let mut tar = Vec::new();
        io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut tar).unwrap();
        assert_eq!(crate::sha256_digest(&tar), a.diff_id);
        assert_eq!(tar.len() as u64, a.uncompressed_size);

        let again = LayerBuilder::from_blob(&a.path, "test").unwrap();
        assert_eq!(again, a);
        // A changed tree gives a different layer.
        let mut t = tree();
        t.write_file(&TreePath::new("etc/hostname"), "other\n", Meta::root(0o644)).unwrap();
        opts.dir = d.path().join("c");
        assert_ne!(LayerBuilder::from_tree(&t, &opts).unwrap().diff_id, a.diff_id);
    }

    #[test]
    fn thread_count_and_codec_round_trip() {
        let d = tempfile::tempdir().unwrap();
        for compression in [LayerCompression::Gzip { level: 6 }, LayerCompression::Zstd { level: 3 }] {
            let mut digests = Vec::new();
            for threads in [1, 2, 8] {
                let mut opts = LayerOptions::new(d.path().join(format!("{threads}")), "test");
                opts.compression = compression;
                opts.threads = threads;
                let l = LayerBuilder::from_tree(&tree(), &opts).unwrap();
                assert_eq!(l.media_type, compression.media_type());
                assert!(l.path.to_str().unwrap().ends_with(compression.extension()));
                assert_eq!(LayerBuilder::from_blob(&l.path, "test").unwrap(), l, "{compression:?} rescan");
                digests.push(l.digest);
            }
            assert!(digests.iter().all(|d| d == &digests[0]), "{compression:?}: {digests:?}");
        }
    }

    #[test]
    fn not_gzip_is_refused_with_the_path() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.tar.gz");
        std::fs::write(&p, b"plain text").unwrap();
        let err = LayerBuilder::from_blob(&p, "x").unwrap_err().to_string();
        assert!(err.contains("x.tar.gz") && err.contains("gzip"), "{err}");
    }
}
