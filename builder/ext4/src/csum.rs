//! CRC32C as ext4 uses it: the raw register, no final inversion, chained
//! from a seed (`crc32c(~0, uuid)` for the filesystem).

/// Continues the raw ext4 CRC32C register `seed` over `data`.
pub(crate) fn crc32c_raw(seed: u32, data: &[u8]) -> u32 {
    // The crate inverts on the way in and out (standard CRC32C); undoing
    // both gives the kernel's raw `crc32c(seed, data)`.
    !crc32c::crc32c_append(!seed, data)
}

/// The per-inode seed that inode, extent, directory checksums start from.
pub(crate) fn inode_seed(fs_seed: u32, ino: u32, generation: u32) -> u32 {
    let s = crc32c_raw(fs_seed, &ino.to_le_bytes());
    crc32c_raw(s, &generation.to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_register_chains_and_matches_standard_crc32c() {
        // Standard CRC32C("123456789") = 0xE3069283 = !raw(~0, ...).
        assert_eq!(!crc32c_raw(!0, b"123456789"), 0xE306_9283);
        let whole = crc32c_raw(0x1234_5678, b"hello world");
        let split = crc32c_raw(crc32c_raw(0x1234_5678, b"hello "), b"world");
        assert_eq!(whole, split);
    }
}
