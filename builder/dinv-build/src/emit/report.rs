//! `report.json`: what was built, from what, and how long each stage took.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::outputs::{ImageSummary, KernelSummary, RootfsSummary};
use crate::{Error, Result};

/// File name of the report in the output directory.
pub const REPORT: &str = "report.json";

/// `report.json` fields that describe the run (where, how long, what was
/// downloaded or reused, memory, the lock installed from, what `push`
/// recorded later), not the artifacts: two builds of the same inputs may
/// differ in these only.
/// `current` is one too: it compares the packages with the suites as they
/// were when the build ran (a locked build does not compare).
pub const RUN_FIELDS: &[&str] = &["recipe", "out_dir", "seconds", "stages", "downloaded_bytes", "cached_layers", "peak_rss_bytes", "current", "lock_sha256", "pushed"];

/// One emitted file.
#[derive(Clone, Debug, Serialize)]
pub struct Output {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// `report.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub recipe: PathBuf,
    pub out_dir: PathBuf,
    pub seconds: f64,
    pub outputs: Vec<Output>,
    pub packages: BTreeMap<String, usize>,
    pub stages: BTreeMap<String, f64>,
    pub downloaded_bytes: u64,
    /// Image layers taken from the layer cache instead of compressed.
    pub cached_layers: Vec<String>,
    /// The build's peak resident memory (Linux `VmHWM`), when known.
    pub peak_rss_bytes: Option<u64>,
    /// What left the guest tree besides packages, by reason
    /// (`rootfs.strip`, `guest.remove`, `kernel.modules`); the SBOM still
    /// lists every package.
    pub removed: Vec<crate::configure::Removal>,
    /// The guest kernel, when the guest has one.
    pub kernel: Option<KernelSummary>,
    /// What the ext4 root filesystem holds.
    pub rootfs: RootfsSummary,
    /// The Docker image, when the guest has a kernel to boot.
    pub image: Option<ImageSummary>,
    /// What `runtime.keep` left in the image's runtime layer.
    pub runtime_layer: Option<crate::configure::runtime::RuntimeSummary>,
    /// For Debian sources: packages per suite, updates and security fixes,
    /// and whether the guest is current (`current.ok`).
    pub current: Option<crate::currency::Currency>,
    /// The recipe's `[snapshot]`, for `dinv-build snapshot OUT`, which reads
    /// this output and not the recipe.
    pub snapshot: crate::recipe::SnapshotSection,
    /// What the build was made from, for provenance (`push --attest`).
    pub build_inputs: BuildInputs,
    /// SHA-256 of RECIPE.lock when the build installed from it (`--locked`):
    /// a run field, as a locked build's outputs equal the unlocked one's.
    pub lock_sha256: Option<String>,
}

/// The digests of what a build was made from.
#[derive(Clone, Debug, Serialize)]
pub struct BuildInputs {
    /// SHA-256 of the recipe file given.
    pub recipe_sha256: String,
    /// One SHA-256 over every input file of the recipe (its `extends`
    /// chain, fragments, overlays, files), as the lock records it.
    pub inputs_sha256: String,
    /// The build's SOURCE_DATE_EPOCH.
    pub source_date_epoch: i64,
}

/// Every regular file directly in `dir`, sorted, with size and SHA-256
/// (from `hashed` when an emitter took it already, else hashed here on
/// every core: the root filesystem and image are large).
pub fn outputs(dir: &Path, hashed: BTreeMap<String, String>) -> Result<Vec<Output>> {
    let mut files: Vec<_> = fs::read_dir(dir).map_err(Error::io(dir))?.filter_map(|e| e.ok()).filter(|e| e.path().is_file() && e.file_name() != crate::output::MARKER).collect();
    files.sort_by_key(|e| e.file_name());
    let threads = dinv_image::default_threads();
    crate::sources::parallel(&files, threads, |e| {
        let size = e.metadata().map_err(Error::io(e.path()))?.len();
        let name = e.file_name().to_string_lossy().into_owned();
        let sha256 = match hashed.get(&name) {
            Some(h) => h.clone(),
            None => crate::sources::sha256_file(&e.path())?,
        };
        Ok(Output { name, size, sha256 })
    })
}

/// This process's peak resident set size so far (`VmHWM` in
/// /proc/self/status), in bytes.
pub fn peak_rss() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

impl Report {
    /// Writes the report into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let p = dir.join(REPORT);
        fs::write(&p, serde_json::to_vec_pretty(self).expect("json")).map_err(Error::io(&p))
    }
}
