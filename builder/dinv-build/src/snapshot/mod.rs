//! `dinv-build snapshot OUT`: boots a built image once and writes
//! `OUT/snapshot/` (`image.tar`, `oci/`: the image plus one layer holding
//! a saved, running guest; `report.json`). The launcher of that image
//! restores the guest instead of booting when it can (see the launcher's
//! `start.rs`).
//!
//! Steps: read the base image from OUT (`base`), unpack its layers into a
//! work directory (`extract`), run the image's own launcher and QEMU there
//! to boot, quiesce and save the guest (`run`), then write the new layer
//! and image (`image`). A save is not bit-identical by nature (the guest's
//! random state, timing), so this stays out of `build` and `verify`; the
//! base image's digests are recorded in the snapshot and in report.json.
//! The output is staged and published like a build's (the `--out` guard).

mod base;
mod extract;
mod image;
mod run;

use std::path::{Path, PathBuf};
use std::time::Instant;

use dinv_contract::snapshot::{self as snap, BaseImage, Manifest};
use serde::Serialize;
use serde_json::Value;

use crate::error::Stage;
use crate::output::{Protected, Target};
use crate::progress::Progress;
use crate::{Error, Result};

pub use image::{LABEL_BASE_DIGEST, LABEL_BASE_NAME};

/// What `snapshot` is asked for.
#[derive(Clone, Debug, Default)]
pub struct SnapshotOptions {
    /// Where to write; default `OUT/snapshot`.
    pub dest: Option<PathBuf>,
    /// The image's tag; default `<tag>-snapshot`.
    pub tag: Option<String>,
}

/// `OUT/snapshot/report.json`.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotReport {
    pub out_dir: PathBuf,
    /// Set when the recipe turned snapshots off: nothing was written.
    pub skipped: Option<String>,
    pub base_image: Option<BaseImage>,
    pub image: Option<ImageReport>,
    /// What the snapshot fixes (a restore needs the same) and how it was made.
    pub settings: Option<Value>,
    pub sizes: Option<Value>,
    pub seconds: f64,
    /// extract, boot, quiesce, save, layer (the image writing included).
    pub steps: Vec<(String, f64)>,
}

/// The snapshot image.
#[derive(Clone, Debug, Serialize)]
pub struct ImageReport {
    pub reference: String,
    pub manifest_digest: String,
    pub config_digest: String,
    pub layer_digest: String,
    pub layer_media_type: String,
    /// Compressed size of the snapshot layer.
    pub layer_bytes: u64,
}

fn round(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

/// Boots the image in `out`, saves it, and publishes the snapshot image.
pub fn snapshot(out: &Path, opts: &SnapshotOptions, progress: &Progress, cache_root: Option<PathBuf>) -> Result<SnapshotReport> {
    let started = Instant::now();
    let base = base::read(out)?;
    // The snapshot boots the image's own QEMU on this machine.
    let host = crate::recipe::Arch::of_source_arch(std::env::consts::ARCH);
    let image_arch = base.config["architecture"].as_str().unwrap_or("amd64");
    if crate::recipe::Arch::of_source_arch(image_arch) != host {
        return Err(Error::Usage(format!(
            "{}: the image is for {image_arch}, and a snapshot boots the image's own QEMU: take it on a {image_arch} machine",
            base.reference
        )));
    }
    let dest = opts.dest.clone().unwrap_or_else(|| out.join("snapshot"));
    let mut report = SnapshotReport { out_dir: dest.clone(), skipped: None, base_image: None, image: None, settings: None, sizes: None, seconds: 0.0, steps: Vec::new() };
    if !base.settings.enabled {
        report.skipped = Some(format!("the recipe of {} turns snapshots off ([snapshot] enabled = false)", base.reference));
        return Ok(report);
    }
    let target = Target::check(&dest, &Protected { recipes: Vec::new(), cache: cache_root })?;
    let staging = target.stage()?;
    let tag = opts.tag.clone().unwrap_or_else(|| format!("{}-snapshot", base.tag));
    // The work directory lives in the staging one: an interrupted run
    // leaves nothing the next one does not remove.
    let work = staging.path().join(".work");
    let root = work.join("root");
    let step = |name: &str, t: Instant| (name.to_string(), round(t.elapsed().as_secs_f64()));

    let t = Instant::now();
    progress.status("Unpacking", format!("{} ({} layers)", base.reference, base.layers.len()));
    let unpacked = extract::unpack(&base.layers, &root)?;
    report.steps.push(step("extract", t));

    progress.status("Booting", format!("{} under TCG with its own QEMU, to save it", base.reference));
    let spinner = progress.spinner("snapshot", "boot, quiesce, save");
    let saved = run::save(&root, &work, &base.settings);
    spinner.finish_and_clear();
    let saved = saved?;
    let seconds = |k: &str| saved.report[k].as_f64().unwrap_or(0.0);
    for k in ["boot", "quiesce", "save"] {
        report.steps.push((k.to_string(), seconds(&format!("{k}_s"))));
    }

    // The snapshot names its base.
    let manifest_path = saved.dir.join(snap::MANIFEST);
    let mut manifest = Manifest::parse(&std::fs::read(&manifest_path).map_err(Error::io(&manifest_path))?).map_err(|e| Error::stage(Stage::Snapshot, format!("{}: {e}", manifest_path.display())))?;
    let base_image = BaseImage { reference: base.reference.clone(), manifest_digest: base.manifest_digest.clone(), config_digest: base.config_digest.clone() };
    manifest.base_image = Some(base_image.clone());
    let mut json = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
    json.push(b'\n');
    std::fs::write(&manifest_path, json).map_err(Error::io(&manifest_path))?;

    let t = Instant::now();
    progress.status("Writing", format!("{}:{tag} (image.tar and oci/)", base.name));
    let memory = base.settings.memory.as_deref();
    let written = image::write(&base, &saved.dir, &unpacked.dirs, &tag, memory, &work, staging.path(), progress)?;
    report.steps.push(step("layer", t));
    std::fs::remove_dir_all(&work).map_err(Error::io(&work))?;

    report.base_image = Some(base_image);
    report.image = Some(ImageReport {
        reference: written.reference,
        manifest_digest: written.digests.manifest.clone(),
        config_digest: written.digests.config.clone(),
        layer_digest: written.layer.digest.clone(),
        layer_media_type: written.layer.media_type.clone(),
        layer_bytes: written.layer.size,
    });
    let mut settings = serde_json::to_value(&manifest.profile).expect("a profile serialises");
    settings["quiesce"] = serde_json::json!(base.settings.quiesce);
    settings["command_line"] = serde_json::json!(manifest.command_line);
    // What the guest said while quiescing (what each step freed, and its time).
    settings["quiesced"] = serde_json::json!(saved.report["quiesce"].as_str().unwrap_or_default().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>());
    report.settings = Some(settings);
    let mut sizes = serde_json::Map::new();
    for k in ["memory_bytes", "memory_data_bytes", "state_bytes", "root_overlay_bytes", "root_overlay_data_bytes", "docker_disk_bytes", "docker_disk_data_bytes"] {
        sizes.insert(k.into(), saved.report[k].clone());
    }
    sizes.insert("layer_bytes".into(), written.layer.size.into());
    sizes.insert("layer_uncompressed_bytes".into(), written.layer.uncompressed_size.into());
    report.sizes = Some(Value::Object(sizes));
    report.seconds = round(started.elapsed().as_secs_f64());
    let path = staging.path().join("report.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&report).expect("a report serialises")).map_err(Error::io(&path))?;
    staging.publish()?;
    Ok(report)
}
