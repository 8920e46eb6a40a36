//! Whole-image tests: build trees in code, write them, and check the
//! result with e2fsck and debugfs from e2fsprogs.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use dinv_ext4::{write_image, Ext4Error, Ext4Options};
use dinv_fstree::{BackingFile, Content, Meta, Node, NodeKind, Replace, Tree, TreePath};
use sha2::{Digest, Sha256};

use common::{cat, debugfs, fsck};

fn meta(mode: u32, uid: u32, gid: u32, mtime: i64) -> Meta {
    Meta { mode, uid, gid, mtime, xattrs: BTreeMap::new() }
}

fn put(t: &mut Tree, path: &str, kind: NodeKind, m: Meta) {
    t.insert(TreePath::new(path), Node::new(kind, m), Replace::Allow).unwrap();
}

fn opts() -> Ext4Options {
    Ext4Options::from_seed("dinv-ext4 tests", 1_700_000_000)
}

/// Deterministic, incompressible-looking bytes.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sha256_file(p: &Path) -> String {
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(p).unwrap();
    std::io::copy(&mut f, &mut h).unwrap();
    format!("{:x}", h.finalize())
}

/// A line of `debugfs stat` output starting with `key`.
fn stat_line<'a>(stat: &'a str, key: &str) -> &'a str {
    stat.lines().find(|l| l.trim_start().starts_with(key)).unwrap_or_else(|| panic!("no {key:?} in:\n{stat}"))
}

fn rich_tree() -> Tree {
    let mut t = Tree::new();
    t.mkdir_p(&TreePath::new("etc"), meta(0o755, 0, 0, 1_600_000_000)).unwrap();
    put(&mut t, "etc/hostname", NodeKind::File(Content::from_bytes(b"dinv\n".to_vec())), meta(0o644, 0, 0, 1_600_000_001));
    put(&mut t, "empty", NodeKind::File(Content::from_bytes(Vec::new())), meta(0o600, 0, 0, 0));
    put(&mut t, "exact4096", NodeKind::File(Content::from_bytes(noise(1, 4096))), meta(0o644, 0, 0, 0));
    put(&mut t, "four4097", NodeKind::File(Content::from_bytes(noise(2, 4097))), meta(0o644, 0, 0, 0));
    put(&mut t, "usr/bin/su", NodeKind::File(Content::from_bytes(noise(3, 10_000))), meta(0o4755, 0, 0, 0));
    put(&mut t, "usr/bin/wall", NodeKind::File(Content::from_bytes(b"#!/bin/sh\n".to_vec())), meta(0o2755, 0, 5, 0));
    put(&mut t, "tmp", NodeKind::Dir, meta(0o1777, 0, 0, 0));
    put(&mut t, "home/big", NodeKind::File(Content::from_bytes(b"owner".to_vec())), meta(0o640, 100_000, 200_000, 0));
    put(&mut t, "future", NodeKind::File(Content::from_bytes(b"y2038".to_vec())), meta(0o644, 0, 0, 4_000_000_000));
    put(&mut t, "bin/sh", NodeKind::Symlink("busybox".into()), meta(0o777, 0, 0, 0));
    let long = "/usr/lib/some/very/deep/directory/structure/that/goes/on/and/on/target.so.1";
    put(&mut t, "lib/long", NodeKind::Symlink(long.into()), meta(0o777, 0, 0, 0));
    // A hard link that sorts before its target, and a chained one.
    put(&mut t, "usr/bin/a-link", NodeKind::Hardlink(TreePath::new("usr/bin/su")), meta(0o4755, 0, 0, 0));
    put(&mut t, "usr/bin/z-link", NodeKind::Hardlink(TreePath::new("usr/bin/a-link")), meta(0o4755, 0, 0, 0));
    put(&mut t, "dev/null", NodeKind::CharDevice { major: 1, minor: 3 }, meta(0o666, 0, 0, 0));
    put(&mut t, "dev/sda", NodeKind::BlockDevice { major: 8, minor: 0 }, meta(0o660, 0, 6, 0));
    put(&mut t, "dev/nvme", NodeKind::BlockDevice { major: 259, minor: 70_000 }, meta(0o660, 0, 6, 0));
    put(&mut t, "run/initctl", NodeKind::Fifo, meta(0o600, 0, 0, 0));
    let mut cap = meta(0o755, 0, 0, 0);
    let cap_value: Vec<u8> = [0x00, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00].into_iter().chain([0u8; 12]).collect();
    cap.xattrs.insert("security.capability".into(), cap_value);
    put(&mut t, "usr/bin/ping", NodeKind::File(Content::from_bytes(b"ping".to_vec())), cap);
    let mut many = meta(0o644, 0, 0, 0);
    many.xattrs.insert("user.big".into(), vec![b'x'; 300]);
    many.xattrs.insert("trusted.small".into(), b"v".to_vec());
    put(&mut t, "xattr-block", NodeKind::File(Content::from_bytes(b"x".to_vec())), many);
    let mut acl = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in [(1u16, 7u16, u32::MAX), (2, 5, 1000), (4, 5, u32::MAX), (0x10, 5, u32::MAX), (0x20, 0, u32::MAX)] {
        acl.extend_from_slice(&tag.to_le_bytes());
        acl.extend_from_slice(&perm.to_le_bytes());
        acl.extend_from_slice(&id.to_le_bytes());
    }
    let mut acl_meta = meta(0o750, 0, 0, 0);
    acl_meta.xattrs.insert("system.posix_acl_access".into(), acl);
    put(&mut t, "acl", NodeKind::File(Content::from_bytes(b"acl".to_vec())), acl_meta);
    let mut dmeta = meta(0o755, 0, 0, 0);
    dmeta.xattrs.insert("user.dir".into(), b"yes".to_vec());
    put(&mut t, "xdir", NodeKind::Dir, dmeta);
    t
}

