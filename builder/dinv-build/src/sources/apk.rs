//! The Alpine apk source: signed indexes, resolution, verified downloads,
//! and data archives streamed into the tree.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use dinv_apk::{ApkCheck, ApkUniverse, Checksum, IndexEntry, Keyring, Repository, WorldError};
use dinv_fstree::Tree;

use super::common::{cached_data, fetch_all, fetch_verified_index, prepare_or_refetch, sha256_file, unpack_all, KeyFile, Prepared};
use super::package::{PackageSource, ResolvedPackage, SourceKind, UnpackStats};
use crate::cache::Cache;
use crate::context::BuildEnv;
use crate::fetch::join_url;
use crate::recipe::{vfs, ApkRepository, ApkSource, LoadedRecipe};
use crate::error::Check;
use crate::{Error, Result};

/// One repository with its verified index.
struct Repo {
    url: String,
    tag: Option<String>,
    trusted: bool,
    entries: Vec<IndexEntry>,
}

/// An opened apk source: keys, repositories and the solver universe.
pub(super) struct ApkSourceSet {
    name: String,
    arch: String,
    keyring: Keyring,
    /// Key name → SHA-256 of the key file, for the lock file.
    key_digests: BTreeMap<String, String>,
    repos: Vec<Repo>,
    /// The repositories' entries as solver candidates.
    universe: ApkUniverse,
}

/// Repository URLs of a source, in recipe order.
fn repository_urls(src: &ApkSource) -> Vec<(String, Option<String>, bool)> {
    src.repositories
        .iter()
        .map(|r| match r {
            ApkRepository::Name(n) => (format!("{}/{}/{}", src.mirror.as_deref().unwrap_or("").trim_end_matches('/'), src.branch.as_deref().unwrap_or(""), n), None, false),
            ApkRepository::Full(t) => {
                let url = t.url.clone().unwrap_or_else(|| {
                    format!(
                        "{}/{}/{}",
                        src.mirror.as_deref().unwrap_or("").trim_end_matches('/'),
                        t.branch.as_deref().or(src.branch.as_deref()).unwrap_or(""),
                        t.name.as_deref().unwrap_or("")
                    )
                });
                (url, t.tag.clone(), t.allow_untrusted)
            }
        })
        .collect()
}

/// Every key file of `sources.NAME.keys` (directories hold `*.pub`/`*.pem`
/// files; a README there is not a key), loaded into a keyring.
fn load_keys(l: &LoadedRecipe, src_name: &str, paths: &[String]) -> Result<(Keyring, BTreeMap<String, String>)> {
    let mut ring = Keyring::new();
    let mut digests = BTreeMap::new();
    for (i, p) in paths.iter().enumerate() {
        let key = format!("sources.{src_name}.keys[{i}]");
        let path = Path::new(p);
        let files: Vec<PathBuf> = if vfs::is_dir(path) {
            let entries: Vec<PathBuf> = vfs::entries(path).map_err(|e| l.error(&key, format!("cannot read {p}: {e}")))?.into_iter().map(|e| e.path).collect();
            let is_key = |p: &Path| vfs::is_file(p) && matches!(p.extension().and_then(|e| e.to_str()), Some("pub") | Some("pem"));
            entries.into_iter().filter(|p| is_key(p)).collect()
        } else {
            vec![path.to_path_buf()]
        };
        for f in files {
            let file = KeyFile::read(l, &key, &f)?;
            let text = String::from_utf8_lossy(&file.bytes);
            ring.add_pem(&file.name, &text).map_err(|e| l.error(&key, e.to_string()))?;
            digests.insert(file.name, file.sha256);
        }
    }
    Ok((ring, digests))
}

