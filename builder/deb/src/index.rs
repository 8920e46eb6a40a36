//! Several suites' `Packages` indices as one, the way apt reads a sources
//! list (`trixie`, `trixie-updates`, `trixie-security`): every record is
//! kept with the suite it came from, and for each package the highest
//! version of any suite is its candidate (apt at equal pin priority). An
//! older version is only chosen when a request names it (`name=version`),
//! as `apt-get install name=version` does.
//!
//! Resolution runs the shared solver over the candidates the requests can
//! reach. Pure: the caller fetches and verifies the indices.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};

use dinv_solver::{Candidate, Constraint, Dependency, Op, Request, SolveError, Universe};

use crate::packages::PackageRecord;
use crate::version::{compare_versions, DebVersions};

/// One suite's records, in index order.
#[derive(Clone, Debug, Default)]
pub struct SuiteRecords {
    /// The suite as the sources list names it (`trixie-security`).
    pub suite: String,
    pub records: Vec<PackageRecord>,
}

/// The merged index of a source's suites.
#[derive(Clone, Debug, Default)]
pub struct DebIndex {
    arch: String,
    suites: Vec<String>,
    records: Vec<PackageRecord>,
    /// Index into `suites` of each record.
    suite_of: Vec<usize>,
    /// Package name → its candidate records (one per architecture: the
    /// highest version, from the first suite listing it), in record order.
    candidates: HashMap<String, Vec<usize>>,
    /// Package name → every record of it, superseded versions too.
    all: HashMap<String, Vec<usize>>,
    /// Provided (virtual) name → the candidate records that provide it.
    providers: HashMap<String, Vec<usize>>,
    /// When apt first meets each name reading the suites' indexes in
    /// order (see [`mention_order`]).
    mention: HashMap<String, u32>,
}

/// One package chosen by [`DebIndex::resolve`], in install order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chosen {
    /// Index of the record ([`DebIndex::record`]).
    pub record: usize,
    /// Why it is in the set (the solver's reasons).
    pub reasons: Vec<String>,
}

impl DebIndex {
    /// Merges the suites, in the order given (the first suite listing a
    /// version is the one it is recorded from), for installation on `arch`.
    pub fn new(arch: &str, suites: Vec<SuiteRecords>) -> DebIndex {
        let mut ix = DebIndex { arch: arch.to_string(), ..DebIndex::default() };
        for (si, s) in suites.into_iter().enumerate() {
            ix.suites.push(s.suite);
            ix.suite_of.extend(std::iter::repeat(si).take(s.records.len()));
            ix.records.extend(s.records);
        }
        // The candidate of each (name, architecture): highest version wins,
        // the earlier record on a tie.
        let mut best: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for (i, r) in ix.records.iter().enumerate() {
            ix.all.entry(r.package.clone()).or_default().push(i);
            best.entry((&r.package, &r.architecture))
                .and_modify(|b| {
                    if compare_versions(&r.version, &ix.records[*b].version) == Ordering::Greater {
                        *b = i;
                    }
                })
                .or_insert(i);
        }
        ix.mention = mention_order(&ix.records);
        let mut winners: Vec<usize> = best.into_values().collect();
        winners.sort_unstable();
        for i in winners {
            let r = &ix.records[i];
            ix.candidates.entry(r.package.clone()).or_default().push(i);
            if !r.provides.is_empty() {
                // A malformed Provides is reported when the record is made a candidate.
                for p in crate::parse_provides(&r.provides, "Provides").unwrap_or_default() {
                    ix.providers.entry(p.name).or_default().push(i);
                }
            }
        }
        ix
    }

    /// The suites, in order.
    pub fn suites(&self) -> &[String] {
        &self.suites
    }

    /// Every record, superseded ones too.
    pub fn records(&self) -> &[PackageRecord] {
        &self.records
    }

    pub fn record(&self, i: usize) -> &PackageRecord {
        &self.records[i]
    }

    /// The suite record `i` came from.
    pub fn suite_of(&self, i: usize) -> &str {
        &self.suites[self.suite_of[i]]
    }

    /// Index of the suite record `i` came from.
    pub fn suite_index_of(&self, i: usize) -> usize {
        self.suite_of[i]
    }

