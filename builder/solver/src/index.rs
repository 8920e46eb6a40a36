//! Name and provides lookup over a universe, each list in preference order.

use crate::hash::FastMap;
use crate::matching::{provide_ok, tag_eligible, version_ok};
use crate::preference::{apk_order, Offer};
use crate::types::{Candidate, Constraint, Dependency, Rules, Universe, VersionScheme};

/// Lookup tables built once per solve.
pub(crate) struct Index<'u> {
    /// The universe's candidates.
    pub cands: &'u [Candidate],
    /// The universe's version ordering.
    pub scheme: &'u dyn VersionScheme,
    /// The universe's choice rules.
    pub rules: Rules,
    /// Real name → candidates: highest version, then lowest repo.
    real: FastMap<&'u str, Vec<u32>>,
    /// Virtual name → (candidate, provide index): highest priority, then
    /// provider name, then highest version, then lowest repo.
    providers: FastMap<&'u str, Vec<(u32, u32)>>,
    /// apk only: name → every candidate offering it, in index order.
    offering: FastMap<&'u str, Vec<u32>>,
    /// apk only: name → names of packages whose install_if mentions it
    /// (and the names those packages provide), in index order.
    install_if_on: FastMap<&'u str, Vec<&'u str>>,
}

impl<'u> Index<'u> {
    /// Indexes every candidate of the universe.
    pub fn new(universe: &'u Universe<'_>) -> Self {
        let cands = &universe.candidates[..];
        let scheme: &'u dyn VersionScheme = universe.scheme;
        let mut real: FastMap<&str, Vec<u32>> = FastMap::default();
        real.reserve(cands.len());
        let mut providers: FastMap<&str, Vec<(u32, u32)>> = FastMap::default();
        for (i, c) in cands.iter().enumerate() {
            real.entry(c.name.as_str()).or_default().push(i as u32);
            for (pi, p) in c.provides.iter().enumerate() {
                // A package providing its own name adds nothing to its real entry.
                if p.name != c.name {
                    providers
                        .entry(p.name.as_str())
                        .or_default()
                        .push((i as u32, pi as u32));
                }
            }
        }
        // Ties are broken down to arch and index so that equal inputs in any
        // order give the same lists.
        let by_version = |a: &Candidate, b: &Candidate| {
            scheme
                .compare(&b.version, &a.version)
                .then(a.repo.cmp(&b.repo))
                .then_with(|| a.arch.cmp(&b.arch))
        };
        for list in real.values_mut().filter(|l| l.len() > 1) {
            list.sort_by(|&a, &b| {
                by_version(&cands[a as usize], &cands[b as usize]).then(a.cmp(&b))
            });
        }
        for list in providers.values_mut().filter(|l| l.len() > 1) {
            list.sort_by(|&(a, pa), &(b, pb)| {
                let (ca, cb) = (&cands[a as usize], &cands[b as usize]);
                // apt (CompareProviders): essential, then priority, then
                // the package met last in the indexes.
                cb.essential
                    .cmp(&ca.essential)
                    .then(cb.provider_priority.cmp(&ca.provider_priority))
                    .then(cb.mention.cmp(&ca.mention))
                    .then_with(|| ca.name.cmp(&cb.name))
                    .then_with(|| by_version(ca, cb))
                    .then(a.cmp(&b))
                    .then(pa.cmp(&pb))
            });
        }
        let mut tables = ApkTables::default();
        if universe.rules == Rules::Apk {
            tables = apk_tables(cands);
        }
        let ApkTables { offering, install_if_on } = tables;
        Index {
            cands,
            scheme,
            rules: universe.rules,
            real,
            providers,
            offering,
            install_if_on,
        }
    }

    /// apk only: the candidates offering `name`, in index order.
    pub fn offering(&self, name: &str) -> &[u32] {
        self.offering.get(name).map_or(&[], Vec::as_slice)
    }

    /// apk only: names of packages whose install_if mentions `name`.
    pub fn install_if_on(&self, name: &str) -> &[&'u str] {
        self.install_if_on.get(name).map_or(&[], Vec::as_slice)
    }

