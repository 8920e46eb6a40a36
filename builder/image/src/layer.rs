//! Layers: a tree as a deterministic gzip tar, streamed to a file while
//! both the tar (diff_id) and the gzip (digest) are hashed, so a large layer
//! is never held in memory.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use dinv_fstree::tar::{write_tree, TarBuilder, TreeTarOptions};
use dinv_fstree::Tree;
use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};

use crate::blob::HashingWriter;
use crate::ImageError;

/// A gzip-compressed layer blob on disk and its digests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// The blob file (`<dir>/<hex>.tar.gz`).
    pub path: PathBuf,
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

/// How [`LayerBuilder::from_tree`] writes a layer.
#[derive(Clone, Debug)]
pub struct LayerOptions {
    /// Directory the blob is written into (created if missing).
    pub dir: PathBuf,
    /// Replace every mtime by this (usually SOURCE_DATE_EPOCH); `None`
    /// keeps the tree's (already clamped) times.
    pub mtime: Option<i64>,
    /// History line recorded in the image config.
    pub created_by: String,
    /// gzip level 0-9.
    pub level: u32,
}

impl LayerOptions {
    /// Options writing into `dir` with gzip level 6 and the tree's own mtimes.
    pub fn new(dir: impl Into<PathBuf>, created_by: impl Into<String>) -> Self {
        LayerOptions { dir: dir.into(), mtime: None, created_by: created_by.into(), level: 6 }
    }
}

/// Builds layer blobs.
pub struct LayerBuilder;

type Pipeline = HashingWriter<GzEncoder<HashingWriter<BufWriter<File>>>>;

/// A gzip encoder with a fixed header: no file name, mtime 0, OS "unknown".
fn gzip<W: Write>(out: W, level: u32) -> GzEncoder<W> {
    GzBuilder::new().mtime(0).operating_system(255).write(out, Compression::new(level.min(9)))
}

impl LayerBuilder {
    /// Writes the whole tree (without a `./` entry) as a gzip tar layer.
    pub fn from_tree(tree: &Tree, opts: &LayerOptions) -> Result<Layer, ImageError> {
        std::fs::create_dir_all(&opts.dir).map_err(ImageError::io(&opts.dir))?;
        let tmp = tempfile::Builder::new().prefix(".layer-").tempfile_in(&opts.dir).map_err(ImageError::io(&opts.dir))?;
        let file = tmp.as_file().try_clone().map_err(ImageError::io(tmp.path()))?;
        let pipeline: Pipeline = HashingWriter::new(gzip(HashingWriter::new(BufWriter::new(file)), opts.level));
        let mut tar = TarBuilder::new(pipeline);
        let tar_opts = TreeTarOptions { mtime: opts.mtime, under: None, skip_root: true };
        let finish = |tar: TarBuilder<Pipeline>| -> io::Result<_> {
            let (gz, diff) = tar.finish()?.finish();
            let (mut counted, blob) = gz.finish()?.finish();
            counted.flush()?;
            Ok((diff, blob))
        };
        let (diff, blob) = write_tree(tree, &mut tar, &tar_opts)
            .and_then(|()| finish(tar))
            .map_err(ImageError::io(tmp.path()))?;
        let path = opts.dir.join(format!("{}.tar.gz", blob.hex()));
        tmp.persist(&path).map_err(|e| ImageError::Io { path: path.clone(), source: e.error })?;
        Ok(Layer {
            path,
            digest: blob.digest,
            diff_id: diff.digest,
            size: blob.size,
            uncompressed_size: diff.size,
            created_by: opts.created_by.clone(),
        })
    }

    /// Describes an existing gzip tar blob (e.g. a cached layer) by reading
    /// it once: digest of the file, diff_id of its decompressed content.
    pub fn from_blob(path: &Path, created_by: impl Into<String>) -> Result<Layer, ImageError> {
        let file = File::open(path).map_err(ImageError::io(path))?;
        let mut compressed = HashingReader::new(io::BufReader::new(file));
        let mut diff = HashingWriter::new(io::sink());
        let mut gz = flate2::read::GzDecoder::new(&mut compressed);
        io::copy(&mut gz, &mut diff)
            .map_err(|e| ImageError::BadLayer { path: path.to_path_buf(), why: format!("not a gzip stream: {e}") })?;
        drop(gz);
        // Trailing bytes after the gzip member would change the digest but
        // not the content: read them so the digest matches the file.
        io::copy(&mut compressed, &mut io::sink()).map_err(ImageError::io(path))?;
        let (_, diff) = diff.finish();
        let blob = compressed.finish();
        Ok(Layer {
            path: path.to_path_buf(),
            digest: blob.digest,
            diff_id: diff.digest,
            size: blob.size,
            uncompressed_size: diff.size,
            created_by: created_by.into(),
        })
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
    fn not_gzip_is_refused_with_the_path() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.tar.gz");
        std::fs::write(&p, b"plain text").unwrap();
        let err = LayerBuilder::from_blob(&p, "x").unwrap_err().to_string();
        assert!(err.contains("x.tar.gz") && err.contains("gzip"), "{err}");
    }
}
