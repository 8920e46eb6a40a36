//! `report.json`: what was built, from what, and how long each stage took.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::outputs::{ImageSummary, KernelSummary, RootfsSummary};
use crate::{Error, Result};

/// File name of the report in the output directory.
pub const REPORT: &str = "report.json";

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
    /// The guest kernel, when the guest has one.
    pub kernel: Option<KernelSummary>,
    /// What the ext4 root filesystem holds.
    pub rootfs: RootfsSummary,
    /// The Docker image, when the guest has a kernel to boot.
    pub image: Option<ImageSummary>,
}

/// Every regular file directly in `dir`, sorted, with size and SHA-256.
pub fn outputs(dir: &Path) -> Result<Vec<Output>> {
    let mut names: Vec<_> = fs::read_dir(dir).map_err(Error::io(dir))?.filter_map(|e| e.ok()).collect();
    names.sort_by_key(|e| e.file_name());
    let mut out = Vec::new();
    for e in names {
        if e.path().is_file() {
            let size = e.metadata().map_err(Error::io(e.path()))?.len();
            let sha256 = crate::sources::sha256_file(&e.path())?;
            out.push(Output { name: e.file_name().to_string_lossy().into_owned(), size, sha256 });
        }
    }
    Ok(out)
}

impl Report {
    /// Writes the report into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let p = dir.join(REPORT);
        fs::write(&p, serde_json::to_vec_pretty(self).expect("json")).map_err(Error::io(&p))
    }
}
