//! The files a recipe names, on the host or embedded in the executable.
//!
//! The repository's recipes (`recipes/default.toml`, `recipes/debian.toml`)
//! and every file they name (keys, kernel fragments, overlays) are built
//! into dinv-build (see build.rs), so `extends = "dinv:default"` works with
//! no repository around. Embedded paths are written `dinv:PATH`, with PATH
//! relative to the repository (`dinv:kernel-configs/9p.config`); the
//! recipes have short names (`dinv:default`, `dinv:debian`). They are
//! never written to disk: every reader of a recipe input goes through this
//! module, and errors, `show` and lock keys name them as `dinv:...`.

use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

mod table {
    include!(concat!(env!("OUT_DIR"), "/embedded_files.rs"));
}

/// What every embedded path starts with.
pub const SCHEME: &str = "dinv:";

/// The embedded recipes: short name and path in the repository.
pub const RECIPES: &[(&str, &str)] = &[("default", "recipes/default.toml"), ("debian", "recipes/debian.toml")];

/// Is `p` an embedded path (`dinv:...`)?
pub fn is_embedded(p: &Path) -> bool {
    p.to_str().is_some_and(|s| s.starts_with(SCHEME))
}

/// The repository path behind an embedded path (`dinv:default` →
/// `recipes/default.toml`), or None for a host path.
fn inner(p: &Path) -> Option<String> {
    let rest = p.to_str()?.strip_prefix(SCHEME)?;
    let rest = rest.trim_end_matches('/');
    Some(RECIPES.iter().find(|(name, _)| *name == rest).map(|(_, path)| path.to_string()).unwrap_or_else(|| rest.to_string()))
}

/// An embedded path by its repository path, with the recipes' short names.
fn outer(inner: &str) -> PathBuf {
    match RECIPES.iter().find(|(_, path)| *path == inner) {
        Some((name, _)) => PathBuf::from(format!("{SCHEME}{name}")),
        None => PathBuf::from(format!("{SCHEME}{inner}")),
    }
}

/// The embedded names of the recipes, for messages: `dinv:default, dinv:debian`.
pub fn recipe_names() -> String {
    RECIPES.iter().map(|(n, _)| format!("{SCHEME}{n}")).collect::<Vec<_>>().join(", ")
}

fn embedded_file(inner: &str) -> Option<(&'static [u8], bool)> {
    table::FILES.iter().find(|(p, _, _)| *p == inner).map(|(_, b, x)| (*b, *x))
}

fn embedded_dir(inner: &str) -> bool {
    let prefix = format!("{inner}/");
    !inner.is_empty() && table::FILES.iter().any(|(p, _, _)| p.starts_with(&prefix))
}

fn not_found(p: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{} is not embedded in dinv-build", p.display()))
}

/// The bytes of a file.
pub fn read(p: &Path) -> io::Result<Vec<u8>> {
    match inner(p) {
        Some(i) => embedded_file(&i).map(|(b, _)| b.to_vec()).ok_or_else(|| not_found(p)),
        None => std::fs::read(p),
    }
}

