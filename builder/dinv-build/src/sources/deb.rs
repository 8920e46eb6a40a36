//! The Debian source: a signed `InRelease`, `Packages` indices checked
//! against it, resolution (with the essential set), verified `.deb`
//! downloads, and data archives streamed into a merged-/usr tree.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use dinv_deb::{DebIndex, Keyring, PackageRecord, Release, SuiteRecords};
use dinv_fstree::Tree;

use super::common::{cached_data, fetch_all, fetch_index, fetch_verified_index, prepare_or_refetch, unpack_all, KeyFile, Prepared};
use super::package::{PackageSource, ResolvedPackage, SourceKind, UnpackStats};
use crate::cache::Cache;
use crate::context::{suite_sites, BuildEnv, SuiteSite};
use crate::error::Check;
use crate::fetch::{join_url, FetchError};
use crate::recipe::{DebSource, LoadedRecipe};
use crate::{Error, Result};

/// An opened Debian source: each suite's verified Release and parsed
/// indices, merged as apt merges a sources list. Candidates are made at
/// resolve time, only for the packages the request can reach.
pub(super) struct DebSourceSet {
    name: String,
    arch: String,
    essential: bool,
    required: bool,
    /// Keyring file name → SHA-256 of the file, for the lock file.
    key_digests: BTreeMap<String, String>,
    /// Each suite and the archive URL it comes from, in the recipe's order.
    sites: Vec<SuiteSite>,
    index: DebIndex,
}

/// The keyrings of `sources.NAME.keyrings`, merged.
fn load_keyrings(l: &LoadedRecipe, src_name: &str, paths: &[String]) -> Result<(Keyring, BTreeMap<String, String>)> {
    let mut ring: Option<Keyring> = None;
    let mut digests = BTreeMap::new();
    for (i, p) in paths.iter().enumerate() {
        let key = format!("sources.{src_name}.keyrings[{i}]");
        let file = KeyFile::read(l, &key, Path::new(p))?;
        let k = Keyring::from_bytes(&file.bytes).map_err(|e| l.error(&key, format!("{}: {e}", file.path.display())))?;
        match &mut ring {
            Some(r) => r.extend(k),
            None => ring = Some(k),
        }
        digests.insert(file.name, file.sha256);
    }
    let ring = match ring {
        Some(r) => r,
        None => Keyring::from_bytes(&[]).map_err(|e| Error::Usage(format!("sources.{src_name}.keyrings is empty: {e}")))?,
    };
    Ok((ring, digests))
}

fn is_not_found(e: &FetchError) -> bool {
    match e {
        FetchError::Status { status, .. } => *status == 404 || *status == 410,
        FetchError::Io { source, .. } => source.kind() == io::ErrorKind::NotFound,
        _ => false,
    }
}

impl DebSourceSet {
    /// Finds each suite's archive, verifies its Release and loads every
    /// component's Packages index.
    pub fn open(l: &LoadedRecipe, name: &str, src: &DebSource, env: &BuildEnv) -> Result<DebSourceSet> {
        let sites = sites_of(l, name, src, env)?;
        let (keyring, key_digests) = load_keyrings(l, name, &src.keyrings)?;
        let mut suites = Vec::new();
        for site in &sites {
            let dists = join_url(&site.base, &format!("dists/{}", site.suite));
            let release = Self::verified_release(name, src, &site.suite, &dists, &keyring, env)?;
            let mut records = Vec::new();
            for component in &src.components {
                records.extend(Self::packages(src, &site.suite, component, &dists, &release, env)?);
            }
            tracing::info!(source = name, suite = %site.suite, url = %site.base, packages = records.len(), "suite verified");
            suites.push(SuiteRecords { suite: site.suite.clone(), records });
        }
        let index = DebIndex::new(&src.arch, suites);
        tracing::info!(source = name, suites = sites.len(), packages = index.records().len(), "Debian indices verified");
        Ok(DebSourceSet { name: name.to_string(), arch: src.arch.clone(), essential: src.essential, required: src.required, key_digests, sites, index })
    }