#[test]
fn rich_tree_is_clean_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("rich.img");
    let report = write_image(&rich_tree(), &img, &opts()).unwrap();
    fsck(&img);
    assert_eq!(report.size, std::fs::metadata(&img).unwrap().len());
    assert_eq!(report.inodes_used, 11 + 27);

    assert_eq!(cat(&img, "/etc/hostname"), b"dinv\n");
    assert_eq!(cat(&img, "/exact4096"), noise(1, 4096));
    assert_eq!(cat(&img, "/four4097"), noise(2, 4097));
    assert_eq!(cat(&img, "/usr/bin/z-link"), noise(3, 10_000));
    assert!(cat(&img, "/empty").is_empty());

    let su = debugfs(&img, "stat /usr/bin/su");
    assert!(stat_line(&su, "Inode:").contains("Mode:  04755"), "{su}");
    assert!(stat_line(&su, "Links:").starts_with("Links: 3 "), "{su}");
    let a = debugfs(&img, "stat /usr/bin/a-link");
    assert_eq!(stat_line(&a, "Inode:").split_whitespace().nth(1), stat_line(&su, "Inode:").split_whitespace().nth(1));
    assert!(stat_line(&debugfs(&img, "stat /usr/bin/wall"), "Inode:").contains("Mode:  02755"));
    assert!(stat_line(&debugfs(&img, "stat /tmp"), "Inode:").contains("Mode:  01777"));

    let big = debugfs(&img, "stat /home/big");
    let owner = stat_line(&big, "User:");
    assert!(owner.contains("User: 100000") && owner.contains("Group: 200000"), "{owner}");
    assert!(stat_line(&big, "Inode:").contains("Mode:  0640"));

    let fut = debugfs(&img, "stat /future");
    assert!(stat_line(&fut, "mtime:").contains("2096"), "{fut}");

    let sh = debugfs(&img, "stat /bin/sh");
    assert!(sh.contains("Fast link dest: \"busybox\""), "{sh}");
    let long = debugfs(&img, "stat /lib/long");
    assert!(stat_line(&long, "Inode:").contains("Type: symlink"), "{long}");
    assert!(stat_line(&long, "Inode:").contains("Flags: 0x80000"), "{long}");
    assert_eq!(cat(&img, "/lib/long"), b"/usr/lib/some/very/deep/directory/structure/that/goes/on/and/on/target.so.1");

    let null = debugfs(&img, "stat /dev/null");
    assert!(null.contains("Type: character special"), "{null}");
    assert!(null.contains("Device major/minor number: 01:03"), "{null}");
    let sda = debugfs(&img, "stat /dev/sda");
    assert!(sda.contains("Type: block special") && sda.contains("Device major/minor number: 08:00"), "{sda}");
    assert!(stat_line(&sda, "User:").contains("Group:     6"), "{sda}");
    let nvme = debugfs(&img, "stat /dev/nvme");
    assert!(nvme.contains("Device major/minor number: 259:70000"), "{nvme}");
    assert!(debugfs(&img, "stat /run/initctl").contains("Type: FIFO"));

    let ping = debugfs(&img, "ea_list /usr/bin/ping");
    assert!(ping.contains("security.capability (20)"), "{ping}");
    let ping_stat = debugfs(&img, "stat /usr/bin/ping");
    assert!(stat_line(&ping_stat, "File ACL:").starts_with("File ACL: 0"), "capability stays in the inode: {ping_stat}");
    let xb = debugfs(&img, "ea_list /xattr-block");
    assert!(xb.contains("user.big (300)") && xb.contains("trusted.small (1) = \"v\""), "{xb}");
    let xb_stat = debugfs(&img, "stat /xattr-block");
    assert!(!stat_line(&xb_stat, "File ACL:").starts_with("File ACL: 0"), "big xattrs go to a block: {xb_stat}");
    assert!(debugfs(&img, "ea_list /xdir").contains("user.dir (3) = \"yes\""));
    // Stored in ext4's compact ACL form (version 1, short entries but for named users).
    let acl = debugfs(&img, "ea_list /acl");
    assert!(acl.contains("system.posix_acl_access (28) = 01 00 00 00 01 00 07 00 02 00 05 00 e8 03 00 00 04 00"), "{acl}");

    let lpf = debugfs(&img, "stat /lost+found");
    assert!(stat_line(&lpf, "Inode:").starts_with("Inode: 11 "), "{lpf}");
    let root = debugfs(&img, "stat /");
    // Subdirectories of /: bin dev etc home lib lost+found run tmp usr xdir.
    assert!(stat_line(&root, "Links:").starts_with("Links: 12 "), "{root}");
}

