//! Dependency resolution shared by every package source.
//!
//! A source (apk, deb) turns its index into a [`Universe`] of
//! [`Candidate`]s, with its own [`VersionScheme`]; [`solve`] picks one
//! candidate per needed name, deterministically, and explains failures as a
//! chain from the recipe to the unmet requirement
//! (`docker → containerd → so:libseccomp.so.2: no provider`).

use std::cmp::Ordering;

/// Comparison operator of a versioned constraint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Any version.
    Any,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// apk `~`: the version starts with the given one at a component
    /// boundary (`~1.2` matches `1.2`, `1.2.5`, `1.2-r3`, not `1.20`).
    Fuzzy,
}

/// `name`, `name>=1.2`, `so:libc.musl-x86_64.so.1`, `foo@edge`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Constraint {
    pub name: String,
    pub op: Op,
    /// Empty when `op` is [`Op::Any`].
    pub version: String,
    /// apk repository tag (`@edge`): only candidates from repositories with
    /// this tag qualify.
    pub tag: Option<String>,
}

/// One dependency: satisfied by any of its alternatives (apk always has one;
/// Debian's `a | b`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    pub alternatives: Vec<Constraint>,
}

/// A virtual name a candidate provides, optionally with a version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provide {
    pub name: String,
    pub version: Option<String>,
}

/// One installable package from one repository.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub provides: Vec<Provide>,
    /// Depends and Pre-Depends.
    pub depends: Vec<Dependency>,
    /// apk `!name`, Debian Conflicts and Breaks.
    pub conflicts: Vec<Constraint>,
    /// apk `install_if`: installed automatically when all of these are.
    pub install_if: Vec<Constraint>,
    /// apk `k:` provider priority (higher wins among providers of a name).
    pub provider_priority: u32,
    /// Index of the repository in the recipe's order (lower is preferred on
    /// equal versions).
    pub repo: usize,
    /// The repository's tag, if it has one.
    pub repo_tag: Option<String>,
    /// Debian `Essential: yes` / `Priority: required` marking (informational;
    /// the source decides whether to request them).
    pub essential: bool,
}

/// Orders version strings of one ecosystem.
pub trait VersionScheme {
    fn compare(&self, a: &str, b: &str) -> Ordering;
}

/// All candidates of all repositories of one source.
pub struct Universe<'v> {
    pub candidates: Vec<Candidate>,
    pub scheme: &'v dyn VersionScheme,
}

/// A package the recipe asks for, with why (shown in `resolve` output).
#[derive(Clone, Debug)]
pub struct Request {
    pub dependency: Dependency,
    /// e.g. `recipe packages`, `essential`.
    pub reason: String,
}

/// One chosen candidate and the reasons it is in the set.
#[derive(Clone, Debug)]
pub struct Selected {
    /// Index into [`Universe::candidates`].
    pub candidate: usize,
    /// `requested (recipe packages)`, `docker depends on containerd`,
    /// `install_if: docker-openrc (docker, openrc)`.
    pub reasons: Vec<String>,
}

/// The result: chosen packages in install order (dependencies first, cycles
/// broken deterministically).
#[derive(Clone, Debug)]
pub struct Resolution {
    pub selected: Vec<Selected>,
}

/// Why resolution failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SolveError {
    /// `chain` runs from a request to the requirement that cannot be met,
    /// e.g. `["docker", "containerd", "so:libseccomp.so.2"]` with problem
    /// `no provider`.
    #[error("{}: {problem}", chain.join(" → "))]
    Unsatisfiable { chain: Vec<String>, problem: String },
    /// Two selected packages conflict.
    #[error("{a} conflicts with {b} ({why})")]
    Conflict { a: String, b: String, why: String },
}

/// Resolves the requests against the universe.
pub fn solve(universe: &Universe, requests: &[Request]) -> Result<Resolution, SolveError> {
    let _ = (universe, requests);
    unimplemented!("dinv-solver: being written")
}