    /// Loads keyrings only, for installing packages fixed by a lock file:
    /// no Release or Packages index is fetched; each `.deb` is checked
    /// against the locked SHA-256 and size.
    pub fn from_lock(l: &LoadedRecipe, name: &str, src: &DebSource, _env: &BuildEnv) -> Result<DebSourceSet> {
        let (_, key_digests) = load_keyrings(l, name, &src.keyrings)?;
        Ok(DebSourceSet {
            name: name.to_string(),
            arch: src.arch.clone(),
            essential: src.essential,
            required: src.required,
            key_digests,
            sites: vec![],
            index: DebIndex::new(&src.arch, vec![]),
        })
    }

    /// InRelease (or Release + Release.gpg), verified and parsed.
    fn verified_release(name: &str, src: &DebSource, suite: &str, dists: &str, keyring: &Keyring, env: &BuildEnv) -> Result<Release> {
        let in_url = join_url(dists, "InRelease");
        let subject = format!("{suite} InRelease");
        let in_release = fetch_verified_index(env, &in_url, |bytes| match dinv_deb::verify_clearsigned(bytes, keyring, "InRelease") {
            Ok(v) => Ok(Ok(v.text)),
            // Untrusted sources take the text anyway (below); the others refuse it here.
            Err(e) if src.allow_untrusted => Ok(Err((subject.clone(), e, bytes.to_vec()))),
            Err(e) => Err(Error::integrity(&subject, e)),
        });
        let verified = match in_release {
            Ok(v) => v,
            Err(Error::Fetch(e)) if is_not_found(&e) => {
                let rel_url = join_url(dists, "Release");
                let bytes = fetch_index(env, &rel_url)?;
                let sig = fetch_index(env, &join_url(dists, "Release.gpg"))?;
                match dinv_deb::verify_detached(&bytes, &sig, keyring, "Release") {
                    Ok(v) => Ok(v.text),
                    Err(e) => Err((format!("{suite} Release"), e, bytes)),
                }
            }
            Err(e) => return Err(e),
        };
        let text = match verified {
            Ok(t) => t,
            Err((subject, e, bytes)) if src.allow_untrusted => {
                tracing::warn!("UNTRUSTED {subject} of source {name}: {e}; using it because allow_untrusted = true");
                clear_text(&bytes)
            }
            Err((subject, e, _)) => return Err(Error::integrity(subject, e)),
        };
        let release = Release::parse(&text).map_err(|e| Error::integrity(format!("{suite} Release"), e))?;
        tracing::info!(suite, url = %in_url, "InRelease fetched and verified");
        // As apt: a suite past its Valid-Until (security and updates suites
        // carry one) is refused, so a stale mirror cannot hide fixes.
        release.check_valid_at(env.host.now()).map_err(|e| Error::integrity(format!("suite {suite} ({in_url})"), e))?;
        Ok(release)
    }

