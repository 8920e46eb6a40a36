//! The iteration order of kmod's internal hash tables, which leaks into
//! depmod's output in two places: `modules.symbols` lists symbols in the
//! order of depmod's symbol table (2048 buckets), and modules that
//! `modules.order` does not list keep the order of its module-name table
//! (512 buckets).
//!
//! kmod's table (`shared/hash.c`, the same in v30 and v34.2) puts a key in
//! bucket `hash(key) & (buckets - 1)`, where `hash` is Paul Hsieh's
//! "SuperFastHash" over the key bytes (16-bit words read little-endian, as
//! on the x86 and arm64 hosts depmod runs on), keeps each bucket sorted
//! with `strcmp`, and iterates bucket by bucket. So the order is: by bucket,
//! then bytewise.

/// Buckets of depmod's module-name table.
pub(crate) const MODULE_BUCKETS: u32 = 512;
/// Buckets of depmod's symbol table.
pub(crate) const SYMBOL_BUCKETS: u32 = 2048;

/// SuperFastHash of `key`, with C `char` signed (x86, and what kmod's
/// arithmetic assumes for the tail bytes).
pub(crate) fn superfast_hash(key: &[u8]) -> u32 {
    let word = |b: &[u8]| u16::from_le_bytes([b[0], b[1]]) as u32;
    let signed = |b: u8| b as i8 as i32 as u32;
    let mut h = key.len() as u32;
    let mut chunks = key.chunks_exact(4);
    for c in &mut chunks {
        h = h.wrapping_add(word(&c[0..2]));
        let tmp = (word(&c[2..4]) << 11) ^ h;
        h = (h << 16) ^ tmp;
        h = h.wrapping_add(h >> 11);
    }
    let rest = chunks.remainder();
    match rest.len() {
        3 => {
            h = h.wrapping_add(word(&rest[0..2]));
            h ^= h << 16;
            h ^= signed(rest[2]) << 18;
            h = h.wrapping_add(h >> 11);
        }
        2 => {
            h = h.wrapping_add(word(&rest[0..2]));
            h ^= h << 11;
            h = h.wrapping_add(h >> 17);
        }
        1 => {
            h = h.wrapping_add(signed(rest[0]));
            h ^= h << 10;
            h = h.wrapping_add(h >> 1);
        }
        _ => {}
    }
    h ^= h << 3;
    h = h.wrapping_add(h >> 5);
    h ^= h << 4;
    h = h.wrapping_add(h >> 17);
    h ^= h << 25;
    h = h.wrapping_add(h >> 6);
    h
}

/// Sorts `items` (by `key`) into the iteration order of a kmod hash table with
/// `buckets` buckets (a power of two).
pub(crate) fn sort_in_hash_order<T>(items: &mut [T], buckets: u32, key: impl Fn(&T) -> &str) {
    debug_assert!(buckets.is_power_of_two());
    items.sort_by_cached_key(|t| {
        let k = key(t);
        (superfast_hash(k.as_bytes()) & (buckets - 1), k.as_bytes().to_vec())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_values() {
        // Worked by hand from the algorithm: empty key, and the 1/2/3-byte
        // tails, and a key with full words.
        assert_eq!(superfast_hash(b""), 0);
        let mut h: u32 = 1 + b'a' as u32;
        h ^= h << 10;
        h = h.wrapping_add(h >> 1);
        h ^= h << 3;
        h = h.wrapping_add(h >> 5);
        h ^= h << 4;
        h = h.wrapping_add(h >> 17);
        h ^= h << 25;
        h = h.wrapping_add(h >> 6);
        assert_eq!(superfast_hash(b"a"), h);
        // Different keys, different buckets (sanity, not a property).
        assert_ne!(superfast_hash(b"ext4") & 511, superfast_hash(b"jbd2") & 511);
    }

    #[test]
    fn order_is_by_bucket_then_bytes() {
        let mut keys = vec!["zeta", "alpha", "virtio_ring", "virtio", "ext4", "a", "b"];
        sort_in_hash_order(&mut keys, 4, |k| k);
        for w in keys.windows(2) {
            let (a, b) = (superfast_hash(w[0].as_bytes()) & 3, superfast_hash(w[1].as_bytes()) & 3);
            assert!(a < b || (a == b && w[0] < w[1]), "{keys:?}");
        }
    }
}
