//! Digests of every file a recipe uses, computed once at load: the lock
//! file records them and the root filesystem's ids are derived from them.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::RecipeError;
use super::loaded::LoadedRecipe;
use super::vfs;

fn hash_path(p: &Path, base: &Path, out: &mut BTreeMap<String, String>) -> Result<(), RecipeError> {
    let unreadable = |e: std::io::Error| RecipeError::file(None, format!("cannot read {}: {e}", p.display()));
    if vfs::is_dir(p) {
        let mut entries: Vec<PathBuf> = vfs::entries(p).map_err(unreadable)?.into_iter().map(|e| e.path).collect();
        entries.sort();
        for e in entries {
            hash_path(&e, base, out)?;
        }
    } else if vfs::is_file(p) {
        let bytes = vfs::read(p).map_err(unreadable)?;
        let key = relative_key(p, base);
        out.insert(key, hex::encode(Sha256::digest(&bytes)));
    }
    Ok(())
}

/// `p` made absolute (against the working directory) and free of `.` and
/// `..`, lexically: the recipe's paths are already resolved the same way.
fn normal(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The key of an input: its path relative to the recipe's directory, with
/// `..` where it lies outside it, so the keys (and the ids derived from
/// them) do not depend on where dinv-build runs or how the recipe was named.
/// An embedded file is its own key (`dinv:default`), wherever the recipe is.
fn relative_key(p: &Path, base: &Path) -> String {
    if vfs::is_embedded(p) {
        return p.display().to_string();
    }
    let (p, base) = (normal(p), normal(base));
    let common = p.components().zip(base.components()).take_while(|(a, b)| a == b).count();
    let mut rel = PathBuf::new();
    for _ in base.components().skip(common) {
        rel.push("..");
    }
    for c in p.components().skip(common) {
        rel.push(c);
    }
    rel.display().to_string()
}

/// SHA-256 of the recipe files and of every file or directory they name,
/// keyed by path relative to the recipe's directory (see [`relative_key`]).
pub(super) fn input_hashes(l: &LoadedRecipe) -> Result<BTreeMap<String, String>, RecipeError> {
    // A bare file name has the empty path as its parent: that is `.`.
    let base = l.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_relative_to_the_recipe_whatever_the_working_directory() {
        let cwd = std::env::current_dir().unwrap();
        let abs_base = cwd.join("recipes");
        for base in [Path::new("recipes").to_path_buf(), abs_base.clone(), cwd.join("x/../recipes")] {
            assert_eq!(relative_key(&abs_base.join("debian.toml"), &base), "debian.toml");
            assert_eq!(relative_key(&cwd.join("kernel-configs/9p.config"), &base), "../kernel-configs/9p.config");
            assert_eq!(relative_key(Path::new("kernel-configs/9p.config"), &base), "../kernel-configs/9p.config");
            assert_eq!(relative_key(&abs_base.join("overlay/etc/motd"), &base), "overlay/etc/motd");
        }
        // A recipe named by its bare file name: its directory is `.`.
        assert_eq!(relative_key(&cwd.join("certs/ca.pem"), Path::new(".")), "certs/ca.pem");
    }
}