    /// The candidate at `i`.
    pub fn cand(&self, i: u32) -> &'u Candidate {
        &self.cands[i as usize]
    }

    /// Candidates named `name`, preferred first.
    pub fn real(&self, name: &str) -> &[u32] {
        self.real.get(name).map_or(&[], Vec::as_slice)
    }

    /// Providers of the virtual `name`, preferred first.
    pub fn providers(&self, name: &str) -> &[(u32, u32)] {
        self.providers.get(name).map_or(&[], Vec::as_slice)
    }

    /// Appends (without duplicates) the candidates that meet `k` from
    /// context `ctx`, ignoring the current selection, preferred first: real
    /// packages, then providers ([`Rules::Generic`]), or all of them on
    /// one list in apk's order ([`Rules::Apk`]).
    pub fn choices(&self, k: &Constraint, ctx: Option<&str>, out: &mut Vec<u32>) {
        if self.rules == Rules::Apk {
            return self.apk_choices(k, ctx, out);
        }
        for &i in self.real(&k.name) {
            let c = self.cand(i);
            if version_ok(self.scheme, &c.version, k)
                && tag_eligible(c, k, ctx)
                && !out.contains(&i)
            {
                out.push(i);
            }
        }
        for &(i, pi) in self.providers(&k.name) {
            let c = self.cand(i);
            if provide_ok(self.scheme, &c.provides[pi as usize], k)
                && tag_eligible(c, k, ctx)
                && !out.contains(&i)
            {
                out.push(i);
            }
        }
    }

    fn apk_choices(&self, k: &Constraint, ctx: Option<&str>, out: &mut Vec<u32>) {
        let real = self.real(&k.name).iter().copied().filter(|&i| version_ok(self.scheme, &self.cand(i).version, k));
        let provided = self
            .providers(&k.name)
            .iter()
            .filter(|&&(i, pi)| provide_ok(self.scheme, &self.cand(i).provides[pi as usize], k))
            .map(|&(i, _)| i);
        let mut matching: Vec<u32> = real.chain(provided).filter(|&i| tag_eligible(self.cand(i), k, ctx) && !out.contains(&i)).collect();
        // apk walks providers in the order the indexes list them.
        matching.sort_unstable();
        matching.dedup();
        let offers = matching.iter().filter_map(|&i| Offer::of(i, self.cand(i), k)).collect();
        out.extend(apk_order(self.scheme, k, offers));
    }

    /// All candidates that could meet any alternative of `dep`, in order.
    pub fn dep_choices(&self, dep: &Dependency, ctx: Option<&str>) -> Vec<u32> {
        let mut out = Vec::new();
        for k in &dep.alternatives {
            self.choices(k, ctx, &mut out);
        }
        out
    }
}

/// The lookups apk's order of deciding names needs (see `discovery.rs`).
#[derive(Default)]
struct ApkTables<'u> {
    offering: FastMap<&'u str, Vec<u32>>,
    install_if_on: FastMap<&'u str, Vec<&'u str>>,
}

fn add_names<'u>(to: &mut Vec<&'u str>, c: &'u Candidate) {
    for n in std::iter::once(&c.name).chain(c.provides.iter().map(|p| &p.name)) {
        if !to.contains(&n.as_str()) {
            to.push(n);
        }
    }
}

fn apk_tables(cands: &[Candidate]) -> ApkTables<'_> {
    let mut t = ApkTables::default();
    for (i, c) in cands.iter().enumerate() {
        t.offering.entry(c.name.as_str()).or_default().push(i as u32);
        for p in c.provides.iter().filter(|p| p.name != c.name) {
            let list = t.offering.entry(p.name.as_str()).or_default();
            if list.last() != Some(&(i as u32)) {
                list.push(i as u32);
            }
        }
        for k in c.install_if.iter().chain(&c.install_if_not) {
            add_names(t.install_if_on.entry(k.name.as_str()).or_default(), c);
        }
    }
    t
}
