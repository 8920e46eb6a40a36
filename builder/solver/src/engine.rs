//! The search: a queue of obligations processed in order, one candidate
//! chosen per unmet obligation, with conflict-directed backjumping when an
//! obligation cannot be met.
//!
//! Obligations whose first alternative is a real package name go to the
//! `direct` queue; Debian alternatives and virtual names wait in `deferred`
//! until no direct work is left, so that by then the packages they could
//! reuse are already selected (apt's "prefer what is already installed").
//!
//! Under [`crate::Rules::Apk`] there is one queue instead, taken in the
//! order apk-tools decides names (`discovery.rs`, `queue.rs`). Under
//! [`crate::Rules::Apt`] the requests come first, then a stack: a selected
//! package's dependencies are met, in order, before the next dependency of
//! its parent (apt's `MarkInstall`); with the generic choices this gives
//! what `apt-get install` gives (tests/it/sources/apt_judge.rs).
//!
//! Every selection is made at a decision level (the number of open choice
//! points). A failure names the levels that caused it (the parent of the
//! obligation and whatever blocks its candidates); the search jumps back to
//! the latest of them instead of retrying unrelated choices.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::rc::Rc;

use crate::discovery::discovery_order;
use crate::queue::{Mark, Ordered};

use crate::explain::{blocked_problem, conflict_why, dependency_problem, explain_dead, Block};
use crate::hash::FastMap;
use crate::index::Index;
use crate::matching::{candidate_matches, provide_ok, version_ok};
use crate::preference::{auto_selectable, negation_met};
use crate::types::{Candidate, Constraint, Dependency, Request, Rules, SolveError};
use crate::viability::Viability;

/// Safety net: retries before the search gives up and reports what it has.
pub(crate) const MAX_BACKTRACKS: usize = 100_000;

/// Why a package is in the set (rendered at the end).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Reason<'a> {
    /// A request, with its reason text.
    Requested(&'a str),
    /// A dependency of a selected package.
    Depends { parent: u32, dep: &'a Dependency },
    /// The candidate's own install_if is met.
    InstallIf(u32),
    /// Chosen over `over`, another package offering `k`, by apk's rules.
    Chose {
        over: u32,
        k: &'a Constraint,
    },
}

/// A dependency still to be met.
#[derive(Clone, Copy, Debug)]
struct Obligation<'a> {
    dep: &'a Dependency,
    parent: Option<u32>,
    /// The parent's repository tag (tagged repositories serve its deps).
    ctx: Option<&'a str>,
    why: Reason<'a>,
}

/// How the selected packages lead to one of them (for error chains).
struct Chain {
    cand: u32,
    parent: Option<Rc<Chain>>,
}

/// apk's order of deciding names (see `discovery.rs`).
struct ApkOrder<'a> {
    /// Names the world asks for: decided first.
    world: Vec<&'a str>,
    /// Discovery numbers: higher is decided earlier.
    numbers: FastMap<&'a str, u32>,
    queue: Ordered,
}

/// apt's order ([`Rules::Apt`]): obligations by their index in `direct`.
#[derive(Clone, Debug, Default)]
struct AptOrder {
    /// The requests, met first, in order.
    requests: Vec<u32>,
    requests_head: usize,
    /// The dependencies of each selected request, until every request is
    /// met; then they go on the stack, the first request's on top.
    held: Vec<Vec<u32>>,
    /// What is met next is on top.
    stack: Vec<u32>,
    /// The dependencies of the package being selected (empty otherwise).
    batch: Vec<u32>,
    taken: usize,
}

/// Lengths to roll the state back to.
#[derive(Clone, Debug)]
struct Saved {
    direct_len: usize,
    direct_head: usize,
    ordered: Option<Mark>,
    apt: Option<AptOrder>,
    deferred_len: usize,
    deferred_head: usize,
    trail_len: usize,
    reasons_len: usize,
}

/// An obligation with several possible candidates.
struct Frame<'a> {
    ob: Obligation<'a>,
    choices: Vec<u32>,
    next: usize,
    saved: Saved,
    /// Lower levels that share the blame for this frame's failures.
    culprits: BTreeSet<u32>,
}

