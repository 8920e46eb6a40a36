//! Geometry (groups, inodes per group, journal size) and where the
//! metadata goes: backups of superblock and descriptors in sparse groups,
//! then, packed at the front (flex_bg), all bitmaps and inode tables, then
//! the journal. Data follows from the allocator's cursor.

use crate::alloc::Allocator;
use crate::extent::{self, Extent};
use crate::Ext4Options;

/// Size of one group descriptor (64bit feature).
pub(crate) const DESC_SIZE: u64 = 64;

/// The shape of the filesystem.
#[derive(Clone, Debug)]
pub(crate) struct Geometry {
    pub block_size: u64,
    pub inode_size: u64,
    pub blocks: u64,
    pub blocks_per_group: u64,
    pub groups: u64,
    pub inodes_per_group: u64,
    pub itable_blocks: u64,
    pub gdt_blocks: u64,
    pub journal_blocks: u64,
}

/// Groups 0, 1 and powers of 3, 5 and 7 carry backups (sparse_super).
pub(crate) fn has_backup(g: u64) -> bool {
    if g <= 1 {
        return true;
    }
    for p in [3u64, 5, 7] {
        let mut x = p;
        while x < g {
            x *= p;
        }
        if x == g {
            return true;
        }
    }
    false
}

/// Journal size by filesystem size, in the spirit of mke2fs's defaults.
fn journal_blocks_for(blocks: u64) -> u64 {
    match blocks {
        b if b < 32768 => 1024,
        b if b < 256 * 1024 => 4096,
        b if b < 512 * 1024 => 8192,
        b if b < 4096 * 1024 => 16384,
        b if b < 8192 * 1024 => 32768,
        b if b < 16384 * 1024 => 65536,
        b if b < 32768 * 1024 => 131072,
        _ => 262144,
    }
}

impl Geometry {
    /// Geometry for `blocks` blocks and at least `min_inodes` inodes, or
    /// None when the inode count cannot fit that many groups.
    pub(crate) fn new(blocks: u64, min_inodes: u64, opts: &Ext4Options) -> Option<Geometry> {
        let bs = opts.block_size as u64;
        let isz = opts.inode_size as u64;
        let bpg = bs * 8;
        let mut blocks = blocks;
        let groups_of = |b: u64| b.div_ceil(bpg);
        let gdt_of = |g: u64| (g * DESC_SIZE).div_ceil(bs);
        // A last group too small to hold its own backup is dropped, as mke2fs does.
        let rem = blocks % bpg;
        if blocks > bpg && rem != 0 && rem < 1 + gdt_of(groups_of(blocks)) + 64 {
            blocks -= rem;
        }
        let groups = groups_of(blocks);
        let per_block = bs / isz;
        let by_ratio = blocks * bs / opts.inode_ratio;
        let want = min_inodes.max(by_ratio).max(groups * per_block);
        let ipg = want.div_ceil(groups).div_ceil(per_block) * per_block;
        let ipg = ipg.max(per_block);
        if ipg > bpg || groups * ipg > u32::MAX as u64 {
            return None;
        }
        Some(Geometry {
            block_size: bs,
            inode_size: isz,
            blocks,
            blocks_per_group: bpg,
            groups,
            inodes_per_group: ipg,
            itable_blocks: ipg * isz / bs,
            gdt_blocks: gdt_of(groups),
            journal_blocks: if opts.journal { journal_blocks_for(blocks) } else { 0 },
        })
    }

    /// Total inodes.
    pub(crate) fn inodes(&self) -> u64 {
        self.groups * self.inodes_per_group
    }

    /// First block of group `g`.
    pub(crate) fn group_start(&self, g: u64) -> u64 {
        g * self.blocks_per_group
    }

    /// Blocks in group `g` (the last may be short).
    pub(crate) fn group_len(&self, g: u64) -> u64 {
        (self.blocks - self.group_start(g)).min(self.blocks_per_group)
    }
}

