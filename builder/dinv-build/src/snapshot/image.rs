//! The snapshot image: the base image's layers plus one holding the
//! snapshot's files in `dinv_contract::snapshot::SNAPSHOT_DIR`, with the
//! base's config extended by that layer (and the labels naming the base).

use std::collections::BTreeMap;
use std::path::Path;

use dinv_contract::snapshot::SNAPSHOT_DIR;
use dinv_fstree::{BackingFile, Content, Meta, Node, NodeKind, Replace, Tree, TreePath};
use dinv_image::{ImageParts, ImageSpec, Layer, LayerCompression, LayerOptions};
use serde_json::{json, Value};

use super::base::Base;
use crate::error::{Stage, StageFailure};
use crate::progress::Progress;
use crate::{Error, Result};

/// The labels that say which image a snapshot image extends (OCI's own).
pub const LABEL_BASE_NAME: &str = "org.opencontainers.image.base.name";
pub const LABEL_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

fn fail(e: impl Into<StageFailure>) -> Error {
    Error::stage(Stage::Snapshot, e)
}

/// The layer's tree: `dir`'s files under [`SNAPSHOT_DIR`], their parents
/// with the metadata the lower layers give them (`dirs`), so the upper
/// layer changes nothing but adds the directory.
pub fn layer_tree(dir: &Path, dirs: &BTreeMap<String, Meta>) -> Result<Tree> {
    let mut t = Tree::new();
    let rel = SNAPSHOT_DIR.trim_start_matches('/');
    let mut parent = String::new();
    for part in rel.split('/') {
        parent = if parent.is_empty() { part.to_string() } else { format!("{parent}/{part}") };
        let meta = dirs.get(&parent).cloned().unwrap_or_else(|| Meta::root(0o755));
        t.mkdir_p(&TreePath::new(&parent), meta).map_err(|e| fail(StageFailure::from(e).of("snapshot layer")))?;
    }
    let mut names: Vec<_> = std::fs::read_dir(dir).map_err(Error::io(dir))?.flatten().filter(|e| e.path().is_file()).map(|e| e.file_name()).collect();
    names.sort();
    for name in names {
        let src = dir.join(&name);
        let len = std::fs::metadata(&src).map_err(Error::io(&src))?.len();
        let file = BackingFile::open(&src).map_err(Error::io(&src))?;
        let node = Node::new(NodeKind::File(Content::Range { file, offset: 0, len }), Meta::root(0o644));
        t.insert(TreePath::new(&format!("{rel}/{}", name.to_string_lossy())), node, Replace::Deny).map_err(|e| fail(StageFailure::from(e).of("snapshot layer")))?;
    }
    Ok(t)
}

/// The snapshot image's config: the base's, plus `layer` (diff_id and
/// history), the labels naming the base, and `DINV_MEMORY` set to the
/// snapshot's memory when it saved with other than the image's.
pub fn config(base: &Base, layer: &Layer, memory: Option<&str>) -> Value {
    let mut c = base.config.clone();
    if let Some(ids) = c["rootfs"]["diff_ids"].as_array_mut() {
        ids.push(json!(layer.diff_id));
    }
    let created = c["created"].clone();
    match c["history"].as_array_mut() {
        Some(h) => h.push(json!({"created": created, "created_by": layer.created_by})),
        None => c["history"] = json!([{"created": created, "created_by": layer.created_by}]),
    }
    let cfg = &mut c["config"];
    if !cfg["Labels"].is_object() {
        cfg["Labels"] = json!({});
    }
    cfg["Labels"][LABEL_BASE_NAME] = json!(base.reference);
    cfg["Labels"][LABEL_BASE_DIGEST] = json!(base.manifest_digest);
    if let Some(m) = memory {
        let var = dinv_contract::settings::MEMORY;
        let entry = format!("{var}={m}");
        match cfg["Env"].as_array_mut() {
            Some(env) => match env.iter_mut().find(|e| e.as_str().is_some_and(|s| s.starts_with(&format!("{var}=")))) {
                Some(e) => *e = json!(entry),
                None => env.push(json!(entry)),
            },
            None => cfg["Env"] = json!([entry]),
        }
    }
    c
}

/// What the image stage wrote.
pub struct Written {
    pub reference: String,
    pub digests: dinv_image::ImageDigests,
    pub layer: Layer,
}