#[test]
fn same_tree_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.img"), dir.path().join("b.img"));
    write_image(&rich_tree(), &a, &opts()).unwrap();
    write_image(&rich_tree(), &b, &opts()).unwrap();
    assert_eq!(sha256_file(&a), sha256_file(&b));
    let c = dir.path().join("c.img");
    write_image(&rich_tree(), &c, &Ext4Options::from_seed("another seed", 1_700_000_000)).unwrap();
    assert_ne!(sha256_file(&a), sha256_file(&c));
}

#[test]
fn without_journal_or_checksums_still_clean() {
    let dir = tempfile::tempdir().unwrap();
    for (journal, csum) in [(false, true), (true, false), (false, false)] {
        let img = dir.path().join(format!("v-{journal}-{csum}.img"));
        let o = Ext4Options { journal, metadata_csum: csum, label: "variant".into(), ..opts() };
        write_image(&rich_tree(), &img, &o).unwrap();
        fsck(&img);
        let sb = debugfs(&img, "stats");
        assert_eq!(sb.contains("has_journal"), journal, "{sb}");
        assert_eq!(sb.contains("metadata_csum"), csum, "{sb}");
        assert!(sb.contains("Filesystem volume name:   variant"), "{sb}");
        assert_eq!(cat(&img, "/usr/bin/su"), noise(3, 10_000));
    }
}