/// The text of a file.
pub fn read_to_string(p: &Path) -> io::Result<String> {
    String::from_utf8(read(p)?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Is `p` a file (following symlinks on the host)?
pub fn is_file(p: &Path) -> bool {
    match inner(p) {
        Some(i) => embedded_file(&i).is_some(),
        None => p.is_file(),
    }
}

/// Is `p` a directory (following symlinks on the host)?
pub fn is_dir(p: &Path) -> bool {
    match inner(p) {
        Some(i) => embedded_dir(&i),
        None => p.is_dir(),
    }
}

/// What a directory entry is (symlinks not followed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File { executable: bool },
    Symlink(PathBuf),
    /// A FIFO, socket or device node, described.
    Special(&'static str),
}

/// One entry of a directory.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: OsString,
    pub path: PathBuf,
    pub kind: Kind,
}

/// The entries of a directory, sorted by name.
pub fn entries(dir: &Path) -> io::Result<Vec<Entry>> {
    let mut out = match inner(dir) {
        Some(i) => {
            let prefix = format!("{i}/");
            let mut names: Vec<(String, Kind)> = Vec::new();
            for (p, _, exec) in table::FILES.iter().filter(|(p, _, _)| p.starts_with(&prefix)) {
                let rest = &p[prefix.len()..];
                let (name, kind) = match rest.split_once('/') {
                    Some((d, _)) => (d.to_string(), Kind::Dir),
                    None => (rest.to_string(), Kind::File { executable: *exec }),
                };
                if !names.iter().any(|(n, _)| *n == name) {
                    names.push((name, kind));
                }
            }
            if names.is_empty() {
                return Err(not_found(dir));
            }
            names.into_iter().map(|(name, kind)| Entry { path: outer(&format!("{i}/{name}")), name: name.into(), kind }).collect()
        }
        None => {
            let mut v = Vec::new();
            for e in std::fs::read_dir(dir)? {
                let e = e?;
                let path = e.path();
                let md = std::fs::symlink_metadata(&path)?;
                let ft = md.file_type();
                let kind = if ft.is_dir() {
                    Kind::Dir
                } else if ft.is_file() {
                    use std::os::unix::fs::PermissionsExt;
                    Kind::File { executable: md.permissions().mode() & 0o111 != 0 }
                } else if ft.is_symlink() {
                    Kind::Symlink(std::fs::read_link(&path)?)
                } else {
                    use std::os::unix::fs::FileTypeExt;
                    Kind::Special(if ft.is_fifo() {
                        "a FIFO"
                    } else if ft.is_socket() {
                        "a socket"
                    } else {
                        "a device node"
                    })
                };
                v.push(Entry { name: e.file_name(), path, kind });
            }
            v
        }
    };
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The directory relative paths in the file `p` are resolved against
/// (`dinv:recipes` for `dinv:default`).
pub fn parent(p: &Path) -> PathBuf {
    match inner(p) {
        Some(i) => PathBuf::from(format!("{SCHEME}{}", Path::new(&i).parent().map(|d| d.display().to_string()).unwrap_or_default())),
        // A bare file name has the empty path as its parent: that is `.`.
        None => p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf(),
    }
}

/// `rel` resolved against the directory `dir`: an embedded or absolute
/// `rel` stands as written; inside the embedded tree, a relative one stays
/// in it (`dinv:recipes` + `../keys/alpine` → `dinv:keys/alpine`).
pub fn join(dir: &Path, rel: &str) -> PathBuf {
    let r = Path::new(rel);
    if is_embedded(r) {
        return inner(r).map(|i| outer(&normal(Path::new(&i)))).unwrap_or_else(|| r.to_path_buf());
    }
    match inner(dir) {
        Some(i) if r.is_relative() => outer(&normal(&Path::new(&i).join(r))),
        _ => normalize(&dir.join(r)),
    }
}

/// Lexically normalises `a/./b/../c` (no filesystem access).
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                let last = out.components().next_back();
                match last {
                    Some(std::path::Component::Normal(_)) => {
                        out.pop();
                    }
                    // `/..` is `/`; a leading `..` must stay.
                    Some(std::path::Component::RootDir) => {}
                    _ => out.push(".."),
                }
            }
            c => out.push(c.as_os_str()),
        }
    }
    out
}

/// Lexically normalised, as a repository path (`a/../b` → `b`).
fn normal(p: &Path) -> String {
    let mut out: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                if out.pop().is_none() {
                    out.push("..".into());
                }
            }
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_recipes_and_their_files_are_embedded() {
        let default = read_to_string(Path::new("dinv:default")).unwrap();
        assert_eq!(default.as_bytes(), std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../recipes/default.toml")).unwrap());
        assert!(is_file(Path::new("dinv:debian")) && is_file(Path::new("dinv:recipes/debian.toml")));
        assert!(is_dir(Path::new("dinv:keys/alpine")) && is_dir(Path::new("dinv:keys/alpine/")));
        assert!(!is_dir(Path::new("dinv:keys/alp")) && !is_file(Path::new("dinv:nothing")));
        let keys = entries(Path::new("dinv:keys/alpine")).unwrap();
        assert!(keys.iter().any(|e| e.path == Path::new("dinv:keys/alpine/alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub")));
        let overlay = entries(Path::new("dinv:rootfs-overlays/dinv")).unwrap();
        assert_eq!(overlay.iter().map(|e| (e.name.to_str().unwrap(), e.kind.clone())).collect::<Vec<_>>(), [("etc", Kind::Dir)]);
    }

    #[test]
    fn relative_paths_stay_inside_the_embedded_tree() {
        let dir = parent(Path::new("dinv:default"));
        assert_eq!(dir, Path::new("dinv:recipes"));
        assert_eq!(join(&dir, "../kernel-configs/9p.config"), Path::new("dinv:kernel-configs/9p.config"));
        assert_eq!(join(&dir, "default.toml"), Path::new("dinv:default"));
        assert_eq!(join(&dir, "/usr/share/keyrings/x.gpg"), Path::new("/usr/share/keyrings/x.gpg"));
        assert_eq!(join(Path::new("/home/team"), "dinv:debian"), Path::new("dinv:debian"));
        assert_eq!(join(Path::new("/home/team"), "dinv:recipes/default.toml"), Path::new("dinv:default"));
        assert_eq!(join(Path::new("/home/team"), "../x.toml"), Path::new("/home/x.toml"));
        assert_eq!(parent(Path::new("team.toml")), Path::new("."));
    }
}
