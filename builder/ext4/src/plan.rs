//! From tree to inodes: numbers in pre-order, hard links folded onto their
//! file, directory entries and link counts. Nothing here touches the disk.

use std::borrow::Cow;
use std::collections::HashMap;

use dinv_fstree::{Content, Meta, NodeKind, Tree, TreePath};

use crate::Ext4Error;

/// Root directory inode.
pub(crate) const ROOT_INO: u32 = 2;
/// Journal inode.
pub(crate) const JOURNAL_INO: u32 = 8;
/// lost+found, the first non-reserved inode.
pub(crate) const LPF_INO: u32 = 11;

/// Directory entry file types (the `filetype` feature).
pub(crate) mod ftype {
    pub const REG: u8 = 1;
    pub const DIR: u8 = 2;
    pub const CHR: u8 = 3;
    pub const BLK: u8 = 4;
    pub const FIFO: u8 = 5;
    pub const LNK: u8 = 7;
}

/// One name in a directory.
#[derive(Clone, Debug)]
pub(crate) struct DirEntry<'a> {
    pub name: &'a str,
    pub ino: u32,
    pub ftype: u8,
}

/// What an inode is.
pub(crate) enum Kind<'a> {
    Dir { parent: u32, entries: Vec<DirEntry<'a>> },
    File(&'a Content),
    Symlink(&'a str),
    Char { major: u32, minor: u32 },
    Block { major: u32, minor: u32 },
    Fifo,
}

/// One inode to write.
pub(crate) struct PInode<'a> {
    pub ino: u32,
    /// The first name it was reached by (for messages).
    pub path: Cow<'a, str>,
    pub kind: Kind<'a>,
    pub meta: Cow<'a, Meta>,
    pub links: u32,
}

/// All inodes of the tree, in inode-number order (2, 11, 12, 13, ...).
pub(crate) struct Plan<'a> {
    pub inodes: Vec<PInode<'a>>,
    /// The highest inode number in use.
    pub max_ino: u32,
}

fn ftype_of(kind: &NodeKind) -> u8 {
    match kind {
        NodeKind::Dir => ftype::DIR,
        NodeKind::File(_) | NodeKind::Hardlink(_) => ftype::REG,
        NodeKind::Symlink(_) => ftype::LNK,
        NodeKind::CharDevice { .. } => ftype::CHR,
        NodeKind::BlockDevice { .. } => ftype::BLK,
        NodeKind::Fifo => ftype::FIFO,
    }
}

/// Follows a (possibly chained) hard link to the regular file it names.
fn resolve_hardlink<'a>(tree: &'a Tree, from: &TreePath, mut target: &'a TreePath) -> Result<&'a TreePath, Ext4Error> {
    for _ in 0..64 {
        match tree.get(target).map(|n| &n.kind) {
            Some(NodeKind::File(_)) => return Ok(target),
            Some(NodeKind::Hardlink(next)) => target = next,
            Some(other) => {
                return Err(Ext4Error::Unsupported {
                    path: from.absolute(),
                    why: format!("hard link to {target}, which is a {}", other.describe()),
                })
            }
            None => {
                return Err(Ext4Error::Unsupported {
                    path: from.absolute(),
                    why: format!("hard link to {target}, which is not in the tree"),
                })
            }
        }
    }
    Err(Ext4Error::Unsupported { path: from.absolute(), why: "hard link chain longer than 64".into() })
}