    /// Every package name (for "did you mean").
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.all.keys().map(String::as_str)
    }

    /// The candidate records (the version apt would install) of a name.
    pub fn candidates_of(&self, name: &str) -> impl Iterator<Item = &PackageRecord> {
        self.candidates.get(name).into_iter().flatten().map(|&i| &self.records[i])
    }

    /// Requests for every candidate that is `Essential: yes` (and, with
    /// `required`, of `Priority: required`), each once, in record order:
    /// what debootstrap's and mmdebstrap's base sets are made of.
    pub fn base_requests(&self, essential: bool, required: bool) -> Vec<Request> {
        // In the order the names first appear (the release suite's order),
        // whichever suite their candidate comes from.
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for r in &self.records {
            if !seen.insert(r.package.as_str()) {
                continue;
            }
            for rec in self.candidates_of(&r.package) {
                let why = (essential && rec.essential).then_some("essential").or((required && rec.priority == "required").then_some("priority required"));
                if let Some(why) = why {
                    if crate::to_candidate(rec, 0, &self.arch).is_ok() {
                        out.push(Request { dependency: Dependency::single(Constraint::any(rec.package.clone())), reason: why.to_string() });
                        break;
                    }
                }
            }
        }
        out
    }

    /// The candidates the requests can reach: every candidate record named
    /// by a request or by a dependency alternative of a reached record, or
    /// providing such a name, in record order (so ties break as over the
    /// whole index); plus the records a request pins by `name=version`.
    /// Returns each candidate's record index too. Records that cannot be
    /// read as candidates are left out.
    fn reachable(&self, requests: &[Request]) -> (Vec<usize>, Vec<Candidate>) {
        let mut work: Vec<String> = requests.iter().flat_map(|r| r.dependency.alternatives.iter().map(|c| c.name.clone())).collect();
        let mut seen: HashSet<String> = work.iter().cloned().collect();
        let mut made: BTreeMap<usize, Candidate> = BTreeMap::new();
        let mut tried: HashSet<usize> = HashSet::new();
        let pinned = requests.iter().flat_map(|r| &r.dependency.alternatives).filter(|c| c.op == Op::Eq).flat_map(|c| {
            self.all.get(&c.name).into_iter().flatten().copied().filter(move |&i| compare_versions(&self.records[i].version, &c.version) == Ordering::Equal)
        });
        let mut start: Vec<usize> = pinned.collect();
        loop {
            for ri in start.drain(..) {
                if !tried.insert(ri) {
                    continue;
                }
                let rec = &self.records[ri];
                match crate::to_candidate(rec, self.suite_of[ri], &self.arch) {
                    Ok(mut c) => {
                        c.provider_priority = priority_rank(&rec.priority);
                        c.mention = self.mention.get(&rec.package).copied().unwrap_or(0);
                        for alt in c.depends.iter().flat_map(|d| &d.alternatives) {
                            if seen.insert(alt.name.clone()) {
                                work.push(alt.name.clone());
                            }
                        }
                        made.insert(ri, c);
                    }
                    Err(e) => {
                        let _ = e; // not installable here; the solver reports the name as missing
                    }
                }
            }
            let Some(name) = work.pop() else { break };
            start.extend(self.candidates.get(&name).into_iter().chain(self.providers.get(&name)).flatten().copied());
        }
        made.into_iter().unzip()
    }

    /// Resolves the requests over the candidates into records in install
    /// order.
    pub fn resolve(&self, requests: &[Request]) -> Result<Vec<Chosen>, SolveError> {
        let (index, candidates) = self.reachable(requests);
        let universe = Universe { candidates: candidates.into(), scheme: &DebVersions, rules: dinv_solver::Rules::Apt };
        let res = dinv_solver::solve(&universe, requests)?;
        Ok(res.selected.into_iter().map(|s| Chosen { record: index[s.candidate], reasons: s.reasons }).collect())
    }
}

/// apt's package IDs, as ranks from 1: apt makes a package the first time
/// it meets the name reading the index files in order, and in each record
/// the package itself, then the names of Pre-Depends, Depends, Conflicts,
/// Breaks, Recommends, Suggests, Replaces, then Provides. apt breaks ties
/// between providers by that ID, the later first (`CompareProviders`).
pub fn mention_order(records: &[PackageRecord]) -> HashMap<String, u32> {
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut meet = |name: &str| {
        if !name.is_empty() && !ids.contains_key(name) {
            let id = ids.len() as u32 + 1;
            ids.insert(name.to_string(), id);
        }
    };
    for r in records {
        meet(&r.package);
        for field in [&r.pre_depends, &r.depends, &r.conflicts, &r.breaks, &r.recommends, &r.suggests, &r.replaces, &r.provides] {
            for alt in field.split([',', '|']) {
                let name = alt.trim().split(|c: char| c.is_whitespace() || c == '(' || c == ':' || c == '[' || c == '<').next().unwrap_or("");
                meet(name);
            }
        }
    }
    ids
}

/// Like apt, prefer more important packages among the providers of a
/// virtual name (`awk`: mawk is `required`, gawk `optional`).
pub fn priority_rank(priority: &str) -> u32 {
    match priority.trim() {
        "required" => 5,
        "important" => 4,
        "standard" => 3,
        "optional" => 2,
        "extra" => 1,
        _ => 0,
    }
}

