//! Writing into the guest tree, as the configure steps share it: every
//! write lands behind the tree's own symlinks (chroot semantics), and
//! errors name the configure stage.

use dinv_contract::services::GUEST_HELPER;
use dinv_fstree::{Meta, NodeKind, Tree, TreePath};

use crate::error::Stage;
use crate::{Error, Result};

/// Installs the dinv-guest helper (0755).
pub(super) fn install_guest_binary(tree: &mut Tree, bytes: &[u8]) -> Result<()> {
    write(tree, GUEST_HELPER.trim_start_matches('/'), bytes.to_vec(), 0o755)
}

/// A configure-stage error.
pub(crate) fn err(message: impl std::fmt::Display) -> Error {
    Error::stage(Stage::Configure, message.to_string())
}

/// Where a write to `path` lands: its parent resolved through the tree's
/// symlinks (chroot semantics, so it cannot leave the tree). Debian's
/// merged /usr makes `/sbin`, `/bin` and `/lib` symlinks, which the tree
/// refuses to write through.
pub(crate) fn landing(tree: &Tree, path: &TreePath) -> TreePath {
    let Some(parent) = path.parent() else { return path.clone() };
    match tree.resolve(&parent) {
        Some(real) if real != parent && tree.get(&real).is_some_and(|n| n.is_dir()) => {
            real.join(path.file_name()).unwrap_or_else(|_| path.clone())
        }
        _ => path.clone(),
    }
}

/// Writes a root-owned file (replacing a file or symlink there).
pub(crate) fn write(tree: &mut Tree, path: &str, bytes: impl Into<Vec<u8>>, mode: u32) -> Result<()> {
    let p = landing(tree, &TreePath::new(path));
    if matches!(tree.get(&p).map(|n| &n.kind), Some(NodeKind::Symlink(_))) {
        tree.remove(&p);
    }
    tree.write_file(&p, bytes, Meta::root(mode)).map_err(|e| err(format!("writing /{path}: {e}")))
}

/// Creates or replaces a symlink at `path`.
pub(crate) fn symlink(tree: &mut Tree, path: &str, target: &str) -> Result<()> {
    let p = landing(tree, &TreePath::new(path));
    tree.symlink(&p, target).map_err(|e| err(format!("linking /{path} -> {target}: {e}")))
}

/// A text file's contents, following symlinks; `None` when absent.
pub(crate) fn read_text(tree: &Tree, path: &str) -> Option<String> {
    tree.read_file(&TreePath::new(path)).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// True when `path` (following symlinks) is a regular file.
pub(crate) fn is_file(tree: &Tree, path: &str) -> bool {
    tree.resolve(&TreePath::new(path))
        .and_then(|p| tree.get(&p))
        .is_some_and(|n| matches!(n.kind, NodeKind::File(_) | NodeKind::Hardlink(_)))
}

/// The first of `candidates` that is a file in the tree.
pub(crate) fn first_file<'a>(tree: &Tree, candidates: &[&'a str]) -> Option<&'a str> {
    candidates.iter().copied().find(|c| is_file(tree, c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_land_behind_merged_usr_symlinks() {
        let mut t = Tree::new();
        t.mkdir_p(&TreePath::new("usr/sbin"), Meta::root(0o755)).unwrap();
        t.symlink(&TreePath::new("sbin"), "usr/sbin").unwrap();
        symlink(&mut t, "sbin/init", "dinv-guest").unwrap();
        assert!(matches!(&t.get(&TreePath::new("usr/sbin/init")).unwrap().kind, NodeKind::Symlink(s) if s == "dinv-guest"));
        install_guest_binary(&mut t, b"\x7fELF").unwrap();
        assert!(is_file(&t, "sbin/dinv-guest"));
        assert_eq!(t.get(&TreePath::new(GUEST_HELPER.trim_start_matches('/'))).unwrap().meta.mode, 0o755);
    }
}