impl<'a> Plan<'a> {
    /// Numbers the tree's inodes in pre-order and collects directory entries.
    pub(crate) fn build(tree: &'a Tree, timestamp: i64) -> Result<Plan<'a>, Ext4Error> {
        let lpf_path = TreePath::new("lost+found");
        let mut ino_of: HashMap<&'a TreePath, u32> = HashMap::new();
        // Slots indexed by ino - LPF_INO (root kept apart).
        let mut slots: Vec<Option<PInode<'a>>> = Vec::new();
        let mut next = LPF_INO + 1;

        let root = tree.get(&TreePath::root()).expect("the tree always has a root");
        let mut root_inode = PInode {
            ino: ROOT_INO,
            path: Cow::Borrowed("/"),
            kind: Kind::Dir { parent: ROOT_INO, entries: Vec::new() },
            meta: Cow::Borrowed(&root.meta),
            links: 2,
        };
        let lpf_node = tree.get(&lpf_path);
        let lpf = match lpf_node {
            Some(n) if n.is_dir() => PInode {
                ino: LPF_INO,
                path: Cow::Borrowed("/lost+found"),
                kind: Kind::Dir { parent: ROOT_INO, entries: Vec::new() },
                meta: Cow::Borrowed(&n.meta),
                links: 2,
            },
            Some(n) => {
                return Err(Ext4Error::Unsupported {
                    path: "/lost+found".into(),
                    why: format!("is a {}; ext4 needs it to be a directory", n.kind.describe()),
                })
            }
            None => {
                let mut meta = Meta::root(0o700);
                meta.mtime = timestamp;
                if let Kind::Dir { entries, .. } = &mut root_inode.kind {
                    entries.push(DirEntry { name: "lost+found", ino: LPF_INO, ftype: ftype::DIR });
                }
                root_inode.links += 1;
                PInode {
                    ino: LPF_INO,
                    path: Cow::Borrowed("/lost+found"),
                    kind: Kind::Dir { parent: ROOT_INO, entries: Vec::new() },
                    meta: Cow::Owned(meta),
                    links: 2,
                }
            }
        };
        slots.push(Some(lpf));

        let mut assign = |path: &'a TreePath, ino_of: &mut HashMap<&'a TreePath, u32>, slots: &mut Vec<Option<PInode<'a>>>| -> u32 {
            if let Some(&i) = ino_of.get(path) {
                return i;
            }
            let i = next;
            next += 1;
            ino_of.insert(path, i);
            slots.push(None);
            i
        };

        for (path, node) in tree.iter() {
            if path.is_root() {
                continue;
            }
            let name = path.file_name();
            if name.len() > 255 {
                return Err(Ext4Error::Unsupported {
                    path: path.absolute(),
                    why: format!("name is {} bytes; ext4 allows 255", name.len()),
                });
            }
            let parent = path.parent().expect("non-root has a parent");
            let parent_ino = if parent.is_root() {
                ROOT_INO
            } else if parent == lpf_path {
                LPF_INO
            } else {
                *ino_of.get(&parent).expect("pre-order visits parents first")
            };

            let (ino, target_path) = if *path == lpf_path {
                (LPF_INO, path)
            } else if let NodeKind::Hardlink(t) = &node.kind {
                let f = resolve_hardlink(tree, path, t)?;
                (assign(f, &mut ino_of, &mut slots), f)
            } else {
                (assign(path, &mut ino_of, &mut slots), path)
            };

            let slot = &mut slots[(ino - LPF_INO) as usize];
            match slot {
                // lost+found was planned up front; other repeats are hard links.
                Some(_) if ino == LPF_INO => {}
                Some(existing) => existing.links += 1,
                None => {
                    let tnode = tree.get(target_path).expect("resolved paths exist");
                    let kind = match &tnode.kind {
                        NodeKind::Dir => Kind::Dir { parent: parent_ino, entries: Vec::new() },
                        NodeKind::File(c) => Kind::File(c),
                        NodeKind::Symlink(t) => Kind::Symlink(t),
                        NodeKind::CharDevice { major, minor } => Kind::Char { major: *major, minor: *minor },
                        NodeKind::BlockDevice { major, minor } => Kind::Block { major: *major, minor: *minor },
                        NodeKind::Fifo => Kind::Fifo,
                        NodeKind::Hardlink(_) => unreachable!("hard links resolve to files"),
                    };
                    let links = if tnode.is_dir() { 2 } else { 1 };
                    *slot = Some(PInode {
                        ino,
                        path: Cow::Owned(target_path.absolute()),
                        kind,
                        meta: Cow::Borrowed(&tnode.meta),
                        links,
                    });
                }
            }
            let entry = DirEntry { name, ino, ftype: ftype_of(&node.kind) };
            let is_dir = node.is_dir();
            let parent_inode = if parent_ino == ROOT_INO {
                &mut root_inode
            } else {
                slots[(parent_ino - LPF_INO) as usize].as_mut().expect("parent planned")
            };
            if let Kind::Dir { entries, .. } = &mut parent_inode.kind {
                entries.push(entry);
            }
            if is_dir {
                parent_inode.links += 1;
            }
        }

        let max_ino = next - 1;
        let mut inodes = Vec::with_capacity(slots.len() + 1);
        inodes.push(root_inode);
        for s in slots {
            inodes.push(s.expect("every assigned inode is filled"));
        }
        for i in &mut inodes {
            // dir_nlink: a directory with too many subdirectories counts as 1.
            if matches!(i.kind, Kind::Dir { .. }) && i.links >= 65000 {
                i.links = 1;
            }
            if i.links > 65000 {
                return Err(Ext4Error::Unsupported {
                    path: i.path.to_string(),
                    why: format!("{} hard links; ext4 allows 65000", i.links),
                });
            }
        }
        Ok(Plan { inodes, max_ino })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dinv_fstree::{Node, Replace};

    #[test]
    fn numbers_in_preorder_and_folds_hardlinks() {
        let mut t = Tree::new();
        t.write_file(&TreePath::new("z/file"), "x", Meta::root(0o644)).unwrap();
        t.insert(TreePath::new("a/link"), Node::new(NodeKind::Hardlink(TreePath::new("z/file")), Meta::root(0o644)), Replace::Deny)
            .unwrap();
        t.mkdir_p(&TreePath::new("a/sub"), Meta::root(0o755)).unwrap();
        let p = Plan::build(&t, 0).unwrap();
        let names: Vec<(u32, &str, u32)> = p.inodes.iter().map(|i| (i.ino, &*i.path, i.links)).collect();
        assert_eq!(
            names,
            [(2, "/", 5), (11, "/lost+found", 2), (12, "/a", 3), (13, "/z/file", 2), (14, "/a/sub", 2), (15, "/z", 2)]
        );
        assert_eq!(p.max_ino, 15);
        match &p.inodes[2].kind {
            Kind::Dir { entries, parent } => {
                assert_eq!(*parent, 2);
                assert_eq!(entries.iter().map(|e| (e.name, e.ino)).collect::<Vec<_>>(), [("link", 13), ("sub", 14)]);
            }
            _ => panic!("/a is a directory"),
        }
    }
}