impl ApkSourceSet {
    /// Loads keys and fetches and verifies every repository's index.
    pub fn open(l: &LoadedRecipe, name: &str, src: &ApkSource, env: &BuildEnv) -> Result<ApkSourceSet> {
        let (keyring, key_digests) = load_keys(l, name, &src.keys)?;
        let mut repos = Vec::new();
        for (url, tag, allow_untrusted) in repository_urls(src) {
            let index_url = join_url(&url, &format!("{}/APKINDEX.tar.gz", src.arch));
            let (index, trusted) = fetch_verified_index(env, &index_url, |bytes| match dinv_apk::index::read_index(bytes, &keyring) {
                Ok(i) => Ok((i, true)),
                Err(e) if allow_untrusted => {
                    tracing::warn!("UNTRUSTED repository {url}: {e}; using it because allow_untrusted = true");
                    let i = dinv_apk::index::read_index_unverified(bytes).map_err(|e| Error::integrity(&index_url, e))?;
                    Ok((i, false))
                }
                Err(e) => {
                    let keys = keyring.names().collect::<Vec<_>>().join(", ");
                    Err(Error::integrity(&index_url, Check::IndexSignature { source: e, keys }))
                }
            })?;
            tracing::info!(repo = %url, packages = index.entries.len(), signed_by = ?index.signed_by.as_ref().map(|s| &s.0), "index verified");
            repos.push(Repo { url, tag, trusted, entries: index.entries });
        }
        let universe = ApkUniverse::new(&repos.iter().map(|r| Repository { entries: &r.entries, tag: r.tag.as_deref() }).collect::<Vec<_>>());
        Ok(ApkSourceSet { name: name.to_string(), arch: src.arch.clone(), keyring, key_digests, repos, universe })
    }

    /// Loads keys only, for installing packages fixed by a lock file: no
    /// index is fetched, each package is checked against the locked `Q1`
    /// checksum (and signature, for repositories that are not
    /// `allow_untrusted`) when it is fetched and again when it is unpacked.
    pub fn from_lock(l: &LoadedRecipe, name: &str, src: &ApkSource) -> Result<ApkSourceSet> {
        let (keyring, key_digests) = load_keys(l, name, &src.keys)?;
        let repos = repository_urls(src)
            .into_iter()
            .map(|(url, tag, allow_untrusted)| Repo { url, tag, trusted: !allow_untrusted, entries: vec![] })
            .collect();
        Ok(ApkSourceSet { name: name.to_string(), arch: src.arch.clone(), keyring, key_digests, repos, universe: ApkUniverse::new(&[]) })
    }

    /// Resolves a world (apk syntax: `name`, `name>=1.2`, `name@tag`,
    /// `!name`) into packages in install order.
    fn resolve_world(&self, world: &[String], reason: &str, what: &str) -> Result<Vec<ResolvedPackage>> {
        let chosen = self.universe.resolve(world, reason).map_err(|e| match e {
            WorldError::Atom { .. } => Error::Usage(format!("{what} packages: {e}")),
            WorldError::Solve(source) => Error::Resolve { source_name: self.name.clone(), set: what.to_string(), source },
        })?;
        Ok(chosen
            .into_iter()
            .map(|s| {
                let repo = &self.repos[s.repo];
                let e = &repo.entries[s.entry];
                ResolvedPackage {
                    source: self.name.clone(),
                    name: e.name.clone(),
                    version: e.version.clone(),
                    arch: e.arch.clone().unwrap_or_else(|| self.arch.clone()),
                    url: join_url(&repo.url, &format!("{}/{}", self.arch, e.file_name())),
                    checksum: e.checksum.map(|c| c.to_string()).unwrap_or_default(),
                    size: e.size,
                    installed_size: e.installed_size,
                    license: Some(e.license.clone()).filter(|l| !l.is_empty()),
                    origin: e.origin.clone(),
                    maintainer: e.maintainer.clone(),
                    homepage: Some(e.url.clone()).filter(|u| !u.is_empty()),
                    description: Some(e.description.clone()).filter(|d| !d.is_empty()),
                    build_time: e.build_time.map(|t| t as i64),
                    reasons: s.reasons,
                    suite: None,
                }
            })
            .collect())
    }