/// The search state.
pub(crate) struct Engine<'a> {
    /// The universe being searched.
    pub ix: &'a Index<'a>,
    /// Which candidates can be installed at all.
    pub via: Viability,
    direct: Vec<Obligation<'a>>,
    direct_head: usize,
    deferred: Vec<Obligation<'a>>,
    deferred_head: usize,
    /// apk only: obligations are taken in apk's order of deciding names
    /// (`direct` holds them all, by arrival).
    ordered: Option<ApkOrder<'a>>,
    /// apt only: the order obligations are met in (`direct` holds them all).
    apt: Option<AptOrder>,
    /// Selected candidates in selection order.
    pub trail: Vec<u32>,
    by_name: FastMap<&'a str, u32>,
    provided: FastMap<&'a str, Vec<u32>>,
    conflict_on: FastMap<&'a str, Vec<(u32, &'a Constraint)>>,
    level: Vec<u32>,
    chain: Vec<Option<Rc<Chain>>>,
    /// Every (candidate, reason) recorded on the current path.
    pub reasons: Vec<(u32, Reason<'a>)>,
    frames: Vec<Frame<'a>>,
    backtracks: usize,
    gave_up: bool,
    /// The failure that got furthest (obligations processed), first wins ties.
    best: Option<(usize, SolveError)>,
}

impl<'a> Engine<'a> {
    /// An empty selection over the indexed universe.
    pub fn new(ix: &'a Index<'a>, via: Viability) -> Self {
        let n = ix.cands.len();
        Engine {
            ix,
            via,
            direct: Vec::new(),
            direct_head: 0,
            deferred: Vec::new(),
            deferred_head: 0,
            ordered: None,
            apt: (ix.rules == Rules::Apt).then(AptOrder::default),
            trail: Vec::new(),
            by_name: FastMap::default(),
            provided: FastMap::default(),
            conflict_on: FastMap::default(),
            level: vec![0; n],
            chain: vec![None; n],
            reasons: Vec::new(),
            frames: Vec::new(),
            backtracks: 0,
            gave_up: false,
            best: None,
        }
    }

    /// Queues a request.
    pub fn request(&mut self, r: &'a Request) {
        self.push(Obligation {
            dep: &r.dependency,
            parent: None,
            ctx: None,
            why: Reason::Requested(&r.reason),
        });
    }

    /// apk: take obligations in the order apk-tools decides their names,
    /// starting from `requests` (the world).
    pub fn apk_order(&mut self, requests: &'a [Request]) {
        let world: Vec<&'a str> = requests.iter().flat_map(|r| &r.dependency.alternatives).map(|k| k.name.as_str()).collect();
        let numbers = discovery_order(self.ix, &world);
        self.ordered = Some(ApkOrder { world, numbers, queue: Ordered::default() });
    }

    fn push(&mut self, ob: Obligation<'a>) {
        if let Some(a) = &mut self.apt {
            let i = self.direct.len() as u32;
            self.direct.push(ob);
            if ob.parent.is_none() {
                a.requests.push(i);
            } else {
                a.batch.push(i);
            }
            return;
        }
        if let Some(o) = &mut self.ordered {
            let name = ob.dep.alternatives.first().map_or("", |k| k.name.as_str());
            let tier = if o.world.contains(&name) {
                0
            } else if self.ix.offering(name).iter().all(|&c| !ob.dep.alternatives.iter().any(|k| auto_selectable(self.ix.scheme, self.ix.cand(c), k))) {
                2
            } else {
                1
            };
            let number = o.numbers.get(name).copied().unwrap_or(0);
            o.queue.push((tier, Reverse(number)));
            self.direct.push(ob);
            return;
        }
        let defer = match ob.dep.alternatives.as_slice() {
            [k] => self.ix.real(&k.name).is_empty(),
            _ => true,
        };
        if defer {
            self.deferred.push(ob);
        } else {
            self.direct.push(ob);
        }
    }

