//! Group descriptors and the per-group block and inode bitmaps.

use crate::csum::crc32c_raw;
use crate::layout::{Layout, DESC_SIZE};
use crate::le::{put16, put32};

/// bg_flags: the inode table is zeroed (the image is sparse, so it is).
const BG_INODE_ZEROED: u16 = 0x4;

/// One group's bitmaps and counts.
pub(crate) struct Group {
    pub block_bitmap: Vec<u8>,
    pub inode_bitmap: Vec<u8>,
    pub free_blocks: u64,
    pub free_inodes: u64,
    pub used_dirs: u64,
    /// Inodes at the end of the table never used (csum only).
    pub itable_unused: u64,
}

/// Builds group `g`'s bitmaps: inodes 1..=max_ino are in use, blocks as the
/// allocator marked them; bits past the group's end are set (padding).
pub(crate) fn build(lay: &Layout, g: u64, max_ino: u64, dirs_in_group: u64, csum: bool) -> Group {
    let geo = &lay.geo;
    let bs = geo.block_size as usize;
    let mut bb = vec![0u8; bs];
    let start = geo.group_start(g);
    let len = geo.group_len(g);
    let mut used = 0;
    for i in 0..geo.blocks_per_group {
        if i >= len || lay.alloc.is_used(start + i) {
            bb[(i / 8) as usize] |= 1 << (i % 8);
            if i < len {
                used += 1;
            }
        }
    }
    let ipg = geo.inodes_per_group;
    let first = g * ipg; // inode number of slot 0 is first + 1
    let used_inodes = max_ino.saturating_sub(first).min(ipg);
    let mut ib = vec![0u8; bs];
    for i in 0..(bs as u64 * 8) {
        if i < used_inodes || i >= ipg {
            ib[(i / 8) as usize] |= 1 << (i % 8);
        }
    }
    Group {
        block_bitmap: bb,
        inode_bitmap: ib,
        free_blocks: len - used,
        free_inodes: ipg - used_inodes,
        used_dirs: dirs_in_group,
        itable_unused: if csum { ipg - used_inodes } else { 0 },
    }
}

/// The 64-byte descriptor of group `g`.
pub(crate) fn descriptor(lay: &Layout, g: u64, grp: &Group, fs_seed: Option<u32>) -> Vec<u8> {
    let mut d = vec![0u8; DESC_SIZE as usize];
    let gi = g as usize;
    let (bb, ib, it) = (lay.block_bitmap[gi], lay.inode_bitmap[gi], lay.inode_table[gi]);
    put32(&mut d, 0x00, bb as u32);
    put32(&mut d, 0x04, ib as u32);
    put32(&mut d, 0x08, it as u32);
    put16(&mut d, 0x0C, grp.free_blocks as u16);
    put16(&mut d, 0x0E, grp.free_inodes as u16);
    put16(&mut d, 0x10, grp.used_dirs as u16);
    put16(&mut d, 0x1C, grp.itable_unused as u16);
    put32(&mut d, 0x20, (bb >> 32) as u32);
    put32(&mut d, 0x24, (ib >> 32) as u32);
    put32(&mut d, 0x28, (it >> 32) as u32);
    put16(&mut d, 0x2C, (grp.free_blocks >> 16) as u16);
    put16(&mut d, 0x2E, (grp.free_inodes >> 16) as u16);
    put16(&mut d, 0x30, (grp.used_dirs >> 16) as u16);
    put16(&mut d, 0x32, (grp.itable_unused >> 16) as u16);
    if let Some(seed) = fs_seed {
        put16(&mut d, 0x12, BG_INODE_ZEROED);
        let bpg_bytes = (lay.geo.blocks_per_group / 8) as usize;
        let bc = crc32c_raw(seed, &grp.block_bitmap[..bpg_bytes]);
        let ipg_bytes = (lay.geo.inodes_per_group / 8) as usize;
        let ic = crc32c_raw(seed, &grp.inode_bitmap[..ipg_bytes]);
        put16(&mut d, 0x18, bc as u16);
        put16(&mut d, 0x1A, ic as u16);
        put16(&mut d, 0x38, (bc >> 16) as u16);
        put16(&mut d, 0x3A, (ic >> 16) as u16);
        let mut c = crc32c_raw(seed, &(g as u32).to_le_bytes());
        c = crc32c_raw(c, &d);
        put16(&mut d, 0x1E, c as u16);
    }
    d
}
