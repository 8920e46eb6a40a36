//! The write pass: size the filesystem, stream every inode's data to the
//! allocator's cursor in inode order, then write inode tables, bitmaps,
//! descriptors and superblocks.

use std::path::Path;

use dinv_fstree::{Content, Tree};
use tracing::debug;

use crate::alloc::Allocator;
use crate::csum::{crc32c_raw, inode_seed};
use crate::extent::{self, Extent};
use crate::inode::{self, InodeRec, EXTENTS_FL, XATTR_AT};
use crate::layout::{self, has_backup, Geometry, Layout};
use crate::out::TempImage;
use crate::plan::{Kind, PInode, Plan, JOURNAL_INO, LPF_INO};
use crate::xattr::{self, XEntry};
use crate::report::Ext4Report;
use crate::{dir, group, journal, superblock, Ext4Error, Ext4Options};

/// Bytes read from a file at a time.
const CHUNK_BLOCKS: usize = 256;

/// Per-inode work decided before any block is placed.
struct Prepared {
    /// Directory blocks, already checksummed.
    dir: Option<Vec<u8>>,
    /// In-inode xattr area.
    xattr_area: Option<Vec<u8>>,
    /// Entries that need an xattr block.
    xattr_block: Option<Vec<XEntry>>,
}

fn prepare(p: &PInode<'_>, opts: &Ext4Options, fs_seed: Option<u32>) -> Result<Prepared, Ext4Error> {
    let bs = opts.block_size as usize;
    let entries = xattr::prepare(&p.path, &p.meta.xattrs)?;
    let (xattr_area, xattr_block) = if entries.is_empty() {
        (None, None)
    } else if let Some(area) = xattr::in_inode(&entries, opts.inode_size as usize - XATTR_AT) {
        (Some(area), None)
    } else if xattr::fits_block(&entries, bs) {
        (None, Some(entries))
    } else {
        return Err(Ext4Error::Unsupported {
            path: p.path.to_string(),
            why: format!("its extended attributes need more than one {bs}-byte block"),
        });
    };
    let dir = match &p.kind {
        Kind::Dir { parent, entries } => {
            let seed = fs_seed.map(|s| inode_seed(s, p.ino, 0));
            let min = if p.ino == LPF_INO { 4 } else { 1 };
            Some(dir::dir_blocks(p.ino, *parent, entries, bs, seed, min))
        }
        Kind::Symlink("") => {
            return Err(Ext4Error::Unsupported { path: p.path.to_string(), why: "symlink with an empty target".into() })
        }
        Kind::Symlink(t) if t.len() >= bs => {
            return Err(Ext4Error::Unsupported {
                path: p.path.to_string(),
                why: format!("symlink target is {} bytes; the limit is {}", t.len(), bs - 1),
            })
        }
        _ => None,
    };
    Ok(Prepared { dir, xattr_area, xattr_block })
}

/// Blocks an inode may need beyond its inode slot, given its data blocks.
fn blocks_for(data: u64, runs: u64, pr: &Prepared, bs: u64) -> u64 {
    // Each run may be split at MAX_LEN and once more at a backup group.
    let extents = runs + data / extent::MAX_LEN + 1;
    let tree = if data == 0 { 0 } else { extent::tree_blocks(extents as usize, bs as usize) as u64 };
    data + tree + pr.xattr_block.is_some() as u64
}

/// Upper bound of the blocks content needs; with `exact`, file data is
/// read to leave out all-zero blocks (holes).
fn demand(plan: &Plan<'_>, prep: &[Prepared], bs: u64, exact: bool) -> Result<u64, Ext4Error> {
    let mut total = 0;
    let mut buf = vec![0u8; CHUNK_BLOCKS * bs as usize];
    for (p, pr) in plan.inodes.iter().zip(prep) {
        let (data, runs) = match &p.kind {
            Kind::Dir { .. } => (pr.dir.as_ref().map_or(0, |d| d.len() as u64 / bs), 1),
            Kind::File(c) if exact => scan(c, bs as usize, &mut buf).map_err(|e| Ext4Error::Read { path: p.path.to_string(), source: e })?,
            Kind::File(c) => (c.len().div_ceil(bs), 1),
            Kind::Symlink(t) if t.len() >= 60 => (1, 1),
            _ => (0, 0),
        };
        total += blocks_for(data, runs, pr, bs);
    }
    Ok(total)
}

fn is_zero(b: &[u8]) -> bool {
    // Word-wise OR vectorises; a byte loop with early exit would not.
    b.chunks_exact(64).all(|c| c.iter().fold(0u8, |a, &x| a | x) == 0)
}

