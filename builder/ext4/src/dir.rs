//! Linear directory blocks: `.`, `..`, then the entries, packed in order,
//! each block closed by a checksum tail when metadata_csum is on.

use crate::csum::crc32c_raw;
use crate::le::{pad4, put16, put32};
use crate::plan::{ftype, DirEntry};

/// Size of the checksum tail (a fake entry) at the end of each block.
const TAIL: usize = 12;

fn rec_len(name_len: usize) -> usize {
    8 + pad4(name_len)
}

/// Packs a directory into whole blocks. `csum_seed` is the directory
/// inode's checksum seed (None without metadata_csum). At least
/// `min_blocks` blocks are produced (lost+found keeps spare room).
pub(crate) fn dir_blocks(
    self_ino: u32,
    parent_ino: u32,
    entries: &[DirEntry<'_>],
    block_size: usize,
    csum_seed: Option<u32>,
    min_blocks: usize,
) -> Vec<u8> {
    let usable = if csum_seed.is_some() { block_size - TAIL } else { block_size };
    let mut out: Vec<u8> = Vec::with_capacity(block_size);
    let mut block_start = 0usize;
    let mut off = 0usize; // within the current block
    let mut last: Option<usize> = None; // absolute offset of the previous entry in this block

    let all = [DirEntry { name: ".", ino: self_ino, ftype: ftype::DIR }, DirEntry { name: "..", ino: parent_ino, ftype: ftype::DIR }];
    let mut push = |e: &DirEntry<'_>, out: &mut Vec<u8>| {
        let need = rec_len(e.name.len());
        if off + need > usable {
            close_block(out, block_start, last.take(), usable, block_size, csum_seed);
            block_start += block_size;
            off = 0;
        }
        if out.len() < block_start + block_size {
            out.resize(block_start + block_size, 0);
        }
        let at = block_start + off;
        put32(out, at, e.ino);
        put16(out, at + 4, need as u16);
        out[at + 6] = e.name.len() as u8;
        out[at + 7] = e.ftype;
        out[at + 8..at + 8 + e.name.len()].copy_from_slice(e.name.as_bytes());
        last = Some(at);
        off += need;
    };
    for e in all.iter().chain(entries.iter()) {
        push(e, &mut out);
    }
    close_block(&mut out, block_start, last, usable, block_size, csum_seed);
    while out.len() < min_blocks * block_size {
        let start = out.len();
        out.resize(start + block_size, 0);
        // An empty block is one unused entry spanning it.
        close_block(&mut out, start, None, usable, block_size, csum_seed);
    }
    out
}

/// Stretches the last entry to the end of the usable area and writes the tail.
fn close_block(
    out: &mut [u8],
    block_start: usize,
    last: Option<usize>,
    usable: usize,
    block_size: usize,
    csum_seed: Option<u32>,
) {
    match last {
        Some(at) => {
            put16(out, at + 4, (block_start + usable - at) as u16);
        }
        None => {
            put32(out, block_start, 0);
            put16(out, block_start + 4, usable as u16);
        }
    }
    if let Some(seed) = csum_seed {
        let t = block_start + block_size - TAIL;
        put32(out, t, 0);
        put16(out, t + 4, TAIL as u16);
        out[t + 6] = 0;
        out[t + 7] = 0xDE;
        let c = crc32c_raw(seed, &out[block_start..t]);
        put32(out, t + 8, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::le::get16;

    #[test]
    fn entries_chain_to_the_tail_in_every_block() {
        let names: Vec<String> = (0..600).map(|i| format!("entry-number-{i:04}")).collect();
        let entries: Vec<DirEntry<'_>> = names.iter().map(|n| DirEntry { name: n, ino: 20, ftype: ftype::REG }).collect();
        let d = dir_blocks(12, 2, &entries, 4096, Some(7), 1);
        assert!(d.len() > 4096);
        assert_eq!(d.len() % 4096, 0);
        let mut seen = 0;
        for block in d.chunks(4096) {
            let mut off = 0;
            while off < 4096 - TAIL {
                let rl = get16(block, off + 4) as usize;
                if block[off] != 0 {
                    seen += 1;
                }
                off += rl;
            }
            assert_eq!(off, 4096 - TAIL);
            assert_eq!(block[4096 - TAIL + 7], 0xDE);
        }
        assert_eq!(seen, 602);
    }
}