#[test]
fn directory_with_5000_entries() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("dir.img");
    let mut t = Tree::new();
    for i in 0..5000 {
        let body = format!("file {i}\n");
        put(&mut t, &format!("many/entry-with-a-longish-name-{i:05}"), NodeKind::File(Content::from_bytes(body.into_bytes())), meta(0o644, 0, 0, 0));
    }
    for i in 0..40 {
        t.mkdir_p(&TreePath::new(&format!("many/sub{i:02}")), meta(0o755, 0, 0, 0)).unwrap();
    }
    write_image(&t, &img, &opts()).unwrap();
    fsck(&img);
    let ls = debugfs(&img, "ls -l /many");
    assert_eq!(ls.lines().filter(|l| l.contains("entry-with-a-longish-name-")).count(), 5000);
    assert_eq!(cat(&img, "/many/entry-with-a-longish-name-04999"), b"file 4999\n");
    let st = debugfs(&img, "stat /many");
    assert!(stat_line(&st, "Links:").starts_with("Links: 42 "), "{st}");
    let size: u64 = stat_line(&st, "User:").rsplit("Size: ").next().unwrap().trim().parse().unwrap();
    assert!(size > 4096 * 40, "multi-block directory: {st}");
}

#[test]
fn existing_lost_found_and_large_inodes() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("lpf.img");
    let mut t = rich_tree();
    t.mkdir_p(&TreePath::new("lost+found"), meta(0o700, 0, 0, 5)).unwrap();
    put(&mut t, "lost+found/#1234", NodeKind::File(Content::from_bytes(b"found".to_vec())), meta(0o600, 0, 0, 0));
    let mut xl = meta(0o644, 0, 0, 0);
    xl.xattrs.insert("user.medium".into(), vec![7; 200]);
    put(&mut t, "xattr-in-512", NodeKind::File(Content::from_bytes(b"x".to_vec())), xl);
    let r = write_image(&t, &img, &Ext4Options { inode_size: 512, ..opts() }).unwrap();
    fsck(&img);
    assert!(stat_line(&debugfs(&img, "stat /lost+found"), "Inode:").starts_with("Inode: 11 "));
    assert_eq!(cat(&img, "/lost+found/#1234"), b"found");
    let st = debugfs(&img, "stat /xattr-in-512");
    assert!(stat_line(&st, "File ACL:").starts_with("File ACL: 0"), "200-byte xattr fits a 512-byte inode: {st}");
    assert!(debugfs(&img, "stats").contains("Inode size:\t          512"));
    assert_eq!(r.inodes_used, 11 + 29);
}

#[test]
fn too_small_says_how_much_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("small.img");
    let mut t = Tree::new();
    put(&mut t, "blob", NodeKind::File(Content::from_bytes(noise(9, 20 << 20))), meta(0o644, 0, 0, 0));
    let err = write_image(&t, &img, &Ext4Options { size: Some(8 << 20), ..opts() }).unwrap_err();
    let Ext4Error::TooSmall { needed, size } = err else { panic!("{err}") };
    assert_eq!(size, 8 << 20);
    assert!(needed > 20 << 20 && needed < 40 << 20, "{needed}");
    assert!(!img.exists() && std::fs::read_dir(dir.path()).unwrap().next().is_none(), "no temp file left");
    // The size it asked for is enough.
    let r = write_image(&t, &img, &Ext4Options { size: Some(needed), ..opts() }).unwrap();
    assert_eq!(r.size, needed);
    fsck(&img);
    assert_eq!(cat(&img, "/blob"), noise(9, 20 << 20));
}