/// Non-zero blocks and runs of them in a file.
fn scan(c: &Content, bs: usize, buf: &mut [u8]) -> std::io::Result<(u64, u64)> {
    let (mut blocks, mut runs, mut prev_zero) = (0, 0, true);
    let mut pos = 0u64;
    while pos < c.len() {
        let n = (buf.len() as u64).min(c.len() - pos) as usize;
        c.read_at(&mut buf[..n], pos)?;
        buf[n..n.div_ceil(bs) * bs].fill(0);
        for b in buf[..n.div_ceil(bs) * bs].chunks_exact(bs) {
            let z = is_zero(b);
            if !z {
                blocks += 1;
                if prev_zero {
                    runs += 1;
                }
            }
            prev_zero = z;
        }
        pos += n as u64;
    }
    Ok((blocks, runs))
}

/// Chooses the layout: the requested size, or the smallest one with headroom.
fn choose_layout(plan: &Plan<'_>, prep: &[Prepared], opts: &Ext4Options) -> Result<Layout, Ext4Error> {
    let bs = opts.block_size as u64;
    let inodes = plan.max_ino as u64;
    // Slack for extents split where a file crosses a backup superblock.
    let slack = 64;
    let upper = demand(plan, prep, bs, false)? + slack;
    match opts.size {
        None => {
            let want = (upper * opts.headroom_percent as u64 / 100).max(opts.min_free_bytes.div_ceil(bs));
            // Room for new files too, even when the free space is a fixed size.
            let inodes = inodes + (inodes * opts.headroom_percent.max(10) as u64 / 100).max(256);
            Ok(layout::grow_to_fit(upper, upper, inodes, opts, |n| want + n * opts.reserved_percent as u64 / 100))
        }
        Some(size) => {
            let fixed = || Geometry::new(size / bs, inodes, opts).and_then(layout::place);
            if let Some(lay) = fixed() {
                if lay.alloc.remaining() >= upper {
                    return Ok(lay);
                }
            }
            // The bound counts every block; holes may still make it fit.
            let exact = demand(plan, prep, bs, true)? + slack;
            if let Some(lay) = fixed() {
                if lay.alloc.remaining() >= exact {
                    return Ok(lay);
                }
            }
            let min = layout::grow_to_fit(exact, exact, inodes, opts, |_| 0);
            Err(Ext4Error::TooSmall { needed: min.geo.blocks * bs, size })
        }
    }
}

/// Streams data and collects inode records.
struct Pass<'o> {
    img: TempImage,
    alloc: Allocator,
    bs: usize,
    opts: &'o Ext4Options,
    fs_seed: Option<u32>,
    /// Inode slots 1..=max_ino.
    table: Vec<u8>,
    buf: Vec<u8>,
    needed_hint: u64,
}

