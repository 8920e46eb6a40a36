//! Extent trees: up to four extents live in the inode; more go to leaf
//! blocks (340 per 4 KiB block) under an index in the inode, with further
//! index levels if ever needed.

use crate::csum::crc32c_raw;
use crate::le::{put16, put32};

const MAGIC: u16 = 0xF30A;
/// Longest initialized extent, in blocks.
pub(crate) const MAX_LEN: u64 = 32768;
/// Entries that fit in the inode's i_block.
const ROOT_SLOTS: usize = 4;

/// A run of physical blocks mapped at a logical block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Extent {
    pub logical: u32,
    pub start: u64,
    pub len: u32,
}

/// Appends a mapping, merging with the previous extent when contiguous.
pub(crate) fn push(list: &mut Vec<Extent>, logical: u32, start: u64, mut len: u64) {
    let (mut logical, mut start) = (logical, start);
    if let Some(last) = list.last_mut() {
        if last.logical as u64 + last.len as u64 == logical as u64 && last.start + last.len as u64 == start {
            let room = (MAX_LEN - last.len as u64).min(len);
            last.len += room as u32;
            logical += room as u32;
            start += room;
            len -= room;
        }
    }
    while len > 0 {
        let n = len.min(MAX_LEN);
        list.push(Extent { logical, start, len: n as u32 });
        logical += n as u32;
        start += n;
        len -= n;
    }
}

fn per_block(block_size: usize) -> usize {
    (block_size - 12) / 12
}

/// How many tree blocks (leaves and index blocks) `n` extents need.
pub(crate) fn tree_blocks(n: usize, block_size: usize) -> usize {
    let per = per_block(block_size);
    let mut total = 0;
    let mut level = n;
    while level > ROOT_SLOTS {
        level = level.div_ceil(per);
        total += level;
    }
    total
}

fn header(b: &mut [u8], entries: usize, max: usize, depth: u16) {
    put16(b, 0, MAGIC);
    put16(b, 2, entries as u16);
    put16(b, 4, max as u16);
    put16(b, 6, depth);
    put32(b, 8, 0);
}

fn put_extent(b: &mut [u8], at: usize, e: &Extent) {
    put32(b, at, e.logical);
    put16(b, at + 4, e.len as u16);
    put16(b, at + 6, (e.start >> 32) as u16);
    put32(b, at + 8, e.start as u32);
}

fn put_index(b: &mut [u8], at: usize, logical: u32, leaf: u64) {
    put32(b, at, logical);
    put32(b, at + 4, leaf as u32);
    put16(b, at + 8, (leaf >> 32) as u16);
    put16(b, at + 10, 0);
}

/// Builds the inode's i_block and the tree blocks. `blocks` are the
/// physical numbers for the tree blocks (exactly [`tree_blocks`] of them);
/// `csum_seed` is the inode's checksum seed for the block tails.
pub(crate) fn build(extents: &[Extent], blocks: &[u64], block_size: usize, csum_seed: Option<u32>) -> ([u8; 60], Vec<(u64, Vec<u8>)>) {
    let per = per_block(block_size);
    let mut root = [0u8; 60];
    let mut out = Vec::new();
    if extents.len() <= ROOT_SLOTS {
        header(&mut root, extents.len(), ROOT_SLOTS, 0);
        for (i, e) in extents.iter().enumerate() {
            put_extent(&mut root, 12 + 12 * i, e);
        }
        return (root, out);
    }
    let mut next_block = blocks.iter().copied();
    let finish = |b: &mut Vec<u8>| {
        if let Some(seed) = csum_seed {
            let tail = 12 + 12 * per;
            let c = crc32c_raw(seed, &b[..tail]);
            put32(b, tail, c);
        }
    };
    // Leaves.
    let mut level: Vec<(u32, u64)> = Vec::new();
    for chunk in extents.chunks(per) {
        let no = next_block.next().expect("enough tree blocks allocated");
        let mut b = vec![0u8; block_size];
        header(&mut b, chunk.len(), per, 0);
        for (i, e) in chunk.iter().enumerate() {
            put_extent(&mut b, 12 + 12 * i, e);
        }
        finish(&mut b);
        level.push((chunk[0].logical, no));
        out.push((no, b));
    }
    let mut depth = 1u16;
    while level.len() > ROOT_SLOTS {
        let mut up = Vec::new();
        for chunk in level.chunks(per) {
            let no = next_block.next().expect("enough tree blocks allocated");
            let mut b = vec![0u8; block_size];
            header(&mut b, chunk.len(), per, depth);
            for (i, (l, leaf)) in chunk.iter().enumerate() {
                put_index(&mut b, 12 + 12 * i, *l, *leaf);
            }
            finish(&mut b);
            up.push((chunk[0].0, no));
            out.push((no, b));
        }
        level = up;
        depth += 1;
    }
    header(&mut root, level.len(), ROOT_SLOTS, depth);
    for (i, (l, leaf)) in level.iter().enumerate() {
        put_index(&mut root, 12 + 12 * i, *l, *leaf);
    }
    (root, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_merges_and_splits_at_max_len() {
        let mut v = Vec::new();
        push(&mut v, 0, 100, 10);
        push(&mut v, 10, 110, MAX_LEN);
        assert_eq!(v, [Extent { logical: 0, start: 100, len: MAX_LEN as u32 }, Extent { logical: 32768, start: 32868, len: 10 }]);
        push(&mut v, 40000, 50000, 1);
        assert_eq!(v.len(), 3);
    }

    #[test]
    fn tree_block_counts() {
        assert_eq!(tree_blocks(4, 4096), 0);
        assert_eq!(tree_blocks(5, 4096), 1);
        assert_eq!(tree_blocks(340 * 4, 4096), 4);
        assert_eq!(tree_blocks(340 * 4 + 1, 4096), 5 + 1);
    }
}