    fn repo_trusted(&self, url: &str) -> bool {
        self.repos.iter().find(|r| url.starts_with(&r.url)).map(|r| r.trusted).unwrap_or(true)
    }

    /// Checks a downloaded package file.
    fn verify_download(&self, p: &ResolvedPackage, path: &Path) -> Result<()> {
        let sum = parse_checksum(p)?;
        let bytes = fs::read(path).map_err(Error::io(path))?;
        dinv_apk::package::verify(&bytes, &self.check(p, &sum)).map(|_| ()).map_err(|e| Error::integrity(p.id(), e.problem))
    }

    /// The checks a package file must pass.
    fn check<'a>(&'a self, p: &'a ResolvedPackage, sum: &'a Checksum) -> ApkCheck<'a> {
        ApkCheck { name: &p.name, version: &p.version, checksum: Some(sum), keys: self.repo_trusted(&p.url).then_some(&self.keyring) }
    }
}

fn parse_checksum(p: &ResolvedPackage) -> Result<Checksum> {
    Checksum::parse(&p.checksum).ok_or_else(|| Error::integrity(p.id(), format!("index has no usable checksum (C: {:?})", p.checksum)))
}

impl PackageSource for ApkSourceSet {
    fn kind(&self) -> SourceKind {
        SourceKind::Apk
    }

    fn resolve(&self, packages: &[String], reason: &str, set: &str) -> Result<Vec<ResolvedPackage>> {
        self.resolve_world(packages, reason, set)
    }

    fn fetch(&self, pkgs: &[ResolvedPackage], env: &BuildEnv) -> Result<u64> {
        fetch_all(pkgs, &env.fetcher, &env.cache, &env.progress, |p| self.cache_path(&env.cache, p), |p, path| self.verify_download(p, path))
    }

    /// Decompression runs in parallel; tree insertion is sequential so later
    /// packages win deterministically.
    fn unpack(&self, pkgs: &[ResolvedPackage], env: &BuildEnv, tree: &mut Tree) -> Result<UnpackStats> {
        unpack_all(pkgs, tree, &env.progress, None, |p| {
            let dest = self.cache_path(&env.cache, p)?;
            prepare_or_refetch(p, env, &dest, |p, path| self.verify_download(p, path), || prepare(self, p, &env.cache))
        })
    }

    fn key_digests(&self) -> &BTreeMap<String, String> {
        &self.key_digests
    }

    fn cache_path(&self, cache: &Cache, p: &ResolvedPackage) -> Result<PathBuf> {
        Ok(cache.blob_path("apk-q1", &hex::encode(parse_checksum(p)?.as_bytes())))
    }

    fn package_names(&self) -> Vec<&str> {
        self.repos.iter().flat_map(|r| r.entries.iter().map(|e| e.name.as_str())).collect()
    }

    fn vendor_name(&self, p: &ResolvedPackage) -> Result<PathBuf> {
        Ok(Path::new("apk-q1").join(hex::encode(parse_checksum(p)?.as_bytes())))
    }

    fn file_sha256(&self, cache: &Cache, p: &ResolvedPackage) -> Result<String> {
        sha256_file(&self.cache_path(cache, p)?)
    }
}

fn prepare(set: &ApkSourceSet, p: &ResolvedPackage, cache: &Cache) -> Result<Prepared> {
    let path = set.cache_path(cache, p)?;
    let bytes = fs::read(&path).map_err(Error::io(&path))?;
    let sum = parse_checksum(p)?;
    let verified = dinv_apk::package::verify(&bytes, &set.check(p, &sum))
        .map_err(|e| Error::integrity(p.id(), Check::from(e.problem).in_cached(&path)))?;
    let scripts = verified.scripts.iter().map(|s| s.name.clone()).collect();
    let key = format!("apk-{}", hex::encode(sum.as_bytes()));
    cached_data(cache, &key, &p.id(), scripts, || Ok(Box::new(verified.data_reader(&bytes))))
}

