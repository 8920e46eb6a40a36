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

use dinv_image::{to_canonical_json, Blob, ImageParts, ImageSpec, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST};
use serde::Serialize;
use serde_json::json;

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

fn write_blob(blobs: &Path, bytes: &[u8]) -> Result<Blob> {
    let blob = Blob::of(bytes);
    let p = blobs.join(blob.digest.trim_start_matches("sha256:"));
    fs::write(&p, bytes).map_err(Error::io(&p))?;
    Ok(blob)
}

/// The image index listing each platform's manifest (in the recipe's order).
pub fn index_document(manifests: &[(Arch, String, u64)]) -> Vec<u8> {
    to_canonical_json(&json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": manifests.iter().map(|(arch, digest, size)| json!({
            "mediaType": MEDIA_TYPE_MANIFEST,
            "digest": digest,
            "size": size,
            "platform": {"architecture": arch.oci(), "os": "linux"},
        })).collect::<Vec<_>>(),
    }))
}

/// Writes the top level of a multi-platform output into `dir` (to be
/// published as `out`) from the platforms' outputs already in it.
pub fn join(l: &LoadedRecipe, built: &[(&LoadedRecipe, Report)], dir: &Path, out: &Path, started: Instant) -> Result<PlatformsReport> {
    let oci = dir.join("oci");
    let blobs = oci.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(Error::io(&blobs))?;
    let mut manifests = Vec::new();
    let mut entries = Vec::new();
    let mut hashed = BTreeMap::new();
    for (v, r) in built {
        let arch = v.platform.expect("a platform's recipe");
        let pdir = dir.join(arch.platform_dir());
        let Some(image) = &r.image else {
            return Err(Error::Usage(format!("platform {} built no image (its guest has no kernel or the recipe no runtime): a multi-platform build joins images", arch.platform())));
        };
        // Every blob of the platform's layout, shared by name (digest).
        let from = pdir.join("oci/blobs/sha256");
        for e in fs::read_dir(&from).map_err(Error::io(&from))? {
            let e = e.map_err(Error::io(&from))?;
            let to = blobs.join(e.file_name());
            if !to.exists() {
                link_or_copy(&e.path(), &to)?;
            }
        }
        let manifest = from.join(image.manifest_digest.trim_start_matches("sha256:"));
        let size = fs::metadata(&manifest).map_err(Error::io(&manifest))?.len();
        manifests.push((arch, image.manifest_digest.clone(), size));
        let archive = archive_name(arch);
        link_or_copy(&pdir.join(super::outputs::IMAGE_TAR), &dir.join(&archive))?;
        if let Some(o) = r.outputs.iter().find(|o| o.name == super::outputs::IMAGE_TAR) {
            hashed.insert(archive.clone(), o.sha256.clone());
        }
        entries.push(PlatformManifest { platform: arch.platform(), manifest_digest: image.manifest_digest.clone(), archive, dir: arch.platform_dir() });
    }
    let index = write_blob(&blobs, &index_document(&manifests))?;
    let spec = ImageSpec::new(l.recipe.image.name.clone(), l.recipe.image.tag.clone(), 0);
    let entry = json!({
        "mediaType": MEDIA_TYPE_INDEX,
        "digest": index.digest,
        "size": index.size,
        "annotations": {
            dinv_image::ANNOTATION_REF_NAME: spec.tag,
            dinv_image::ANNOTATION_CONTAINERD_NAME: spec.full_reference(),
        },
    });
    let p = oci.join("index.json");
    fs::write(&p, ImageParts::index_json(&[entry])).map_err(Error::io(&p))?;
    let p = oci.join("oci-layout");
    fs::write(&p, ImageParts::oci_layout()).map_err(Error::io(&p))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_lists_each_platform_in_order() {
        let doc = index_document(&[(Arch::X86_64, "sha256:aa".into(), 10), (Arch::Aarch64, "sha256:bb".into(), 11)]);
        let v: serde_json::Value = serde_json::from_slice(&doc).unwrap();
        assert_eq!(v["mediaType"], MEDIA_TYPE_INDEX);
        assert_eq!(v["manifests"][0]["platform"], json!({"architecture": "amd64", "os": "linux"}));
        assert_eq!(v["manifests"][1]["platform"], json!({"architecture": "arm64", "os": "linux"}));
        assert_eq!(v["manifests"][1]["digest"], "sha256:bb");
        assert_eq!(v["manifests"][1]["size"], 11);
        assert_eq!(archive_name(Arch::Aarch64), "image-linux-arm64.tar");
    }
}
