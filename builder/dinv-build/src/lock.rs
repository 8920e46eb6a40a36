//! The lock file: exactly which packages, keys and inputs a build used.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::pipeline::Resolved;
use crate::recipe::LoadedRecipe;
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

fn hash_path(p: &Path, base: &Path, out: &mut BTreeMap<String, String>) -> Result<()> {
    if p.is_dir() {
        let mut entries: Vec<_> = fs::read_dir(p).map_err(Error::io(p))?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        entries.sort();
        for e in entries {
            hash_path(&e, base, out)?;
        }
    } else if p.is_file() {
        let bytes = fs::read(p).map_err(Error::io(p))?;
        let key = p.strip_prefix(base).unwrap_or(p).display().to_string();
        out.insert(key, hex::encode(Sha256::digest(&bytes)));
    }
    Ok(())
}

/// Hashes the recipe files and every file or directory they reference.
pub fn input_hashes(l: &LoadedRecipe) -> Result<BTreeMap<String, String>> {
    let base = l.path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut out = BTreeMap::new();
    for f in &l.files {
        hash_path(f, &base, &mut out)?;
    }
    let r = &l.recipe;
    let mut paths: Vec<&str> = Vec::new();
    paths.extend(r.kernel.fragments.iter().map(String::as_str));
    paths.extend(r.overlays.iter().map(|o| o.path.as_str()));
    paths.extend(r.files.iter().filter_map(|f| f.source.as_deref()));
    paths.extend(r.docker.ca_certificates.iter().map(|c| c.file.as_str()));
    for p in paths {
        hash_path(Path::new(p), &base, &mut out)?;
    }
    Ok(out)
}

impl LockFile {
    /// A lock file for a resolved recipe.
    pub fn new(l: &LoadedRecipe, r: &Resolved) -> Result<LockFile> {
        let inputs = input_hashes(l)?;
        let mut all = Sha256::new();
        for (k, v) in &inputs {
            all.update(k.as_bytes());
            all.update(b"\0");
            all.update(v.as_bytes());
            all.update(b"\n");
        }
        let keys = r
            .sources
            .iter()
            .flat_map(|(s, src)| src.key_digests().into_iter().map(move |(name, sha256)| LockedKey { source: s.clone(), name, sha256 }))
            .collect();
        let packages = r
            .sets
            .iter()
            .flat_map(|s| {
                s.packages.iter().map(move |p| LockedPackage {
                    set: s.set.clone(),
                    source: s.source.clone(),
                    name: p.name.clone(),
                    version: p.version.clone(),
                    arch: p.arch.clone(),
                    checksum: p.checksum.clone(),
                    size: p.size,
                    url: p.url.clone(),
                })
            })
            .collect();
        Ok(LockFile { version: 1, inputs_sha256: hex::encode(all.finalize()), inputs, keys, packages })
    }

    /// Writes the lock file atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = format!("# Written by `dinv-build lock`. Do not edit.\n{}", toml::to_string(self).expect("lock serialises"));
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(Error::io(dir))?;
        std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(Error::io(path))?;
        tmp.persist(path).map_err(|e| Error::io(path)(e.error))?;
        Ok(())
    }

    /// Reads a lock file.
    pub fn read(path: &Path) -> Result<LockFile> {
        let text = fs::read_to_string(path).map_err(Error::io(path))?;
        toml::from_str(&text).map_err(|e| Error::Usage(format!("{}: invalid lock file: {}", path.display(), e.message())))
    }
}
