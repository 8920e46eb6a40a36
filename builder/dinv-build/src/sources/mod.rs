//! Package sources: turn a recipe's `[sources.NAME]` into a resolved,
//! fetched, verified set of packages, and unpack them into a tree.
//!
//! Each source type (apk, deb) has its own module; they share the solver,
//! the cache and the [`ResolvedPackage`] record that the lock file, the SBOM
//! and the report read.

pub mod apk;
mod common;
pub use common::UnpackStats;
pub mod deb;

use serde::{Deserialize, Serialize};

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
}

impl ResolvedPackage {
    /// `name-version`, as used in messages.
    pub fn id(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }
}
