//! Static pruning: which candidates can never be installed, whatever else is
//! chosen, because some dependency has no installable candidate at all.
//!
//! Computed over the part of the universe reachable from the requests (and
//! extended later for install_if candidates), as the greatest fixed point:
//! a candidate dies when every match of one of its dependencies is dead, so
//! dependency cycles with no missing leaf stay alive. The search never tries
//! a dead candidate, which keeps backtracking for conflicts only.

use std::collections::VecDeque;

use crate::index::Index;

const UNSEEN: u32 = u32::MAX;
const ALIVE: u32 = u32::MAX;

/// Liveness of the analysed candidates.
pub(crate) struct Viability {
    /// Candidate → node, or `UNSEEN`.
    node_of: Vec<u32>,
    /// Node → candidate.
    cand_of: Vec<u32>,
    /// Node → death rank (order of death), or `ALIVE`.
    death: Vec<u32>,
    /// Node → slots (one per dependency of some node) it counts towards.
    rev: Vec<Vec<u32>>,
    /// Slot → owning node.
    slot_owner: Vec<u32>,
    /// Slot → number of live matches left.
    slot_alive: Vec<u32>,
    deaths: u32,
}

impl Viability {
    /// Nothing analysed yet, for a universe of `n` candidates.
    pub fn new(n: usize) -> Self {
        Viability {
            node_of: vec![UNSEEN; n],
            cand_of: Vec::new(),
            death: Vec::new(),
            rev: Vec::new(),
            slot_owner: Vec::new(),
            slot_alive: Vec::new(),
            deaths: 0,
        }
    }

    /// Analyses the roots and everything reachable from them. Nodes analysed
    /// earlier keep their verdict: their closure was complete already.
    pub fn extend(&mut self, ix: &Index, roots: impl IntoIterator<Item = u32>) {
        let mut queue = VecDeque::new();
        for r in roots {
            self.node(r, &mut queue);
        }
        let mut seeds = VecDeque::new();
        while let Some(n) = queue.pop_front() {
            let c = ix.cand(self.cand_of[n as usize]);
            for dep in &c.depends {
                let slot = self.slot_owner.len() as u32;
                self.slot_owner.push(n);
                let mut alive = 0;
                for m in ix.dep_choices(dep, c.repo_tag.as_deref()) {
                    let mn = self.node(m, &mut queue);
                    if self.death[mn as usize] == ALIVE {
                        alive += 1;
                        self.rev[mn as usize].push(slot);
                    }
                }
                self.slot_alive.push(alive);
                if alive == 0 {
                    seeds.push_back(n);
                }
            }
        }
        while let Some(n) = seeds.pop_front() {
            if self.death[n as usize] != ALIVE {
                continue;
            }
            self.death[n as usize] = self.deaths;
            self.deaths += 1;
            for &slot in &self.rev[n as usize] {
                let left = &mut self.slot_alive[slot as usize];
                *left -= 1;
                if *left == 0 {
                    seeds.push_back(self.slot_owner[slot as usize]);
                }
            }
        }
    }

    fn node(&mut self, cand: u32, queue: &mut VecDeque<u32>) -> u32 {
        let n = self.node_of[cand as usize];
        if n != UNSEEN {
            return n;
        }
        let n = self.cand_of.len() as u32;
        self.node_of[cand as usize] = n;
        self.cand_of.push(cand);
        self.death.push(ALIVE);
        self.rev.push(Vec::new());
        queue.push_back(n);
        n
    }

    /// Whether the candidate may still be installed (unanalysed ones may).
    pub fn alive(&self, cand: u32) -> bool {
        self.death_rank(cand).is_none()
    }

    /// When the candidate died relative to others (earlier dies first), if dead.
    pub fn death_rank(&self, cand: u32) -> Option<u32> {
        match self.node_of[cand as usize] {
            UNSEEN => None,
            n => Some(self.death[n as usize]).filter(|&d| d != ALIVE),
        }
    }
}