/// Writes the layer (into `work`), then `staging/image.tar` and `staging/oci/`.
pub fn write(base: &Base, dir: &Path, dirs: &BTreeMap<String, Meta>, tag: &str, memory: Option<&str>, work: &Path, staging: &Path, progress: &Progress) -> Result<Written> {
    let tree = layer_tree(dir, dirs)?;
    let mut opts = LayerOptions::new(work.join("layer"), format!("dinv-build snapshot: {SNAPSHOT_DIR} (a saved guest of {})", base.reference));
    // Every file at the base's directory time (its build's epoch).
    opts.mtime = dirs.get("usr").map(|m| m.mtime);
    opts.compression = if base.zstd() { LayerCompression::Zstd { level: 3 } } else { LayerCompression::Gzip { level: 6 } };
    let (layer, _) = crate::emit::layers::layer(None, &tree, &opts, progress, "layer snapshot")?;
    let mut spec = ImageSpec::new(&base.name, tag, 0);
    spec.created = opts.mtime.unwrap_or(0);
    let mut layers = base.layers.clone();
    layers.push(layer.clone());
    let parts = ImageParts::with_config(&spec, &config(base, &layer, memory), &layers).map_err(|e| fail(StageFailure::from(e).of("--tag")))?;
    let digests = dinv_image::write_docker_archive_parts(&staging.join("image.tar"), &spec, &parts, &layers).map_err(fail)?;
    dinv_image::write_oci_layout_parts(&staging.join("oci"), &spec, &parts, &layers).map_err(fail)?;
    Ok(Written { reference: spec.reference(), digests, layer })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Base {
        Base {
            reference: "dinv-debian:latest".into(),
            name: "dinv-debian".into(),
            tag: "latest".into(),
            manifest_digest: "sha256:m".into(),
            config_digest: "sha256:c".into(),
            config: json!({
                "created": "2024-01-01T00:00:00Z",
                "config": {"Env": ["PATH=/bin", "DINV_MEMORY=512M"], "Labels": {"org.opencontainers.image.title": "dinv-debian"}},
                "rootfs": {"type": "layers", "diff_ids": ["sha256:a", "sha256:b"]},
                "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "runtime"}, {"created": "2024-01-01T00:00:00Z", "created_by": "dinv"}],
            }),
            layers: Vec::new(),
            settings: Default::default(),
        }
    }

    fn layer() -> Layer {
        Layer { path: "/x".into(), media_type: String::new(), digest: "sha256:d".into(), diff_id: "sha256:s".into(), size: 1, uncompressed_size: 1, created_by: "snap".into() }
    }

    #[test]
    fn the_config_extends_the_base() {
        let c = config(&base(), &layer(), None);
        assert_eq!(c["rootfs"]["diff_ids"], json!(["sha256:a", "sha256:b", "sha256:s"]));
        assert_eq!(c["history"][2], json!({"created": "2024-01-01T00:00:00Z", "created_by": "snap"}));
        assert_eq!(c["config"]["Labels"][LABEL_BASE_DIGEST], "sha256:m");
        assert_eq!(c["config"]["Labels"][LABEL_BASE_NAME], "dinv-debian:latest");
        assert_eq!(c["config"]["Labels"]["org.opencontainers.image.title"], "dinv-debian");
        assert_eq!(c["config"]["Env"], json!(["PATH=/bin", "DINV_MEMORY=512M"]));
        let c = config(&base(), &layer(), Some("1G"));
        assert_eq!(c["config"]["Env"], json!(["PATH=/bin", "DINV_MEMORY=1G"]));
    }

    #[test]
    fn the_layer_adds_only_the_snapshot_directory() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("snapshot.json"), "{}").unwrap();
        std::fs::write(d.path().join("state.zst"), "s").unwrap();
        let dirs: BTreeMap<String, Meta> = [("usr".to_string(), Meta { mtime: 5, ..Meta::root(0o755) })].into();
        let t = layer_tree(d.path(), &dirs).unwrap();
        let paths: Vec<String> = t.iter().map(|(p, _)| p.as_str().to_string()).filter(|p| !p.is_empty()).collect();
        assert_eq!(paths, ["usr", "usr/share", "usr/share/dinv", "usr/share/dinv/snapshot", "usr/share/dinv/snapshot/snapshot.json", "usr/share/dinv/snapshot/state.zst"]);
        assert_eq!(t.get(&TreePath::new("usr")).unwrap().meta.mtime, 5);
    }
}
