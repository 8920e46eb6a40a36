//! An apk world (`name`, `name>=1.2`, `name@tag`, `!name`) resolved against
//! repositories' indexes under apk-tools' rules ([`dinv_solver::Rules::Apk`]).
//!
//! Pure: the caller fetches and verifies the indexes; this turns their
//! entries into solver candidates once and resolves worlds against them.

use std::borrow::Cow;

use dinv_solver::{Candidate, Constraint, Dependency, Op, Request, Rules, SolveError, Universe};

use crate::{ApkDep, ApkOp, ApkVersions, IndexEntry};

/// One repository's entries, in the order `/etc/apk/repositories` would
/// list it, with its tag (`@edge`) if it has one.
#[derive(Clone, Copy, Debug)]
pub struct Repository<'a> {
    /// The verified index entries.
    pub entries: &'a [IndexEntry],
    /// The tag without `@`.
    pub tag: Option<&'a str>,
}

/// A package of the resolution: where its entry is, and why it is there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chosen {
    /// Index of the repository in the list given to [`ApkUniverse::new`].
    pub repo: usize,
    /// Index of the entry in that repository.
    pub entry: usize,
    /// `requested (…)`, `a depends on b`, `chose x over y: …`.
    pub reasons: Vec<String>,
}

/// Why a world cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// An atom apk would not parse, or an operator the solver cannot take.
    #[error("{atom:?}: {why}")]
    Atom {
        /// The world entry as written.
        atom: String,
        /// What is wrong with it.
        why: String,
    },
    /// No selection meets the world.
    #[error(transparent)]
    Solve(#[from] SolveError),
}

/// Every installable entry of the repositories as a solver candidate, in
/// index order (apk's order for ties).
pub struct ApkUniverse {
    candidates: Vec<Candidate>,
    /// (repository, entry) of each candidate.
    origin: Vec<(usize, usize)>,
}

impl ApkUniverse {
    /// Converts the repositories' entries; entries apk would refuse or the
    /// solver cannot express are left out with a warning.
    pub fn new(repos: &[Repository]) -> ApkUniverse {
        let mut candidates = Vec::new();
        let mut origin = Vec::new();
        for (ri, repo) in repos.iter().enumerate() {
            for (ei, e) in repo.entries.iter().enumerate() {
                if !e.is_installable() {
                    tracing::debug!(package = %e.label(), "skipping uninstallable index entry");
                    continue;
                }
                match e.to_candidate(ri, repo.tag) {
                    Ok(c) => {
                        candidates.push(c);
                        origin.push((ri, ei));
                    }
                    Err(err) => tracing::warn!("skipping {}: {err}", e.label()),
                }
            }
        }
        ApkUniverse { candidates, origin }
    }

    /// The candidates, in index order.
    pub fn candidates(&self) -> &[Candidate] {
        &self.candidates
    }

    /// Resolves a world into packages in install order. `reason` is what
    /// `resolve` shows for the requested ones (`guest.packages`).
    pub fn resolve(&self, world: &[String], reason: &str) -> Result<Vec<Chosen>, WorldError> {
        let mut requests = Vec::new();
        let mut excluded = Vec::new();
        for w in world {
            let atom = |why: String| WorldError::Atom { atom: w.clone(), why };
            let dep = ApkDep::parse(w).map_err(|e| atom(e.why.to_string()))?;
            let constraint = constraint(&dep).ok_or_else(|| atom("operator not supported".to_string()))?;
            if dep.conflict {
                excluded.push(dep);
            } else {
                requests.push(Request { dependency: Dependency { alternatives: vec![constraint] }, reason: reason.to_string() });
            }
        }
        // `!name` in the world rules out every package that is or provides
        // the name in the versions given, as apk's world conflicts do.
        let keep: Option<Vec<usize>> = (!excluded.is_empty()).then(|| {
            (0..self.candidates.len()).filter(|&i| !excluded.iter().any(|d| offers(&self.candidates[i], d))).collect()
        });
        let candidates: Cow<[Candidate]> = match &keep {
            None => Cow::Borrowed(&self.candidates),
            Some(keep) => keep.iter().map(|&i| self.candidates[i].clone()).collect::<Vec<_>>().into(),
        };
        let universe = Universe { candidates, scheme: &ApkVersions, rules: Rules::Apk };
        let res = dinv_solver::solve(&universe, &requests)?;
        Ok(res
            .selected
            .into_iter()
            .map(|s| {
                let i = keep.as_ref().map_or(s.candidate, |k| k[s.candidate]);
                let (repo, entry) = self.origin[i];
                Chosen { repo, entry, reasons: s.reasons }
            })
            .collect())
    }
}

/// The solver's form of a world atom (conflict flag aside).
fn constraint(d: &ApkDep) -> Option<Constraint> {
    let op = match d.op {
        ApkOp::Any => Op::Any,
        ApkOp::Lt => Op::Lt,
        ApkOp::Le => Op::Le,
        ApkOp::Eq => Op::Eq,
        ApkOp::Ge => Op::Ge,
        ApkOp::Gt => Op::Gt,
        ApkOp::Fuzzy => Op::Fuzzy,
        ApkOp::LtFuzzy | ApkOp::GtFuzzy | ApkOp::Checksum => return None,
    };
    Some(Constraint { name: d.name.clone(), op, version: d.version.clone(), tag: d.tag.clone() })
}

/// Whether the candidate is, or provides, `d`'s name in a version `d`
/// admits (a provide without a version admits only an unversioned `d`).
fn offers(c: &Candidate, d: &ApkDep) -> bool {
    if c.name == d.name {
        return d.matches_version(&c.version);
    }
    c.provides.iter().any(|p| {
        p.name == d.name
            && match &p.version {
                Some(v) => d.matches_version(v),
                None => d.op == ApkOp::Any,
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::parse_text;

    fn universe(text: &str) -> (Vec<IndexEntry>, Vec<String>) {
        let entries = parse_text(text).unwrap();
        let names = entries.iter().map(|e| e.name.clone()).collect();
        (entries, names)
    }

    #[test]
    fn a_world_conflict_rules_out_providers_too() {
        let (entries, names) = universe(
            "P:app\nV:1\nD:cmd:ssh\n\nP:dropbear-ssh\nV:2025.88-r1\np:cmd:ssh=2025.88-r1\n\n\
P:openssh-client-default\nV:10.0_p1-r9\nk:2\np:cmd:ssh=10.0_p1-r9\n\n",
        );
        let u = ApkUniverse::new(&[Repository { entries: &entries, tag: None }]);
        let pick = |world: &[&str]| -> Vec<String> {
            let world: Vec<String> = world.iter().map(|s| s.to_string()).collect();
            let mut v: Vec<String> = u.resolve(&world, "test").unwrap().iter().map(|c| names[c.entry].clone()).collect();
            v.sort();
            v
        };
        assert_eq!(pick(&["app"]), ["app", "dropbear-ssh"]);
        assert_eq!(pick(&["app", "!dropbear-ssh"]), ["app", "openssh-client-default"]);
        assert_eq!(pick(&["app", "!cmd:ssh>2000"]), ["app", "openssh-client-default"]);
    }

    #[test]
    fn atoms_the_solver_cannot_take_are_named() {
        let u = ApkUniverse::new(&[]);
        let err = u.resolve(&["foo><Q1abc=".to_string()], "test").unwrap_err();
        assert!(err.to_string().contains("foo><Q1abc="), "{err}");
        assert!(matches!(u.resolve(&["a>=".to_string()], "t").unwrap_err(), WorldError::Atom { .. }));
    }
}