    /// One component's Packages index: the best listed variant the mirror
    /// has, checked against the Release.
    fn packages(src: &DebSource, suite: &str, component: &str, dists: &str, release: &Release, env: &BuildEnv) -> Result<Vec<PackageRecord>> {
        let (fetcher, cache) = (&env.fetcher, &env.cache);
        let variants = release.packages_indices(component, &src.arch);
        if variants.is_empty() {
            return Err(Error::integrity(format!("{suite} Release"), format!("lists no {component}/binary-{}/Packages index", src.arch)));
        }
        // The parsed records of an index with this (signed) digest.
        let snapshot_of = |f: &dinv_deb::release::ReleaseFile| cache.index_path(&format!("deb-records-{}.bin", f.sha256));
        // Any listed variant parsed before serves, whichever the mirror
        // has: offline, or with a mirror that lacks the first one listed
        // (a local mirror with only `Packages`), nothing is asked for.
        for f in &variants {
            if let Some(recs) = fs::read(snapshot_of(f)).ok().and_then(|b| dinv_deb::snapshot::decode(&b)) {
                tracing::info!(index = %f.path, packages = recs.len(), "Packages from the verified snapshot");
                return Ok(recs);
            }
        }
        let mut last = None;
        for f in variants {
            let snapshot = snapshot_of(f);
            let url = join_url(dists, &f.path);
            // Content-addressed: a cached index with the listed digest is current.
            let cached = cache.index_path(&format!("deb-sha256-{}", f.sha256));
            // A damaged cached copy is dropped and fetched again.
            let good = fs::read(&cached).ok().filter(|b| {
                let ok = f.verify(b).is_ok();
                if !ok {
                    tracing::warn!("{}: cached copy of {} is damaged; fetching it again", cached.display(), f.path);
                    let _ = fs::remove_file(&cached);
                }
                ok
            });
            let bytes = match good {
                Some(b) => b,
                None => match fetcher.fetch_bytes(&url, "index") {
                    Ok(b) => b,
                    Err(e) if is_not_found(&e) => {
                        last = Some(e);
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                },
            };
            let subject = || format!("{suite} {}", f.path);
            f.verify(&bytes).map_err(|e| Error::integrity(subject(), e))?;
            let _ = cache.write_atomic(&cached, |w| w.write_all(&bytes));
            let plain = dinv_deb::decompress(&bytes, f.compression(), &f.path).map_err(|e| Error::integrity(subject(), e))?;
            let recs = dinv_deb::parse_packages_bytes(&plain, &f.path).map_err(|e| Error::integrity(subject(), e))?;
            tracing::info!(index = %f.path, packages = recs.len(), "Packages verified");
            let _ = cache.write_atomic(&snapshot, |w| w.write_all(&dinv_deb::snapshot::encode(&recs)));
            return Ok(recs);
        }
        Err(last.map(Error::from).unwrap_or_else(|| Error::integrity(format!("{suite} Release"), format!("no Packages index for {component}"))))
    }

    /// Resolves package names (`name` or `name=version`) plus the essential
    /// (and, if asked, required) set into packages in install order, each
    /// with the suite and URL it comes from.
    fn resolve_names(&self, packages: &[String], reason: &str, what: &str) -> Result<Vec<ResolvedPackage>> {
        let mut requests = Vec::new();
        for p in packages {
            let r = dinv_deb::parse_request(p, reason).ok_or_else(|| Error::Usage(format!("{what} packages: {p:?} is not `name` or `name=version`")))?;
            requests.push(r);
        }
        requests.extend(self.index.base_requests(self.essential, self.required));
        let chosen = self.index.resolve(&requests).map_err(|source| Error::Resolve { source_name: self.name.clone(), set: what.to_string(), source })?;
        Ok(chosen
            .into_iter()
            .map(|c| {
                let r = self.index.record(c.record);
                let site = &self.sites[self.index.suite_index_of(c.record)];
                ResolvedPackage {
                    source: self.name.clone(),
                    name: r.package.clone(),
                    version: r.version.clone(),
                    arch: r.architecture.clone(),
                    url: join_url(&site.base, &r.filename),
                    checksum: r.sha256.clone(),
                    size: r.size,
                    installed_size: r.installed_size.unwrap_or(0) * 1024,
                    license: None,
                    origin: Some(r.source.clone()).filter(|s| !s.is_empty()),
                    maintainer: Some(r.maintainer.clone()).filter(|s| !s.is_empty()),
                    homepage: Some(r.homepage.clone()).filter(|s| !s.is_empty()),
                    description: Some(r.description.clone()).filter(|s| !s.is_empty()),
                    build_time: None,
                    reasons: c.reasons,
                    suite: Some(site.suite.clone()),
                }
            })
            .collect())
    }
}

/// The archive URL of each suite of the source (see [`suite_sites`]).
fn sites_of(l: &LoadedRecipe, name: &str, src: &DebSource, env: &BuildEnv) -> Result<Vec<SuiteSite>> {
    suite_sites(
        &src.suite_list(),
        (src.mirror.as_deref(), env.debian_mirror.as_deref()),
        (src.security_mirror.as_deref(), env.debian_security_mirror.as_deref()),
        &env.host.apt_sources,
    )
    .map_err(|why| l.error(&format!("sources.{name}"), why).into())
}

impl PackageSource for DebSourceSet {
    fn kind(&self) -> SourceKind {
        SourceKind::Deb
    }

