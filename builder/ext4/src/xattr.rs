//! Extended attributes: name-prefix indexes, POSIX ACL conversion to the
//! ext4 on-disk form, and the in-inode and block encodings with hashes.

use std::collections::BTreeMap;

use crate::csum::crc32c_raw;
use crate::le::{get16, get32, pad4, put16, put32};
use crate::Ext4Error;

const MAGIC: u32 = 0xEA02_0000;
/// Header of an xattr block.
const BLOCK_HEADER: usize = 32;
/// One entry's fixed part.
const ENTRY: usize = 16;

/// One attribute as stored: prefix index, name without prefix, value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct XEntry {
    pub index: u8,
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

impl XEntry {
    fn entry_len(&self) -> usize {
        pad4(ENTRY + self.name.len())
    }
}

fn split_name(full: &str) -> Option<(u8, &str)> {
    match full {
        "system.posix_acl_access" => return Some((2, "")),
        "system.posix_acl_default" => return Some((3, "")),
        "system.richacl" => return Some((8, "")),
        _ => {}
    }
    for (prefix, index) in [("user.", 1u8), ("trusted.", 4), ("security.", 6), ("system.", 7)] {
        if let Some(rest) = full.strip_prefix(prefix) {
            return Some((index, rest));
        }
    }
    None
}

/// Converts a POSIX ACL from the xattr (VFS) form to ext4's compact form.
fn acl_to_disk(path: &str, name: &str, v: &[u8]) -> Result<Vec<u8>, Ext4Error> {
    let bad = |why: &str| Ext4Error::Unsupported { path: path.to_string(), why: format!("xattr {name}: {why}") };
    if v.len() < 4 || v.len() % 8 != 4 || get32(v, 0) != 2 {
        return Err(bad("not a version 2 POSIX ACL"));
    }
    let mut out = 1u32.to_le_bytes().to_vec();
    for e in v[4..].chunks_exact(8) {
        let (tag, perm, id) = (get16(e, 0), get16(e, 2), get32(e, 4));
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        match tag {
            0x01 | 0x04 | 0x10 | 0x20 => {} // USER_OBJ, GROUP_OBJ, MASK, OTHER: short form
            0x02 | 0x08 => out.extend_from_slice(&id.to_le_bytes()), // USER, GROUP
            _ => return Err(bad(&format!("unknown ACL tag {tag:#x}"))),
        }
    }
    Ok(out)
}

/// Turns the tree's xattr map into on-disk entries, sorted as ext4 sorts
/// block entries (index, name length, name).
pub(crate) fn prepare(path: &str, xattrs: &BTreeMap<String, Vec<u8>>) -> Result<Vec<XEntry>, Ext4Error> {
    let mut out = Vec::with_capacity(xattrs.len());
    for (full, value) in xattrs {
        let (index, name) = split_name(full).ok_or_else(|| Ext4Error::Unsupported {
            path: path.to_string(),
            why: format!("xattr {full:?} is not in a namespace ext4 stores (user., trusted., security., system.)"),
        })?;
        if name.len() > 255 {
            return Err(Ext4Error::Unsupported { path: path.to_string(), why: format!("xattr name {full:?} is too long") });
        }
        let value = if index == 2 || index == 3 { acl_to_disk(path, full, value)? } else { value.clone() };
        out.push(XEntry { index, name: name.as_bytes().to_vec(), value });
    }
    out.sort_by(|a, b| (a.index, a.name.len(), &a.name).cmp(&(b.index, b.name.len(), &b.name)));
    Ok(out)
}

/// The hash of one entry (name, then the value as little-endian words).
fn entry_hash(e: &XEntry) -> u32 {
    let mut h: u32 = 0;
    for &c in &e.name {
        h = (h << 5) ^ (h >> 27) ^ c as u32;
    }
    if !e.value.is_empty() {
        let mut padded = e.value.clone();
        padded.resize(pad4(padded.len()), 0);
        for w in padded.chunks_exact(4) {
            h = (h << 16) ^ (h >> 16) ^ get32(w, 0);
        }
    }
    h
}

