//! The tree: path → node, with the rules that keep it confined.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use crate::{Content, TreeError, TreePath};

/// What a node is.
#[derive(Clone, Debug)]
pub enum NodeKind {
    Dir,
    File(Content),
    /// Target exactly as stored (may be absolute or relative).
    Symlink(String),
    /// Another name for an existing regular file in the tree.
    Hardlink(TreePath),
    CharDevice { major: u32, minor: u32 },
    BlockDevice { major: u32, minor: u32 },
    Fifo,
}

impl NodeKind {
    /// One word for messages ("file", "directory", ...).
    pub fn describe(&self) -> &'static str {
        match self {
            NodeKind::Dir => "directory",
            NodeKind::File(_) => "file",
            NodeKind::Symlink(_) => "symlink",
            NodeKind::Hardlink(_) => "hard link",
            NodeKind::CharDevice { .. } => "character device",
            NodeKind::BlockDevice { .. } => "block device",
            NodeKind::Fifo => "fifo",
        }
    }
}

/// Ownership, permissions, time and extended attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits including setuid/setgid/sticky (`0o7777` mask).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// Extended attributes by full name (`security.capability`, `user.x`).
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl Meta {
    /// root:root with the given mode and time 0 (callers clamp times later).
    pub fn root(mode: u32) -> Self {
        Meta { mode: mode & 0o7777, uid: 0, gid: 0, mtime: 0, xattrs: BTreeMap::new() }
    }
}

/// One entry of the tree.
#[derive(Clone, Debug)]
pub struct Node {
    pub kind: NodeKind,
    pub meta: Meta,
    /// Who put it there (a package name, `overlay:NAME`, `generated`); used
    /// for conflict messages and the SBOM.
    pub origin: Option<Arc<str>>,
}

impl Node {
    pub fn new(kind: NodeKind, meta: Meta) -> Self {
        Node { kind, meta, origin: None }
    }

    pub fn with_origin(mut self, origin: &Arc<str>) -> Self {
        self.origin = Some(origin.clone());
        self
    }

    pub fn is_dir(&self) -> bool {
        matches!(self.kind, NodeKind::Dir)
    }
}

/// How [`Tree::insert`] treats an existing non-directory at the same path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replace {
    /// Replace it (overlays, generated files, later packages that declare
    /// `replaces`).
    Allow,
    /// Fail with [`TreeError::Conflict`].
    Deny,
}

/// The in-memory filesystem. The root directory always exists.
#[derive(Clone, Debug)]
pub struct Tree {
    nodes: BTreeMap<TreePath, Node>,
    /// Mode and owner for directories created implicitly as parents.
    pub implicit_dir_meta: Meta,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

impl Tree {
    pub fn new() -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert(TreePath::root(), Node::new(NodeKind::Dir, Meta::root(0o755)));
        Tree { nodes, implicit_dir_meta: Meta::root(0o755) }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }

    pub fn get(&self, path: &TreePath) -> Option<&Node> {
        self.nodes.get(path)
    }

    pub fn get_mut(&mut self, path: &TreePath) -> Option<&mut Node> {
        self.nodes.get_mut(path)
    }

    pub fn contains(&self, path: &TreePath) -> bool {
        self.nodes.contains_key(path)
    }

    /// All nodes in pre-order (every directory before its contents).
    pub fn iter(&self) -> impl Iterator<Item = (&TreePath, &Node)> {
        self.nodes.iter()
    }

