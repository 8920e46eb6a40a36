//! Unpacks an image's layers into a directory, without root: regular
//! files, directories, symlinks and hard links (device nodes and FIFOs are
//! skipped; a container runtime makes those). Paths that would leave the
//! directory are refused. Directory metadata is kept aside, so a new layer
//! can repeat it for the parents it shares.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use dinv_fstree::tar::{EntryType, TarReader};
use dinv_fstree::Meta;
use dinv_image::{Layer, MEDIA_TYPE_LAYER_ZSTD};

use crate::error::Stage;
use crate::{Error, Result};

/// What unpacking found out.
#[derive(Debug, Default)]
pub struct Unpacked {
    /// Every directory's metadata as the topmost layer gives it, by path
    /// relative to the root (`usr/share`).
    pub dirs: BTreeMap<String, Meta>,
    pub files: u64,
    pub bytes: u64,
}

fn fail(layer: &Layer, why: impl std::fmt::Display) -> Error {
    Error::stage(Stage::Snapshot, format!("layer {}: {why}", layer.digest))
}

/// `name` as a relative path without `..`, or None.
fn safe(name: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(name.trim_start_matches("./")).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Unpacks `layers` (bottom first) into `root`.
pub fn unpack(layers: &[Layer], root: &Path) -> Result<Unpacked> {
    let mut u = Unpacked::default();
    fs::create_dir_all(root).map_err(Error::io(root))?;
    for layer in layers {
        let file = fs::File::open(&layer.path).map_err(Error::io(&layer.path))?;
        let reader: Box<dyn Read> = if layer.media_type == MEDIA_TYPE_LAYER_ZSTD {
            Box::new(zstd::stream::read::Decoder::new(file).map_err(Error::io(&layer.path))?)
        } else {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, file)))
        };
        unpack_one(layer, reader, root, &mut u)?;
    }
    Ok(u)
}

fn unpack_one(layer: &Layer, reader: Box<dyn Read>, root: &Path, u: &mut Unpacked) -> Result<()> {
    let mut tar = TarReader::new(reader);
    while let Some(e) = tar.next_entry().map_err(|e| fail(layer, e))? {
        let rel = safe(&e.path).ok_or_else(|| fail(layer, format!("member {:?} leaves the image's root", e.path)))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let name = rel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with(".wh.") {
            return Err(fail(layer, format!("{:?}: whiteouts are not expected in a dinv-build image", e.path)));
        }
        let dest = root.join(&rel);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(Error::io(parent))?;
        }
        // An upper layer replaces what a lower one had there (not a directory).
        if let Ok(m) = fs::symlink_metadata(&dest) {
            if !(m.is_dir() && e.entry_type == EntryType::Dir) {
                if m.is_dir() {
                    fs::remove_dir_all(&dest).map_err(Error::io(&dest))?;
                } else {
                    fs::remove_file(&dest).map_err(Error::io(&dest))?;
                }
            }
        }
        match e.entry_type {
            EntryType::Dir => {
                fs::create_dir_all(&dest).map_err(Error::io(&dest))?;
                // Writable for us while unpacking, whatever the image says.
                fs::set_permissions(&dest, fs::Permissions::from_mode((e.mode & 0o7777) | 0o700)).map_err(Error::io(&dest))?;
                let meta = Meta { mode: e.mode & 0o7777, uid: e.uid, gid: e.gid, mtime: e.mtime, xattrs: e.xattrs.clone() };
                u.dirs.insert(rel.to_string_lossy().into_owned(), meta);
            }
            EntryType::Regular => {
                let mut f = fs::File::create(&dest).map_err(Error::io(&dest))?;
                u.bytes += tar.copy_data(&e, &mut f).map_err(|err| fail(layer, err))?;
                u.files += 1;
                fs::set_permissions(&dest, fs::Permissions::from_mode((e.mode & 0o7777) | 0o600)).map_err(Error::io(&dest))?;
            }
            EntryType::Symlink => std::os::unix::fs::symlink(&e.link, &dest).map_err(Error::io(&dest))?,
            EntryType::Hardlink => {
                let target = safe(&e.link).ok_or_else(|| fail(layer, format!("hard link {:?} leaves the root", e.link)))?;
                fs::hard_link(root.join(target), &dest).map_err(Error::io(&dest))?;
            }
            EntryType::CharDevice | EntryType::BlockDevice | EntryType::Fifo => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dinv_fstree::{Tree, TreePath};
    use dinv_image::{LayerBuilder, LayerOptions};

    #[test]
    fn layers_unpack_in_order_and_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        let mut lower = Tree::new();
        lower.mkdir_p(&TreePath::new("usr/bin"), Meta::root(0o755)).unwrap();
        lower.write_file(&TreePath::new("usr/bin/tool"), "v1", Meta::root(0o755)).unwrap();
        lower.symlink(&TreePath::new("bin"), "usr/bin").unwrap();
        let mut upper = Tree::new();
        upper.mkdir_p(&TreePath::new("usr/bin"), Meta { mtime: 7, ..Meta::root(0o755) }).unwrap();
        upper.write_file(&TreePath::new("usr/bin/tool"), "v2", Meta::root(0o700)).unwrap();
        let layers: Vec<Layer> = [lower, upper].iter().map(|t| LayerBuilder::from_tree(t, &LayerOptions::new(dir.path().join("blobs"), "x")).unwrap()).collect();
        let root = dir.path().join("root");
        let u = unpack(&layers, &root).unwrap();
        assert_eq!(fs::read_to_string(root.join("bin/tool")).unwrap(), "v2");
        assert_eq!(fs::metadata(root.join("usr/bin/tool")).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(u.dirs["usr/bin"].mtime, 7, "the upper layer's directory metadata");
        assert_eq!(u.files, 2);
        assert!(safe("../etc/passwd").is_none() && safe("/abs").is_none());
        assert_eq!(safe("./usr/bin"), Some(PathBuf::from("usr/bin")));
    }
}
