//! Layers, their records and the piece cache. A layer is compressed in content-defined
//! pieces (see `dinv_image::PieceWriter`); each piece is cached under the
//! digest of its uncompressed bytes and the compression settings. A layer
//! whose content did not change is assembled from the cache without
//! compressing anything; a changed layer (one overlay file in the root
//! filesystem image) compresses only the pieces around the change. Since a
//! piece depends on nothing but its input, a cached piece and a freshly
//! compressed one are the same bytes. A layer whose tree can be
//! fingerprinted without reading it (every file a range of the cache's
//! unpacked archives, or small bytes: the runtime layer) is recorded, and a
//! later build with the same fingerprint assembles it from its pieces
//! without even writing the tar.

use std::fs;
use std::io::Write;
use std::sync::Arc;

use std::path::Path;

use dinv_fstree::{Content, NodeKind, Tree};
use dinv_image::{Layer, LayerBuilder, LayerOptions, LayerPieces, PieceCache, PieceStats};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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

/// Bumped whenever the tar writer or the fingerprint changes what a tree
/// becomes, so records from older builds no longer match.
const FINGERPRINT_FORMAT: &str = "dinv-build layer fingerprint 1";

/// A digest of everything that decides a layer's bytes, read from the tree
/// without reading file contents: every entry's path, kind, metadata and
/// link target, each file's content by identity (bytes held in memory by
/// their SHA-256; a range of one of the cache's unpacked archives, which
/// are named by their package's checksum, by name, offset and length), the
/// time override and the compression identity. `None` when a file's
/// content has no such identity (a file of the output, like rootfs.ext4):
/// such a layer is always written from its tree (its unchanged pieces
/// still come from the piece cache).
pub fn fingerprint(tree: &Tree, opts: &LayerOptions, unpacked_dir: &Path) -> Option<String> {
    let mut h = Sha256::new();
    let mut put = |b: &[u8]| {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    put(FINGERPRINT_FORMAT.as_bytes());
    put(env!("CARGO_PKG_VERSION").as_bytes());
    put(opts.compression.identity().as_bytes());
    put(format!("{:?}", opts.mtime).as_bytes());
    for (path, node) in tree.iter() {
        put(path.as_str().as_bytes());
        put(format!("{:?}", node.meta).as_bytes());
        match &node.kind {
            NodeKind::File(Content::Bytes(b)) => {
                put(b"bytes");
                put(&Sha256::digest(b));
            }
            NodeKind::File(Content::Range { file, offset, len }) => {
                let p = file.path();
                if !p.starts_with(unpacked_dir) {
                    return None;
                }
                put(b"range");
                put(p.as_os_str().as_encoded_bytes());
                put(&offset.to_le_bytes());
                put(&len.to_le_bytes());
            }
            other => put(format!("{other:?}").as_bytes()),
        }
    }
    Some(hex::encode(h.finalize()))
}

/// A layer record: its digests and how to assemble it from pieces.
#[derive(Debug, Deserialize, Serialize)]
struct Record {
    media_type: String,
    digest: String,
    size: u64,
    diff_id: String,
    uncompressed_size: u64,
    crc: u32,
    /// Piece keys in order, hex.
    pieces: Vec<String>,
}

/// A record file: the BLAKE3 (hex) of the JSON, a newline, the JSON.
fn record_bytes(record: &Record) -> Vec<u8> {
    let json = serde_json::to_vec(record).expect("record serialises");
    let mut out = format!("{}\n", blake3::hash(&json).to_hex()).into_bytes();
    out.extend_from_slice(&json);
    out
}

/// The record in a file's bytes, when its digest matches.
fn read_record(bytes: &[u8]) -> Option<Record> {
    let split = bytes.iter().position(|&b| b == b'\n')?;
    let (digest, json) = (&bytes[..split], &bytes[split + 1..]);
    (digest == blake3::hash(json).to_hex().as_bytes()).then(|| serde_json::from_slice(json).ok()).flatten()
}

/// The layer of a record, assembled from cached pieces and checked against
/// the recorded digest; `None` when anything is missing or differs.
fn from_record(cache: &Cache, fp: &str, opts: &LayerOptions) -> Option<(Layer, LayerPieces)> {
    let path = cache.layer_record_path(fp);
    let bytes = fs::read(&path).ok()?;
    let Some(record) = read_record(&bytes) else {
        tracing::warn!("layer cache: record {} is damaged; writing the layer from its tree", path.display());
        let _ = fs::remove_file(&path);
        return None;
    };
    if record.media_type != opts.compression.media_type() {
        return None;
    }
    let keys: Vec<[u8; 32]> = record.pieces.iter().map(|k| hex::decode(k).ok()?.try_into().ok()).collect::<Option<_>>()?;
    let pieces = LayerPieces { stats: PieceStats { pieces: keys.len() as u64, reused: keys.len() as u64, reused_bytes: record.uncompressed_size }, keys, crc: record.crc };
    let layer = LayerBuilder::from_pieces(opts, &pieces, &record.diff_id, record.uncompressed_size).ok()??;
    if layer.digest != record.digest || layer.size != record.size {
        tracing::warn!("layer cache: record {fp} assembles to {} instead of {}; writing the layer from its tree", layer.digest, record.digest);
        let _ = fs::remove_file(&layer.path);
        return None;
    }
    Some((layer, pieces))
}

/// Writes the layer for `tree`. With a cache: a layer whose fingerprint
/// was recorded before is assembled from its cached pieces without reading
/// the tree; otherwise the tree is written, reusing cached pieces, and the
/// result recorded. `label` names the layer in the progress display.
pub fn layer(cache: Option<&Cache>, tree: &Tree, opts: &LayerOptions, progress: &Progress, label: &str) -> Result<(Layer, PieceStats)> {
    let mut opts = opts.clone();
    opts.pieces = cache.map(DiskPieces::new);
    let fp = cache.and_then(|c| fingerprint(tree, &opts, &c.unpacked_dir()).map(|fp| (c, fp)));
    if let Some((c, fp)) = &fp {
        if let Some((layer, pieces)) = from_record(c, fp, &opts) {
            progress.status("Reusing", format!("{label} from the cache ({:.1} MB, unchanged)", layer.size as f64 / 1e6));
            tracing::info!(layer = label, digest = %layer.digest, fingerprint = %fp, "layer assembled from its record");
            return Ok((layer, pieces.stats));
        }
    }
    let approx = tree.content_bytes();
    progress.status("Compressing", format!("{label} ({:.1} MB of files)", approx as f64 / 1e6));
    let bar = progress.bytes(label, Some(approx));
    let r = LayerBuilder::from_tree_observed(tree, &opts, &mut |n| bar.set_position(n.min(approx)));
    bar.finish_and_clear();
    let (layer, pieces) = r.map_err(fail(label))?;
    let stats = pieces.stats;
    if stats.reused > 0 {
        progress.status(
            "Reused",
            format!("{} of {} pieces of {label} from the cache ({:.1} MB not compressed again)", stats.reused, stats.pieces, stats.reused_bytes as f64 / 1e6),
        );
    }
    if let Some((c, fp)) = &fp {
        if pieces.keys.len() as u64 == stats.pieces {
            let record = Record {
                media_type: layer.media_type.clone(),
                digest: layer.digest.clone(),
                size: layer.size,
                diff_id: layer.diff_id.clone(),
                uncompressed_size: layer.uncompressed_size,
                crc: pieces.crc,
                pieces: pieces.keys.iter().map(hex::encode).collect(),
            };
            let bytes = record_bytes(&record);
            let path = c.layer_record_path(fp);
            if let Err(e) = c.write_atomic(&path, |f| f.write_all(&bytes)) {
                tracing::warn!("layer cache: cannot store {}: {e}", path.display());
            }
        }
    }
    tracing::info!(layer = label, digest = %layer.digest, pieces = stats.pieces, reused = stats.reused, "layer written");
    Ok((layer, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dinv_fstree::{Meta, TreePath};
    use dinv_image::LayerCompression;

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

    #[test]
    fn the_fingerprint_sees_every_attribute_and_no_unnamed_content() {
        let d = tempfile::tempdir().unwrap();
        let unpacked = d.path().join("unpacked");
        fs::create_dir_all(&unpacked).unwrap();
        fs::write(unpacked.join("deb-aa.tar"), vec![1u8; 4096]).unwrap();
        fs::write(d.path().join("rootfs.ext4"), vec![2u8; 4096]).unwrap();
        let base = |with: &dyn Fn(&mut Tree)| {
            let mut t = tree("hi\n");
            let file = dinv_fstree::BackingFile::open(&unpacked.join("deb-aa.tar")).unwrap();
            let node = dinv_fstree::Node::new(NodeKind::File(Content::Range { file, offset: 512, len: 100 }), Meta::root(0o755));
            t.insert(TreePath::new("usr/bin/tool"), node, dinv_fstree::Replace::Deny).unwrap();
            t.symlink(&TreePath::new("bin"), "usr/bin").unwrap();
            with(&mut t);
            fingerprint(&t, &opts(d.path(), LayerCompression::default(), 1), &unpacked)
        };
        let same = base(&|_| {});
        assert!(same.is_some());
        assert_eq!(same, base(&|_| {}));
        let changes: Vec<(&str, Box<dyn Fn(&mut Tree)>)> = vec![
            ("content", Box::new(|t| t.write_file(&TreePath::new("etc/motd"), "ho\n", Meta::root(0o644)).unwrap())),
            ("mode", Box::new(|t| t.get_mut(&TreePath::new("etc/motd")).unwrap().meta.mode = 0o600)),
            ("owner", Box::new(|t| t.get_mut(&TreePath::new("etc/motd")).unwrap().meta.gid = 101)),
            ("time", Box::new(|t| t.get_mut(&TreePath::new("etc/motd")).unwrap().meta.mtime = 5)),
            ("xattr", Box::new(|t| { t.get_mut(&TreePath::new("usr/bin/tool")).unwrap().meta.xattrs.insert("security.capability".into(), vec![1]); })),
            ("link", Box::new(|t| { t.remove(&TreePath::new("bin")); t.symlink(&TreePath::new("bin"), "/usr/bin").unwrap(); })),
            ("range", Box::new(|t| {
                if let NodeKind::File(Content::Range { offset, .. }) = &mut t.get_mut(&TreePath::new("usr/bin/tool")).unwrap().kind {
                    *offset = 1024;
                }
            })),
            ("new entry", Box::new(|t| t.mkdir_p(&TreePath::new("var/empty"), Meta::root(0o755)).unwrap())),
        ];
        for (what, change) in &changes {
            assert_ne!(base(&**change), same, "{what}");
        }
        // Settings are part of it too.
        let mut t = tree("hi\n");
        let a = fingerprint(&t, &opts(d.path(), LayerCompression::default(), 1), &unpacked);
        assert_eq!(a, fingerprint(&t, &opts(d.path(), LayerCompression::default(), 8), &unpacked), "threads do not matter");
        assert_ne!(a, fingerprint(&t, &opts(d.path(), LayerCompression::Zstd { level: 3 }, 1), &unpacked));
        let mut o = opts(d.path(), LayerCompression::default(), 1);
        o.mtime = Some(1);
        assert_ne!(a, fingerprint(&t, &o, &unpacked));
        // A file of the output has no identity without reading it.
        let file = dinv_fstree::BackingFile::open(&d.path().join("rootfs.ext4")).unwrap();
        t.insert(TreePath::new("usr/share/dinv/rootfs.ext4"), dinv_fstree::Node::new(NodeKind::File(Content::Range { file, offset: 0, len: 4096 }), Meta::root(0o644)), dinv_fstree::Replace::Deny).unwrap();
        assert_eq!(fingerprint(&t, &opts(d.path(), LayerCompression::default(), 1), &unpacked), None);
    }

    #[test]
    fn a_recorded_layer_is_assembled_and_a_wrong_record_is_not_trusted() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::open(&d.path().join("cache")).unwrap();
        let gz = LayerCompression::default();
        let (a, _) = build(Some(&cache), &tree("hi\n"), &d.path().join("a"), gz, 2);
        let fp = fingerprint(&tree("hi\n"), &opts(d.path(), gz, 2), &cache.unpacked_dir()).unwrap();
        let record = cache.layer_record_path(&fp);
        assert!(record.is_file());
        let (b, s) = build(Some(&cache), &tree("hi\n"), &d.path().join("b"), gz, 2);
        assert_eq!((b.digest == a.digest, s.reused == s.pieces), (true, true));
        assert_eq!(fs::read(&a.path).unwrap(), fs::read(&b.path).unwrap());
        // A record that promises another digest: the layer is written from the tree.
        let text = fs::read_to_string(&record).unwrap().replace(&a.digest, "sha256:0000000000000000000000000000000000000000000000000000000000000000");
        fs::write(&record, text).unwrap();
        let (c, _) = build(Some(&cache), &tree("hi\n"), &d.path().join("c"), gz, 2);
        assert_eq!(c.digest, a.digest);
        assert!(fs::read_to_string(&record).unwrap().contains(&a.digest), "the record was written again");
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
