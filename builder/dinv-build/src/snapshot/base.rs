//! The built image a snapshot belongs to, read from a build's output
//! directory: `report.json` (the reference and the recipe's `[snapshot]`)
//! and `oci/` (index, manifest, config and layer blobs).

use std::fs;
use std::path::{Path, PathBuf};

use dinv_image::{Layer, ANNOTATION_REF_NAME, MEDIA_TYPE_LAYER_ZSTD};
use serde_json::Value;

use crate::error::Stage;
use crate::recipe::SnapshotSection;
use crate::{Error, Result};

/// The base image.
#[derive(Clone, Debug)]
pub struct Base {
    /// `name:tag`.
    pub reference: String,
    pub name: String,
    pub tag: String,
    pub manifest_digest: String,
    pub config_digest: String,
    /// The image config, as stored.
    pub config: Value,
    /// Its layers, bottom to top, as blobs of `oci/`.
    pub layers: Vec<Layer>,
    /// The recipe's `[snapshot]` (defaults for an output written before it existed).
    pub settings: SnapshotSection,
}

impl Base {
    /// Whether its layers are zstd (else gzip): the snapshot layer matches.
    pub fn zstd(&self) -> bool {
        self.layers.iter().any(|l| l.media_type == MEDIA_TYPE_LAYER_ZSTD)
    }
}

fn bad(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::stage(Stage::Snapshot, format!("{}: {why}", path.display()))
}

fn read_json(path: &Path) -> Result<Value> {
    let bytes = fs::read(path).map_err(Error::io(path))?;
    serde_json::from_slice(&bytes).map_err(|e| bad(path, format!("not JSON: {e}")))
}

/// `name:tag` → (name, tag); the tag is after the last `:` that follows the last `/`.
pub fn split_reference(r: &str) -> (String, String) {
    match r.rfind(':').filter(|&i| !r[i..].contains('/')) {
        Some(i) => (r[..i].to_string(), r[i + 1..].to_string()),
        None => (r.to_string(), "latest".to_string()),
    }
}

/// Reads the image `out` holds; a usage error when `out` is no build output.
pub fn read(out: &Path) -> Result<Base> {
    if !out.join(crate::output::MARKER).is_file() || !out.join("oci/index.json").is_file() {
        return Err(Error::Usage(format!("{} is not a dinv-build output with an image (no {} or oci/index.json in it); give out/<name> of a build", out.display(), crate::output::MARKER)));
    }
    let report_path = out.join(crate::emit::report::REPORT);
    let report = read_json(&report_path)?;
    if let Some(platforms) = report.get("platforms").and_then(|p| p.as_object()) {
        let dirs: Vec<String> = platforms.keys().filter_map(|p| crate::recipe::Arch::of_platform(p)).map(|a| out.join(a.platform_dir()).display().to_string()).collect();
        return Err(Error::Usage(format!("{} is a multi-platform output; a snapshot is of one platform's image: give {}", out.display(), dirs.join(" or "))));
    }
    let reference = report["image"]["reference"].as_str().ok_or_else(|| bad(&report_path, "no image.reference"))?.to_string();
    let settings: SnapshotSection = match report.get("snapshot") {
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| bad(&report_path, format!("snapshot: {e}")))?,
        None => SnapshotSection::default(),
    };
    let (name, tag) = split_reference(&reference);
    let oci = out.join("oci");
    let index_path = oci.join("index.json");
    let index = read_json(&index_path)?;
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    let entry = entries
        .iter()
        .find(|e| e["annotations"][ANNOTATION_REF_NAME].as_str() == Some(tag.as_str()))
        .or(entries.first().filter(|_| entries.len() == 1))
        .ok_or_else(|| bad(&index_path, format!("no manifest tagged {tag:?}")))?;
    let blob = |digest: &str| -> PathBuf { oci.join("blobs/sha256").join(digest.trim_start_matches("sha256:")) };
    let manifest_digest = entry["digest"].as_str().ok_or_else(|| bad(&index_path, "a manifest without a digest"))?.to_string();
    let manifest_path = blob(&manifest_digest);
    let manifest = read_json(&manifest_path)?;
    let config_digest = manifest["config"]["digest"].as_str().ok_or_else(|| bad(&manifest_path, "no config digest"))?.to_string();
    let config_path = blob(&config_digest);
    let config = read_json(&config_path)?;
    let diff_ids = config["rootfs"]["diff_ids"].as_array().cloned().unwrap_or_default();
    let history = config["history"].as_array().cloned().unwrap_or_default();
    let descriptors = manifest["layers"].as_array().cloned().unwrap_or_default();
    if descriptors.len() != diff_ids.len() {
        return Err(bad(&config_path, format!("{} diff_ids for {} layers", diff_ids.len(), descriptors.len())));
    }
    let mut layers = Vec::new();
    for (i, d) in descriptors.iter().enumerate() {
        let digest = d["digest"].as_str().ok_or_else(|| bad(&manifest_path, "a layer without a digest"))?.to_string();
        let path = blob(&digest);
        let size = fs::metadata(&path).map_err(Error::io(&path))?.len();
        layers.push(Layer {
            path,
            media_type: d["mediaType"].as_str().unwrap_or_default().to_string(),
            digest,
            diff_id: diff_ids[i].as_str().unwrap_or_default().to_string(),
            size,
            uncompressed_size: 0,
            created_by: history.get(i).and_then(|h| h["created_by"].as_str()).unwrap_or_default().to_string(),
        });
    }
    Ok(Base { reference, name, tag, manifest_digest, config_digest, config, layers, settings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_at_the_tag() {
        assert_eq!(split_reference("dinv-debian:latest"), ("dinv-debian".into(), "latest".into()));
        assert_eq!(split_reference("registry:5000/org/dinv:1.2"), ("registry:5000/org/dinv".into(), "1.2".into()));
        assert_eq!(split_reference("registry:5000/org/dinv"), ("registry:5000/org/dinv".into(), "latest".into()));
    }
}
