//! `dinv-build new`: a starter team recipe that extends the default.

use std::path::{Component, Path, PathBuf};

use crate::recipe::vfs;
use crate::{Error, Result};

/// The starter text for a team recipe named `name` extending `parent`
/// (as the new file names it), described as `base`.
pub fn starter_text(name: &str, parent: &str, base: &str) -> String {
    format!(
        r#"# {name}: a team's DinV appliance, built on {base}.
# Build it with `dinv-build {name}.toml`; see what it resolves to with
# `dinv-build show {name}.toml`. Every key: docs/recipe.md.
extends = "{parent}"

[image]
name = "{name}"
tag = "latest"
# labels = {{ "org.example.team" = "{name}" }}

# Extra guest packages are appended to the parent's list. To drop an
# inherited one: packages = {{ add = ["git"], remove = ["qemu-guest-agent"] }}
# [guest]
# packages = ["git"]

# Registry mirrors, insecure registries and private CAs for the guest's dockerd.
# [docker]
# registry_mirrors = ["https://mirror.example.internal"]
# insecure_registries = ["registry.example.internal:5000"]
# ca_certificates = [{{ file = "certs/example-ca.pem", registry = "registry.example.internal:5000" }}]
# proxy = {{ http = "http://proxy.example.internal:3128", no_proxy = "localhost,127.0.0.1" }}

# VM defaults baked into the image (users can still override DINV_* at run time).
# [vm]
# memory = "2G"
# cpus = 2

# Extra kernel config requirements, checked against the packaged kernel.
# [kernel]
# fragments = ["kernel-configs/team.config"]

# Files and templates copied into the guest.
# [[overlays]]
# path = "overlays/{name}"
"#
    )
}

/// The path of `to` relative to the directory `from` (both relative to the
/// same base, no `..` in them).
fn relative(from_dir: &Path, to: &Path) -> PathBuf {
    let f: Vec<Component> = from_dir.components().filter(|c| !matches!(c, Component::CurDir)).collect();
    let t: Vec<Component> = to.components().filter(|c| !matches!(c, Component::CurDir)).collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c.as_os_str());
    }
    out
}

/// Writes `<dir>/<name>.toml` extending `parent`. Refuses to overwrite.
pub fn write_starter(name: &str, dir: &Path, parent: &Path) -> Result<PathBuf> {
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        return Err(Error::Usage(format!("{name:?}: a recipe name uses lower-case letters, digits, - and _")));
    }
    if !vfs::is_file(parent) {
        return Err(Error::Usage(format!("parent recipe {} does not exist (use --extends; built in: {})", parent.display(), vfs::recipe_names())));
    }
    let path = dir.join(format!("{name}.toml"));
    if path.exists() {
        return Err(Error::Usage(format!("{} already exists", path.display())));
    }
    // An absolute parent stays absolute; a relative one is made relative to
    // the new file (both canonical, so it is right wherever the two are).
    let named = if parent.is_absolute() || vfs::is_embedded(parent) {
        parent.to_path_buf()
    } else {
        let abs_dir = dir.canonicalize().map_err(Error::io(dir))?;
        let abs_parent = parent.canonicalize().map_err(Error::io(parent))?;
        relative(&abs_dir, &abs_parent)
    };
    let base = match parent.file_name().and_then(|n| n.to_str()) {
        _ if vfs::is_embedded(parent) => format!("the recipe {} built into dinv-build", parent.display()),
        Some("default.toml") => "the default recipe".to_string(),
        Some(n) => format!("the recipe {n}"),
        None => format!("the recipe {}", parent.display()),
    };
    std::fs::write(&path, starter_text(name, &named.to_string_lossy(), &base)).map_err(Error::io(&path))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(relative(Path::new("recipes"), Path::new("recipes/default.toml")), PathBuf::from("default.toml"));
        assert_eq!(relative(Path::new("teams/a"), Path::new("recipes/default.toml")), PathBuf::from("../../recipes/default.toml"));
        assert_eq!(relative(Path::new(""), Path::new("recipes/default.toml")), PathBuf::from("recipes/default.toml"));
    }

    #[test]
    fn starter_extends_and_validates() {
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path().join("base.toml");
        std::fs::write(
            &parent,
            "[image]\nname = \"base\"\n[sources.a]\ntype = \"apk\"\nrepositories = [{ url = \"file:///nonexistent\" }]\n[guest]\nsource = \"a\"\npackages = [\"busybox\"]\n",
        )
        .unwrap();
        let p = write_starter("team-x", dir.path(), &parent).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        // An absolute parent is named as given, and described by its name.
        assert!(text.contains(&format!("extends = {:?}", parent.display().to_string())) && text.contains("built on the recipe base.toml"), "{text}");
        assert!(!text.contains("default recipe"), "{text}");
        let l = crate::recipe::load(&p).unwrap();
        assert_eq!(l.recipe.image.name, "team-x");
        assert_eq!(l.recipe.guest.packages, ["busybox"]);
        assert!(write_starter("team-x", dir.path(), &parent).is_err(), "no overwrite");
        assert!(write_starter("Bad Name", dir.path(), &parent).is_err());
    }
}
