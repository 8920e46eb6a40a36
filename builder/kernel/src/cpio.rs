//! Deterministic newc ("070701") cpio archives from a [`Tree`], the format
//! the kernel unpacks an initramfs from.
//!
//! Same tree, same bytes: entries in the tree's pre-order, inode numbers
//! counted from 1 in that order, mtimes from the nodes, no device numbers
//! of the build host. Extended attributes are not representable in newc
//! and are dropped.

use std::collections::HashMap;
use std::io::{self, Write};

use dinv_fstree::{NodeKind, Tree, TreePath};

/// How to write the archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpioOptions {
    /// Emit an entry `.` for the root directory (sets the root's mode).
    pub include_root: bool,
    /// Gzip the archive (fixed header: no name, mtime 0, OS "Unix").
    pub gzip: bool,
}

impl Default for CpioOptions {
    fn default() -> Self {
        CpioOptions { include_root: false, gzip: true }
    }
}

const S_IFIFO: u32 = 0o010000;
const S_IFCHR: u32 = 0o020000;
const S_IFDIR: u32 = 0o040000;
const S_IFBLK: u32 = 0o060000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

/// The archive as bytes (gzipped if asked).
pub fn cpio_bytes(tree: &Tree, opts: &CpioOptions) -> io::Result<Vec<u8>> {
    if opts.gzip {
        let gz = flate2::GzBuilder::new().mtime(0).operating_system(3).write(Vec::new(), flate2::Compression::new(6));
        write_cpio(tree, gz, opts.include_root)?.finish()
    } else {
        write_cpio(tree, Vec::new(), opts.include_root)
    }
}

/// Writes the uncompressed archive to `out` and returns it.
pub fn write_cpio<W: Write>(tree: &Tree, out: W, include_root: bool) -> io::Result<W> {
    let links = LinkGroups::of(tree)?;
    let mut w = NewcWriter { out, ino: 0 };
    let mut group_ino: HashMap<TreePath, u32> = HashMap::new();
    let mut subdirs: HashMap<TreePath, u32> = HashMap::new();
    for (p, n) in tree.iter() {
        if let (true, Some(parent)) = (n.is_dir(), p.parent()) {
            *subdirs.entry(parent).or_default() += 1;
        }
    }
    for (path, node) in tree.iter() {
        if path.is_root() && !include_root {
            continue;
        }
        let name = if path.is_root() { ".".to_string() } else { path.as_str().to_string() };
        let perm = node.meta.mode & 0o7777;
        let mut e = Entry { name, mode: 0, uid: node.meta.uid, gid: node.meta.gid, nlink: 1, mtime: clamp_time(node.meta.mtime), ino: 0, rdev: (0, 0) };
        match &node.kind {
            NodeKind::Dir => {
                e.mode = S_IFDIR | perm;
                e.nlink = 2 + subdirs.get(path).copied().unwrap_or(0);
                e.ino = w.next_ino();
                w.entry(&e, io::empty(), 0)?;
            }
            NodeKind::File(_) | NodeKind::Hardlink(_) => {
                let (first, group) = links.group_of(path);
                e.mode = S_IFREG | perm;
                e.nlink = group.members.len() as u32;
                e.ino = match group_ino.get(first) {
                    Some(i) => *i,
                    None => {
                        let i = w.next_ino();
                        group_ino.insert(first.clone(), i);
                        i
                    }
                };
                // GNU cpio's convention: only the last name of a hard-link
                // group carries the data. The kernel links the others to
                // the first name and writes the data through the last.
                if group.members.last() == Some(path) {
                    let c = &group.content;
                    w.entry(&e, c.reader(), c.len())?;
                } else {
                    w.entry(&e, io::empty(), 0)?;
                }
            }
            NodeKind::Symlink(target) => {
                e.mode = S_IFLNK | 0o777;
                e.ino = w.next_ino();
                w.entry(&e, target.as_bytes(), target.len() as u64)?;
            }
            NodeKind::CharDevice { major, minor } | NodeKind::BlockDevice { major, minor } => {
                let t = if matches!(node.kind, NodeKind::CharDevice { .. }) { S_IFCHR } else { S_IFBLK };
                e.mode = t | perm;
                e.rdev = (*major, *minor);
                e.ino = w.next_ino();
                w.entry(&e, io::empty(), 0)?;
            }
            NodeKind::Fifo => {
                e.mode = S_IFIFO | perm;
                e.ino = w.next_ino();
                w.entry(&e, io::empty(), 0)?;
            }
        }
    }
    let trailer = Entry { name: "TRAILER!!!".into(), mode: 0, uid: 0, gid: 0, nlink: 1, mtime: 0, ino: 0, rdev: (0, 0) };
    w.entry(&trailer, io::empty(), 0)?;
    Ok(w.out)
}

