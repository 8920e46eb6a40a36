//! kmod's binary module index (`modules.*.bin`): a compressed trie mapping
//! ASCII keys to lists of (priority, value) strings, as kmod's depmod
//! writes it and libkmod reads it.
//!
//! The format, as read from kmod's `tools/depmod.c` and
//! `libkmod/libkmod-index.c` (v30, v34.2), and written here from scratch:
//!
//! * All integers are 32-bit big-endian. The file starts with the magic
//!   `0xB007F457`, the version `0x00020001` and the offset word of the root
//!   node.
//! * An offset word is a file offset in its low 28 bits plus flags in the
//!   high nibble: `0x80000000` the node has a prefix, `0x40000000` values,
//!   `0x20000000` children. Absent children are offset word 0.
//! * A node is: its prefix (if any) NUL-terminated; then, with children, the
//!   first and last child characters (one byte each) and one offset word per
//!   character in `first..=last`; then, with values, a count and each value
//!   as priority word + NUL-terminated string.
//! * The trie is path-compressed: inserting a key that diverges inside a
//!   node's prefix splits that node at the first differing character (the
//!   node keeps the common part; a new child, labelled with the differing
//!   character, gets the rest of the prefix and the old values and
//!   children). A new key that runs out of matching children gets a leaf
//!   whose prefix is the rest of the key. The shape therefore depends only
//!   on the set of keys; the root never has a prefix.
//! * A node's values are kept sorted by ascending priority; a new value goes
//!   *before* existing values of the same priority (depmod walks past
//!   strictly smaller priorities only). Duplicates are kept.
//! * kmod 30 writes nodes in post-order: every child (in character order)
//!   before its parent, so the root is the last node and its offset is
//!   patched into the header at the end. An empty index is the 12-byte
//!   header whose root offset is 12 with no flags.
//! * kmod 34 writes the same trie in pre-order (each node before its
//!   children, root at offset 12). Readers follow offsets, so both layouts
//!   read the same; we write kmod 30's layout, byte for byte.

use std::collections::BTreeMap;

const MAGIC: u32 = 0xB007_F457;
const VERSION: u32 = 0x0002_0001;
const HAS_PREFIX: u32 = 0x8000_0000;
const HAS_VALUES: u32 = 0x4000_0000;
const HAS_CHILDREN: u32 = 0x2000_0000;
const OFFSET_MASK: u32 = 0x0FFF_FFFF;

#[derive(Debug, Default)]
struct Node {
    prefix: Vec<u8>,
    /// (priority, value), sorted by priority; see [`KmodIndex::insert`].
    values: Vec<(u32, Vec<u8>)>,
    /// Child node indexes by label character.
    children: BTreeMap<u8, usize>,
}

/// An in-memory kmod index being built.
#[derive(Debug)]
pub(crate) struct KmodIndex {
    nodes: Vec<Node>,
}

impl KmodIndex {
    pub(crate) fn new() -> KmodIndex {
        KmodIndex { nodes: vec![Node::default()] }
    }

    /// Adds `value` under `key`. Keys must be 7-bit ASCII without NUL (the
    /// child table has 128 slots); `Err` names the offending key.
    pub(crate) fn insert(&mut self, key: &str, value: &str, priority: u32) -> Result<(), String> {
        if let Some(b) = key.bytes().find(|b| *b == 0 || *b >= 0x80) {
            return Err(format!("index key {key:?} has byte 0x{b:02x}; kmod indexes hold 7-bit ASCII only"));
        }
        let key = key.as_bytes();
        let mut node = 0;
        let mut i = 0;
        loop {
            let common = self.nodes[node].prefix.iter().zip(&key[i..]).take_while(|(a, b)| a == b).count();
            if common < self.nodes[node].prefix.len() {
                self.split(node, common);
            }
            i += common;
            if i == key.len() {
                add_value(&mut self.nodes[node].values, value, priority);
                return Ok(());
            }
            let ch = key[i];
            match self.nodes[node].children.get(&ch) {
                Some(&child) => {
                    node = child;
                    i += 1;
                }
                None => {
                    let leaf = Node {
                        prefix: key[i + 1..].to_vec(),
                        values: vec![(priority, value.as_bytes().to_vec())],
                        children: BTreeMap::new(),
                    };
                    self.nodes.push(leaf);
                    let id = self.nodes.len() - 1;
                    self.nodes[node].children.insert(ch, id);
                    return Ok(());
                }
            }
        }
    }

