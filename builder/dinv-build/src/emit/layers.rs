//! Layers and the piece cache. A layer is compressed in content-defined
//! pieces (see `dinv_image::PieceWriter`); each piece is cached under the
//! digest of its uncompressed bytes and the compression settings. A layer
//! whose content did not change is assembled from the cache without
//! compressing anything; a changed layer (one overlay file in the root
//! filesystem image) compresses only the pieces around the change. Since a
//! piece depends on nothing but its input, a cached piece and a freshly
//! compressed one are the same bytes.

use std::fs;
use std::io::Write;
use std::sync::Arc;

use dinv_fstree::Tree;
use dinv_image::{Layer, LayerBuilder, LayerOptions, PieceCache, PieceStats};

use crate::cache::Cache;
use crate::error::{Stage, StageFailure};
use crate::progress::Progress;
use crate::{Error, Result};

/// The piece cache on disk: `pieces/<hh>/<key>`, each file the BLAKE3 of
/// the rest, the input's CRC-32 (little-endian) and the compressed piece,
/// so a damaged entry is found on read, dropped, and compressed again.
pub struct DiskPieces {
    cache: Cache,
}

impl DiskPieces {
    pub fn new(cache: &Cache) -> Arc<dyn PieceCache> {
        Arc::new(DiskPieces { cache: cache.clone() })
    }
}

impl PieceCache for DiskPieces {
    fn get(&self, key: &[u8; 32]) -> Option<(Vec<u8>, u32)> {
        let path = self.cache.piece_path(&hex::encode(key));
        let mut bytes = fs::read(&path).ok()?;
        if bytes.len() >= 36 && blake3::hash(&bytes[32..]).as_bytes()[..] == bytes[..32] {
            let crc = u32::from_le_bytes(bytes[32..36].try_into().expect("4 bytes"));
            bytes.drain(..36);
            return Some((bytes, crc));
        }
        tracing::warn!("piece cache: {} is damaged; compressing it again", path.display());
        let _ = fs::remove_file(&path);
        None
    }

    fn put(&self, key: &[u8; 32], piece: &[u8], crc: u32) {
        let path = self.cache.piece_path(&hex::encode(key));
        let mut h = blake3::Hasher::new();
        h.update(&crc.to_le_bytes());
        h.update(piece);
        let r = self.cache.write_atomic(&path, |f| {
            f.write_all(h.finalize().as_bytes())?;
            f.write_all(&crc.to_le_bytes())?;
            f.write_all(piece)
        });
        if let Err(e) = r {
            tracing::warn!("piece cache: cannot store {}: {e}", path.display());
        }
    }
}

fn fail(label: &str) -> impl FnOnce(dinv_image::ImageError) -> Error + '_ {
    move |e| Error::stage(Stage::Image, StageFailure::from(e).of(format!("writing the {label}")))
}

/// Writes the layer for `tree`, reusing cached pieces when `cache` is
/// given. `label` names the layer in the progress display.
pub fn layer(cache: Option<&Cache>, tree: &Tree, opts: &LayerOptions, progress: &Progress, label: &str) -> Result<(Layer, PieceStats)> {
    let mut opts = opts.clone();
    opts.pieces = cache.map(DiskPieces::new);
    let approx = tree.content_bytes();
    progress.status("Compressing", format!("{label} ({:.1} MB of files)", approx as f64 / 1e6));
    let bar = progress.bytes(label, Some(approx));
    let r = LayerBuilder::from_tree_observed(tree, &opts, &mut |n| bar.set_position(n.min(approx)));
    bar.finish_and_clear();
    let (layer, stats) = r.map_err(fail(label))?;
    if stats.reused > 0 {
        progress.status(
            "Reused",
            format!("{} of {} pieces of {label} from the cache ({:.1} MB not compressed again)", stats.reused, stats.pieces, stats.reused_bytes as f64 / 1e6),
        );
    }
    tracing::info!(layer = label, digest = %layer.digest, pieces = stats.pieces, reused = stats.reused, "layer written");
    Ok((layer, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dinv_fstree::{Meta, TreePath};
    use dinv_image::LayerCompression;
    use std::path::Path;

    fn tree(text: &str) -> Tree {
        let mut t = Tree::new();
        t.write_file(&TreePath::new("etc/motd"), text, Meta::root(0o644)).unwrap();
        let big: Vec<u8> = (0..6u32 << 20).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        t.write_file(&TreePath::new("usr/lib/big"), big, Meta::root(0o644)).unwrap();
        t
    }

    fn opts(dir: &Path, compression: LayerCompression, threads: usize) -> LayerOptions {
        let mut o = LayerOptions::new(dir, "test");
        o.mtime = Some(1_700_000_000);
        o.compression = compression;
        o.threads = threads;
        o
    }

    fn build(cache: Option<&Cache>, t: &Tree, dir: &Path, c: LayerCompression, threads: usize) -> (Layer, PieceStats) {
        layer(cache, t, &opts(dir, c, threads), &Progress::hidden(), "layer test").unwrap()
    }

    #[test]
    fn second_build_comes_from_the_cache_with_the_same_bytes() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::open(&d.path().join("cache")).unwrap();
        let gz = LayerCompression::default();
        let (a, s1) = build(Some(&cache), &tree("hi\n"), &d.path().join("a"), gz, 1);
        let (b, s2) = build(Some(&cache), &tree("hi\n"), &d.path().join("b"), gz, 2);
        assert_eq!((s1.reused, s2.reused), (0, s2.pieces));
        assert!(s2.pieces >= 2, "{s2:?}");
        assert_eq!(a.digest, b.digest);
        assert_eq!(fs::read(&a.path).unwrap(), fs::read(&b.path).unwrap());
        // Without the cache: the same bytes.
        let (fresh, _) = build(None, &tree("hi\n"), &d.path().join("c"), gz, 8);
        assert_eq!(fresh.digest, b.digest);
        // Another motd: only the piece holding it is compressed again.
        let (c, s3) = build(Some(&cache), &tree("bye\n"), &d.path().join("d"), gz, 2);
        assert_ne!(c.diff_id, a.diff_id);
        assert_eq!(s3.reused + 1, s3.pieces, "{s3:?}");
        // zstd pieces are keyed apart from gzip ones.
        let (z, s4) = build(Some(&cache), &tree("hi\n"), &d.path().join("e"), LayerCompression::Zstd { level: 3 }, 2);
        assert_eq!((s4.reused, z.diff_id == a.diff_id), (0, true));
    }

    #[test]
    fn a_damaged_piece_is_compressed_again() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::open(&d.path().join("cache")).unwrap();
        let gz = LayerCompression::default();
        let (a, _) = build(Some(&cache), &tree("hi\n"), &d.path().join("a"), gz, 1);
        // Flip a byte in every cached piece; truncate one.
        let mut files: Vec<_> = walk(&d.path().join("cache/pieces"));
        files.sort();
        for (i, f) in files.iter().enumerate() {
            let mut bytes = fs::read(f).unwrap();
            if i == 0 {
                bytes.truncate(10);
            } else {
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0x55;
            }
            fs::write(f, bytes).unwrap();
        }
        let (b, s) = build(Some(&cache), &tree("hi\n"), &d.path().join("b"), gz, 2);
        assert_eq!(s.reused, 0, "no damaged piece is used");
        assert_eq!(b.digest, a.digest);
        let (_, s) = build(Some(&cache), &tree("hi\n"), &d.path().join("c"), gz, 2);
        assert_eq!(s.reused, s.pieces, "the entries were replaced by whole ones");
    }

    fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
        out
    }
}