/// newc stores times as unsigned 32-bit seconds.
fn clamp_time(t: i64) -> u32 {
    t.clamp(0, u32::MAX as i64) as u32
}

struct Entry {
    name: String,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: u32,
    ino: u32,
    rdev: (u32, u32),
}

struct NewcWriter<W: Write> {
    out: W,
    ino: u32,
}

impl<W: Write> NewcWriter<W> {
    fn next_ino(&mut self) -> u32 {
        self.ino += 1;
        self.ino
    }

    fn entry(&mut self, e: &Entry, data: impl io::Read, size: u64) -> io::Result<()> {
        if size > u32::MAX as u64 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{}: {size} bytes is too large for a newc cpio entry", e.name)));
        }
        let namesize = e.name.len() + 1;
        let header = format!(
            "070701{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
            e.ino, e.mode, e.uid, e.gid, e.nlink, e.mtime, size, 0, 0, e.rdev.0, e.rdev.1, namesize, 0
        );
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(e.name.as_bytes())?;
        self.out.write_all(&[0])?;
        self.pad(110 + namesize)?;
        let copied = io::copy(&mut data.take(size), &mut self.out)?;
        if copied != size {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{}: content ended after {copied} of {size} bytes", e.name)));
        }
        self.pad(size as usize)
    }

    fn pad(&mut self, written: usize) -> io::Result<()> {
        let n = (4 - written % 4) % 4;
        self.out.write_all(&[0u8; 3][..n])
    }
}

/// Regular files grouped with their hard links.
struct LinkGroups<'a> {
    /// Any member path → the group's file path.
    owner: HashMap<TreePath, TreePath>,
    groups: HashMap<TreePath, Group<'a>>,
}

struct Group<'a> {
    content: &'a dinv_fstree::Content,
    /// Every name, in pre-order.
    members: Vec<TreePath>,
}