    fn resolve(&self, packages: &[String], reason: &str, set: &str) -> Result<Vec<ResolvedPackage>> {
        self.resolve_names(packages, reason, set)
    }

    /// Each `.deb` is checked against the signed index before it enters the cache.
    fn fetch(&self, pkgs: &[ResolvedPackage], env: &BuildEnv) -> Result<u64> {
        fetch_all(pkgs, &env.fetcher, &env.cache, &env.progress, |p| self.cache_path(&env.cache, p), verify)
    }

    /// Lays out merged-/usr first; decompression runs in parallel, insertion
    /// is sequential so later packages win deterministically.
    fn unpack(&self, pkgs: &[ResolvedPackage], env: &BuildEnv, tree: &mut Tree) -> Result<UnpackStats> {
        dinv_deb::create_merged_usr_links(tree, &self.arch)
            .map_err(|e| Error::stage(crate::error::Stage::Unpack, crate::error::StageFailure::from(e).of("merged-/usr layout")))?;
        let rewrite = |p: &dinv_fstree::TreePath| dinv_deb::merged_usr(p);
        unpack_all(pkgs, tree, &env.progress, Some(&rewrite), |p| {
            let dest = self.cache_path(&env.cache, p)?;
            prepare_or_refetch(p, env, &dest, verify, || prepare(self, p, &env.cache))
        })
    }

    fn key_digests(&self) -> &BTreeMap<String, String> {
        &self.key_digests
    }

    fn cache_path(&self, cache: &Cache, p: &ResolvedPackage) -> Result<PathBuf> {
        Ok(cache.blob_path("sha256", &sha256_hex(p)?))
    }

    fn package_names(&self) -> Vec<&str> {
        self.index.names().collect()
    }

    fn newest_version(&self, name: &str) -> Option<String> {
        self.index.candidates_of(name).map(|r| r.version.clone()).max_by(|a, b| dinv_deb::compare_versions(a, b))
    }

    fn vendor_name(&self, p: &ResolvedPackage) -> Result<PathBuf> {
        Ok(Path::new("sha256").join(sha256_hex(p)?))
    }

    /// The index checksum of a .deb is already the file's SHA-256, verified on fetch.
    fn file_sha256(&self, _cache: &Cache, p: &ResolvedPackage) -> Result<String> {
        sha256_hex(p)
    }
}

/// The signed text of a clearsigned file, without checking the signature
/// (only for `allow_untrusted`).
fn clear_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let Some(start) = text.find("-----BEGIN PGP SIGNED MESSAGE-----") else { return text.into_owned() };
    let body = &text[start..];
    // Armor headers end at the first blank line.
    let body = body.split_once("\n\n").map(|(_, b)| b).unwrap_or("");
    let body = body.split("\n-----BEGIN PGP SIGNATURE-----").next().unwrap_or("");
    body.lines().map(|l| l.strip_prefix("- ").unwrap_or(l)).collect::<Vec<_>>().join("\n")
}

/// The package's SHA-256 from the index, lower-case (its cache and vendor name).
fn sha256_hex(p: &ResolvedPackage) -> Result<String> {
    if p.checksum.len() != 64 || !p.checksum.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::integrity(p.id(), format!("index has no usable SHA256 ({:?})", p.checksum)));
    }
    Ok(p.checksum.to_ascii_lowercase())
}

/// Checks a `.deb` file against the index's size and SHA-256, streamed.
fn verify_file(p: &ResolvedPackage, path: &Path) -> Result<(), dinv_deb::DebError> {
    dinv_deb::verify_file(path, &p.checksum, p.size, &format!("{}.deb", p.id()))
}

