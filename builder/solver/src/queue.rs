//! apk's order of deciding names, as a queue of obligations that can be
//! rolled back with the search (see `discovery.rs` for the order itself).

use std::cmp::Reverse;
use std::collections::BTreeSet;

/// Lower first: the tier (0 asked for by the world, 1 other names, 2 names
/// apk cannot pick a provider for on its own), then the higher discovery
/// number.
pub(crate) type Key = (u8, Reverse<u32>);

/// Obligations by key, then by arrival; each is known by its arrival
/// number, which the engine uses to index its own list.
#[derive(Default)]
pub(crate) struct Ordered {
    pending: BTreeSet<(Key, u32)>,
    keys: Vec<Key>,
    /// Arrival numbers in the order they were taken.
    taken: Vec<u32>,
}

/// What [`Ordered::rollback`] returns to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mark {
    arrived: usize,
    taken: usize,
}

impl Ordered {
    /// Queues an obligation; returns its arrival number.
    pub fn push(&mut self, key: Key) -> u32 {
        let seq = self.keys.len() as u32;
        self.keys.push(key);
        self.pending.insert((key, seq));
        seq
    }

    /// The next obligation to meet.
    pub fn pop(&mut self) -> Option<u32> {
        let (_, seq) = self.pending.pop_first()?;
        self.taken.push(seq);
        Some(seq)
    }

    /// How many were taken so far (progress, for error reporting).
    pub fn taken(&self) -> usize {
        self.taken.len()
    }

    pub fn mark(&self) -> Mark {
        Mark { arrived: self.keys.len(), taken: self.taken.len() }
    }

    /// Forgets what arrived after the mark and puts back what was taken
    /// since.
    pub fn rollback(&mut self, m: Mark) {
        for seq in m.arrived..self.keys.len() {
            self.pending.remove(&(self.keys[seq], seq as u32));
        }
        for seq in self.taken.drain(m.taken..) {
            if (seq as usize) < m.arrived {
                self.pending.insert((self.keys[seq as usize], seq));
            }
        }
        self.keys.truncate(m.arrived);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_by_key_then_arrival_and_rolls_back() {
        let mut q = Ordered::default();
        let a = q.push((1, Reverse(5)));
        let b = q.push((0, Reverse(1)));
        let c = q.push((1, Reverse(9)));
        assert_eq!(q.pop(), Some(b));
        let m = q.mark();
        assert_eq!(q.pop(), Some(c));
        let d = q.push((0, Reverse(0)));
        assert_eq!(q.pop(), Some(d));
        q.rollback(m);
        assert_eq!((q.pop(), q.pop(), q.pop()), (Some(c), Some(a), None));
        assert_eq!(q.taken(), 3);
    }
}
