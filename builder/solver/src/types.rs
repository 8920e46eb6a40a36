//! The solver's vocabulary: what sources hand in and what comes back.

use std::cmp::Ordering;
use std::fmt;

/// Comparison operator of a versioned constraint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Any version.
    Any,
    /// Strictly lower (`<`, Debian `<<`).
    Lt,
    /// Lower or equal (`<=`).
    Le,
    /// Equal (`=`).
    Eq,
    /// Greater or equal (`>=`).
    Ge,
    /// Strictly greater (`>`, Debian `>>`).
    Gt,
    /// apk `~`: the version starts with the given one at a component
    /// boundary (`~1.2` matches `1.2`, `1.2.5`, `1.2-r3`, not `1.20`).
    Fuzzy,
}

impl Op {
    /// The operator as written in `name>=1.2` (empty for [`Op::Any`]).
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Any => "",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">",
            Op::Fuzzy => "~",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// `name`, `name>=1.2`, `so:libc.musl-x86_64.so.1`, `foo@edge`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Constraint {
    /// Package or virtual name.
    pub name: String,
    /// How `version` is compared.
    pub op: Op,
    /// Empty when `op` is [`Op::Any`].
    pub version: String,
    /// apk repository tag (`@edge`): only candidates from repositories with
    /// this tag qualify.
    pub tag: Option<String>,
}

impl Constraint {
    /// `name` with any version and no tag.
    pub fn any(name: impl Into<String>) -> Self {
        Constraint {
            name: name.into(),
            op: Op::Any,
            version: String::new(),
            tag: None,
        }
    }

    /// `name op version` with no tag.
    pub fn versioned(name: impl Into<String>, op: Op, version: impl Into<String>) -> Self {
        Constraint {
            name: name.into(),
            op,
            version: version.into(),
            tag: None,
        }
    }
}

/// Prints apk-style text: `name`, `name@tag`, `name>=1.2`, `name@tag~1.2`.
impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(tag) = &self.tag {
            write!(f, "@{tag}")?;
        }
        if self.op != Op::Any {
            write!(f, "{}{}", self.op, self.version)?;
        }
        Ok(())
    }
}

/// One dependency: satisfied by any of its alternatives (apk always has one;
/// Debian's `a | b`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    /// Tried in order; the first one that can be met wins.
    pub alternatives: Vec<Constraint>,
}

impl Dependency {
    /// A dependency with a single alternative.
    pub fn single(constraint: Constraint) -> Self {
        Dependency {
            alternatives: vec![constraint],
        }
    }
}

/// Prints the alternatives joined by ` | `.
impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, alt) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{alt}")?;
        }
        Ok(())
    }
}

/// A virtual name a candidate provides, optionally with a version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provide {
    /// The virtual name (`so:libz.so.1`, `mail-transport-agent`).
    pub name: String,
    /// Without a version the provide only satisfies unversioned constraints.
    pub version: Option<String>,
}

/// One installable package from one repository.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Package name.
    pub name: String,
    /// Version in the source's own syntax.
    pub version: String,
    /// Architecture (informational).
    pub arch: String,
    /// Virtual names this package provides.
    pub provides: Vec<Provide>,
    /// Depends and Pre-Depends.
    pub depends: Vec<Dependency>,
    /// apk `!name`, Debian Conflicts and Breaks.
    pub conflicts: Vec<Constraint>,
    /// apk `install_if`: installed automatically when all of these are.
    pub install_if: Vec<Constraint>,
    /// apk negated `install_if` conditions (`!pulseaudio`): each must be
    /// decided against, see [`Rules::Apk`].
    pub install_if_not: Vec<Constraint>,
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
    /// Debian: when apt first meets this package's name reading the
    /// indexes (its package ID in apt's cache). Among providers of a name
    /// that tie on everything else, apt takes the one met last. 0: unknown.
    pub mention: u32,
}

/// Orders version strings of one ecosystem.
pub trait VersionScheme {
    /// Compares two versions of this ecosystem.
    fn compare(&self, a: &str, b: &str) -> Ordering;

    /// apk `~`: does `version` match the fuzzy `pattern`? The default is a
    /// prefix at a component boundary; apk overrides it with its own rule.
    fn fuzzy_matches(&self, version: &str, pattern: &str) -> bool {
        crate::fuzzy::fuzzy_ok(version, pattern)
    }
}

/// Whose rules decide among candidates and what may be installed together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rules {
    /// Debian-like: a package named as asked before providers of the name;
    /// providers by priority, then name, then version; any number of
    /// packages may provide one name.
    #[default]
    Generic,
    /// apk-tools 2.14 (see builder/solver/PREFERENCE.md): real packages
    /// and providers of a name compete on one list, the higher provided
    /// version first; one package per name unless all provide it without a
    /// version; a provide without version or priority is never picked on
    /// its own; negated install_if conditions hold only when decided.
    Apk,
    /// Debian as `apt-get install` marks packages: the generic choices,
    /// met in apt's order: every request first, then depth first (a
    /// package's dependencies, in order, before the next dependency of
    /// its parent), each checked against what is selected at that moment.
    Apt,
}

/// All candidates of all repositories of one source.
pub struct Universe<'v> {
    /// Every package of every repository; [`Selected::candidate`] indexes
    /// it. Borrowed when the caller keeps its candidates (solving does not
    /// copy an index of tens of thousands of packages).
    pub candidates: std::borrow::Cow<'v, [Candidate]>,
    /// The ecosystem's version ordering.
    pub scheme: &'v dyn VersionScheme,
    /// The ecosystem's choice and coexistence rules.
    pub rules: Rules,
}

/// A package the recipe asks for, with why (shown in `resolve` output).
#[derive(Clone, Debug)]
pub struct Request {
    /// What is asked for.
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
    /// `install_if (docker, openrc)`; sorted, without duplicates.
    pub reasons: Vec<String>,
}

/// The result: chosen packages in install order (dependencies first, cycles
/// broken deterministically).
#[derive(Clone, Debug)]
pub struct Resolution {
    /// One entry per installed package name.
    pub selected: Vec<Selected>,
}

/// Why resolution failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SolveError {
    /// `chain` runs from a request to the requirement that cannot be met,
    /// e.g. `["docker", "containerd", "so:libseccomp.so.2"]` with problem
    /// `no provider`.
    #[error("{}: {problem}", chain.join(" → "))]
    Unsatisfiable {
        /// Package names from the request down, then the unmet dependency.
        chain: Vec<String>,
        /// What is wrong with the last element.
        problem: String,
    },
    /// Two selected packages conflict.
    #[error("{a} conflicts with {b} ({why})")]
    Conflict {
        /// The package that could not be added.
        a: String,
        /// The already selected package it clashes with.
        b: String,
        /// Which declaration clashes, e.g. `postfix conflicts with mail-transport-agent`.
        why: String,
    },
}