fn verify(p: &ResolvedPackage, path: &Path) -> Result<()> {
    verify_file(p, path).map_err(|e| Error::integrity(p.id(), e))
}

fn prepare(set: &DebSourceSet, p: &ResolvedPackage, cache: &Cache) -> Result<Prepared> {
    let path = set.cache_path(cache, p)?;
    verify_file(p, &path).map_err(|e| Error::integrity(p.id(), Check::from(e).in_cached(&path)))?;
    let deb_err = |e: dinv_deb::DebError| Error::integrity(p.id(), e);
    let file = fs::File::open(&path).map_err(Error::io(&path))?;
    let mut deb = dinv_deb::open_deb(io::BufReader::with_capacity(1 << 20, file), &p.id()).map_err(deb_err)?;
    let scripts = deb.take_control().scripts;
    let key = format!("deb-{}", p.checksum.to_ascii_lowercase());
    cached_data(cache, &key, &p.id(), scripts, || Ok(Box::new(deb.into_data().map_err(deb_err)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dinv_deb::DebVersions;
    use dinv_solver::{Request, Universe};

    /// The host's bookworm main Packages index (apt's lists, lz4), if any.
    fn host_bookworm_records() -> Option<Vec<PackageRecord>> {
        let list = fs::read_dir("/var/lib/apt/lists").ok()?.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.ends_with("_dists_bookworm_main_binary-amd64_Packages.lz4")
        })?;
        let mut text = Vec::new();
        io::Read::read_to_end(&mut lz4_flex::frame::FrameDecoder::new(fs::File::open(&list).ok()?), &mut text).ok()?;
        Some(dinv_deb::parse_packages_bytes(&text, "Packages").unwrap())
    }

    /// On the real bookworm index, solving over the reachable candidates
    /// selects exactly what solving over all 63,000 does, for the Debian
    /// recipe's guest and runtime sets.
    #[test]
    fn the_reachable_universe_selects_what_the_whole_index_does() {
        let Some(records) = host_bookworm_records() else {
            eprintln!("NOTICE: no bookworm Packages in /var/lib/apt/lists (run apt-get update): skipped");
            return;
        };
        let mut all = Vec::new();
        let mention = dinv_deb::mention_order(&records);
        for rec in &records {
            if let Ok(mut c) = dinv_deb::to_candidate(rec, 0, "amd64") {
                c.provider_priority = dinv_deb::priority_rank(&rec.priority);
                c.mention = mention[&rec.package];
                all.push(c);
            }
        }
        let index = DebIndex::new("amd64", vec![SuiteRecords { suite: "bookworm".into(), records }]);
        for packages in [
            vec!["docker.io", "qemu-guest-agent", "linux-image-amd64", "iptables", "e2fsprogs", "kmod", "iproute2", "ca-certificates"],
            vec!["qemu-system-x86", "docker.io", "ca-certificates"],
        ] {
            let mut requests: Vec<Request> = packages.iter().map(|n| dinv_deb::parse_request(n, "recipe").unwrap()).collect();
            requests.extend(index.base_requests(true, false));
            let reached = index.resolve(&requests).unwrap();
            let universe = Universe { candidates: (&all[..]).into(), scheme: &DebVersions, rules: dinv_solver::Rules::Apt };
            let whole = dinv_solver::solve(&universe, &requests).unwrap();
            let a: Vec<(String, String)> = reached.iter().map(|c| (index.record(c.record).package.clone(), index.record(c.record).version.clone())).collect();
            let b: Vec<(String, String)> = whole.selected.iter().map(|s| (all[s.candidate].name.clone(), all[s.candidate].version.clone())).collect();
            assert!(a.len() > 50, "{a:?}");
            assert_eq!(a, b, "selection (in install order) for {packages:?}");
        }
    }

    #[test]
    fn clear_text_undoes_dash_escaping() {
        let s = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: X\n- -dash\n-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n";
        assert_eq!(clear_text(s.as_bytes()), "Origin: X\n-dash");
    }
}
