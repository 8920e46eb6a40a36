//! Resolution: the recipe's package sets, from the sources' verified
//! indexes, or exactly the packages of the lock file.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::context::BuildEnv;
use crate::lock::{self, LockFile};
use crate::recipe::LoadedRecipe;
use crate::sources::{self, PackageSource, ResolvedPackage};
use crate::{Error, Result};

/// Which set a package belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SetName {
    /// The guest's root filesystem.
    Guest,
    /// The outer image's base layer.
    Runtime,
}

impl SetName {
    pub fn as_str(self) -> &'static str {
        match self {
            SetName::Guest => "guest",
            SetName::Runtime => "runtime",
        }
    }
}

/// One resolved package set.
#[derive(Clone, Debug, Serialize)]
pub struct PackageSet {
    pub set: SetName,
    /// The recipe's source name.
    pub source: String,
    pub packages: Vec<ResolvedPackage>,
}

/// Every package set of a recipe, with the sources they came from.
pub struct Resolved {
    pub guest: PackageSet,
    pub runtime: Option<PackageSet>,
    pub sources: BTreeMap<String, Box<dyn PackageSource>>,
}

impl Resolved {
    /// The sets, guest first.
    pub fn sets(&self) -> impl Iterator<Item = &PackageSet> {
        std::iter::once(&self.guest).chain(self.runtime.as_ref())
    }

    /// The source a set came from.
    pub fn source_of(&self, set: &PackageSet) -> &dyn PackageSource {
        self.sources[&set.source].as_ref()
    }

    /// Every package of every set, guest first.
    pub fn packages(&self) -> impl Iterator<Item = &ResolvedPackage> {
        self.sets().flat_map(|s| s.packages.iter())
    }
}

/// (set, source name, requested packages, the recipe key that asks).
fn wanted(l: &LoadedRecipe) -> Vec<(SetName, &str, &[String], &'static str)> {
    let r = &l.recipe;
    let mut v = vec![(SetName::Guest, r.guest.source.as_str(), r.guest.packages.as_slice(), "guest.packages")];
    if let Some(rt) = &r.runtime {
        v.push((SetName::Runtime, rt.source.as_str(), rt.packages.as_slice(), "runtime.packages"));
    }
    v
}

/// Opens each source the recipe uses once.
fn open_sources(env: &BuildEnv, l: &LoadedRecipe, locked: bool) -> Result<BTreeMap<String, Box<dyn PackageSource>>> {
    let mut sources = BTreeMap::new();
    for (_, source, _, _) in wanted(l) {
        if !sources.contains_key(source) {
            let started = std::time::Instant::now();
            sources.insert(source.to_string(), sources::open(env, l, source, locked)?);
            tracing::info!(source, seconds = started.elapsed().as_secs_f64(), "source opened");
        }
    }
    Ok(sources)
}

/// Opens the sources the recipe uses and resolves each package set.
pub fn resolve(env: &BuildEnv, l: &LoadedRecipe) -> Result<Resolved> {
    let sources = open_sources(env, l, false)?;
    let mut sets = Vec::new();
    for (set, source, packages, key) in wanted(l) {
        let started = std::time::Instant::now();
        let pkgs = sources[source].resolve(packages, key, set.as_str()).map_err(|e| at_request(l, key, packages, sources[source].as_ref(), e))?;
        tracing::info!(set = set.as_str(), packages = pkgs.len(), seconds = started.elapsed().as_secs_f64(), "resolved");
        sets.push(PackageSet { set, source: source.to_string(), packages: pkgs });
    }
    Ok(assemble(sets, sources))
}

/// A request the index cannot meet, pointed at the recipe line that asked
/// for it, with the nearest names the index has.
fn at_request(l: &LoadedRecipe, key: &str, packages: &[String], source: &dyn PackageSource, e: Error) -> Error {
    let Error::Resolve { source: dinv_solver::SolveError::Unsatisfiable { chain, .. }, .. } = &e else { return e };
    // Only the request itself: a missing dependency deeper down is the index's business.
    let [name] = chain.as_slice() else { return e };
    let Some(i) = packages.iter().position(|p| request_name(p) == name.as_str()) else { return e };
    let item = format!("{key}[{i}]");
    let at = match l.locate(&item) {
        Some(loc) => format!("{loc}: {item}"),
        None => item,
    };
    let near = crate::suggest::nearest(name, &source.package_names(), 3);
    let hint = if near.is_empty() { String::new() } else { format!("; did you mean {}?", near.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" or ")) };
    Error::ResolveAt { at, inner: Box::new(e), hint }
}

/// The package name of a request (`jq`, `jq>=1.7`, `jq=1.7-r0`, `jq@edge`).
fn request_name(p: &str) -> &str {
    let p = p.trim().trim_start_matches('!');
    let end = p.find(['<', '>', '=', '~', '@', ' ']).unwrap_or(p.len());
    &p[..end]
}

fn assemble(sets: Vec<PackageSet>, sources: BTreeMap<String, Box<dyn PackageSource>>) -> Resolved {
    let mut sets = sets.into_iter();
    let guest = sets.next().expect("the guest set is always wanted");
    Resolved { guest, runtime: sets.next(), sources }
}