    /// Splits `node` after `at` prefix bytes: it keeps `prefix[..at]` and a
    /// single child (labelled `prefix[at]`) that takes over the rest.
    fn split(&mut self, node: usize, at: usize) {
        let n = &mut self.nodes[node];
        let label = n.prefix[at];
        let tail = n.prefix[at + 1..].to_vec();
        n.prefix.truncate(at);
        let moved = Node {
            prefix: tail,
            values: std::mem::take(&mut n.values),
            children: std::mem::take(&mut n.children),
        };
        self.nodes.push(moved);
        let id = self.nodes.len() - 1;
        self.nodes[node].children.insert(label, id);
    }

    /// The index file, in kmod 30's (post-order) layout.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for w in [MAGIC, VERSION, 0] {
            out.extend_from_slice(&w.to_be_bytes());
        }
        let root = self.write_node(0, &mut out);
        out[8..12].copy_from_slice(&root.to_be_bytes());
        out
    }

    /// Writes the children of `id`, then `id` itself; returns its offset word.
    fn write_node(&self, id: usize, out: &mut Vec<u8>) -> u32 {
        let n = &self.nodes[id];
        let range = n.children.keys().next().copied().zip(n.children.keys().next_back().copied());
        let mut child_words = Vec::new();
        if let Some((first, last)) = range {
            for ch in first..=last {
                child_words.push(n.children.get(&ch).map_or(0, |&c| self.write_node(c, out)));
            }
        }
        let start = out.len();
        assert!(start as u64 <= OFFSET_MASK as u64, "kmod index larger than 256 MiB");
        let mut word = start as u32;
        if !n.prefix.is_empty() {
            out.extend_from_slice(&n.prefix);
            out.push(0);
            word |= HAS_PREFIX;
        }
        if let Some((first, last)) = range {
            out.push(first);
            out.push(last);
            for w in child_words {
                out.extend_from_slice(&w.to_be_bytes());
            }
            word |= HAS_CHILDREN;
        }
        if !n.values.is_empty() {
            out.extend_from_slice(&(n.values.len() as u32).to_be_bytes());
            for (priority, value) in &n.values {
                out.extend_from_slice(&priority.to_be_bytes());
                out.extend_from_slice(value);
                out.push(0);
            }
            word |= HAS_VALUES;
        }
        word
    }
}

/// Inserts before the first value whose priority is not smaller.
fn add_value(values: &mut Vec<(u32, Vec<u8>)>, value: &str, priority: u32) {
    let at = values.iter().position(|(p, _)| *p >= priority).unwrap_or(values.len());
    values.insert(at, (priority, value.as_bytes().to_vec()));
}

