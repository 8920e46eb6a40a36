//! Block allocation: one forward cursor over the filesystem that steps
//! around the superblock/descriptor backups, plus the used-block bitmap.

/// Hands out blocks in increasing order and remembers which are used.
pub(crate) struct Allocator {
    cursor: u64,
    end: u64,
    /// Sorted, disjoint [start, end) ranges that are never handed out.
    reserved: Vec<(u64, u64)>,
    used: Vec<u64>,
}

impl Allocator {
    /// An allocator over `[0, end)`; `reserved` ranges are marked used.
    pub(crate) fn new(end: u64, reserved: Vec<(u64, u64)>) -> Self {
        let mut a = Allocator { cursor: 0, end, reserved, used: vec![0; end.div_ceil(64) as usize] };
        for (s, e) in a.reserved.clone() {
            a.mark(s, e - s);
        }
        a
    }

    /// Marks `[start, start + len)` used.
    pub(crate) fn mark(&mut self, start: u64, len: u64) {
        for b in start..start + len {
            self.used[(b / 64) as usize] |= 1 << (b % 64);
        }
    }

    /// Whether block `b` is used.
    pub(crate) fn is_used(&self, b: u64) -> bool {
        self.used[(b / 64) as usize] >> (b % 64) & 1 == 1
    }

    /// Moves the cursor past any reserved range it sits in; returns the end
    /// of the free stretch starting at the cursor.
    fn settle(&mut self) -> u64 {
        for &(s, e) in &self.reserved {
            if self.cursor < s {
                return s.min(self.end);
            }
            if self.cursor < e {
                self.cursor = e;
            }
        }
        self.end
    }

    /// Up to `max` contiguous blocks at the cursor, or None when full.
    pub(crate) fn run(&mut self, max: u64) -> Option<(u64, u64)> {
        let stop = self.settle();
        if self.cursor >= stop {
            return None;
        }
        let start = self.cursor;
        let len = max.min(stop - start);
        self.mark(start, len);
        self.cursor += len;
        Some((start, len))
    }

    /// Exactly `n` contiguous blocks (skipping a too-short stretch).
    pub(crate) fn contiguous(&mut self, n: u64) -> Option<u64> {
        loop {
            let stop = self.settle();
            if self.cursor >= stop {
                return None;
            }
            if stop - self.cursor >= n {
                let start = self.cursor;
                self.mark(start, n);
                self.cursor += n;
                return Some(start);
            }
            self.cursor = stop;
        }
    }

    /// Free blocks from the cursor to the end (what `run` can still give).
    pub(crate) fn remaining(&self) -> u64 {
        let mut left = self.end.saturating_sub(self.cursor);
        for &(s, e) in &self.reserved {
            let (s, e) = (s.max(self.cursor), e.min(self.end));
            if e > s {
                left -= e - s;
            }
        }
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_step_around_reserved_ranges() {
        let mut a = Allocator::new(100, vec![(0, 3), (10, 12)]);
        assert_eq!(a.remaining(), 95);
        assert_eq!(a.run(5), Some((3, 5)));
        assert_eq!(a.run(5), Some((8, 2)));
        assert_eq!(a.run(5), Some((12, 5)));
        assert_eq!(a.contiguous(90), None);
        let mut b = Allocator::new(100, vec![(0, 3), (10, 12)]);
        assert_eq!(b.contiguous(8), Some(12));
        assert!(b.is_used(11) && !b.is_used(5) && b.is_used(19));
    }
}
