//! Tar in and out of the tree.

mod read;
mod write;

pub use read::{EntryType, TarEntry, TarError, TarReader};
pub use write::{header_block, write_tree, Header, Magic, TarBuilder, TreeTarOptions};

use std::io::Read;
use std::sync::Arc;

use crate::{BackingFile, Content, Meta, Node, NodeKind, Replace, Tree, TreeError, TreePath};

/// How archive members become tree nodes.
pub struct UnpackOptions<'a> {
    /// Recorded as each node's origin (a package name).
    pub origin: Arc<str>,
    /// What happens when a member replaces an existing non-directory.
    pub replace: Replace,
    /// Optional path rewrite (e.g. merged-/usr): gets the clean path, returns
    /// the path to use, or `None` to drop the member.
    pub rewrite: Option<&'a dyn Fn(&TreePath) -> Option<TreePath>>,
}

/// Errors while unpacking an archive into the tree.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error(transparent)]
    Tar(#[from] TarError),
    #[error("member {member:?}: {source}")]
    Tree { member: String, source: TreeError },
}

/// Turns one tar member into a tree node. `content` is where a regular
/// file's bytes are (ignored for other types).
pub fn insert_entry(tree: &mut Tree, e: &TarEntry, content: Option<Content>, opts: &UnpackOptions) -> Result<(), UnpackError> {
    let wrap = |source: TreeError| UnpackError::Tree {
        member: e.path.clone(),
        source,
    };
    let mut path = TreePath::parse(&e.path, false).map_err(|err| wrap(err.into()))?;
    if let Some(rw) = opts.rewrite {
        match rw(&path) {
            Some(p) => path = p,
            None => return Ok(()),
        }
    }
    let kind = match e.entry_type {
        EntryType::Regular => NodeKind::File(content.unwrap_or_else(|| Content::from_bytes(Vec::new()))),
        EntryType::Dir => NodeKind::Dir,
        EntryType::Symlink => NodeKind::Symlink(e.link.clone()),
        EntryType::Hardlink => {
            let mut target = TreePath::parse(&e.link, false).map_err(|err| wrap(err.into()))?;
            if let Some(rw) = opts.rewrite {
                if let Some(t) = rw(&target) {
                    target = t;
                }
            }
            NodeKind::Hardlink(target)
        }
        EntryType::CharDevice => NodeKind::CharDevice {
            major: e.dev_major,
            minor: e.dev_minor,
        },
        EntryType::BlockDevice => NodeKind::BlockDevice {
            major: e.dev_major,
            minor: e.dev_minor,
        },
        EntryType::Fifo => NodeKind::Fifo,
    };
    let meta = Meta {
        mode: e.mode & 0o7777,
        uid: e.uid,
        gid: e.gid,
        mtime: e.mtime,
        xattrs: e.xattrs.clone(),
    };
    let node = Node {
        kind,
        meta,
        origin: Some(opts.origin.clone()),
    };
    if path.is_root() && !node.is_dir() {
        return Err(wrap(TreeError::BadPath(crate::PathError { path: e.path.clone(), why: "names the root" })));
    }
    tree.insert(path, node, opts.replace).map_err(wrap)
}

/// Unpacks a whole uncompressed tar stream into the tree. Regular files
/// point into `backing`, which must hold the same bytes as the stream
/// (typically the stream is being written into it as it is read). Returns
/// the number of members.
pub fn unpack_backed<R: Read>(reader: R, backing: &Arc<BackingFile>, tree: &mut Tree, opts: &UnpackOptions) -> Result<usize, UnpackError> {
    let mut tar = TarReader::new(reader);
    let mut n = 0;
    while let Some(e) = tar.next_entry()? {
        let content = (e.entry_type == EntryType::Regular).then(|| Content::Range {
            file: backing.clone(),
            offset: e.data_offset,
            len: e.size,
        });
        insert_entry(tree, &e, content, opts)?;
        n += 1;
    }
    Ok(n)
}