/// A reader for our own tests: every value stored under exactly `key`, in
/// file order, found by walking the file the way libkmod does.
#[cfg(test)]
pub(crate) fn lookup(file: &[u8], key: &str) -> Vec<(u32, String)> {
    let word = |at: usize| u32::from_be_bytes(file[at..at + 4].try_into().unwrap());
    let cstr = |at: usize| {
        let end = at + file[at..].iter().position(|b| *b == 0).unwrap();
        (String::from_utf8(file[at..end].to_vec()).unwrap(), end + 1)
    };
    assert_eq!(word(0), MAGIC);
    assert_eq!(word(4), VERSION);
    let key = key.as_bytes();
    let mut off = word(8);
    let mut i = 0;
    loop {
        let mut at = (off & OFFSET_MASK) as usize;
        if off & HAS_PREFIX != 0 {
            let (prefix, next) = cstr(at);
            if !key[i..].starts_with(prefix.as_bytes()) {
                return Vec::new();
            }
            i += prefix.len();
            at = next;
        }
        let mut child = 0;
        if off & HAS_CHILDREN != 0 {
            let (first, last) = (file[at], file[at + 1]);
            if i < key.len() && (first..=last).contains(&key[i]) {
                child = word(at + 2 + 4 * (key[i] - first) as usize);
            }
            at += 2 + 4 * (last - first + 1) as usize;
        }
        if i == key.len() {
            let mut out = Vec::new();
            if off & HAS_VALUES != 0 {
                let count = word(at);
                at += 4;
                for _ in 0..count {
                    let p = word(at);
                    let (v, next) = cstr(at + 4);
                    out.push((p, v));
                    at = next;
                }
            }
            return out;
        }
        if child == 0 {
            return Vec::new();
        }
        off = child;
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn be(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    #[test]
    fn empty_index_is_just_the_header() {
        assert_eq!(KmodIndex::new().to_bytes(), be(&[0xB007F457, 0x00020001, 12]));
    }

    #[test]
    fn single_key_is_a_leaf_under_the_root() {
        let mut ix = KmodIndex::new();
        ix.insert("ab", "v", 7).unwrap();
        let mut want = be(&[0xB007F457, 0x00020001, 0]);
        // Leaf at 12: prefix "b", one value.
        want.extend_from_slice(b"b\0");
        want.extend_from_slice(&be(&[1, 7]));
        want.extend_from_slice(b"v\0");
        // Root at 26: children 'a'..='a' -> leaf.
        let root = want.len() as u32;
        want.extend_from_slice(b"aa");
        want.extend_from_slice(&be(&[12 | HAS_PREFIX | HAS_VALUES]));
        want[8..12].copy_from_slice(&(root | HAS_CHILDREN).to_be_bytes());
        assert_eq!(ix.to_bytes(), want);
    }

    #[test]
    fn diverging_keys_split_the_prefix() {
        // "abcd" then "abxy": the leaf "bcd" under 'a' splits after "b".
        let mut ix = KmodIndex::new();
        ix.insert("abcd", "1", 0).unwrap();
        ix.insert("abxy", "2", 0).unwrap();
        ix.insert("ab", "3", 0).unwrap();
        let root = &ix.nodes[0];
        assert!(root.prefix.is_empty() && root.values.is_empty());
        assert_eq!(root.children.keys().collect::<Vec<_>>(), [&b'a']);
        let a = &ix.nodes[root.children[&b'a']];
        assert_eq!(a.prefix, b"b");
        assert_eq!(a.values, [(0, b"3".to_vec())]);
        assert_eq!(a.children.keys().copied().collect::<Vec<_>>(), [b'c', b'x']);
        assert_eq!(ix.nodes[a.children[&b'c']].prefix, b"d");
        assert_eq!(ix.nodes[a.children[&b'x']].prefix, b"y");

        // A key that ends inside a prefix splits too, and the same key set
        // in another order gives the same bytes.
        let mut other = KmodIndex::new();
        for k in ["ab", "abxy", "abcd"] {
            other
                .insert(k, ["3", "2", "1"][["ab", "abxy", "abcd"].iter().position(|x| *x == k).unwrap()], 0)
                .unwrap();
        }
        assert_eq!(other.to_bytes(), ix.to_bytes());

        let bytes = ix.to_bytes();
        assert_eq!(lookup(&bytes, "abcd"), [(0, "1".to_string())]);
        assert_eq!(lookup(&bytes, "abxy"), [(0, "2".to_string())]);
        assert_eq!(lookup(&bytes, "ab"), [(0, "3".to_string())]);
        assert!(lookup(&bytes, "abc").is_empty() && lookup(&bytes, "a").is_empty() && lookup(&bytes, "zz").is_empty());
    }

    #[test]
    fn children_come_first_with_null_gaps() {
        // Root children 'a' and 'c': the range a..=c has a null slot for 'b'.
        let mut ix = KmodIndex::new();
        ix.insert("c", "C", 1).unwrap();
        ix.insert("a", "A", 2).unwrap();
        let mut want = be(&[0xB007F457, 0x00020001, 0]);
        let a = want.len() as u32; // 'a' leaf first (character order)
        want.extend_from_slice(&be(&[1, 2]));
        want.extend_from_slice(b"A\0");
        let c = want.len() as u32;
        want.extend_from_slice(&be(&[1, 1]));
        want.extend_from_slice(b"C\0");
        let root = want.len() as u32;
        want.extend_from_slice(b"ac");
        want.extend_from_slice(&be(&[a | HAS_VALUES, 0, c | HAS_VALUES]));
        want[8..12].copy_from_slice(&(root | HAS_CHILDREN).to_be_bytes());
        assert_eq!(ix.to_bytes(), want);
    }

    #[test]
    fn values_sort_by_priority_and_ties_go_first() {
        let mut ix = KmodIndex::new();
        for (v, p) in [("first5", 5), ("m1", 1), ("second5", 5), ("m3", 3), ("third5", 5), ("m9", 9), ("m1", 1)] {
            ix.insert("key", v, p).unwrap();
        }
        let got = lookup(&ix.to_bytes(), "key");
        let want: Vec<(u32, String)> = [(1, "m1"), (1, "m1"), (3, "m3"), (5, "third5"), (5, "second5"), (5, "first5"), (9, "m9")]
            .iter()
            .map(|(p, v)| (*p, v.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn rejects_non_ascii_keys() {
        let e = KmodIndex::new().insert("caf\u{e9}", "x", 0).unwrap_err();
        assert!(e.contains("0xc3"), "{e}");
    }
}
