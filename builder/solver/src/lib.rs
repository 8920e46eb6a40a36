//! Dependency resolution shared by every package source.
//!
//! A source (apk, deb) turns its index into a [`Universe`] of
//! [`Candidate`]s, with its own [`VersionScheme`]; [`solve`] picks one
//! candidate per needed name, deterministically, and explains failures as a
//! chain from the recipe to the unmet requirement
//! (`docker → containerd → so:libseccomp.so.2: no provider`).
//!
//! # Matching
//! A constraint `name op version` is met by a candidate called `name` whose
//! version matches, or by one providing `name`: a versioned provide is
//! compared with its own version, an unversioned one meets only unversioned
//! constraints (Debian's rule). A candidate from a tagged repository serves a
//! constraint only if the constraint carries that tag or the dependent
//! package comes from a repository with the same tag.
//!
//! # Choices
//! * A dependency already met by a selected package (tags not checked) is
//!   simply recorded against it; nothing new is installed.
//! * Otherwise the candidates are, per alternative in order (Debian `a | b`):
//!   packages with that real name (highest version, then lowest repository
//!   index), then providers of it (highest `provider_priority`, then
//!   provider name, then highest version, then lowest repository index).
//! * Candidates that can never be installed (a dependency with nothing
//!   installable below it) are skipped; so are candidates whose name is
//!   already selected in another version or that conflict (either way) with
//!   a selected package. The first remaining one is taken; the others are
//!   tried on backtracking.
//! * Dependencies naming a real package are met first; virtual names and
//!   alternatives wait until then, so they reuse what is already selected.
//! * After that, install_if packages are added until nothing changes.
//!
//! Those are the generic ([`Rules::Generic`]) rules. [`Rules::Apt`], what
//! Debian sources use, makes the same choices in apt-get's order: every
//! request first, then depth first (a package's dependencies before its
//! parent's next one), each alternative group and virtual name met by what
//! is selected at that moment, else by its first installable choice; ties
//! between providers go to the essential one, the higher priority, then
//! the one apt met last reading the indexes (`Candidate::mention`). Under
//! [`Rules::Apk`] the candidates for a name are ordered as apk-tools 2.14
//! orders them (repository tag, provided version, version, provider
//! priority, repository, index order), a name is held by one package unless
//! all its holders provide it without a version, and negated install_if
//! conditions are supported; builder/solver/PREFERENCE.md has the details.
//!
//! Output order is dependencies first, ties and cycles broken by name.

mod discovery;
mod engine;
mod explain;
mod hash;
mod index;
mod install_if;
mod fuzzy;
mod matching;
mod order;
mod preference;
mod queue;
mod solve;
mod types;
mod viability;

pub use solve::solve;
pub use types::{
    Candidate, Constraint, Dependency, Op, Provide, Request, Resolution, Rules, Selected,
    SolveError, Universe, VersionScheme,
};
