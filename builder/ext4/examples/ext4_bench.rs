//! Benchmark: writes a ~900 MB, ~16,000-file tree with dinv-ext4 and with
//! `mke2fs -t ext4 -d` (from an unpacked copy of the same tree, same size),
//! prints both times and checks both images with `e2fsck -fn`.
//!
//! Run: `cargo run --release -p dinv-ext4 --example ext4_bench`

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use dinv_ext4::{write_image, Ext4Options};
use dinv_fstree::{BackingFile, Content, Meta, NodeKind, Tree, TreePath};

/// xorshift: deterministic bytes that do not compress.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

fn tool(name: &str) -> String {
    for d in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        let p = format!("{d}/{name}");
        if Path::new(&p).exists() {
            return p;
        }
    }
    panic!("{name} not found: install e2fsprogs");
}

fn fsck(img: &Path) -> bool {
    let out = Command::new(tool("e2fsck")).arg("-fn").arg(img).output().expect("e2fsck runs");
    if !out.status.success() {
        eprintln!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    out.status.success()
}

/// Writes back dirty pages (host-wide `sync`) before a timed run.
fn settle() {
    let _ = Command::new("sync").status();
}

fn main() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let backing_path = tmp.path().join("backing.bin");
    let mut rng = Noise(0x2545_F491_4F6C_DD1D);
    let mut sizes = Vec::new();
    // 16,000 files: mostly small, some medium, a few large (~900 MB total).
    for i in 0..16_000u64 {
        let r = rng.next();
        let size = match i % 100 {
            0 => 1_000_000 + r % 4_000_000, // 1%: 1-5 MB
            1..=10 => 50_000 + r % 250_000, // 10%: 50-300 KB
            _ => r % 24_000,                // 89%: up to 24 KB
        };
        sizes.push(size);
    }
    let total: u64 = sizes.iter().sum();
    {
        let mut w = BufWriter::with_capacity(8 << 20, File::create(&backing_path).expect("backing file"));
        let mut buf = vec![0u8; 1 << 20];
        let mut left = total;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            rng.fill(&mut buf[..n]);
            w.write_all(&buf[..n]).expect("write backing");
            left -= n as u64;
        }
    }
    let backing = BackingFile::open(&backing_path).expect("open backing");
    let mut tree = Tree::new();
    let mut off = 0;
    for (i, size) in sizes.iter().enumerate() {
        let path = TreePath::new(&format!("usr/share/d{:03}/s{:02}/file-{i:05}.dat", i % 400, i % 7));
        let c = Content::Range { file: backing.clone(), offset: off, len: *size };
        tree.insert(path, dinv_fstree::Node::new(NodeKind::File(c), Meta::root(0o644)), dinv_fstree::Replace::Deny).expect("insert");
        off += size;
    }
    println!("tree: {} nodes, {} files, {:.1} MB of content", tree.len(), sizes.len(), total as f64 / 1e6);

    // Flush what generation dirtied so neither timed run pays for it.
    settle();
    let ours = tmp.path().join("ours.img");
    let opts = Ext4Options::from_seed("bench", 1_700_000_000);
    let t0 = Instant::now();
    let report = write_image(&tree, &ours, &opts).expect("write_image");
    let t_ours = t0.elapsed();
    File::open(&ours).and_then(|f| f.sync_all()).expect("sync");
    let t_ours_sync = t0.elapsed();
    println!("dinv-ext4: {:.2} s ({:.2} s including fsync); {} blocks, {} used, {} inodes used", t_ours.as_secs_f64(), t_ours_sync.as_secs_f64(), report.blocks, report.blocks_used, report.inodes_used);

    // Same tree as a directory for mke2fs -d.
    let root = tmp.path().join("root");
    for (path, node) in tree.iter() {
        let p = root.join(path.as_str());
        match &node.kind {
            NodeKind::Dir => fs::create_dir_all(&p).expect("mkdir"),
            NodeKind::File(c) => {
                let mut f = File::create(&p).expect("create");
                std::io::copy(&mut c.reader(), &mut f).expect("copy");
            }
            _ => unreachable!("the bench tree has only files and directories"),
        }
    }
    settle();
    let theirs = tmp.path().join("mke2fs.img");
    let t1 = Instant::now();
    let st = Command::new(tool("mke2fs"))
        .args(["-q", "-t", "ext4", "-b", "4096", "-E", "lazy_itable_init=1", "-d"])
        .arg(&root)
        .arg(&theirs)
        .arg(report.blocks.to_string())
        .status()
        .expect("mke2fs runs");
    let t_mke2fs = t1.elapsed();
    assert!(st.success(), "mke2fs failed");
    println!("mke2fs -d: {:.2} s", t_mke2fs.as_secs_f64());
    println!("ratio mke2fs/dinv-ext4: {:.2}x (with our fsync: {:.2}x)", t_mke2fs.as_secs_f64() / t_ours.as_secs_f64(), t_mke2fs.as_secs_f64() / t_ours_sync.as_secs_f64());
    let ok_ours = fsck(&ours);
    let ok_theirs = fsck(&theirs);
    println!("e2fsck -fn: dinv-ext4 image {}, mke2fs image {}", if ok_ours { "clean" } else { "NOT CLEAN" }, if ok_theirs { "clean" } else { "NOT CLEAN" });
    assert!(ok_ours, "the dinv-ext4 image must be e2fsck-clean");
}