/// Writes entries at `b[0..]` and values downwards from `b.len()`; value
/// offsets are relative to `base` within `b`. Returns false if they do not fit.
fn lay_out(b: &mut [u8], entries_at: usize, base: usize, entries: &[XEntry]) -> bool {
    let table: usize = entries.iter().map(XEntry::entry_len).sum::<usize>() + 4;
    let values: usize = entries.iter().map(|e| pad4(e.value.len())).sum();
    if entries_at + table + values > b.len() {
        return false;
    }
    let mut at = entries_at;
    let mut vend = b.len();
    for e in entries {
        let voff = if e.value.is_empty() {
            0
        } else {
            vend -= pad4(e.value.len());
            b[vend..vend + e.value.len()].copy_from_slice(&e.value);
            vend - base
        };
        b[at] = e.name.len() as u8;
        b[at + 1] = e.index;
        put16(b, at + 2, voff as u16);
        put32(b, at + 4, 0);
        put32(b, at + 8, e.value.len() as u32);
        put32(b, at + 12, entry_hash(e));
        b[at + ENTRY..at + ENTRY + e.name.len()].copy_from_slice(&e.name);
        at += e.entry_len();
    }
    put32(b, at, 0);
    true
}

/// The in-inode xattr area (`space` bytes after i_extra_isize), or None if
/// the entries do not fit there.
pub(crate) fn in_inode(entries: &[XEntry], space: usize) -> Option<Vec<u8>> {
    let mut b = vec![0u8; space];
    if space < 8 {
        return None;
    }
    put32(&mut b, 0, MAGIC);
    // In-inode value offsets count from the first entry, right after the magic.
    if lay_out(&mut b, 4, 4, entries) {
        Some(b)
    } else {
        None
    }
}

/// An xattr block at physical block `block_no`, or None if too big.
pub(crate) fn block(entries: &[XEntry], block_size: usize, block_no: u64, fs_seed: Option<u32>) -> Option<Vec<u8>> {
    let mut b = vec![0u8; block_size];
    if !lay_out(&mut b, BLOCK_HEADER, 0, entries) {
        return None;
    }
    put32(&mut b, 0, MAGIC);
    put32(&mut b, 4, 1); // h_refcount
    put32(&mut b, 8, 1); // h_blocks
    let mut h: u32 = 0;
    for e in entries {
        let eh = entry_hash(e);
        if eh == 0 {
            // The kernel's rule: a zero entry hash makes the block hash zero.
            h = 0;
            break;
        }
        h = (h << 16) ^ (h >> 16) ^ eh;
    }
    put32(&mut b, 12, h);
    if let Some(seed) = fs_seed {
        let mut c = crc32c_raw(seed, &block_no.to_le_bytes());
        c = crc32c_raw(c, &b);
        put32(&mut b, 16, c);
    }
    Some(b)
}

/// Whether the entries fit in one block of `block_size`.
pub(crate) fn fits_block(entries: &[XEntry], block_size: usize) -> bool {
    let table: usize = entries.iter().map(XEntry::entry_len).sum::<usize>() + 4;
    let values: usize = entries.iter().map(|e| pad4(e.value.len())).sum();
    BLOCK_HEADER + table + values <= block_size
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_fits_in_a_256_byte_inode() {
        let mut m = BTreeMap::new();
        m.insert("security.capability".to_string(), vec![1u8; 20]);
        let e = prepare("/x", &m).unwrap();
        assert_eq!((e[0].index, e[0].name.as_slice()), (6, &b"capability"[..]));
        let area = in_inode(&e, 256 - 160).unwrap();
        assert_eq!(get32(&area, 0), MAGIC);
        // Value at the very end, offset relative to the first entry.
        assert_eq!(get16(&area, 4 + 2) as usize + 4, area.len() - 20);
    }

    #[test]
    fn acl_is_converted_and_unknown_namespaces_refused() {
        let mut v = 2u32.to_le_bytes().to_vec();
        for (tag, perm, id) in [(1u16, 7u16, u32::MAX), (2, 5, 1000), (4, 5, u32::MAX), (0x10, 5, u32::MAX), (0x20, 0, u32::MAX)] {
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&perm.to_le_bytes());
            v.extend_from_slice(&id.to_le_bytes());
        }
        let mut m = BTreeMap::new();
        m.insert("system.posix_acl_access".to_string(), v);
        let e = prepare("/x", &m).unwrap();
        assert_eq!(e[0].index, 2);
        assert_eq!(e[0].value.len(), 4 + 4 * 4 + 8);
        let mut m = BTreeMap::new();
        m.insert("foo.bar".to_string(), vec![]);
        assert!(prepare("/x", &m).unwrap_err().to_string().contains("foo.bar"));
    }
}