/// Unpacks a tar stream, keeping file contents in memory (small archives:
/// control tarballs, overlays, tests).
pub fn unpack_in_memory<R: Read>(reader: R, tree: &mut Tree, opts: &UnpackOptions) -> Result<usize, UnpackError> {
    let mut tar = TarReader::new(reader);
    let mut n = 0;
    while let Some(e) = tar.next_entry()? {
        let content = if e.entry_type == EntryType::Regular {
            Some(Content::from_bytes(tar.read_data(&e)?))
        } else {
            None
        };
        insert_entry(tree, &e, content, opts)?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn opts() -> UnpackOptions<'static> {
        UnpackOptions {
            origin: Arc::from("test"),
            replace: Replace::Deny,
            rewrite: None,
        }
    }

    #[test]
    fn round_trip_through_tree() {
        let mut t = Tree::new();
        let long = format!("usr/share/{}/file", "d".repeat(120));
        t.write_file(&TreePath::new(&long), "long", Meta::root(0o644)).unwrap();
        let mut m = Meta::root(0o755);
        m.xattrs
            .insert("security.capability".into(), vec![1, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        t.write_file(&TreePath::new("usr/bin/ping"), "ping", m).unwrap();
        t.insert(
            TreePath::new("dev/null"),
            Node::new(NodeKind::CharDevice { major: 1, minor: 3 }, Meta::root(0o666)),
            Replace::Deny,
        )
        .unwrap();
        t.insert(
            TreePath::new("usr/bin/ping4"),
            Node::new(NodeKind::Hardlink(TreePath::new("usr/bin/ping")), Meta::root(0o755)),
            Replace::Deny,
        )
        .unwrap();
        t.symlink(&TreePath::new("bin"), "usr/bin").unwrap();
        let mut b = TarBuilder::new(Vec::new());
        write_tree(
            &t,
            &mut b,
            &TreeTarOptions {
                skip_root: true,
                ..Default::default()
            },
        )
        .unwrap();
        let bytes = b.finish().unwrap();

        let mut t2 = Tree::new();
        unpack_in_memory(Cursor::new(&bytes), &mut t2, &opts()).unwrap();
        assert_eq!(t2.read_file(&TreePath::new(&long)).unwrap(), b"long");
        let ping = t2.get(&TreePath::new("usr/bin/ping")).unwrap();
        assert_eq!(ping.meta.mode, 0o755);
        assert_eq!(ping.meta.xattrs["security.capability"][0], 1);
        assert!(matches!(
            t2.get(&TreePath::new("dev/null")).unwrap().kind,
            NodeKind::CharDevice { major: 1, minor: 3 }
        ));
        assert!(matches!(&t2.get(&TreePath::new("usr/bin/ping4")).unwrap().kind, NodeKind::Hardlink(p) if p.as_str() == "usr/bin/ping"));
        assert_eq!(t2.read_file(&TreePath::new("bin/ping")).unwrap(), b"ping");

        // Deterministic: writing the re-read tree gives the same bytes.
        let mut b2 = TarBuilder::new(Vec::new());
        write_tree(
            &t2,
            &mut b2,
            &TreeTarOptions {
                skip_root: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(bytes, b2.finish().unwrap());
    }

    fn one_member(path: &str, typeflag: u8, link: &str) -> Vec<u8> {
        let mut b = TarBuilder::new(Vec::new());
        let mut h = Header::new(path, typeflag);
        h.link = link.into();
        b.append(&h, &mut std::io::empty()).unwrap();
        b.finish().unwrap()
    }

    #[test]
    fn traversal_is_rejected() {
        for bad in ["../etc/passwd", "/etc/passwd", "a/../../b"] {
            let mut t = Tree::new();
            let err = unpack_in_memory(Cursor::new(one_member(bad, b'0', "")), &mut t, &opts()).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
            assert_eq!(t.len(), 1);
        }
        // A symlink to the outside, then a file written through it.
        let mut b = TarBuilder::new(Vec::new());
        let mut h = Header::new("x", b'2');
        h.link = "/etc".into();
        b.append(&h, &mut std::io::empty()).unwrap();
        let mut f = Header::new("x/shadow", b'0');
        f.size = 2;
        b.append(&f, &mut &b"hi"[..]).unwrap();
        let mut t = Tree::new();
        let err = unpack_in_memory(Cursor::new(b.finish().unwrap()), &mut t, &opts()).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        // Hard link to something outside the tree.
        let mut t = Tree::new();
        assert!(unpack_in_memory(Cursor::new(one_member("h", b'1', "../../etc/shadow")), &mut t, &opts()).is_err());
    }

    #[test]
    fn checksum_is_checked() {
        let mut bytes = one_member("a", b'0', "");
        bytes[0] = b'b';
        let mut t = Tree::new();
        assert!(matches!(
            unpack_in_memory(Cursor::new(bytes), &mut t, &opts()),
            Err(UnpackError::Tar(TarError::Checksum { .. }))
        ));
    }
}