/// The sources from a lock file: keys only, no indexes, no solver. The sets
/// are exactly the locked packages, in their locked order. Refuses (exit 2)
/// a lock whose inputs or keys no longer match, naming what changed.
pub fn resolve_locked(env: &BuildEnv, l: &LoadedRecipe, lock: &LockFile, lock_path: &Path) -> Result<Resolved> {
    check_inputs(lock, l, lock_path)?;
    let sources = open_sources(env, l, true)?;
    let mut sets = Vec::new();
    for (set, source, _, _) in wanted(l) {
        let platform = l.platform.map(|a| a.platform());
        let pkgs: Vec<ResolvedPackage> = lock.packages.iter().filter(|p| p.set == set.as_str() && p.platform == platform).map(|p| p.to_resolved()).collect();
        if let Some(p) = pkgs.iter().find(|p| p.source != source) {
            return Err(Error::Lock(format!(
                "{}: out of date: {} package {} comes from source {:?}, the recipe says {source:?}; run `dinv-build lock` to update it",
                lock_path.display(),
                set.as_str(),
                p.id(),
                p.source
            )));
        }
        if pkgs.is_empty() {
            let what = match &platform {
                Some(p) => format!("{} packages for {p}", set.as_str()),
                None => format!("{} packages", set.as_str()),
            };
            return Err(Error::Lock(format!("{}: locks no {what}; run `dinv-build lock` to update it", lock_path.display())));
        }
        tracing::info!(set = set.as_str(), packages = pkgs.len(), "locked");
        sets.push(PackageSet { set, source: source.to_string(), packages: pkgs });
    }
    let resolved = assemble(sets, sources);
    check_keys(lock, &resolved, lock_path)?;
    Ok(resolved)
}

/// Resolves a recipe the way the options ask: from its lock file with
/// `--locked`, else with the solver over fresh indexes.
pub fn resolve_with(env: &BuildEnv, l: &LoadedRecipe, locked: bool) -> Result<Resolved> {
    if !locked {
        return resolve(env, l);
    }
    let lock_path = lock::lock_path(&l.path);
    if !lock_path.is_file() {
        return Err(Error::Lock(format!("--locked: {} does not exist; write it with `dinv-build lock {}`", lock_path.display(), l.path.display())));
    }
    let lock = LockFile::read(&lock_path)?;
    resolve_locked(env, l, &lock, &lock_path)
}

/// The lock file of a recipe: each build's resolved packages (with their
/// platform, for a recipe with `image.platforms`) and the sources' keys.
pub fn lock_file(l: &LoadedRecipe, builds: &[(&LoadedRecipe, Resolved)]) -> LockFile {
    let mut keys: Vec<lock::LockedKey> = Vec::new();
    let mut packages = Vec::new();
    for (v, r) in builds {
        for (s, src) in &r.sources {
            for (name, sha256) in src.key_digests() {
                let k = lock::LockedKey { source: s.clone(), name: name.clone(), sha256: sha256.clone() };
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        let platform = v.platform.map(|a| a.platform());
        packages.extend(r.sets().flat_map(|s| {
            let platform = platform.clone();
            s.packages.iter().map(move |p| lock::LockedPackage { platform: platform.clone(), ..lock::LockedPackage::from_resolved(s.set.as_str(), &s.source, p) })
        }));
    }
    LockFile::new(l.inputs.clone(), keys, packages)
}

/// Refuses a lock whose inputs differ from the recipe's files now, naming
/// what changed.
fn check_inputs(lock: &LockFile, l: &LoadedRecipe, lock_path: &Path) -> Result<()> {
    let now = &l.inputs;
    if *now == lock.inputs {
        return Ok(());
    }
    let base = l.path.parent().unwrap_or(Path::new("."));
    let recipe_key = l.path.strip_prefix(base).unwrap_or(&l.path).display().to_string();
    let mut changes = Vec::new();
    for (k, v) in now {
        match lock.inputs.get(k) {
            Some(old) if old == v => {}
            Some(_) if *k == recipe_key => changes.push(format!("recipe changed since the lock ({k})")),
            Some(_) => changes.push(format!("{k} changed (sha256 differs)")),
            None => changes.push(format!("{k} is new (not in the lock)")),
        }
    }
    for k in lock.inputs.keys().filter(|k| !now.contains_key(*k)) {
        changes.push(format!("{k} is no longer an input"));
    }
    Err(Error::Lock(format!("{}: out of date: {}; run `dinv-build lock {}` to update it", lock_path.display(), changes.join(", "), l.path.display())))
}

/// Refuses a lock whose trusted keys differ from the sources' keys now.
fn check_keys(lock: &LockFile, r: &Resolved, lock_path: &Path) -> Result<()> {
    for (source, src) in &r.sources {
        let now = src.key_digests();
        let locked: BTreeMap<String, String> = lock.keys.iter().filter(|k| &k.source == source).map(|k| (k.name.clone(), k.sha256.clone())).collect();
        if *now != locked {
            let names: Vec<&String> = now.keys().chain(locked.keys()).filter(|n| now.get(*n) != locked.get(*n)).collect();
            return Err(Error::Lock(format!(
                "{}: out of date: trusted keys of source {source:?} changed since the lock ({}); run `dinv-build lock` to update it",
                lock_path.display(),
                names.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod suggestion_tests {
    use super::*;

    #[test]
    fn near_names_and_request_names() {
        let names = ["jq", "jo", "git", "gitea", "docker", "docker-cli"];
        assert_eq!(crate::suggest::nearest("jqq", &names, 3), ["jq"]);
        assert_eq!(crate::suggest::nearest("dockr", &names, 3), ["docker"]);
        assert!(crate::suggest::nearest("zzzzzz", &names, 3).is_empty());
        for (req, name) in [("jq", "jq"), ("jq>=1.7", "jq"), ("jq=1.7-r0", "jq"), ("jq@edge", "jq"), ("  jq ", "jq")] {
            assert_eq!(request_name(req), name, "{req}");
        }
    }
}
