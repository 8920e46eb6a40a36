//! The 256-byte (or larger) on-disk inode and its checksum.

use crate::csum::{crc32c_raw, inode_seed};
use crate::le::{put16, put32};

/// `i_extra_isize`: the extra fields up to and including i_projid.
pub(crate) const EXTRA_ISIZE: usize = 32;
/// Offset of the in-inode xattr area.
pub(crate) const XATTR_AT: usize = 128 + EXTRA_ISIZE;

pub(crate) const S_IFIFO: u16 = 0o010000;
pub(crate) const S_IFCHR: u16 = 0o020000;
pub(crate) const S_IFDIR: u16 = 0o040000;
pub(crate) const S_IFBLK: u16 = 0o060000;
pub(crate) const S_IFREG: u16 = 0o100000;
pub(crate) const S_IFLNK: u16 = 0o120000;

/// Inode uses extents (i_block holds an extent tree).
pub(crate) const EXTENTS_FL: u32 = 0x80000;

/// The fields this writer sets; everything else is zero.
#[derive(Clone, Debug)]
pub(crate) struct InodeRec {
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub time: i64,
    pub links: u16,
    /// Blocks used, in filesystem blocks (stored as 512-byte sectors).
    pub fs_blocks: u64,
    pub flags: u32,
    pub i_block: [u8; 60],
    pub file_acl: u64,
    /// In-inode xattr area (starts with the magic), if any.
    pub xattrs: Option<Vec<u8>>,
}

impl Default for InodeRec {
    fn default() -> Self {
        InodeRec {
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            time: 0,
            links: 0,
            fs_blocks: 0,
            flags: 0,
            i_block: [0; 60],
            file_acl: 0,
            xattrs: None,
        }
    }
}

/// Splits seconds into the 32-bit field and the epoch bits of *_extra.
fn time_parts(t: i64) -> (u32, u32) {
    let lo = t as i32;
    let epoch = ((t - lo as i64) >> 32) as u32 & 3;
    (lo as u32, epoch)
}

impl InodeRec {
    /// Encodes into `b` (one inode slot); `fs_seed` enables the checksum.
    pub(crate) fn encode(&self, b: &mut [u8], ino: u32, block_size: u64, fs_seed: Option<u32>) {
        b.fill(0);
        put16(b, 0x00, self.mode);
        put16(b, 0x02, self.uid as u16);
        put32(b, 0x04, self.size as u32);
        let (t, epoch) = time_parts(self.time);
        for off in [0x08, 0x0C, 0x10] {
            put32(b, off, t);
        }
        put16(b, 0x18, self.gid as u16);
        put16(b, 0x1A, self.links);
        let sectors = self.fs_blocks * (block_size / 512);
        put32(b, 0x1C, sectors as u32);
        put32(b, 0x20, self.flags);
        b[0x28..0x28 + 60].copy_from_slice(&self.i_block);
        put32(b, 0x68, self.file_acl as u32);
        put32(b, 0x6C, (self.size >> 32) as u32);
        put16(b, 0x74, (sectors >> 32) as u16);
        put16(b, 0x76, (self.file_acl >> 32) as u16);
        put16(b, 0x78, (self.uid >> 16) as u16);
        put16(b, 0x7A, (self.gid >> 16) as u16);
        put16(b, 0x80, EXTRA_ISIZE as u16);
        for off in [0x84, 0x88, 0x8C, 0x94] {
            put32(b, off, epoch); // nanoseconds 0, epoch bits
        }
        put32(b, 0x90, t); // crtime
        if let Some(x) = &self.xattrs {
            b[XATTR_AT..XATTR_AT + x.len()].copy_from_slice(x);
        }
        if let Some(seed) = fs_seed {
            set_checksum(b, ino, seed);
        }
    }
}

/// Computes and stores the inode checksum (generation 0). With
/// i_extra_isize 0 (reserved inodes) only the low half is kept.
pub(crate) fn set_checksum(b: &mut [u8], ino: u32, fs_seed: u32) {
    let has_hi = u16::from_le_bytes([b[0x80], b[0x81]]) >= 4;
    put16(b, 0x7C, 0);
    if has_hi {
        put16(b, 0x82, 0);
    }
    let c = crc32c_raw(inode_seed(fs_seed, ino, 0), b);
    put16(b, 0x7C, c as u16);
    if has_hi {
        put16(b, 0x82, (c >> 16) as u16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_epoch_bits() {
        assert_eq!(time_parts(0), (0, 0));
        assert_eq!(time_parts(1 << 31), (1 << 31, 1));
        assert_eq!(time_parts(-1), (u32::MAX, 0));
        assert_eq!(time_parts((1i64 << 32) + 5), (5, 1));
    }
}
