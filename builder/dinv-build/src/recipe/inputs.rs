//! Digests of every file a recipe uses, computed once at load: the lock
//! file records them and the root filesystem's ids are derived from them.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::error::RecipeError;
use super::loaded::LoadedRecipe;

fn hash_path(p: &Path, base: &Path, out: &mut BTreeMap<String, String>) -> Result<(), RecipeError> {
    let unreadable = |e: std::io::Error| RecipeError::file(None, format!("cannot read {}: {e}", p.display()));
    if p.is_dir() {
        let mut entries: Vec<_> = fs::read_dir(p).map_err(unreadable)?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        entries.sort();
        for e in entries {
            hash_path(&e, base, out)?;
        }
    } else if p.is_file() {
        let bytes = fs::read(p).map_err(unreadable)?;
        let key = p.strip_prefix(base).unwrap_or(p).display().to_string();
        out.insert(key, hex::encode(Sha256::digest(&bytes)));
    }
    Ok(())
}

/// SHA-256 of the recipe files and of every file or directory they name,
/// keyed by path relative to the recipe's directory (absolute otherwise).
pub(super) fn input_hashes(l: &LoadedRecipe) -> Result<BTreeMap<String, String>, RecipeError> {
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

/// One SHA-256 over every input's name and digest, in order.
pub fn inputs_digest(inputs: &BTreeMap<String, String>) -> String {
    let mut all = Sha256::new();
    for (k, v) in inputs {
        all.update(k.as_bytes());
        all.update(b"\0");
        all.update(v.as_bytes());
        all.update(b"\n");
    }
    hex::encode(all.finalize())
}
