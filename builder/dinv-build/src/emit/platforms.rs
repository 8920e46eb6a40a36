//! A multi-platform build's top level (`image.platforms`): each platform's
//! whole output is in its own directory (`linux-amd64/`, `linux-arm64/`),
//! and the top level joins them:
//!
//! - `oci/`: an OCI layout whose `index.json` names one OCI image index,
//!   tagged, that lists each platform's manifest with its platform;
//! - `image-linux-<arch>.tar`: each platform's docker-archive, and
//!   `image.tar`: the one of the machine that builds (else the first);
//! - `report.json`: each platform's report, the index and the files here.
//!
//! Files are hard links to the platforms' own where the filesystem allows.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use dinv_image::{ImageSpec, PlatformImage};
use serde::Serialize;

use super::report::{self, BuildInputs, Output, Report, REPORT};
use crate::recipe::{Arch, LoadedRecipe};
use crate::{Error, Result};

/// The multi-platform `report.json`.
#[derive(Clone, Debug, Serialize)]
pub struct PlatformsReport {
    pub recipe: PathBuf,
    pub out_dir: PathBuf,
    pub seconds: f64,
    /// The files directly in the output directory.
    pub outputs: Vec<Output>,
    /// The multi-platform image.
    pub image: IndexSummary,
    /// Each platform's report (also in its directory), by platform.
    pub platforms: BTreeMap<String, Report>,
    /// What the build was made from: the recipe, all platforms' inputs.
    pub build_inputs: BuildInputs,
}

/// The OCI image index of a multi-platform build.
#[derive(Clone, Debug, Serialize)]
pub struct IndexSummary {
    pub reference: String,
    /// `sha256:` of the image index (what a registry's tag names).
    pub index_digest: String,
    pub manifests: Vec<PlatformManifest>,
}

/// One platform's entry in the index.
#[derive(Clone, Debug, Serialize)]
pub struct PlatformManifest {
    pub platform: String,
    pub manifest_digest: String,
    /// Its docker-archive, in the output directory.
    pub archive: String,
    /// Its whole output, a directory of the output directory.
    pub dir: String,
}

/// The directory of a platform's output: `linux-arm64`.
pub fn platform_dir(v: &LoadedRecipe) -> String {
    v.platform.expect("a platform's recipe").platform_dir()
}

/// The docker-archive of a platform at the top level.
pub fn archive_name(arch: Arch) -> String {
    format!("image-{}.tar", arch.platform_dir())
}

/// Hard-links `from` to `to`, or copies it where links cannot be made.
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if fs::hard_link(from, to).is_err() {
        fs::copy(from, to).map_err(Error::io(to))?;
    }
    Ok(())
}

/// Writes the top level of a multi-platform output into `dir` (to be
/// published as `out`) from the platforms' outputs already in it.
pub fn join(l: &LoadedRecipe, built: &[(&LoadedRecipe, Report)], dir: &Path, out: &Path, started: Instant) -> Result<PlatformsReport> {
    let mut hashed = BTreeMap::new();
    let mut entries = Vec::new();
    let mut layouts = Vec::new();
    for (v, r) in built {
        let arch = v.platform.expect("a platform's recipe");
        let pdir = dir.join(arch.platform_dir());
        let Some(image) = &r.image else {
            return Err(Error::Usage(format!("platform {} built no image (its guest has no kernel or the recipe no runtime): a multi-platform build joins images", arch.platform())));
        };
        let archive = archive_name(arch);
        link_or_copy(&pdir.join(super::outputs::IMAGE_TAR), &dir.join(&archive))?;
        if let Some(o) = r.outputs.iter().find(|o| o.name == super::outputs::IMAGE_TAR) {
            hashed.insert(archive.clone(), o.sha256.clone());
        }
        layouts.push((arch, pdir.join("oci"), image.manifest_digest.clone()));
        entries.push(PlatformManifest { platform: arch.platform(), manifest_digest: image.manifest_digest.clone(), archive, dir: arch.platform_dir() });
    }
    let platforms: Vec<PlatformImage> = layouts.iter().map(|(arch, layout, digest)| PlatformImage { architecture: arch.oci(), os: "linux", layout, manifest_digest: digest }).collect();
    let spec = ImageSpec::new(l.recipe.image.name.clone(), l.recipe.image.tag.clone(), 0);
    let index = dinv_image::write_oci_index_layout(&dir.join("oci"), &spec, &platforms).map_err(|e| Error::stage(crate::error::Stage::Image, e))?;
    // image.tar: the platform of this machine, else the first.
    let host = built.iter().find(|(v, _)| v.platform == Arch::host()).unwrap_or(&built[0]);
    let host_arch = host.0.platform.expect("a platform's recipe");
    link_or_copy(&dir.join(archive_name(host_arch)), &dir.join(super::outputs::IMAGE_TAR))?;
    if let Some(sha) = hashed.get(&archive_name(host_arch)).cloned() {
        hashed.insert(super::outputs::IMAGE_TAR.to_string(), sha);
    }
    let first = &built[0].1.build_inputs;
    let report = PlatformsReport {
        recipe: l.path.clone(),
        out_dir: out.to_path_buf(),
        seconds: started.elapsed().as_secs_f64(),
        outputs: report::outputs(dir, hashed)?,
        image: IndexSummary { reference: spec.reference(), index_digest: index.digest, manifests: entries },
        platforms: built.iter().map(|(v, r)| (v.platform.expect("a platform's recipe").platform(), r.clone())).collect(),
        build_inputs: BuildInputs { recipe_sha256: first.recipe_sha256.clone(), inputs_sha256: crate::recipe::inputs_digest(&l.inputs), source_date_epoch: first.source_date_epoch },
    };
    let p = dir.join(REPORT);
    fs::write(&p, serde_json::to_vec_pretty(&report).expect("json")).map_err(Error::io(&p))?;
    Ok(report)
}
