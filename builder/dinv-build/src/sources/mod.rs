//! Package sources: turn a recipe's `[sources.NAME]` into resolved,
//! fetched, verified packages, and unpack them into a tree.
//!
//! [`PackageSource`] is the one interface; `apk` and `deb` implement it.
//! They share the solver, the cache and the [`ResolvedPackage`] record that
//! the lock file, the SBOM and the report read.

mod apk;
mod common;
mod deb;
mod package;

pub(crate) use common::{parallel, sha256_file};
pub use package::{PackageSource, ResolvedPackage, SourceKind, UnpackStats};

use crate::context::BuildEnv;
use crate::recipe::{LoadedRecipe, Source};
use crate::Result;

/// Opens source `name` of the recipe: keys, then (unless `locked`) its
/// verified indexes. A locked source has no indexes: the packages come
/// from the lock file and are checked against its checksums.
pub fn open(env: &BuildEnv, l: &LoadedRecipe, name: &str, locked: bool) -> Result<Box<dyn PackageSource>> {
    let src = &l.recipe.sources[name];
    Ok(match (src, locked) {
        (Source::Apk(a), false) => Box::new(apk::ApkSourceSet::open(l, name, a, env)?),
        (Source::Apk(a), true) => Box::new(apk::ApkSourceSet::from_lock(l, name, a)?),
        (Source::Deb(d), false) => Box::new(deb::DebSourceSet::open(l, name, d, env)?),
        (Source::Deb(d), true) => Box::new(deb::DebSourceSet::from_lock(l, name, d, env)?),
    })
}
