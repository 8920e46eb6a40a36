//! Test helpers: a small version scheme, constraint text, candidate builders.
#![allow(dead_code)]

use std::cmp::Ordering;

use dinv_solver::{
    solve, Candidate, Constraint, Dependency, Op, Provide, Request, Resolution, Rules, SolveError,
    Universe, VersionScheme,
};

/// Compares digit runs numerically and everything else as text, run by run
/// (`1.10 > 1.9`, `1.4.1-r0 < 2.0`).
pub struct Natural;

fn runs(v: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let b = v.as_bytes();
    for i in 1..=b.len() {
        if i == b.len() || b[i].is_ascii_digit() != b[i - 1].is_ascii_digit() {
            out.push(&v[start..i]);
            start = i;
        }
    }
    out
}

impl VersionScheme for Natural {
    fn compare(&self, a: &str, b: &str) -> Ordering {
        let (ra, rb) = (runs(a), runs(b));
        for (x, y) in ra.iter().zip(&rb) {
            let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
                (Ok(p), Ok(q)) => p.cmp(&q),
                _ => x.cmp(y),
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        ra.len().cmp(&rb.len())
    }
}

pub static SCHEME: Natural = Natural;

/// `name`, `name@tag`, `name>=1.2`, `name@tag~1.2`.
pub fn k(text: &str) -> Constraint {
    let cut = text.find(['<', '>', '=', '~']).unwrap_or(text.len());
    let (head, rest) = text.split_at(cut);
    let (name, tag) = match head.split_once('@') {
        Some((n, t)) => (n, Some(t.to_string())),
        None => (head, None),
    };
    let (op, version) = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("<", Op::Lt),
        (">", Op::Gt),
        ("=", Op::Eq),
        ("~", Op::Fuzzy),
    ]
    .iter()
    .find_map(|(s, op)| rest.strip_prefix(s).map(|v| (*op, v.to_string())))
    .unwrap_or((Op::Any, String::new()));
    Constraint {
        name: name.to_string(),
        op,
        version,
        tag,
    }
}

/// `a | b>=2`.
pub fn dep(text: &str) -> Dependency {
    Dependency {
        alternatives: text.split(" | ").map(k).collect(),
    }
}

/// A candidate with no relations, from repository 0, untagged.
pub fn pkg(name: &str, version: &str) -> Candidate {
    Candidate {
        name: name.to_string(),
        version: version.to_string(),
        arch: "x86_64".to_string(),
        provides: Vec::new(),
        depends: Vec::new(),
        conflicts: Vec::new(),
        install_if: Vec::new(),
        install_if_not: Vec::new(),
        provider_priority: 0,
        repo: 0,
        repo_tag: None,
        essential: false,
        mention: 0,
    }
}

/// Builder methods for test candidates.
pub trait Build {
    fn dep(self, text: &str) -> Self;
    fn provides(self, text: &str) -> Self;
    fn conflicts(self, text: &str) -> Self;
    fn install_if(self, texts: &[&str]) -> Self;
    fn prio(self, p: u32) -> Self;
    fn repo(self, r: usize) -> Self;
    fn tag(self, t: &str) -> Self;
}

impl Build for Candidate {
    fn dep(mut self, text: &str) -> Self {
        self.depends.push(dep(text));
        self
    }
    /// `name` or `name=version`.
    fn provides(mut self, text: &str) -> Self {
        let (name, version) = match text.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (text, None),
        };
        self.provides.push(Provide {
            name: name.to_string(),
            version,
        });
        self
    }
    fn conflicts(mut self, text: &str) -> Self {
        self.conflicts.push(k(text));
        self
    }
    fn install_if(mut self, texts: &[&str]) -> Self {
        self.install_if = texts.iter().map(|t| k(t)).collect();
        self
    }
    fn prio(mut self, p: u32) -> Self {
        self.provider_priority = p;
        self
    }
    fn repo(mut self, r: usize) -> Self {
        self.repo = r;
        self
    }
    fn tag(mut self, t: &str) -> Self {
        self.repo_tag = Some(t.to_string());
        self
    }
}

/// Requests with reason `recipe packages`.
pub fn requests(texts: &[&str]) -> Vec<Request> {
    texts
        .iter()
        .map(|t| Request {
            dependency: dep(t),
            reason: "recipe packages".to_string(),
        })
        .collect()
}

pub fn universe(cands: Vec<Candidate>) -> Universe<'static> {
    universe_with(cands, Rules::Generic)
}

pub fn universe_with(cands: Vec<Candidate>, rules: Rules) -> Universe<'static> {
    Universe {
        candidates: cands.into(),
        scheme: &SCHEME,
        rules,
    }
}

/// Solves under `rules` and returns the sorted `name-version` set.
pub fn resolve_set_with(cands: Vec<Candidate>, reqs: &[&str], rules: Rules) -> Result<Vec<String>, SolveError> {
    let u = universe_with(cands, rules);
    solve(&u, &requests(reqs)).map(|r| {
        let mut v = labels(&u, &r);
        v.sort();
        v
    })
}

/// Solves under apk's rules and returns the sorted `name-version` set.
pub fn resolve_apk(cands: Vec<Candidate>, reqs: &[&str]) -> Result<Vec<String>, SolveError> {
    resolve_set_with(cands, reqs, Rules::Apk)
}

/// Solves under apk's rules and returns the reasons of one package.
pub fn apk_reasons_of(cands: Vec<Candidate>, reqs: &[&str], name: &str) -> Vec<String> {
    let u = universe_with(cands, Rules::Apk);
    let r = solve(&u, &requests(reqs)).expect("solvable");
    r.selected
        .iter()
        .find(|s| u.candidates[s.candidate].name == name)
        .unwrap_or_else(|| panic!("{name} not selected"))
        .reasons
        .clone()
}

/// Solves and renders the selection as `name-version` in install order.
pub fn resolve(cands: Vec<Candidate>, reqs: &[&str]) -> Result<Vec<String>, SolveError> {
    let u = universe(cands);
    solve(&u, &requests(reqs)).map(|r| labels(&u, &r))
}

/// `name-version` per selected package, in order.
pub fn labels(u: &Universe, r: &Resolution) -> Vec<String> {
    r.selected
        .iter()
        .map(|s| {
            let c = &u.candidates[s.candidate];
            format!("{}-{}", c.name, c.version)
        })
        .collect()
}

/// Solves and returns the sorted `name-version` set.
pub fn resolve_set(cands: Vec<Candidate>, reqs: &[&str]) -> Result<Vec<String>, SolveError> {
    resolve_set_with(cands, reqs, Rules::Generic)
}

/// Solves and returns the reasons of one package.
pub fn reasons_of(cands: Vec<Candidate>, reqs: &[&str], name: &str) -> Vec<String> {
    let u = universe(cands);
    let r = solve(&u, &requests(reqs)).expect("solvable");
    r.selected
        .iter()
        .find(|s| u.candidates[s.candidate].name == name)
        .unwrap_or_else(|| panic!("{name} not selected"))
        .reasons
        .clone()
}

/// The error text of an unsolvable case.
pub fn failure(cands: Vec<Candidate>, reqs: &[&str]) -> SolveError {
    match resolve(cands, reqs) {
        Ok(sel) => panic!("expected failure, got {sel:?}"),
        Err(e) => e,
    }
}