    /// All nodes, mutably, in pre-order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&TreePath, &mut Node)> {
        self.nodes.iter_mut()
    }

    /// The direct children of a directory, in sorted order.
    pub fn children<'a>(&'a self, dir: &TreePath) -> impl Iterator<Item = (&'a TreePath, &'a Node)> + 'a {
        let (d1, d2) = (dir.clone(), dir.clone());
        self.nodes
            .range((Bound::Excluded(dir.clone()), Bound::Unbounded))
            .take_while(move |(p, _)| p.starts_with(&d1))
            .filter(move |(p, _)| p.parent().as_ref() == Some(&d2))
    }

    /// The node and everything below it, in pre-order.
    pub fn subtree<'a>(&'a self, dir: &TreePath) -> impl Iterator<Item = (&'a TreePath, &'a Node)> + 'a {
        let dir = dir.clone();
        self.nodes
            .range((Bound::Included(dir.clone()), Bound::Unbounded))
            .take_while(move |(p, _)| p.starts_with(&dir))
    }

    /// Checks that every ancestor of `path` is a real directory (creating
    /// missing ones). A symlink on the way is an error: following it could
    /// lead outside the tree or silently into another directory.
    fn prepare_parents(&mut self, path: &TreePath, origin: Option<&Arc<str>>) -> Result<(), TreeError> {
        for anc in path.ancestors() {
            match self.nodes.get(&anc) {
                Some(n) => match &n.kind {
                    NodeKind::Dir => {}
                    NodeKind::Symlink(target) => {
                        return Err(TreeError::ThroughSymlink {
                            path: path.clone(),
                            symlink: anc.clone(),
                            target: target.clone(),
                        })
                    }
                    other => {
                        return Err(TreeError::NotADirectory { path: path.clone(), parent: anc.clone(), kind: other.describe() })
                    }
                },
                None => {
                    let mut node = Node::new(NodeKind::Dir, self.implicit_dir_meta.clone());
                    node.origin = origin.cloned();
                    self.nodes.insert(anc, node);
                }
            }
        }
        Ok(())
    }

    /// Inserts a node. Directories merge (the new metadata wins); a
    /// directory never replaces a non-directory or vice versa; other
    /// replacements follow `replace`.
    pub fn insert(&mut self, path: TreePath, node: Node, replace: Replace) -> Result<(), TreeError> {
        if path.is_root() {
            if !node.is_dir() {
                return Err(TreeError::BadPath(crate::PathError { path: "/".into(), why: "the root must be a directory" }));
            }
            self.nodes.get_mut(&path).expect("root exists").meta = node.meta;
            return Ok(());
        }
        self.prepare_parents(&path, node.origin.as_ref())?;
        if let NodeKind::Hardlink(target) = &node.kind {
            match self.nodes.get(target).map(|n| &n.kind) {
                Some(NodeKind::File(_)) => {}
                Some(NodeKind::Hardlink(_)) => {}
                Some(other) => {
                    return Err(TreeError::BadHardlink { path: path.clone(), target: target.clone(), why: other.describe() })
                }
                None => return Err(TreeError::BadHardlink { path: path.clone(), target: target.clone(), why: "missing" }),
            }
        }
        match self.nodes.get_mut(&path) {
            None => {
                self.nodes.insert(path, node);
            }
            Some(existing) => match (&existing.kind, &node.kind) {
                (NodeKind::Dir, NodeKind::Dir) => {
                    existing.meta = node.meta;
                    if node.origin.is_some() {
                        existing.origin = node.origin;
                    }
                }
                (NodeKind::Dir, _) | (_, NodeKind::Dir) => {
                    return Err(TreeError::Conflict {
                        path,
                        existing: existing.kind.describe(),
                        existing_origin: existing.origin.as_deref().unwrap_or("?").to_string(),
                        new: node.kind.describe(),
                        new_origin: node.origin.as_deref().unwrap_or("?").to_string(),
                    })
                }
                _ => {
                    if replace == Replace::Deny {
                        return Err(TreeError::Conflict {
                            path,
                            existing: existing.kind.describe(),
                            existing_origin: existing.origin.as_deref().unwrap_or("?").to_string(),
                            new: node.kind.describe(),
                            new_origin: node.origin.as_deref().unwrap_or("?").to_string(),
                        });
                    }
                    *existing = node;
                }
            },
        }
        Ok(())
    }

    /// Creates a directory and its parents (existing ones keep their metadata).
    pub fn mkdir_p(&mut self, path: &TreePath, meta: Meta) -> Result<(), TreeError> {
        if self.get(path).map(|n| n.is_dir()).unwrap_or(false) {
            return Ok(());
        }
        self.insert(path.clone(), Node::new(NodeKind::Dir, meta), Replace::Deny)
    }

    /// Writes a regular file from bytes, replacing any file there.
    pub fn write_file(&mut self, path: &TreePath, bytes: impl Into<Vec<u8>>, meta: Meta) -> Result<(), TreeError> {
        self.insert(path.clone(), Node::new(NodeKind::File(Content::from_bytes(bytes)), meta), Replace::Allow)
    }

    /// Creates or replaces a symlink.
    pub fn symlink(&mut self, path: &TreePath, target: &str) -> Result<(), TreeError> {
        self.insert(path.clone(), Node::new(NodeKind::Symlink(target.to_string()), Meta::root(0o777)), Replace::Allow)
    }

    /// Removes a node and, for a directory, everything below it. Returns how
    /// many nodes went. Hard links to removed files are removed too.
    pub fn remove(&mut self, path: &TreePath) -> usize {
        if path.is_root() {
            let n = self.nodes.len() - 1;
            let root = self.nodes.remove(path).expect("root");
            self.nodes.clear();
            self.nodes.insert(TreePath::root(), root);
            return n;
        }
        let doomed: Vec<TreePath> = self.subtree(path).map(|(p, _)| p.clone()).collect();
        for p in &doomed {
            self.nodes.remove(p);
        }
        let dangling: Vec<TreePath> = self
            .nodes
            .iter()
            .filter(|(_, n)| matches!(&n.kind, NodeKind::Hardlink(t) if t.starts_with(path)))
            .map(|(p, _)| p.clone())
            .collect();
        for p in &dangling {
            self.nodes.remove(p);
        }
        doomed.len() + dangling.len()
    }

    /// Follows symlinks as the guest would see them (chroot semantics: `..`
    /// stops at the root, absolute targets start at the root) and returns the
    /// path of the final node, if it exists. Gives up after 40 links.
    pub fn resolve(&self, path: &TreePath) -> Option<TreePath> {
        self.resolve_traced(path.as_str(), |_| {})
    }

    /// [`Tree::resolve`] for a raw `/`-separated path (which may hold `.`
    /// and `..`, read from the root), calling `on_link` with each symlink
    /// passed on the way.
    pub fn resolve_traced(&self, raw: &str, mut on_link: impl FnMut(&TreePath)) -> Option<TreePath> {
        let mut pending: Vec<String> = raw.split('/').rev().map(str::to_string).collect();
        let mut cur: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(comp) = pending.pop() {
            match comp.as_str() {
                "" | "." => continue,
                ".." => {
                    cur.pop();
                    continue;
                }
                _ => {}
            }
            cur.push(comp);
            let here = TreePath::new(&cur.join("/"));
            match self.nodes.get(&here).map(|n| &n.kind) {
                None => return None,
                Some(NodeKind::Symlink(target)) => {
                    hops += 1;
                    if hops > 40 {
                        return None;
                    }
                    on_link(&here);
                    cur.pop();
                    if target.starts_with('/') {
                        cur.clear();
                    }
                    for c in target.split('/').rev() {
                        pending.push(c.to_string());
                    }
                }
                Some(_) => {}
            }
        }
        Some(TreePath::new(&cur.join("/")))
    }

    /// Reads a regular file's bytes, following symlinks and hard links.
    pub fn read_file(&self, path: &TreePath) -> Option<Vec<u8>> {
        let p = self.resolve(path)?;
        match &self.nodes.get(&p)?.kind {
            NodeKind::File(c) => c.to_vec().ok(),
            NodeKind::Hardlink(t) => self.read_file(t),
            _ => None,
        }
    }

    /// Sets every mtime newer than `epoch` to `epoch` (SOURCE_DATE_EPOCH
    /// clamping, as reproducible-builds.org recommends).
    pub fn clamp_mtimes(&mut self, epoch: i64) {
        for n in self.nodes.values_mut() {
            if n.meta.mtime > epoch {
                n.meta.mtime = epoch;
            }
        }
    }

    /// Total bytes of regular-file content (hard links counted once).
    pub fn content_bytes(&self) -> u64 {
        self.nodes
            .values()
            .map(|n| match &n.kind {
                NodeKind::File(c) => c.len(),
                _ => 0,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(bytes: &[u8]) -> Node {
        Node::new(NodeKind::File(Content::from_bytes(bytes.to_vec())), Meta::root(0o644))
    }

    #[test]
    fn implicit_parents_and_children() {
        let mut t = Tree::new();
        t.insert(TreePath::new("usr/bin/env"), file(b"x"), Replace::Deny).unwrap();
        t.insert(TreePath::new("usr/lib"), Node::new(NodeKind::Dir, Meta::root(0o755)), Replace::Deny).unwrap();
        assert!(t.get(&TreePath::new("usr")).unwrap().is_dir());
        let kids: Vec<_> = t.children(&TreePath::new("usr")).map(|(p, _)| p.as_str().to_string()).collect();
        assert_eq!(kids, ["usr/bin", "usr/lib"]);
    }

    #[test]
    fn refuses_writes_through_symlinks() {
        let mut t = Tree::new();
        t.symlink(&TreePath::new("evil"), "/etc").unwrap();
        let err = t.insert(TreePath::new("evil/passwd"), file(b"root::0:0"), Replace::Allow).unwrap_err();
        assert!(matches!(err, TreeError::ThroughSymlink { .. }), "{err}");
        assert!(err.to_string().contains("/evil"));
        assert!(t.get(&TreePath::new("etc/passwd")).is_none());
    }

    #[test]
    fn conflicts_and_replacement() {
        let mut t = Tree::new();
        let p = TreePath::new("etc/motd");
        t.insert(p.clone(), file(b"a").with_origin(&Arc::from("pkg-a")), Replace::Deny).unwrap();
        let e = t.insert(p.clone(), file(b"b").with_origin(&Arc::from("pkg-b")), Replace::Deny).unwrap_err();
        assert!(e.to_string().contains("pkg-a") && e.to_string().contains("pkg-b"), "{e}");
        t.insert(p.clone(), file(b"b"), Replace::Allow).unwrap();
        assert_eq!(t.read_file(&p).unwrap(), b"b");
        assert!(t.insert(TreePath::new("etc"), file(b"x"), Replace::Allow).is_err());
    }

    #[test]
    fn resolves_symlinks_inside_the_root() {
        let mut t = Tree::new();
        t.write_file(&TreePath::new("usr/lib/os-release"), "ID=x", Meta::root(0o644)).unwrap();
        t.symlink(&TreePath::new("etc/os-release"), "../usr/lib/os-release").unwrap();
        t.symlink(&TreePath::new("escape"), "../../../../usr/lib/os-release").unwrap();
        assert_eq!(t.read_file(&TreePath::new("etc/os-release")).unwrap(), b"ID=x");
        assert_eq!(t.read_file(&TreePath::new("escape")).unwrap(), b"ID=x");
        t.symlink(&TreePath::new("loop"), "loop").unwrap();
        assert!(t.resolve(&TreePath::new("loop")).is_none());
    }

    #[test]
    fn remove_subtree_and_hardlinks() {
        let mut t = Tree::new();
        t.write_file(&TreePath::new("a/f"), "1", Meta::root(0o644)).unwrap();
        t.insert(TreePath::new("b/g"), Node::new(NodeKind::Hardlink(TreePath::new("a/f")), Meta::root(0o644)), Replace::Deny)
            .unwrap();
        assert_eq!(t.remove(&TreePath::new("a")), 3);
        assert!(t.get(&TreePath::new("b/g")).is_none());
        assert!(t.get(&TreePath::new("b")).is_some());
    }
}
