//! The jbd2 superblock of an empty internal journal (big-endian on disk).

const JBD2_MAGIC: u32 = 0xC03B_3998;
const SUPERBLOCK_V2: u32 = 4;

fn put_be32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_be_bytes());
}

/// The first journal block: a clean, empty v2 journal of `blocks` blocks.
pub(crate) fn superblock(block_size: usize, blocks: u64, uuid: &[u8; 16]) -> Vec<u8> {
    let mut b = vec![0u8; block_size];
    put_be32(&mut b, 0x00, JBD2_MAGIC);
    put_be32(&mut b, 0x04, SUPERBLOCK_V2);
    put_be32(&mut b, 0x0C, block_size as u32);
    put_be32(&mut b, 0x10, blocks as u32);
    put_be32(&mut b, 0x14, 1); // s_first: the log starts after this block
    put_be32(&mut b, 0x18, 1); // s_sequence: first transaction id
    put_be32(&mut b, 0x1C, 0); // s_start 0: nothing to replay
    b[0x30..0x40].copy_from_slice(uuid);
    put_be32(&mut b, 0x40, 1); // s_nr_users: this filesystem
    b
}