/// Where every piece of metadata lives, and the allocator for the rest.
pub(crate) struct Layout {
    pub geo: Geometry,
    pub block_bitmap: Vec<u64>,
    pub inode_bitmap: Vec<u64>,
    pub inode_table: Vec<u64>,
    pub journal: Vec<Extent>,
    /// Tree blocks of the journal's extent tree (only for huge journals).
    pub journal_tree: Vec<u64>,
    pub alloc: Allocator,
}

/// Places the metadata; None if it does not fit in the geometry.
pub(crate) fn place(geo: Geometry) -> Option<Layout> {
    let mut reserved = Vec::new();
    for g in 0..geo.groups {
        if has_backup(g) {
            let s = geo.group_start(g);
            let e = (s + 1 + geo.gdt_blocks).min(geo.blocks);
            reserved.push((s, e));
        }
    }
    let mut alloc = Allocator::new(geo.blocks, reserved);
    let one = |a: &mut Allocator| a.run(1).map(|(s, _)| s);
    let mut block_bitmap = Vec::with_capacity(geo.groups as usize);
    let mut inode_bitmap = Vec::with_capacity(geo.groups as usize);
    let mut inode_table = Vec::with_capacity(geo.groups as usize);
    for _ in 0..geo.groups {
        block_bitmap.push(one(&mut alloc)?);
    }
    for _ in 0..geo.groups {
        inode_bitmap.push(one(&mut alloc)?);
    }
    for _ in 0..geo.groups {
        inode_table.push(alloc.contiguous(geo.itable_blocks)?);
    }
    let mut journal = Vec::new();
    let mut left = geo.journal_blocks;
    while left > 0 {
        let (s, n) = alloc.run(left.min(extent::MAX_LEN))?;
        extent::push(&mut journal, (geo.journal_blocks - left) as u32, s, n);
        left -= n;
    }
    let mut journal_tree = Vec::new();
    for _ in 0..extent::tree_blocks(journal.len(), geo.block_size as usize) {
        journal_tree.push(alloc.run(1)?.0);
    }
    Some(Layout { geo, block_bitmap, inode_bitmap, inode_table, journal, journal_tree, alloc })
}

/// Smallest layout (growing from `start` blocks) whose allocator can still
/// give `demand` blocks plus `want_free(blocks)` more.
pub(crate) fn grow_to_fit(
    start: u64,
    demand: u64,
    min_inodes: u64,
    opts: &Ext4Options,
    want_free: impl Fn(u64) -> u64,
) -> Layout {
    const STEP: u64 = 256; // sizes are whole MiB
    let mut n = start.max(STEP).div_ceil(STEP) * STEP;
    loop {
        match Geometry::new(n, min_inodes, opts).and_then(place) {
            Some(lay) => {
                let need = demand + want_free(lay.geo.blocks);
                let have = lay.alloc.remaining();
                if have >= need {
                    return lay;
                }
                n = (n + need - have).div_ceil(STEP) * STEP;
            }
            None => n = (n + n / 8 + STEP).div_ceil(STEP) * STEP,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_groups() {
        let v: Vec<u64> = (0..100).filter(|&g| has_backup(g)).collect();
        assert_eq!(v, [0, 1, 3, 5, 7, 9, 25, 27, 49, 81]);
    }

    #[test]
    fn grows_until_content_fits() {
        let opts = Ext4Options::default();
        let lay = grow_to_fit(0, 300_000, 5000, &opts, |_| 1000);
        assert!(lay.alloc.remaining() >= 301_000);
        assert!(lay.geo.inodes() >= 5000);
        assert_eq!(lay.geo.journal_blocks, 8192);
        // Metadata never overlaps a backup superblock.
        for g in 0..lay.geo.groups {
            assert!(!has_backup(g) || lay.inode_table.iter().all(|&t| t + lay.geo.itable_blocks <= g * 32768 || t > g * 32768 + lay.geo.gdt_blocks));
        }
    }
}