/// A request for `name` (any version) or `name=version`; `None` when the
/// text is neither.
pub fn parse_request(text: &str, reason: &str) -> Option<Request> {
    let p = text.trim();
    let c = match p.split_once('=') {
        Some((n, v)) if !n.trim().is_empty() && !v.trim().is_empty() => Constraint::versioned(n.trim(), Op::Eq, v.trim()),
        None if !p.is_empty() && !p.contains(char::is_whitespace) => Constraint::any(p),
        _ => return None,
    };
    Some(Request { dependency: Dependency::single(c), reason: reason.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, version: &str, extra: &str) -> PackageRecord {
        let text = format!(
            "Package: {name}\nVersion: {version}\nArchitecture: amd64\n{extra}Filename: pool/{name}_{version}.deb\nSize: 1\nSHA256: {}\n",
            "0".repeat(64)
        );
        crate::parse_packages(&text, "t").unwrap().remove(0)
    }

    fn index() -> DebIndex {
        DebIndex::new(
            "amd64",
            vec![
                SuiteRecords {
                    suite: "trixie".into(),
                    records: vec![
                        rec("app", "1.0-1", "Depends: libssl3t64 (>= 3.5), zlib1g\n"),
                        rec("libssl3t64", "3.5.1-1", ""),
                        rec("zlib1g", "1:1.3-1", "Essential: yes\n"),
                        rec("libc-bin", "2.41-12", "Essential: yes\n"),
                    ],
                },
                SuiteRecords { suite: "trixie-updates".into(), records: vec![rec("zlib1g", "1:1.3-1", "Essential: yes\n")] },
                SuiteRecords {
                    suite: "trixie-security".into(),
                    records: vec![rec("libssl3t64", "3.5.10-1~deb13u1", ""), rec("zlib1g", "1:1.3-1+deb13u1", "Essential: yes\n")],
                },
            ],
        )
    }

    fn chosen(ix: &DebIndex, requests: &[Request]) -> Vec<(String, String, String)> {
        let mut v: Vec<_> = ix
            .resolve(requests)
            .unwrap()
            .iter()
            .map(|c| (ix.record(c.record).package.clone(), ix.record(c.record).version.clone(), ix.suite_of(c.record).to_string()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_highest_version_of_any_suite_wins() {
        let ix = index();
        let got = chosen(&ix, &[parse_request("app", "recipe").unwrap()]);
        let want = [
            ("app", "1.0-1", "trixie"),
            ("libssl3t64", "3.5.10-1~deb13u1", "trixie-security"),
            ("zlib1g", "1:1.3-1+deb13u1", "trixie-security"),
        ];
        assert_eq!(got, want.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())));
        // An equal version in two suites is recorded from the first.
        assert_eq!(ix.candidates_of("libc-bin").map(|r| r.version.as_str()).collect::<Vec<_>>(), ["2.41-12"]);
        let ix2 = DebIndex::new("amd64", vec![SuiteRecords { suite: "a".into(), records: vec![rec("z", "1", "")] }, SuiteRecords { suite: "b".into(), records: vec![rec("z", "1", "")] }]);
        assert_eq!(chosen(&ix2, &[parse_request("z", "r").unwrap()])[0].2, "a");
    }

    #[test]
    fn a_pinned_version_may_be_superseded() {
        let ix = index();
        let got = chosen(&ix, &[parse_request("libssl3t64=3.5.1-1", "recipe").unwrap()]);
        assert_eq!(got, [("libssl3t64".to_string(), "3.5.1-1".to_string(), "trixie".to_string())]);
        // The pin does not satisfy a dependency that needs more.
        let e = ix.resolve(&[parse_request("libssl3t64=9", "recipe").unwrap()]);
        assert!(e.is_err());
    }

    #[test]
    fn base_requests_name_each_essential_once() {
        let ix = index();
        let names: Vec<String> = ix.base_requests(true, false).iter().map(|r| r.dependency.alternatives[0].name.clone()).collect();
        assert_eq!(names, ["zlib1g", "libc-bin"]);
        assert!(ix.base_requests(false, false).is_empty());
        assert!(parse_request("a b", "r").is_none());
        assert!(parse_request("=1", "r").is_none());
    }

    /// apt ranks providers that tie on priority by when it first met
    /// their names, the later first: a provider nobody names before its
    /// own record beats one an earlier record depends on.
    #[test]
    fn providers_that_tie_go_to_the_name_apt_met_last() {
        let records = vec![
            rec("php", "1", "Depends: mod-php | cli-php (>= 1) [amd64], other:any\n"),
            rec("mod-php", "1", "Provides: phpapi-1\nPriority: optional\n"),
            rec("cli-php", "1", "Provides: phpapi-1\nPriority: optional\n"),
            rec("zz-phpdbg", "1", "Provides: phpapi-1\nPriority: optional\n"),
            rec("ext", "1", "Depends: phpapi-1\n"),
        ];
        let m = mention_order(&records);
        assert_eq!([m["php"], m["mod-php"], m["cli-php"], m["other"], m["phpapi-1"], m["zz-phpdbg"]], [1, 2, 3, 4, 5, 6]);
        let ix = DebIndex::new("amd64", vec![SuiteRecords { suite: "trixie".into(), records }]);
        let req = parse_request("ext", "test").unwrap();
        let mut names: Vec<&str> = ix.resolve(&[req]).unwrap().iter().map(|c| ix.record(c.record).package.as_str()).collect();
        names.sort();
        assert_eq!(names, ["ext", "zz-phpdbg"], "apt's choice among equal providers");
    }
}