    fn next(&mut self) -> Option<Obligation<'a>> {
        if let Some(a) = &mut self.apt {
            if a.requests_head < a.requests.len() {
                a.requests_head += 1;
                a.taken += 1;
                return Some(self.direct[a.requests[a.requests_head - 1] as usize]);
            }
            for batch in std::mem::take(&mut a.held).into_iter().rev() {
                a.stack.extend(batch.into_iter().rev());
            }
            let i = a.stack.pop()?;
            a.taken += 1;
            return Some(self.direct[i as usize]);
        }
        if let Some(o) = &mut self.ordered {
            return o.queue.pop().map(|seq| self.direct[seq as usize]);
        }
        if self.direct_head < self.direct.len() {
            self.direct_head += 1;
            return Some(self.direct[self.direct_head - 1]);
        }
        if self.deferred_head < self.deferred.len() {
            self.deferred_head += 1;
            return Some(self.deferred[self.deferred_head - 1]);
        }
        None
    }

    /// Processes queued obligations until none is left (true) or the search
    /// fails (false; see [`Engine::take_error`]).
    pub fn run(&mut self) -> bool {
        while let Some(ob) = self.next() {
            if let Err(culprits) = self.process(ob) {
                if !self.backjump(culprits) {
                    return false;
                }
            }
        }
        true
    }

    /// Meets one obligation, or returns the levels to blame.
    fn process(&mut self, ob: Obligation<'a>) -> Result<(), BTreeSet<u32>> {
        if let Some(s) = self.satisfier(ob.dep) {
            self.reasons.push((s, ob.why));
            return Ok(());
        }
        let statics = self.ix.dep_choices(ob.dep, ob.ctx);
        let mut culprits = BTreeSet::new();
        if let Some(p) = ob.parent {
            culprits.insert(self.level[p as usize]);
        }
        let mut viable = Vec::new();
        let mut first_block = None;
        let mut any_alive = false;
        let mut unpicked = Vec::new();
        for &c in &statics {
            if !self.via.alive(c) {
                continue;
            }
            any_alive = true;
            if !self.auto_selectable(c, ob.dep) {
                unpicked.push(c);
                continue;
            }
            match self.block(c) {
                None => viable.push(c),
                Some(b) => {
                    culprits.insert(self.level[b.other(c) as usize]);
                    first_block.get_or_insert((c, b));
                }
            }
        }
        culprits.remove(&0);
        match viable.len() {
            0 if first_block.is_none() && !unpicked.is_empty() => {
                self.record_unpicked(&ob, &unpicked);
                Err(culprits)
            }
            0 => {
                self.record_failure(&ob, &statics, any_alive, first_block);
                Err(culprits)
            }
            1 => {
                self.select(viable[0], ob.parent, ob.why);
                Ok(())
            }
            _ => {
                let first = viable[0];
                let runner_up = self.runner_up(ob.dep, &viable);
                let saved = self.save();
                self.frames.push(Frame {
                    ob,
                    choices: viable,
                    next: 0,
                    saved,
                    culprits,
                });
                self.select(first, ob.parent, ob.why);
                if let Some((over, k)) = runner_up {
                    self.reasons.push((first, Reason::Chose { over, k }));
                }
                Ok(())
            }
        }
    }

    /// apk only: whether `c` may be picked for `dep` on its own (see
    /// [`auto_selectable`]); always under the generic rules.
    fn auto_selectable(&self, c: u32, dep: &Dependency) -> bool {
        match (self.ix.rules, dep.alternatives.as_slice()) {
            (Rules::Apk, [k]) => auto_selectable(self.ix.scheme, self.ix.cand(c), k),
            _ => true,
        }
    }

    /// apk only: the best other package offering the name, to explain the
    /// choice of `viable[0]` in `resolve` output.
    fn runner_up(&self, dep: &'a Dependency, viable: &[u32]) -> Option<(u32, &'a Constraint)> {
        let [k] = dep.alternatives.as_slice() else { return None };
        if self.ix.rules != Rules::Apk {
            return None;
        }
        let first = self.ix.cand(viable[0]);
        let over = viable[1..].iter().copied().find(|&o| self.ix.cand(o).name != first.name)?;
        Some((over, k))
    }

    /// Obligations processed so far.
    fn progress(&self) -> usize {
        self.direct_head + self.deferred_head + self.ordered.as_ref().map_or(0, |o| o.queue.taken()) + self.apt.as_ref().map_or(0, |a| a.taken)
    }

    /// Returns to the latest blamed choice point with an untried choice.
    fn backjump(&mut self, mut culprits: BTreeSet<u32>) -> bool {
        loop {
            let Some(&h) = culprits.iter().next_back() else {
                return false;
            };
            if self.backtracks >= MAX_BACKTRACKS {
                self.gave_up = true;
                return false;
            }
            self.backtracks += 1;
            self.frames.truncate(h as usize);
            culprits.remove(&h);
            let frame = self
                .frames
                .last_mut()
                .expect("culprit levels name open frames");
            frame.culprits.extend(culprits.iter().copied());
            frame.next += 1;
            if frame.next < frame.choices.len() {
                let (c, ob, saved) = (frame.choices[frame.next], frame.ob, frame.saved.clone());
                self.restore(saved);
                self.select(c, ob.parent, ob.why);
                return true;
            }
            culprits = std::mem::take(&mut frame.culprits);
            self.frames.pop();
        }
    }

    /// A selected package meeting some alternative (tags are not checked:
    /// a package already chosen serves everyone).
    fn satisfier(&self, dep: &Dependency) -> Option<u32> {
        dep.alternatives
            .iter()
            .find_map(|k| self.selected_matching(k, None))
    }

    /// A selected package other than `except` that meets `k`.
    fn selected_matching(&self, k: &Constraint, except: Option<u32>) -> Option<u32> {
        let scheme = self.ix.scheme;
        if let Some(&s) = self.by_name.get(k.name.as_str()) {
            if Some(s) != except && version_ok(scheme, &self.ix.cand(s).version, k) {
                return Some(s);
            }
        }
        self.provided
            .get(k.name.as_str())?
            .iter()
            .copied()
            .find(|&s| {
                Some(s) != except
                    && self
                        .ix
                        .cand(s)
                        .provides
                        .iter()
                        .any(|p| provide_ok(scheme, p, k))
            })
    }

    /// Why candidate `c` cannot join the current selection, if it cannot.
    fn block(&self, c: u32) -> Option<Block<'a>> {
        let cand = self.ix.cand(c);
        if let Some(&s) = self.by_name.get(cand.name.as_str()) {
            if s != c {
                return Some(Block::SameName(s));
            }
        }
        for k in &cand.conflicts {
            if let Some(t) = self.selected_matching(k, Some(c)) {
                return Some(Block::Conflict {
                    owner: c,
                    target: t,
                    k,
                });
            }
        }
        if self.ix.rules == Rules::Apk {
            if let Some(b) = self.shared_name(c) {
                return Some(b);
            }
        }
        let names = std::iter::once(&cand.name).chain(cand.provides.iter().map(|p| &p.name));
        for name in names {
            for &(owner, k) in self.conflict_on.get(name.as_str()).into_iter().flatten() {
                if owner != c && candidate_matches(self.ix.scheme, cand, k) {
                    return Some(Block::Conflict {
                        owner,
                        target: c,
                        k,
                    });
                }
            }
        }
        None
    }

    /// apk: a name belongs to one package, unless every package holding it
    /// provides it without a version. A package's own name counts as
    /// provided with its version.
    fn shared_name(&self, c: u32) -> Option<Block<'a>> {
        let ix = self.ix;
        let cand = ix.cand(c);
        let versioned_in = |s: u32, name: &str| ix.cand(s).provides.iter().any(|q| q.name == name && q.version.is_some());
        let own = std::iter::once((cand.name.as_str(), true));
        let provided = cand.provides.iter().filter(|p| p.name != cand.name).map(|p| (p.name.as_str(), p.version.is_some()));
        for (name, versioned) in own.chain(provided) {
            if let Some(&s) = self.by_name.get(name) {
                if s != c && name != cand.name {
                    return Some(Block::SharedName { other: s, name });
                }
            }
            for &s in self.provided.get(name).into_iter().flatten() {
                if s != c && ix.cand(s).name != name && (versioned || versioned_in(s, name)) {
                    return Some(Block::SharedName { other: s, name });
                }
            }
        }
        None
    }

    /// Adds `c` to the selection and queues its dependencies.
    fn select(&mut self, c: u32, parent: Option<u32>, why: Reason<'a>) {
        let ix = self.ix;
        let cand = ix.cand(c);
        self.level[c as usize] = self.frames.len() as u32;
        let up = parent.and_then(|p| self.chain[p as usize].clone());
        self.chain[c as usize] = Some(Rc::new(Chain {
            cand: c,
            parent: up,
        }));
        self.trail.push(c);
        self.by_name.insert(&cand.name, c);
        for p in &cand.provides {
            self.provided.entry(&p.name).or_default().push(c);
        }
        for k in &cand.conflicts {
            self.conflict_on.entry(&k.name).or_default().push((c, k));
        }
        self.reasons.push((c, why));
        let ctx = cand.repo_tag.as_deref();
        for dep in &cand.depends {
            self.push(Obligation {
                dep,
                parent: Some(c),
                ctx,
                why: Reason::Depends { parent: c, dep },
            });
        }
        if let Some(a) = &mut self.apt {
            // apt meets a package's dependencies, in order, before its
            // parent's next one; a request's wait until every request is
            // met (apt marks them all before following any one's).
            let batch = std::mem::take(&mut a.batch);
            if parent.is_none() && a.taken <= a.requests.len() {
                a.held.push(batch);
            } else {
                a.stack.extend(batch.into_iter().rev());
            }
        }
    }

    fn save(&self) -> Saved {
        Saved {
            direct_len: self.direct.len(),
            direct_head: self.direct_head,
            ordered: self.ordered.as_ref().map(|o| o.queue.mark()),
            apt: self.apt.clone(),
            deferred_len: self.deferred.len(),
            deferred_head: self.deferred_head,
            trail_len: self.trail.len(),
            reasons_len: self.reasons.len(),
        }
    }

    /// Undoes everything done since `saved` (entries are removed in reverse
    /// order of insertion, so the per-name lists pop exactly what was pushed).
    fn restore(&mut self, saved: Saved) {
        while self.trail.len() > saved.trail_len {
            let c = self.trail.pop().expect("trail longer than saved");
            let cand = self.ix.cand(c);
            self.by_name.remove(cand.name.as_str());
            for p in cand.provides.iter().rev() {
                self.provided.get_mut(p.name.as_str()).and_then(Vec::pop);
            }
            for k in cand.conflicts.iter().rev() {
                self.conflict_on.get_mut(k.name.as_str()).and_then(Vec::pop);
            }
            self.chain[c as usize] = None;
        }
        self.reasons.truncate(saved.reasons_len);
        if saved.apt.is_some() {
            self.apt = saved.apt;
        }
        if let (Some(o), Some(m)) = (&mut self.ordered, saved.ordered) {
            o.queue.rollback(m);
        }
        self.direct.truncate(saved.direct_len);
        self.direct_head = saved.direct_head;
        self.deferred.truncate(saved.deferred_len);
        self.deferred_head = saved.deferred_head;
    }

    /// Makes the current selection final: later searches (install_if) cannot
    /// undo it.
    pub fn commit(&mut self) {
        self.frames.clear();
        for &c in &self.trail {
            self.level[c as usize] = 0;
        }
        self.best = None;
    }

    /// Package names from the request down to `parent`.
    fn chain_names(&self, parent: Option<u32>) -> Vec<String> {
        let mut names = Vec::new();
        let mut node = parent.and_then(|p| self.chain[p as usize].clone());
        while let Some(n) = node {
            names.push(self.ix.cand(n.cand).name.clone());
            node = n.parent.clone();
        }
        names.reverse();
        names
    }

    /// Keeps the failure if it got further than the best so far.
    fn record_failure(
        &mut self,
        ob: &Obligation<'a>,
        statics: &[u32],
        any_alive: bool,
        first_block: Option<(u32, Block<'a>)>,
    ) {
        let progress = self.progress();
        if self.best.as_ref().is_some_and(|(p, _)| *p >= progress) {
            return;
        }
        let ix = self.ix;
        let mut chain = self.chain_names(ob.parent);
        let error = match first_block {
            Some((c, b)) if any_alive => {
                let dep_text = ob.dep.to_string();
                match b {
                    Block::Conflict { owner, k, .. } if ob.parent.is_none() => {
                        SolveError::Conflict {
                            a: ix.cand(c).name.clone(),
                            b: ix.cand(b.other(c)).name.clone(),
                            why: conflict_why(ix, owner, k),
                        }
                    }
                    _ => {
                        let problem = blocked_problem(ix, c, &b, &dep_text);
                        chain.push(dep_text);
                        SolveError::Unsatisfiable { chain, problem }
                    }
                }
            }
            _ => match statics.first() {
                Some(&first) => {
                    chain.push(ix.cand(first).name.clone());
                    let problem = explain_dead(ix, &self.via, first, &mut chain);
                    SolveError::Unsatisfiable { chain, problem }
                }
                None => {
                    chain.push(ob.dep.to_string());
                    SolveError::Unsatisfiable {
                        chain,
                        problem: dependency_problem(ix, ob.dep),
                    }
                }
            },
        };
        self.best = Some((progress, error));
    }

    /// apk: the only candidates list the virtual name without a version or
    /// a provider priority, so apk picks none of them on its own.
    fn record_unpicked(&mut self, ob: &Obligation<'a>, unpicked: &[u32]) {
        let progress = self.progress();
        if self.best.as_ref().is_some_and(|(p, _)| *p >= progress) {
            return;
        }
        let mut chain = self.chain_names(ob.parent);
        chain.push(ob.dep.to_string());
        let names: Vec<&str> = unpicked.iter().map(|&c| self.ix.cand(c).name.as_str()).collect();
        let problem = format!(
            "virtual name provided without a version or provider priority by {}; ask for one of them",
            names.join(", ")
        );
        self.best = Some((progress, SolveError::Unsatisfiable { chain, problem }));
    }

    /// The most useful failure seen (the one that got furthest).
    pub fn take_error(&mut self) -> SolveError {
        let mut error =
            self.best
                .take()
                .map(|(_, e)| e)
                .unwrap_or_else(|| SolveError::Unsatisfiable {
                    chain: Vec::new(),
                    problem: "no solution found".to_string(),
                });
        if self.gave_up {
            let note = format!(" (search stopped after {MAX_BACKTRACKS} backtracks)");
            match &mut error {
                SolveError::Unsatisfiable { problem, .. } => problem.push_str(&note),
                SolveError::Conflict { why, .. } => why.push_str(&note),
            }
        }
        error
    }

    /// Whether a package of this name is selected.
    pub fn name_selected(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Whether every install_if constraint of `c` is met by the selection and
    /// its repository tag (if any) is shared by one of the packages meeting them.
    pub fn install_if_met(&self, c: u32) -> bool {
        let cand = self.ix.cand(c);
        let mut tag_ok = cand.repo_tag.is_none();
        for k in &cand.install_if_not {
            if !negation_met(self.ix.scheme, k, self.owners(&k.name)) {
                return false;
            }
        }
        for k in &cand.install_if {
            match self.selected_matching(k, None) {
                None => return false,
                Some(s) => tag_ok |= self.ix.cand(s).repo_tag == cand.repo_tag,
            }
        }
        tag_ok
    }

    /// The selected packages holding `name`, as their own name or a provide.
    fn owners(&self, name: &str) -> impl Iterator<Item = &'a Candidate> + '_ {
        let ix = self.ix;
        let own = self.by_name.get(name).copied();
        let provided = self.provided.get(name).into_iter().flatten().copied();
        own.into_iter().chain(provided).map(move |s| ix.cand(s))
    }

    /// Adds an install_if candidate with its dependencies, or leaves the
    /// selection as it was and says why not.
    pub fn add_install_if(&mut self, c: u32) -> Result<(), SolveError> {
        let ix = self.ix;
        self.via.extend(ix, [c]);
        let name = ix.cand(c).name.clone();
        if !self.via.alive(c) {
            let mut chain = vec![name];
            let problem = explain_dead(ix, &self.via, c, &mut chain);
            return Err(SolveError::Unsatisfiable { chain, problem });
        }
        if let Some(b) = self.block(c) {
            let problem = blocked_problem(ix, c, &b, &name);
            return Err(SolveError::Unsatisfiable {
                chain: vec![name],
                problem,
            });
        }
        let saved = self.save();
        self.select(c, None, Reason::InstallIf(c));
        if self.run() {
            self.commit();
            Ok(())
        } else {
            let error = self.take_error();
            self.frames.clear();
            self.gave_up = false;
            self.restore(saved);
            Err(error)
        }
    }
}