impl<'a> LinkGroups<'a> {
    fn of(tree: &'a Tree) -> io::Result<LinkGroups<'a>> {
        let mut owner = HashMap::new();
        let mut groups: HashMap<TreePath, Group> = HashMap::new();
        for (path, node) in tree.iter() {
            if !matches!(node.kind, NodeKind::File(_) | NodeKind::Hardlink(_)) {
                continue;
            }
            let (file, content) = link_target(tree, path)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: hard link that does not lead to a regular file")))?;
            owner.insert(path.clone(), file.clone());
            groups.entry(file).or_insert_with(|| Group { content, members: Vec::new() }).members.push(path.clone());
        }
        Ok(LinkGroups { owner, groups })
    }

    fn group_of(&self, path: &TreePath) -> (&TreePath, &Group<'a>) {
        let f = &self.owner[path];
        (f, &self.groups[f])
    }
}

/// The regular file a file or hard-link chain ends at.
fn link_target<'a>(tree: &'a Tree, path: &TreePath) -> Option<(TreePath, &'a dinv_fstree::Content)> {
    let mut p = path.clone();
    for _ in 0..40 {
        match &tree.get(&p)?.kind {
            NodeKind::File(c) => return Some((p, c)),
            NodeKind::Hardlink(t) => p = t.clone(),
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use dinv_fstree::{Meta, Node, Replace};
    use sha2::{Digest, Sha256};
    use std::process::{Command, Stdio};

    fn sample() -> Tree {
        let mut t = Tree::new();
        let m = |mode, mtime| Meta { mtime, ..Meta::root(mode) };
        t.write_file(&TreePath::new("init"), b"#!/bin/true\n".to_vec(), m(0o755, 1_700_000_000)).unwrap();
        t.write_file(&TreePath::new("etc/dinv/modules"), b"a\nbb\n".to_vec(), m(0o644, 5)).unwrap();
        t.insert(TreePath::new("etc/dinv/same"), Node::new(NodeKind::Hardlink(TreePath::new("etc/dinv/modules")), m(0o644, 5)), Replace::Deny).unwrap();
        t.insert(TreePath::new("dev/console"), Node::new(NodeKind::CharDevice { major: 5, minor: 1 }, m(0o600, 0)), Replace::Deny).unwrap();
        t.insert(TreePath::new("run/fifo"), Node::new(NodeKind::Fifo, m(0o644, 0)), Replace::Deny).unwrap();
        t.symlink(&TreePath::new("bin"), "usr/bin").unwrap();
        t.mkdir_p(&TreePath::new("newroot"), m(0o755, 0)).unwrap();
        t
    }

    #[test]
    fn layout_is_newc() {
        let bytes = cpio_bytes(&sample(), &CpioOptions { include_root: false, gzip: false }).unwrap();
        assert_eq!(bytes.len() % 4, 0);
        assert!(bytes.starts_with(b"070701"));
        // First entry: `bin` (a symlink, sorted first), inode 1.
        assert_eq!(&bytes[6..14], b"00000001");
        assert_eq!(&bytes[14..22], b"0000A1FF");
        assert_eq!(&bytes[110..114], b"bin\0");
        let tail = String::from_utf8_lossy(&bytes[bytes.len() - 128..]).to_string();
        assert!(tail.contains("TRAILER!!!"), "{tail}");
    }

    #[test]
    fn same_tree_same_bytes() {
        let a = cpio_bytes(&sample(), &CpioOptions::default()).unwrap();
        let b = cpio_bytes(&sample(), &CpioOptions::default()).unwrap();
        assert_eq!(Sha256::digest(&a), Sha256::digest(&b));
        assert_eq!(&a[..4], &[0x1f, 0x8b, 8, 0], "gzip without a file name");
        assert_eq!(&a[4..8], &[0, 0, 0, 0], "gzip mtime 0");
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&a[..]), &mut plain).unwrap();
        assert_eq!(plain, cpio_bytes(&sample(), &CpioOptions { include_root: false, gzip: false }).unwrap());
    }

    fn listing(tool: &str, args: &[&str], input: &[u8]) -> String {
        let mut child = Command::new(tool)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{tool} is needed for this test ({e}); install it with: apt-get install -y cpio libarchive-tools"));
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{tool} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn readable_by_cpio_and_bsdcpio() {
        let bytes = cpio_bytes(&sample(), &CpioOptions { include_root: true, gzip: false }).unwrap();
        let want = ".\nbin\ndev\ndev/console\netc\netc/dinv\netc/dinv/modules\netc/dinv/same\ninit\nnewroot\nrun\nrun/fifo\n";
        assert_eq!(listing("cpio", &["-t", "--quiet"], &bytes), want);
        assert_eq!(listing("bsdcpio", &["-t", "--quiet"], &bytes), want);
        let verbose = listing("cpio", &["-tv", "--quiet"], &bytes);
        let line = |name: &str| verbose.lines().find(|l| l.ends_with(name)).unwrap().to_string();
        assert!(line(" init").starts_with("-rwxr-xr-x   1 root     root           12 Nov 14  2023"), "{verbose}");
        assert!(line("etc/dinv/modules").starts_with("-rw-r--r--   2 "), "{verbose}");
        assert!(line("dev/console").starts_with("crw-------   1 root     root       5,   1"), "{verbose}");
        assert!(line("bin -> usr/bin").starts_with("lrwxrwxrwx"), "{verbose}");

        // Extract with GNU cpio: hard links share data, contents intact.
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("cpio")
            .args(["-i", "--quiet", "-d", "--no-absolute-filenames", "--nonmatching", "dev/console"])
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(std::fs::read(dir.path().join("etc/dinv/same")).unwrap(), b"a\nbb\n");
        use std::os::unix::fs::MetadataExt;
        let (a, b) = (std::fs::metadata(dir.path().join("etc/dinv/modules")).unwrap(), std::fs::metadata(dir.path().join("etc/dinv/same")).unwrap());
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
        assert_eq!(std::fs::read_link(dir.path().join("bin")).unwrap().to_str(), Some("usr/bin"));
    }
}
