//! What the caller chooses about the image, and the deterministic ids.

use sha2::{Digest, Sha256};

use crate::Ext4Error;

/// Choices for one image. Everything that would normally come from the
/// host (clock, random UUIDs) is an explicit field so that the same tree
/// and options always give the same bytes.
#[derive(Clone, Debug)]
pub struct Ext4Options {
    /// Image size in bytes; `None` sizes it from the content plus headroom.
    pub size: Option<u64>,
    /// Free space to leave, as a percentage of the used blocks (computed size only).
    pub headroom_percent: u32,
    /// Free space to leave at least, in bytes (computed size only).
    pub min_free_bytes: u64,
    /// Filesystem block size; only 4096 is supported.
    pub block_size: u32,
    /// On-disk inode size: 256, 512 or 1024 (room for in-inode xattrs).
    pub inode_size: u16,
    /// Bytes of filesystem per inode when sizing the inode tables.
    pub inode_ratio: u64,
    /// Filesystem UUID.
    pub uuid: [u8; 16],
    /// Seed of the directory-index hash.
    pub hash_seed: [u8; 16],
    /// Seconds since the epoch for mkfs/write times (SOURCE_DATE_EPOCH) and lost+found.
    pub timestamp: i64,
    /// Volume label, at most 16 bytes.
    pub label: String,
    /// Percentage of blocks reserved for root.
    pub reserved_percent: u32,
    /// Create an internal journal (inode 8), so the kernel mounts it as journaled ext4.
    pub journal: bool,
    /// Checksum all metadata (crc32c), as modern mke2fs does.
    pub metadata_csum: bool,
}

impl Default for Ext4Options {
    fn default() -> Self {
        Ext4Options::from_seed("dinv-ext4", 0)
    }
}

impl Ext4Options {
    /// Defaults with uuid and hash seed derived from `seed` (see [`ids_from_seed`]).
    pub fn from_seed(seed: &str, timestamp: i64) -> Self {
        let (uuid, hash_seed) = ids_from_seed(seed);
        Ext4Options {
            size: None,
            headroom_percent: 15,
            min_free_bytes: 64 << 20,
            block_size: 4096,
            inode_size: 256,
            inode_ratio: 16384,
            uuid,
            hash_seed,
            timestamp,
            label: String::new(),
            reserved_percent: 0,
            journal: true,
            metadata_csum: true,
        }
    }

    /// Refuses options this writer cannot honour.
    pub(crate) fn validate(&self) -> Result<(), Ext4Error> {
        let bad = |s: String| Err(Ext4Error::Options(s));
        if self.block_size != 4096 {
            return bad(format!("block size {} is not supported (only 4096)", self.block_size));
        }
        if !matches!(self.inode_size, 256 | 512 | 1024) {
            return bad(format!("inode size {} is not supported (256, 512 or 1024)", self.inode_size));
        }
        if self.inode_ratio < 1024 {
            return bad(format!("inode ratio {} is below 1024 bytes per inode", self.inode_ratio));
        }
        if self.label.len() > 16 {
            return bad(format!("label {:?} is longer than 16 bytes", self.label));
        }
        if self.reserved_percent > 50 {
            return bad(format!("reserved_percent {} is above 50", self.reserved_percent));
        }
        if self.timestamp < 0 || self.timestamp >= 1 << 40 {
            return bad(format!("timestamp {} is outside what the superblock can hold", self.timestamp));
        }
        Ok(())
    }
}

/// Derives a filesystem UUID (RFC 4122 layout, version 4 bits) and a hash
/// seed from a seed string via SHA-256, so ids are stable across builds.
pub fn ids_from_seed(seed: &str) -> ([u8; 16], [u8; 16]) {
    let take = |purpose: &str| {
        let d = Sha256::new().chain_update(purpose.as_bytes()).chain_update([0]).chain_update(seed.as_bytes()).finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&d[..16]);
        out
    };
    let mut uuid = take("dinv-ext4 uuid");
    uuid[6] = (uuid[6] & 0x0f) | 0x40;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    (uuid, take("dinv-ext4 hash seed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_differ_by_seed() {
        let (a, h) = ids_from_seed("x");
        assert_eq!(ids_from_seed("x"), (a, h));
        assert_ne!(ids_from_seed("y").0, a);
        assert_ne!(a, h);
        assert_eq!(a[6] >> 4, 4);
        assert_eq!(a[8] >> 6, 2);
    }

    #[test]
    fn refuses_unsupported_block_size() {
        let o = Ext4Options { block_size: 1024, ..Ext4Options::default() };
        assert!(o.validate().unwrap_err().to_string().contains("1024"));
    }
}
