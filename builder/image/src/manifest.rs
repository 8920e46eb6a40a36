//! The JSON documents of an image (config, manifest, index entry), built in
//! memory and shared by both writers so both give the same digests.

use serde_json::{json, Value};

use crate::{
    to_canonical_json, Blob, ImageError, ImageSpec, Layer, ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST,
};

/// Digests of a written image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageDigests {
    /// `sha256:` of the manifest (what `skopeo inspect` calls Digest).
    pub manifest: String,
    pub manifest_size: u64,
    /// `sha256:` of the config (docker's image ID).
    pub config: String,
    pub config_size: u64,
}

/// The serialised config and manifest of an image and the index entry that
/// names it.
#[derive(Clone, Debug)]
pub struct ImageParts {
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    /// Descriptor of the manifest for index.json, with the tag annotations.
    pub index_entry: Value,
    pub digests: ImageDigests,
}

impl ImageParts {
    /// Builds config, manifest and index entry for a spec and its layers.
    pub fn new(spec: &ImageSpec, layers: &[Layer]) -> Result<Self, ImageError> {
        Self::with_config(spec, &spec.config_json(layers), layers)
    }

    /// The same for a config made elsewhere (an image extended by a layer,
    /// whose config is the base's plus that layer); `spec` gives only the
    /// name and tag.
    pub fn with_config(spec: &ImageSpec, config: &Value, layers: &[Layer]) -> Result<Self, ImageError> {
        spec.validate()?;
        let config = to_canonical_json(config);
        let config_blob = Blob::of(&config);
        let manifest = to_canonical_json(&json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_MANIFEST,
            "config": {"mediaType": MEDIA_TYPE_CONFIG, "digest": config_blob.digest, "size": config_blob.size},
            "layers": layers.iter().map(|l| json!({
                "mediaType": l.media_type, "digest": l.digest, "size": l.size,
            })).collect::<Vec<_>>(),
        }));
        let manifest_blob = Blob::of(&manifest);
        let index_entry = json!({
            "mediaType": MEDIA_TYPE_MANIFEST,
            "digest": manifest_blob.digest,
            "size": manifest_blob.size,
            "annotations": {
                ANNOTATION_REF_NAME: spec.tag,
                ANNOTATION_CONTAINERD_NAME: spec.full_reference(),
            },
        });
        let digests = ImageDigests {
            manifest: manifest_blob.digest,
            manifest_size: manifest_blob.size,
            config: config_blob.digest,
            config_size: config_blob.size,
        };
        Ok(ImageParts { config, manifest, index_entry, digests })
    }

    /// index.json listing `entries` (sorted by their serialised form).
    pub fn index_json(entries: &[Value]) -> Vec<u8> {
        let mut sorted: Vec<Vec<u8>> = entries.iter().map(to_canonical_json).collect();
        sorted.sort();
        let manifests: Vec<Value> = sorted.iter().map(|b| serde_json::from_slice(b).expect("own JSON")).collect();
        to_canonical_json(&json!({"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": manifests}))
    }

    /// The `oci-layout` file.
    pub fn oci_layout() -> &'static [u8] {
        br#"{"imageLayoutVersion":"1.0.0"}"#
    }

    /// docker's manifest.json for the docker-archive format.
    pub fn docker_manifest(&self, spec: &ImageSpec, layers: &[Layer]) -> Vec<u8> {
        let path = |digest: &str| format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
        to_canonical_json(&json!([{
            "Config": path(&self.digests.config),
            "RepoTags": [spec.reference()],
            "Layers": layers.iter().map(|l| path(&l.digest)).collect::<Vec<_>>(),
        }]))
    }
}
