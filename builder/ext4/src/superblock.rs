//! The ext4 superblock (primary at byte 1024, backups in sparse groups).

use crate::csum::crc32c_raw;
use crate::layout::{Geometry, DESC_SIZE};
use crate::le::{put16, put32, put64};
use crate::plan::{JOURNAL_INO, LPF_INO};
use crate::Ext4Options;

pub(crate) const COMPAT_HAS_JOURNAL: u32 = 0x4;
pub(crate) const COMPAT_EXT_ATTR: u32 = 0x8;
pub(crate) const COMPAT_DIR_INDEX: u32 = 0x20;
pub(crate) const INCOMPAT_FILETYPE: u32 = 0x2;
pub(crate) const INCOMPAT_EXTENTS: u32 = 0x40;
pub(crate) const INCOMPAT_64BIT: u32 = 0x80;
pub(crate) const INCOMPAT_FLEX_BG: u32 = 0x200;
pub(crate) const RO_SPARSE_SUPER: u32 = 0x1;
pub(crate) const RO_LARGE_FILE: u32 = 0x2;
pub(crate) const RO_HUGE_FILE: u32 = 0x8;
pub(crate) const RO_DIR_NLINK: u32 = 0x20;
pub(crate) const RO_EXTRA_ISIZE: u32 = 0x40;
pub(crate) const RO_METADATA_CSUM: u32 = 0x400;

/// Counts and journal facts the superblock records.
pub(crate) struct SbState {
    pub free_blocks: u64,
    pub free_inodes: u64,
    /// The journal inode's i_block and size, backed up in s_jnl_blocks.
    pub journal: Option<([u8; 60], u64)>,
}

fn put_time(b: &mut [u8], lo: usize, hi: usize, t: i64) {
    put32(b, lo, t as u32);
    b[hi] = (t >> 32) as u8;
}

/// The 1024-byte superblock as stored in group `group_nr`.
pub(crate) fn encode(geo: &Geometry, opts: &Ext4Options, st: &SbState, group_nr: u64) -> Vec<u8> {
    let mut b = vec![0u8; 1024];
    let reserved = geo.blocks * opts.reserved_percent as u64 / 100;
    put32(&mut b, 0x00, geo.inodes() as u32);
    put32(&mut b, 0x04, geo.blocks as u32);
    put32(&mut b, 0x08, reserved as u32);
    put32(&mut b, 0x0C, st.free_blocks as u32);
    put32(&mut b, 0x10, st.free_inodes as u32);
    put32(&mut b, 0x14, 0); // first data block (4 KiB blocks)
    let log = geo.block_size.trailing_zeros() - 10;
    put32(&mut b, 0x18, log);
    put32(&mut b, 0x1C, log);
    put32(&mut b, 0x20, geo.blocks_per_group as u32);
    put32(&mut b, 0x24, geo.blocks_per_group as u32);
    put32(&mut b, 0x28, geo.inodes_per_group as u32);
    put_time(&mut b, 0x30, 0x274, opts.timestamp); // s_wtime
    put16(&mut b, 0x36, 0xFFFF); // s_max_mnt_count -1: no mount-count fsck
    put16(&mut b, 0x38, 0xEF53);
    put16(&mut b, 0x3A, 1); // clean
    put16(&mut b, 0x3C, 1); // errors: continue
    put_time(&mut b, 0x40, 0x277, opts.timestamp); // s_lastcheck
    put32(&mut b, 0x4C, 1); // dynamic revision
    put32(&mut b, 0x54, LPF_INO);
    put16(&mut b, 0x58, geo.inode_size as u16);
    put16(&mut b, 0x5A, group_nr as u16);
    let mut compat = COMPAT_EXT_ATTR | COMPAT_DIR_INDEX;
    if st.journal.is_some() {
        compat |= COMPAT_HAS_JOURNAL;
    }
    let incompat = INCOMPAT_FILETYPE | INCOMPAT_EXTENTS | INCOMPAT_64BIT | INCOMPAT_FLEX_BG;
    let mut ro = RO_SPARSE_SUPER | RO_LARGE_FILE | RO_HUGE_FILE | RO_DIR_NLINK | RO_EXTRA_ISIZE;
    if opts.metadata_csum {
        ro |= RO_METADATA_CSUM;
    }
    put32(&mut b, 0x5C, compat);
    put32(&mut b, 0x60, incompat);
    put32(&mut b, 0x64, ro);
    b[0x68..0x78].copy_from_slice(&opts.uuid);
    b[0x78..0x78 + opts.label.len()].copy_from_slice(opts.label.as_bytes());
    if let Some((iblock, size)) = &st.journal {
        put32(&mut b, 0xE0, JOURNAL_INO);
        for i in 0..15 {
            b[0x10C + 4 * i..0x10C + 4 * i + 4].copy_from_slice(&iblock[4 * i..4 * i + 4]);
        }
        put32(&mut b, 0x10C + 60, (size >> 32) as u32);
        put32(&mut b, 0x10C + 64, *size as u32);
        b[0xFD] = 1; // s_jnl_backup_type: s_jnl_blocks holds the inode's blocks
    }
    for (i, w) in opts.hash_seed.chunks_exact(4).enumerate() {
        b[0xEC + 4 * i..0xEC + 4 * i + 4].copy_from_slice(w);
    }
    b[0xFC] = 1; // half_md4 for directory indexes
    put16(&mut b, 0xFE, DESC_SIZE as u16);
    put32(&mut b, 0x100, 0x000C); // default mount options: user_xattr, acl
    put_time(&mut b, 0x108, 0x276, opts.timestamp); // s_mkfs_time
    put32(&mut b, 0x150, (geo.blocks >> 32) as u32);
    put32(&mut b, 0x154, (reserved >> 32) as u32);
    put32(&mut b, 0x158, (st.free_blocks >> 32) as u32);
    put16(&mut b, 0x15C, crate::inode::EXTRA_ISIZE as u16);
    put16(&mut b, 0x15E, crate::inode::EXTRA_ISIZE as u16);
    put32(&mut b, 0x160, 0x2); // unsigned directory hash
    b[0x174] = 4; // 16 groups per flex group
    put64(&mut b, 0x178, 0); // kbytes written
    if opts.metadata_csum {
        b[0x175] = 1; // crc32c
        let c = crc32c_raw(!0, &b[..0x3FC]);
        put32(&mut b, 0x3FC, c);
    }
    b
}
