//! The lock file: exactly which packages, keys and inputs a build used.
//! Data only; `resolve` makes one and checks a recipe against one.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::recipe::inputs_digest;
use crate::sources::ResolvedPackage;
use crate::{Error, Result};

/// `RECIPE.lock` next to the recipe.
pub fn lock_path(recipe: &Path) -> PathBuf {
    let mut s = recipe.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// One locked package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedPackage {
    pub set: String,
    pub source: String,
    pub name: String,
    pub version: String,
    pub arch: String,
    pub checksum: String,
    pub size: u64,
    pub url: String,
    /// The rest of the resolved record, so a locked build reports and
    /// dates (SOURCE_DATE_EPOCH) exactly as the build that wrote the lock.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub installed_size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintainer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// The Debian suite the package comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// The platform (`linux/arm64`) the package is for, in the lock of a
    /// recipe with `image.platforms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl LockedPackage {
    /// A locked package with the set and source it belongs to.
    pub fn from_resolved(set: &str, source: &str, p: &ResolvedPackage) -> LockedPackage {
        LockedPackage {
            set: set.to_string(),
            source: source.to_string(),
            name: p.name.clone(),
            version: p.version.clone(),
            arch: p.arch.clone(),
            checksum: p.checksum.clone(),
            size: p.size,
            url: p.url.clone(),
            installed_size: p.installed_size,
            build_time: p.build_time,
            license: p.license.clone(),
            origin: p.origin.clone(),
            maintainer: p.maintainer.clone(),
            homepage: p.homepage.clone(),
            description: p.description.clone(),
            reasons: p.reasons.clone(),
            suite: p.suite.clone(),
            platform: None,
        }
    }

    /// The package as resolution would have returned it.
    pub fn to_resolved(&self) -> ResolvedPackage {
        ResolvedPackage {
            source: self.source.clone(),
            name: self.name.clone(),
            version: self.version.clone(),
            arch: self.arch.clone(),
            url: self.url.clone(),
            checksum: self.checksum.clone(),
            size: self.size,
            installed_size: self.installed_size,
            license: self.license.clone(),
            origin: self.origin.clone(),
            maintainer: self.maintainer.clone(),
            homepage: self.homepage.clone(),
            description: self.description.clone(),
            build_time: self.build_time,
            reasons: self.reasons.clone(),
            suite: self.suite.clone(),
        }
    }
}

/// One trusted key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedKey {
    pub source: String,
    pub name: String,
    pub sha256: String,
}

/// The whole lock file (TOML, stable order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockFile {
    pub version: u32,
    /// SHA-256 over every input file below, in order.
    pub inputs_sha256: String,
    /// Input file (relative to the recipe's directory when below it) → SHA-256.
    pub inputs: BTreeMap<String, String>,
    pub keys: Vec<LockedKey>,
    pub packages: Vec<LockedPackage>,
}

impl LockFile {
    /// A lock file over these inputs, keys and packages.
    pub fn new(inputs: BTreeMap<String, String>, keys: Vec<LockedKey>, packages: Vec<LockedPackage>) -> LockFile {
        LockFile { version: 1, inputs_sha256: inputs_digest(&inputs), inputs, keys, packages }
    }

    /// Writes the lock file atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = format!("# Written by `dinv-build lock`. Do not edit.\n{}", toml::to_string(self).expect("lock serialises"));
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut tmp = dinv_image::output_temp_file(dir, ".lock-").map_err(Error::io(dir))?;
        std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(Error::io(path))?;
        tmp.persist(path).map_err(|e| Error::io(path)(e.error))?;
        Ok(())
    }

    /// Reads a lock file.
    pub fn read(path: &Path) -> Result<LockFile> {
        let text = fs::read_to_string(path).map_err(Error::io(path))?;
        toml::from_str(&text).map_err(|e| Error::Lock(format!("{}: invalid lock file: {}", path.display(), e.message())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package() -> ResolvedPackage {
        ResolvedPackage {
            source: "alpine".into(),
            name: "busybox".into(),
            version: "1.36.1-r2".into(),
            arch: "x86_64".into(),
            url: "file:///m/main/x86_64/busybox-1.36.1-r2.apk".into(),
            checksum: "Q1abc=".into(),
            size: 10,
            installed_size: 20,
            license: Some("GPL-2.0-only".into()),
            origin: Some("busybox".into()),
            maintainer: None,
            homepage: None,
            description: Some("box".into()),
            build_time: Some(1_700_000_000),
            reasons: vec!["requested (guest.packages)".into()],
            suite: None,
        }
    }

    #[test]
    fn locked_packages_round_trip_through_toml() {
        let lock = LockFile {
            version: 1,
            inputs_sha256: inputs_digest(&BTreeMap::new()),
            inputs: BTreeMap::new(),
            keys: vec![],
            packages: vec![LockedPackage::from_resolved("guest", "alpine", &package())],
        };
        let back: LockFile = toml::from_str(&toml::to_string(&lock).unwrap()).unwrap();
        assert_eq!(back, lock);
        assert_eq!(back.packages[0].to_resolved(), package());
    }

    #[test]
    fn locks_without_the_optional_fields_still_read() {
        let text = "version = 1\ninputs_sha256 = \"x\"\nkeys = []\n[inputs]\n[[packages]]\nset = \"guest\"\nsource = \"a\"\nname = \"n\"\nversion = \"1\"\narch = \"x86_64\"\nchecksum = \"c\"\nsize = 1\nurl = \"u\"\n";
        let lock: LockFile = toml::from_str(text).unwrap();
        let p = lock.packages[0].to_resolved();
        assert_eq!((p.build_time, p.installed_size, p.reasons.len()), (None, 0, 0));
    }
}