#[test]
fn fixed_size_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("fixed.img");
    let r = write_image(&rich_tree(), &img, &Ext4Options { size: Some(300 << 20), ..opts() }).unwrap();
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 300 << 20);
    assert_eq!(r.blocks, (300 << 20) / 4096);
    assert_eq!(r.groups, 3);
    fsck(&img);
    // Zero regions (inode tables, journal, free space) are never written.
    use std::os::unix::fs::MetadataExt;
    let on_disk = std::fs::metadata(&img).unwrap().blocks() * 512;
    assert!(on_disk < 4 << 20, "{on_disk} bytes allocated for a 300 MiB image of a tiny tree");
}

/// Writes `bytes` to a backing file and returns Range contents over it.
fn backed(dir: &Path, parts: &[Vec<u8>]) -> Vec<Content> {
    let path = dir.join("backing.bin");
    let mut f = std::fs::File::create(&path).unwrap();
    let mut offs = Vec::new();
    let mut at = 0u64;
    for p in parts {
        f.write_all(p).unwrap();
        offs.push((at, p.len() as u64));
        at += p.len() as u64;
    }
    drop(f);
    let bf = BackingFile::open(&path).unwrap();
    offs.into_iter().map(|(offset, len)| Content::Range { file: bf.clone(), offset, len }).collect()
}

#[test]
fn big_and_sparse_files() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("big.img");
    // 150 MiB of noise: more than one group and more than one 128 MiB extent.
    let big = noise(11, 150 << 20);
    // Holes: every other 4 KiB block zero, 24 MiB long -> 3072 extents in
    // 10 leaves under an index block: a depth-2 tree.
    let mut holey = vec![0u8; 24 << 20];
    for (i, b) in holey.chunks_mut(4096).enumerate() {
        if i % 2 == 0 {
            b.copy_from_slice(&noise(i as u64, 4096));
        }
    }
    // Mostly zero with a tail: one leading hole.
    let mut tail = vec![0u8; 50 << 20];
    tail[(50 << 20) - 10..].copy_from_slice(b"0123456789");
    let zeros = vec![0u8; 1 << 20];
    let contents = backed(dir.path(), &[big.clone(), holey.clone(), tail.clone(), zeros.clone()]);
    let mut t = Tree::new();
    for (name, c) in ["big", "holey", "tail", "zeros"].iter().zip(contents) {
        put(&mut t, &format!("data/{name}"), NodeKind::File(c), meta(0o644, 0, 0, 0));
    }
    for i in 0..200 {
        let len = (i * 7919) % 300_000;
        put(&mut t, &format!("data/mix/{i:03}"), NodeKind::File(Content::from_bytes(noise(i as u64, len))), meta(0o644, 0, 0, 0));
    }
    let r = write_image(&t, &img, &opts()).unwrap();
    fsck(&img);
    assert_eq!(cat(&img, "/data/big"), big);
    assert_eq!(cat(&img, "/data/holey"), holey);
    assert_eq!(cat(&img, "/data/tail"), tail);
    assert_eq!(cat(&img, "/data/zeros"), zeros);
    assert_eq!(cat(&img, "/data/mix/123"), noise(123, (123 * 7919) % 300_000));

    let hs = debugfs(&img, "stat /data/holey");
    assert!(stat_line(&hs, "Links:").contains("Blockcount: 24664"), "3072 data blocks + 10 leaves + 1 index: {hs}");
    let holey_extents = debugfs(&img, "dump_extents /data/holey");
    assert!(holey_extents.lines().any(|l| l.trim_start().starts_with("0/ 2")), "depth 2: {holey_extents}");
    let zs = debugfs(&img, "stat /data/zeros");
    assert!(stat_line(&zs, "Links:").contains("Blockcount: 0"), "all-zero file is one hole: {zs}");
    let ts = debugfs(&img, "stat /data/tail");
    assert!(stat_line(&ts, "Links:").contains("Blockcount: 8"), "{ts}");
    // Holes take no blocks: used = non-zero data (~191 MiB) + journal + inode tables,
    // well below the 255 MiB of file sizes.
    assert!(r.blocks_used * 4096 < 216 << 20, "{r:?}");
}