impl Pass<'_> {
    fn no_space(&self) -> Ext4Error {
        Ext4Error::TooSmall { needed: self.needed_hint, size: self.opts.size.unwrap_or(0) }
    }

    /// Places `bytes` (whole blocks) at the cursor, mapping them from `logical`.
    fn place(&mut self, mut logical: u32, bytes: &[u8], ext: &mut Vec<Extent>) -> Result<(), Ext4Error> {
        let bs = self.bs;
        let mut off = 0;
        while off < bytes.len() {
            let want = ((bytes.len() - off) / bs) as u64;
            let (start, n) = self.alloc.run(want).ok_or_else(|| self.no_space())?;
            let len = n as usize * bs;
            self.img.write_at(start * bs as u64, &bytes[off..off + len])?;
            extent::push(ext, logical, start, n);
            logical += n as u32;
            off += len;
        }
        Ok(())
    }

    /// Streams a file, leaving all-zero blocks as holes.
    fn file(&mut self, path: &str, c: &Content, ext: &mut Vec<Extent>) -> Result<u64, Ext4Error> {
        let bs = self.bs;
        let mut buf = std::mem::take(&mut self.buf);
        let mut pos = 0u64;
        let mut written = 0;
        let res = (|| {
            while pos < c.len() {
                let n = (buf.len() as u64).min(c.len() - pos) as usize;
                c.read_at(&mut buf[..n], pos).map_err(|e| Ext4Error::Read { path: path.to_string(), source: e })?;
                let whole = n.div_ceil(bs) * bs;
                buf[n..whole].fill(0);
                let first = (pos / bs as u64) as u32;
                let nb = whole / bs;
                let mut i = 0;
                while i < nb {
                    if is_zero(&buf[i * bs..(i + 1) * bs]) {
                        i += 1;
                        continue;
                    }
                    let mut j = i + 1;
                    while j < nb && !is_zero(&buf[j * bs..(j + 1) * bs]) {
                        j += 1;
                    }
                    self.place(first + i as u32, &buf[i * bs..j * bs], ext)?;
                    written += (j - i) as u64;
                    i = j;
                }
                pos += n as u64;
            }
            Ok(written)
        })();
        self.buf = buf;
        res
    }

    /// Writes the extent tree blocks of an inode; returns i_block and their count.
    fn extents(&mut self, ino: u32, ext: &[Extent]) -> Result<([u8; 60], u64), Ext4Error> {
        let n = extent::tree_blocks(ext.len(), self.bs);
        let mut blocks = Vec::with_capacity(n);
        for _ in 0..n {
            blocks.push(self.alloc.run(1).ok_or_else(|| self.no_space())?.0);
        }
        self.tree(ino, ext, &blocks)
    }

    fn tree(&mut self, ino: u32, ext: &[Extent], blocks: &[u64]) -> Result<([u8; 60], u64), Ext4Error> {
        let seed = self.fs_seed.map(|s| inode_seed(s, ino, 0));
        let (root, tree) = extent::build(ext, blocks, self.bs, seed);
        for (no, b) in &tree {
            self.img.write_at(no * self.bs as u64, b)?;
        }
        Ok((root, blocks.len() as u64))
    }

    fn store(&mut self, ino: u32, rec: &InodeRec) {
        let isz = self.opts.inode_size as usize;
        let at = (ino as usize - 1) * isz;
        rec.encode(&mut self.table[at..at + isz], ino, self.bs as u64, self.fs_seed);
    }

    /// Places one inode's data and records its inode.
    fn inode(&mut self, p: &PInode<'_>, pr: &Prepared) -> Result<(), Ext4Error> {
        let m = &p.meta;
        let perm = (m.mode & 0o7777) as u16;
        let mut rec = InodeRec { uid: m.uid, gid: m.gid, time: m.mtime, links: p.links as u16, ..Default::default() };
        let mut ext = Vec::new();
        match &p.kind {
            Kind::Dir { .. } => {
                let d = pr.dir.as_ref().expect("directories are prepared");
                self.place(0, d, &mut ext)?;
                rec.mode = inode::S_IFDIR | perm;
                rec.size = d.len() as u64;
                rec.fs_blocks = (d.len() / self.bs) as u64;
                rec.flags = EXTENTS_FL;
            }
            Kind::File(c) => {
                rec.fs_blocks = self.file(&p.path, c, &mut ext)?;
                rec.mode = inode::S_IFREG | perm;
                rec.size = c.len();
                rec.flags = EXTENTS_FL;
            }
            Kind::Symlink(t) => {
                rec.mode = inode::S_IFLNK | perm;
                rec.size = t.len() as u64;
                if t.len() < 60 {
                    rec.i_block[..t.len()].copy_from_slice(t.as_bytes());
                } else {
                    let mut b = vec![0u8; self.bs];
                    b[..t.len()].copy_from_slice(t.as_bytes());
                    self.place(0, &b, &mut ext)?;
                    rec.fs_blocks = 1;
                    rec.flags = EXTENTS_FL;
                }
            }
            Kind::Char { major, minor } | Kind::Block { major, minor } => {
                rec.mode = if matches!(p.kind, Kind::Char { .. }) { inode::S_IFCHR } else { inode::S_IFBLK } | perm;
                let (ma, mi) = (*major, *minor);
                if ma < 256 && mi < 256 {
                    rec.i_block[..4].copy_from_slice(&((ma << 8) | mi).to_le_bytes());
                } else {
                    let new = (mi & 0xff) | (ma << 8) | ((mi & !0xff) << 12);
                    rec.i_block[4..8].copy_from_slice(&new.to_le_bytes());
                }
            }
            Kind::Fifo => rec.mode = inode::S_IFIFO | perm,
        }
        if rec.flags & EXTENTS_FL != 0 {
            let (root, tree) = self.extents(p.ino, &ext)?;
            rec.i_block = root;
            rec.fs_blocks += tree;
        }
        if let Some(entries) = &pr.xattr_block {
            let (no, _) = self.alloc.run(1).ok_or_else(|| self.no_space())?;
            let b = xattr::block(entries, self.bs, no, self.fs_seed).expect("size checked in prepare");
            self.img.write_at(no * self.bs as u64, &b)?;
            rec.file_acl = no;
            rec.fs_blocks += 1;
        }
        rec.xattrs = pr.xattr_area.clone();
        self.store(p.ino, &rec);
        Ok(())
    }
}

