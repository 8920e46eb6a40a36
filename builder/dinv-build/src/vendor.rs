//! Vendor directories: every package blob a (locked) build needs, named by
//! its checksum, so the build can run with no network and no mirror.
//!
//! Layout: `DIR/apk-q1/<hex of the Q1 digest>` for apk packages,
//! `DIR/sha256/<hex>` for `.deb` files. A vendored blob is read in place
//! of its URL and verified like a download before it enters the cache.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::context::BuildEnv;
use crate::resolve::Resolved;
use crate::{Error, Result};

/// Package URL → vendored file, for every package whose blob `dir` holds.
pub fn url_map(dir: &Path, r: &Resolved) -> Result<HashMap<String, PathBuf>> {
    if !dir.is_dir() {
        return Err(Error::Usage(format!("--vendor: {} is not a directory (write one with `dinv-build fetch RECIPE --locked --vendor DIR`)", dir.display())));
    }
    let mut map = HashMap::new();
    for set in r.sets() {
        let src = r.source_of(set);
        for p in &set.packages {
            let file = dir.join(src.vendor_name(p)?);
            if file.is_file() {
                map.insert(p.url.clone(), file);
            } else {
                tracing::debug!(package = %p.id(), file = %file.display(), "not vendored");
            }
        }
    }
    Ok(map)
}

/// What `fetch --vendor` did.
#[derive(Clone, Debug, Serialize)]
pub struct VendorSummary {
    pub dir: PathBuf,
    pub packages: usize,
    /// Blobs newly written into the directory.
    pub written: usize,
    pub bytes: u64,
}

/// Fetches every package of `r` into the cache (verified as usual), then
/// copies each blob into `dir` under its checksum name.
pub fn write(env: &BuildEnv, r: &Resolved, dir: &Path) -> Result<VendorSummary> {
    let mut summary = VendorSummary { dir: dir.to_path_buf(), packages: 0, written: 0, bytes: 0 };
    for set in r.sets() {
        let src = r.source_of(set);
        src.fetch(&set.packages, env)?;
        for p in &set.packages {
            summary.packages += 1;
            let dest = dir.join(src.vendor_name(p)?);
            let from = src.cache_path(&env.cache, p)?;
            let size = fs::metadata(&from).map_err(Error::io(&from))?.len();
            // Names are checksums: an existing file of the right size is this blob.
            if fs::metadata(&dest).map(|m| m.len() == size).unwrap_or(false) {
                continue;
            }
            let parent = dest.parent().expect("vendor paths have a parent");
            fs::create_dir_all(parent).map_err(Error::io(parent))?;
            let bytes = fs::read(&from).map_err(Error::io(&from))?;
            let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(Error::io(parent))?;
            tmp.write_all(&bytes).map_err(Error::io(tmp.path()))?;
            tmp.persist(&dest).map_err(|e| Error::io(&dest)(e.error))?;
            summary.written += 1;
            summary.bytes += size;
        }
    }
    Ok(summary)
}
