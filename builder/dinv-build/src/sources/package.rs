//! What every package source is and yields: the [`PackageSource`] trait
//! and the [`ResolvedPackage`] record.

use std::collections::BTreeMap;
use std::path::PathBuf;

use dinv_fstree::Tree;
use serde::{Deserialize, Serialize};

use crate::cache::Cache;
use crate::context::BuildEnv;
use crate::Result;

/// One package chosen by resolution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedPackage {
    /// The recipe's source name.
    pub source: String,
    pub name: String,
    pub version: String,
    pub arch: String,
    /// Where it is downloaded from.
    pub url: String,
    /// Integrity checksum from the signed index: `Q1…` for apk, hex SHA-256 for deb.
    pub checksum: String,
    /// Download size in bytes.
    pub size: u64,
    pub installed_size: u64,
    pub license: Option<String>,
    /// Source package (apk `o:`, deb `Source`).
    pub origin: Option<String>,
    pub maintainer: Option<String>,
    pub homepage: Option<String>,
    pub description: Option<String>,
    /// Build time (apk `t:`), seconds since the epoch.
    pub build_time: Option<i64>,
    /// Why it is in the set.
    pub reasons: Vec<String>,
    /// The Debian suite it comes from (`trixie-security`): the first of
    /// the source's suites that lists this version. None for apk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
}

impl ResolvedPackage {
    /// `name-version`, as used in messages.
    pub fn id(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }
}

/// The package format of a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    Apk,
    Deb,
}

impl SourceKind {
    /// `apk` or `deb` (SBOM purls).
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Apk => "apk",
            SourceKind::Deb => "deb",
        }
    }
}

/// A package source, opened: from its verified indexes, or from a lock
/// file's packages (keys only).
pub trait PackageSource: Send + Sync {
    /// The package format.
    fn kind(&self) -> SourceKind;

    /// Resolves requested packages (in the source's own syntax) into
    /// packages in install order; `reason` is recorded on each requested
    /// package, `set` names the set in errors.
    fn resolve(&self, packages: &[String], reason: &str, set: &str) -> Result<Vec<ResolvedPackage>>;

    /// Downloads every package not yet in the cache, verifying each before
    /// it enters the cache. Returns the bytes downloaded.
    fn fetch(&self, pkgs: &[ResolvedPackage], env: &BuildEnv) -> Result<u64>;

    /// Verifies each cached package again and unpacks its data into the
    /// tree in install order.
    fn unpack(&self, pkgs: &[ResolvedPackage], env: &BuildEnv, tree: &mut Tree) -> Result<UnpackStats>;

    /// SHA-256 of every trusted key file, by file name (the lock file).
    fn key_digests(&self) -> &BTreeMap<String, String>;

    /// Where a fetched package file is in the cache.
    fn cache_path(&self, cache: &Cache, p: &ResolvedPackage) -> Result<PathBuf>;

    /// A package's file name inside a vendor directory, by its checksum:
    /// `apk-q1/<hex>` or `sha256/<hex>`.
    fn vendor_name(&self, p: &ResolvedPackage) -> Result<PathBuf>;

    /// SHA-256 (hex) of a fetched package file (the SBOM).
    fn file_sha256(&self, cache: &Cache, p: &ResolvedPackage) -> Result<String>;

    /// The version the source's indexes would install for `name` now (the
    /// highest of any suite); None for a source opened from a lock file,
    /// or when the source does not say (apk).
    fn newest_version(&self, _name: &str) -> Option<String> {
        None
    }

    /// Every package name the index knows (for "did you mean"); none for
    /// a source opened from a lock file.
    fn package_names(&self) -> Vec<&str> {
        Vec::new()
    }
}

/// Totals of an unpack.
#[derive(Clone, Copy, Debug, Default)]
pub struct UnpackStats {
    pub packages: usize,
    pub entries: usize,
    /// Uncompressed data-archive bytes.
    pub bytes: u64,
}
