//! The runtime tree, the image's lower layer: `runtime.remove`, the CA
//! bundle Debian's postinst would build, then `runtime.keep`: only the
//! named paths stay, with every symlink, program interpreter and library
//! their ELF files need (the closure over `DT_NEEDED`, resolved in the tree
//! as ld.so would; see `dinv_elf`). Packages are still all resolved,
//! fetched and listed in the SBOM; the report counts what was dropped.

use std::collections::BTreeSet;
use std::sync::Arc;

use dinv_elf::Closure;
use dinv_fstree::{Meta, NodeKind, Replace, Tree, TreePath};
use serde::Serialize;

use super::tree::err;
use crate::recipe::LoadedRecipe;
use crate::Result;

/// What the runtime layer holds, for `report.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RuntimeSummary {
    /// Whether `runtime.keep` chose the files (otherwise all are kept).
    pub keep: bool,
    /// Entries other than directories (files, symlinks, hard links).
    pub kept_files: u64,
    pub kept_bytes: u64,
    pub dropped_files: u64,
    pub dropped_bytes: u64,
    /// ELF files kept, each with its libraries.
    pub elf_files: usize,
    /// Runtime packages none of whose files is kept (still in the SBOM).
    pub dropped_packages: Vec<String>,
}

/// Entries other than directories, their content bytes, and who shipped them.
fn census(tree: &Tree) -> (u64, u64, BTreeSet<Arc<str>>) {
    let (mut files, mut bytes, mut origins) = (0, 0, BTreeSet::new());
    for (_, n) in tree.iter().filter(|(_, n)| !n.is_dir()) {
        files += 1;
        if let NodeKind::File(c) = &n.kind {
            bytes += c.len();
        }
        origins.extend(n.origin.clone());
    }
    (files, bytes, origins)
}

/// Applies `[runtime]`'s edits to the unpacked runtime tree.
pub fn apply(l: &LoadedRecipe, tree: &mut Tree) -> Result<RuntimeSummary> {
    let Some(rt) = &l.recipe.runtime else { return Ok(RuntimeSummary::default()) };
    super::remove_paths(l, tree, "runtime.remove", &rt.remove)?;
    let n = super::ca::debian_bundle(tree)?;
    if n > 0 {
        tracing::info!(certificates = n, "built the runtime's /{}", super::ca::BUNDLE);
    }
    let (files, bytes, origins) = census(tree);
    let Some(keep) = &rt.keep else {
        container_basics(tree)?;
        return Ok(RuntimeSummary { keep: false, kept_files: files, kept_bytes: bytes, ..RuntimeSummary::default() });
    };
    let (slim, elf_files) = keep_closure(l, tree, keep)?;
    *tree = slim;
    let (kept_files, kept_bytes, kept_origins) = census(tree);
    let dropped_packages: Vec<String> = origins.difference(&kept_origins).map(|o| o.to_string()).collect();
    tracing::info!(kept_files, dropped_files = files - kept_files, dropped_bytes = bytes - kept_bytes, ?dropped_packages, "runtime.keep");
    container_basics(tree)?;
    Ok(RuntimeSummary { keep: true, kept_files, kept_bytes, dropped_files: files - kept_files, dropped_bytes: bytes - kept_bytes, elf_files, dropped_packages })
}

/// What a container's root needs whatever the packages did: `/tmp` and
/// `/var/tmp` (1777), `/run`, `/root`, `/etc`, and a root-only passwd,
/// group and nsswitch.conf (glibc and Go read it for name resolution;
/// package scripts, which never run, would have made them). What the
/// packages put there (e.g. a symlink) stays.
pub fn container_basics(t: &mut Tree) -> Result<()> {
    for (dir, mode) in [("tmp", 0o1777), ("var/tmp", 0o1777), ("run", 0o755), ("root", 0o700), ("etc", 0o755)] {
        let p = TreePath::new(dir);
        if !t.contains(&p) {
            t.mkdir_p(&p, Meta::root(mode)).map_err(err)?;
        }
    }
    let generated = [
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        ("etc/group", "root:x:0:root\n"),
        ("etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n"),
    ];
    for (path, text) in generated {
        let p = TreePath::new(path);
        if !t.contains(&p) {
            t.write_file(&p, text, Meta::root(0o644)).map_err(err)?;
        }
    }
    Ok(())
}

/// The tree holding only the closure of `keep`, and how many ELF files it
/// has. Errors point at the `runtime.keep` entry that led to the problem.
fn keep_closure(l: &LoadedRecipe, tree: &Tree, keep: &[String]) -> Result<(Tree, usize)> {
    let mut closure = Closure::new(tree);
    for (i, raw) in keep.iter().enumerate() {
        let key = format!("runtime.keep[{i}]");
        let path = TreePath::parse(raw, true).map_err(|e| l.error(&key, e.to_string()))?;
        if path.is_root() {
            return Ok((tree.clone(), 0));
        }
        if tree.resolve(&path).is_none() {
            return Err(l.error(&key, format!("{raw} is not in the runtime tree (no runtime package ships it)")).into());
        }
        closure.add(&path).map_err(|e| l.error(&key, format!("keeping {raw}: {e}")))?;
    }
    for (path, e) in closure.unreadable() {
        tracing::warn!(%path, "runtime.keep: kept but not followed: {e}");
    }
    let paths = closure.paths();
    let mut slim = Tree::new();
    slim.implicit_dir_meta = tree.implicit_dir_meta.clone();
    if let Some(root) = tree.get(&TreePath::root()) {
        slim.insert(TreePath::root(), root.clone(), Replace::Deny).map_err(err)?;
    }
    // Parents sort before children; hard links go last, once what they name is in.
    let kept = || tree.iter().filter(|(p, _)| paths.contains(*p));
    for (p, n) in kept().filter(|(_, n)| !matches!(n.kind, NodeKind::Hardlink(_))) {
        slim.insert(p.clone(), n.clone(), Replace::Deny).map_err(err)?;
    }
    for (p, n) in kept().filter(|(_, n)| matches!(n.kind, NodeKind::Hardlink(_))) {
        slim.insert(p.clone(), n.clone(), Replace::Deny).map_err(err)?;
    }
    Ok((slim, closure.objects().len()))
}
