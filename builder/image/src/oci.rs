//! The OCI image layout directory writer (`oci-layout`, `index.json`,
//! `blobs/sha256/`). Blobs are written before index.json, each by temp file
//! and rename, so a reader never sees a half-written image.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::{ImageDigests, ImageError, ImageParts, ImageSpec, Layer, ANNOTATION_REF_NAME};

/// Writes (or adds to) an OCI image layout in `dir`; an existing entry with
/// the same tag in index.json is replaced, other tags are kept.
pub fn write_oci_layout(dir: &Path, spec: &ImageSpec, layers: &[Layer]) -> Result<ImageDigests, ImageError> {
    write_oci_layout_parts(dir, spec, &ImageParts::new(spec, layers)?, layers)
}

/// [`write_oci_layout`] of parts made already ([`ImageParts::with_config`]).
pub fn write_oci_layout_parts(dir: &Path, spec: &ImageSpec, parts: &ImageParts, layers: &[Layer]) -> Result<ImageDigests, ImageError> {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(ImageError::io(&blobs))?;
    for layer in layers {
        put_file_blob(&blobs, layer)?;
    }
    put_bytes_blob(&blobs, &parts.config)?;
    put_bytes_blob(&blobs, &parts.manifest)?;
    write_atomic(&dir.join("oci-layout"), ImageParts::oci_layout())?;

    let index_path = dir.join("index.json");
    let mut entries = existing_entries(&index_path)?;
    entries.retain(|e| e["annotations"][ANNOTATION_REF_NAME].as_str() != Some(spec.tag.as_str()));
    entries.push(parts.index_entry.clone());
    write_atomic(&index_path, &ImageParts::index_json(&entries))?;
    Ok(parts.digests.clone())
}

fn existing_entries(index_path: &Path) -> Result<Vec<Value>, ImageError> {
    match fs::read(index_path) {
        Ok(bytes) => {
            let v: Value =
                serde_json::from_slice(&bytes).map_err(|source| ImageError::BadIndex { path: index_path.to_path_buf(), source })?;
            Ok(v["manifests"].as_array().cloned().unwrap_or_default())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(ImageError::Io { path: index_path.to_path_buf(), source: e }),
    }
}

/// Writes bytes to `path` through a temp file in the same directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let mut tmp = crate::output_temp_file(parent, ".tmp-").map_err(ImageError::io(parent))?;
    tmp.write_all(bytes).map_err(ImageError::io(tmp.path()))?;
    tmp.persist(path).map_err(|e| ImageError::Io { path: path.to_path_buf(), source: e.error })?;
    Ok(())
}

/// A blob already present with the right size is kept: names are digests.
fn present(path: &Path, size: u64) -> bool {
    fs::metadata(path).map(|m| m.len() == size).unwrap_or(false)
}

fn put_bytes_blob(blobs: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let blob = crate::Blob::of(bytes);
    let path = blobs.join(blob.hex());
    if present(&path, blob.size) {
        return Ok(());
    }
    write_atomic(&path, bytes)
}

fn put_file_blob(blobs: &Path, layer: &Layer) -> Result<(), ImageError> {
    let hex = layer.digest.trim_start_matches("sha256:");
    let path = blobs.join(hex);
    if present(&path, layer.size) {
        return Ok(());
    }
    let actual = fs::metadata(&layer.path).map_err(ImageError::io(&layer.path))?.len();
    if actual != layer.size {
        return Err(ImageError::BadLayer { path: layer.path.clone(), why: format!("is {actual} bytes, the layer says {}", layer.size) });
    }
    // Hard link when on the same filesystem (layers are immutable), else copy.
    let tmp = blobs.join(format!(".tmp-{hex}"));
    let _ = fs::remove_file(&tmp);
    if fs::hard_link(&layer.path, &tmp).is_err() {
        fs::copy(&layer.path, &tmp).map_err(ImageError::io(&tmp))?;
    }
    fs::rename(&tmp, &path).map_err(ImageError::io(&path))
}