/// Writes `tree` as an ext4 image at `path` (atomically: a temporary file
/// beside it is renamed into place).
pub fn write_image(tree: &Tree, path: &Path, opts: &Ext4Options) -> Result<Ext4Report, Ext4Error> {
    opts.validate()?;
    let bs = opts.block_size as usize;
    let isz = opts.inode_size as usize;
    let plan = Plan::build(tree, opts.timestamp)?;
    let fs_seed = opts.metadata_csum.then(|| crc32c_raw(!0, &opts.uuid));
    let prep: Vec<Prepared> = plan.inodes.iter().map(|p| prepare(p, opts, fs_seed)).collect::<Result<_, _>>()?;
    let lay = choose_layout(&plan, &prep, opts)?;
    let geo = lay.geo.clone();
    debug!(blocks = geo.blocks, groups = geo.groups, ipg = geo.inodes_per_group, inodes = plan.max_ino, "ext4 layout");
    let file_size = opts.size.unwrap_or(geo.blocks * bs as u64);
    let img = TempImage::create(path, file_size)?;
    let Layout { block_bitmap, inode_bitmap, inode_table, journal: jext, journal_tree, alloc, .. } = lay;
    let mut pass = Pass {
        img,
        alloc,
        bs,
        opts,
        fs_seed,
        table: vec![0u8; plan.max_ino as usize * isz],
        buf: vec![0u8; CHUNK_BLOCKS * bs],
        needed_hint: geo.blocks * bs as u64,
    };

    // Reserved inodes: empty, but checksummed like mke2fs leaves them.
    for ino in 1..LPF_INO {
        if let Some(seed) = fs_seed {
            let at = (ino as usize - 1) * isz;
            inode::set_checksum(&mut pass.table[at..at + isz], ino, seed);
        }
    }
    let journal_state = if geo.journal_blocks > 0 {
        let jsb = journal::superblock(bs, geo.journal_blocks, &opts.uuid);
        pass.img.write_at(jext[0].start * bs as u64, &jsb)?;
        let (root, tree) = pass.tree(JOURNAL_INO, &jext, &journal_tree)?;
        let size = geo.journal_blocks * bs as u64;
        let rec = InodeRec {
            mode: inode::S_IFREG | 0o600,
            size,
            time: opts.timestamp,
            links: 1,
            fs_blocks: geo.journal_blocks + tree,
            flags: EXTENTS_FL,
            i_block: root,
            ..Default::default()
        };
        pass.store(JOURNAL_INO, &rec);
        Some((root, size))
    } else {
        None
    };

    for (p, pr) in plan.inodes.iter().zip(&prep) {
        pass.inode(p, pr)?;
    }

    // Inode tables: only the used prefix is written; the rest stays sparse zeros.
    let ipg = geo.inodes_per_group;
    for g in 0..geo.groups {
        let first = (g * ipg) as usize;
        let used = (plan.max_ino as usize).saturating_sub(first).min(ipg as usize);
        if used > 0 {
            let bytes = pass.table[first * isz..(first + used) * isz].to_vec();
            pass.img.write_at(inode_table[g as usize] * bs as u64, &bytes)?;
        }
    }

    let lay = Layout { geo: geo.clone(), block_bitmap, inode_bitmap, inode_table, journal: jext, journal_tree, alloc: pass.alloc };
    let mut dirs = vec![0u64; geo.groups as usize];
    for p in &plan.inodes {
        if matches!(p.kind, Kind::Dir { .. }) {
            dirs[((p.ino as u64 - 1) / ipg) as usize] += 1;
        }
    }
    let mut gdt = Vec::with_capacity((geo.gdt_blocks as usize) * bs);
    let (mut free_blocks, mut free_inodes) = (0, 0);
    for g in 0..geo.groups {
        let grp = group::build(&lay, g, plan.max_ino as u64, dirs[g as usize], opts.metadata_csum);
        pass.img.write_at(lay.block_bitmap[g as usize] * bs as u64, &grp.block_bitmap)?;
        pass.img.write_at(lay.inode_bitmap[g as usize] * bs as u64, &grp.inode_bitmap)?;
        gdt.extend_from_slice(&group::descriptor(&lay, g, &grp, fs_seed));
        free_blocks += grp.free_blocks;
        free_inodes += grp.free_inodes;
    }
    gdt.resize(geo.gdt_blocks as usize * bs, 0);
    let st = superblock::SbState { free_blocks, free_inodes, journal: journal_state };
    for g in (0..geo.groups).filter(|&g| has_backup(g)) {
        let start = geo.group_start(g) * bs as u64;
        let sb = superblock::encode(&geo, opts, &st, g);
        pass.img.write_at(if g == 0 { 1024 } else { start }, &sb)?;
        pass.img.write_at(start + bs as u64, &gdt)?;
    }
    pass.img.persist()?;

    let report = Ext4Report {
        size: file_size,
        block_size: bs as u32,
        blocks: geo.blocks,
        blocks_used: geo.blocks - free_blocks,
        free_blocks,
        inodes: geo.inodes(),
        inodes_used: plan.max_ino as u64,
        groups: geo.groups,
        journal_blocks: geo.journal_blocks,
    };
    debug!(?report, path = %path.display(), "ext4 image written");
    Ok(report)
}
