//! The OCI image layout directory writer (`oci-layout`, `index.json`,
//! `blobs/sha256/`). Blobs are written before index.json, each by temp file
//! and rename, so a reader never sees a half-written image.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

use crate::{to_canonical_json, ImageDigests, ImageError, ImageParts, ImageSpec, Layer, ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST};

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
    link_blob(&layer.path, &path)
}

/// Puts the blob file `from` at `path`: a hard link when on the same
/// filesystem (blobs are immutable), else a copy; by temp file and rename.
fn link_blob(from: &Path, path: &Path) -> Result<(), ImageError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".tmp-{name}"));
    let _ = fs::remove_file(&tmp);
    if fs::hard_link(from, &tmp).is_err() {
        fs::copy(from, &tmp).map_err(ImageError::io(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(ImageError::io(path))
}

/// One platform's image for [`write_oci_index_layout`]: its manifest, in
/// the OCI layout `layout`.
#[derive(Clone, Copy, Debug)]
pub struct PlatformImage<'a> {
    /// OCI `architecture` (`amd64`, `arm64`).
    pub architecture: &'a str,
    pub os: &'a str,
    pub layout: &'a Path,
    pub manifest_digest: &'a str,
}

/// Writes a multi-platform OCI layout in `dir`: every blob of the
/// platforms' layouts (linked where possible), an image index listing each
/// platform's manifest in order, and an index.json naming that index,
/// tagged as `spec` says. Returns the image index's blob.
pub fn write_oci_index_layout(dir: &Path, spec: &ImageSpec, platforms: &[PlatformImage]) -> Result<crate::Blob, ImageError> {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(ImageError::io(&blobs))?;
    let mut manifests = Vec::new();
    for p in platforms {
        let from = p.layout.join("blobs/sha256");
        for e in fs::read_dir(&from).map_err(ImageError::io(&from))? {
            let e = e.map_err(ImageError::io(&from))?;
            let to = blobs.join(e.file_name());
            if !to.exists() {
                link_blob(&e.path(), &to)?;
            }
        }
        let manifest = from.join(p.manifest_digest.trim_start_matches("sha256:"));
        let size = fs::metadata(&manifest).map_err(ImageError::io(&manifest))?.len();
        manifests.push(json!({
            "mediaType": MEDIA_TYPE_MANIFEST,
            "digest": p.manifest_digest,
            "size": size,
            "platform": {"architecture": p.architecture, "os": p.os},
        }));
    }
    let index = to_canonical_json(&json!({"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": manifests}));
    put_bytes_blob(&blobs, &index)?;
    let blob = crate::Blob::of(&index);
    let entry = json!({
        "mediaType": MEDIA_TYPE_INDEX,
        "digest": blob.digest,
        "size": blob.size,
        "annotations": {ANNOTATION_REF_NAME: spec.tag, ANNOTATION_CONTAINERD_NAME: spec.full_reference()},
    });
    write_atomic(&dir.join("oci-layout"), ImageParts::oci_layout())?;
    write_atomic(&dir.join("index.json"), &ImageParts::index_json(&[entry]))?;
    Ok(blob)
}
