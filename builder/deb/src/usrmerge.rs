//! Merged-/usr: bookworm packages still ship `/bin`, `/sbin`, `/lib*`
//! while the installed system has those as symlinks into `/usr`
//! (debootstrap's layout). The tree refuses writes through symlinks, so
//! member paths are rewritten to their `/usr` location instead.

use dinv_fstree::{Meta, NodeKind, Tree, TreeError, TreePath};

/// Top-level directories that live under `/usr` on a merged system.
pub const MERGED_DIRS: [&str; 6] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Rewrites `bin/x` to `usr/bin/x` for every [`MERGED_DIRS`] entry;
/// other paths are unchanged. The top-level names themselves are dropped
/// (`None`, as `UnpackOptions::rewrite` reads it): [`create_merged_usr_links`]
/// makes them, and a package's own entry is that layout already: a
/// directory in bookworm's packages, the very symlink `bin -> usr/bin` in
/// trixie's base-files.
pub fn merged_usr(path: &TreePath) -> Option<TreePath> {
    let s = path.as_str();
    let first = s.split('/').next().unwrap_or("");
    if MERGED_DIRS.contains(&s) {
        None
    } else if MERGED_DIRS.contains(&first) {
        Some(TreePath::new(&format!("usr/{s}")))
    } else {
        Some(path.clone())
    }
}

/// The merged directories debootstrap links for an architecture (its
/// `setup_merged_usr` table; architectures we do not build for get the base three).
pub fn merged_dirs_for(arch: &str) -> &'static [&'static str] {
    match arch {
        "amd64" => &MERGED_DIRS,
        "i386" => &["bin", "sbin", "lib", "lib64", "libx32"],
        "ppc64el" => &["bin", "sbin", "lib", "lib64"],
        "s390x" => &["bin", "sbin", "lib", "lib32"],
        _ => &["bin", "sbin", "lib"],
    }
}

/// Creates `usr/<dir>` directories and the top-level `<dir> → usr/<dir>`
/// symlinks for `arch`. Fails if a real directory or file already sits at
/// one of the top-level names (something was unpacked without
/// [`merged_usr`]).
pub fn create_merged_usr_links(tree: &mut Tree, arch: &str) -> Result<(), TreeError> {
    for dir in merged_dirs_for(arch) {
        tree.mkdir_p(&TreePath::new(&format!("usr/{dir}")), Meta::root(0o755))?;
        let top = TreePath::new(dir);
        let target = format!("usr/{dir}");
        match tree.get(&top).map(|n| &n.kind) {
            Some(NodeKind::Symlink(t)) if *t == target => continue,
            Some(other) => {
                return Err(TreeError::Conflict {
                    path: top.clone(),
                    existing: other.describe(),
                    existing_origin: tree.get(&top).and_then(|n| n.origin.as_deref()).unwrap_or("?").to_string(),
                    new: "symlink",
                    new_origin: "merged-/usr".into(),
                })
            }
            None => tree.symlink(&top, &target)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_merged_dirs() {
        let rw = |p: &str| merged_usr(&TreePath::new(p)).unwrap().as_str().to_string();
        assert_eq!(rw("bin/sh"), "usr/bin/sh");
        assert_eq!(merged_usr(&TreePath::new("bin")), None);
        assert_eq!(merged_usr(&TreePath::new("lib64")), None);
        assert_eq!(rw("sbin/init"), "usr/sbin/init");
        assert_eq!(rw("lib/x86_64-linux-gnu/libc.so.6"), "usr/lib/x86_64-linux-gnu/libc.so.6");
        assert_eq!(rw("lib64/ld-linux-x86-64.so.2"), "usr/lib64/ld-linux-x86-64.so.2");
        assert_eq!(rw("lib32/x"), "usr/lib32/x");
        assert_eq!(rw("libx32/x"), "usr/libx32/x");
        assert_eq!(rw("library/x"), "library/x");
        assert_eq!(rw("usr/bin/env"), "usr/bin/env");
        assert_eq!(rw("etc/bin"), "etc/bin");
        assert_eq!(merged_usr(&TreePath::root()).unwrap(), TreePath::root());
    }

    #[test]
    fn links_are_created_once() {
        let mut t = Tree::new();
        create_merged_usr_links(&mut t, "amd64").unwrap();
        create_merged_usr_links(&mut t, "amd64").unwrap();
        assert!(matches!(&t.get(&TreePath::new("bin")).unwrap().kind, NodeKind::Symlink(s) if s == "usr/bin"));
        assert!(t.get(&TreePath::new("usr/libx32")).unwrap().is_dir());
        t.write_file(&TreePath::new("usr/bin/sh"), "sh", Meta::root(0o755)).unwrap();
        assert_eq!(t.read_file(&TreePath::new("bin/sh")).unwrap(), b"sh");

        let mut t = Tree::new();
        t.write_file(&TreePath::new("sbin/init"), "x", Meta::root(0o755)).unwrap();
        let e = create_merged_usr_links(&mut t, "amd64").unwrap_err().to_string();
        assert!(e.contains("/sbin") && e.contains("merged-/usr"), "{e}");
    }
}
