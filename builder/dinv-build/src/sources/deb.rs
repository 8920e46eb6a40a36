//! The Debian source: a signed `InRelease`, `Packages` indices checked
//! against it, resolution (with the essential set), verified `.deb`
//! downloads, and data archives streamed into a merged-/usr tree.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use dinv_deb::{DebVersions, Keyring, PackageRecord, Release};
use dinv_fstree::Tree;
use dinv_solver::{Candidate, Constraint, Dependency, Op, Request, Universe};

use super::common::{cached_data, fetch_all, fetch_index, fetch_verified_index, prepare_or_refetch, unpack_all, KeyFile, Prepared};
use super::package::{PackageSource, ResolvedPackage, SourceKind, UnpackStats};
use crate::cache::Cache;
use crate::context::BuildEnv;
use crate::error::Check;
use crate::fetch::{join_url, FetchError};
use crate::recipe::{DebSource, LoadedRecipe};
use crate::{Error, Result};

/// An opened Debian source: verified Release, parsed indices, and indexes
/// by name and by provided name. Candidates are made at resolve time, only
/// for the packages the request can reach.
pub(super) struct DebSourceSet {
    name: String,
    arch: String,
    mirror: String,
    essential: bool,
    required: bool,
    /// Keyring file name → SHA-256 of the file, for the lock file.
    key_digests: BTreeMap<String, String>,
    records: Vec<PackageRecord>,
    /// Package name → its records, in index order.
    by_name: HashMap<String, Vec<usize>>,
    /// Provided (virtual) name → the records that provide it.
    providers: HashMap<String, Vec<usize>>,
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
    /// Finds the mirror, verifies the suite's Release and loads every
    /// component's Packages index.
    pub fn open(l: &LoadedRecipe, name: &str, src: &DebSource, env: &BuildEnv) -> Result<DebSourceSet> {
        let mirror = src
            .mirror
            .clone()
            .or_else(|| env.debian_mirror.clone())
            .or_else(|| env.host.apt_sources.mirror_for(&src.suite))
            .ok_or_else(|| {
                l.error(
                    &format!("sources.{name}"),
                    format!("no mirror: set `mirror`, pass --debian-mirror or DINV_DEBIAN_MIRROR, or add suite {} to the host's apt sources", src.suite),
                )
            })?;
        let (keyring, key_digests) = load_keyrings(l, name, &src.keyrings)?;
        let dists = join_url(&mirror, &format!("dists/{}", src.suite));
        let release = Self::verified_release(name, src, &dists, &keyring, env)?;
        let mut records = Vec::new();
        for component in &src.components {
            records.extend(Self::packages(src, component, &dists, &release, env)?);
        }
        let mut set = DebSourceSet {
            name: name.to_string(),
            arch: src.arch.clone(),
            mirror,
            essential: src.essential,
            required: src.required,
            key_digests,
            records,
            by_name: HashMap::new(),
            providers: HashMap::new(),
        };
        set.index_records();
        tracing::info!(source = name, suite = %src.suite, packages = set.records.len(), "Debian indices verified");
        Ok(set)
    }

    /// Loads keyrings only, for installing packages fixed by a lock file:
    /// no Release or Packages index is fetched; each `.deb` is checked
    /// against the locked SHA-256 and size.
    pub fn from_lock(l: &LoadedRecipe, name: &str, src: &DebSource, env: &BuildEnv) -> Result<DebSourceSet> {
        let (_, key_digests) = load_keyrings(l, name, &src.keyrings)?;
        let mirror = src.mirror.clone().or_else(|| env.debian_mirror.clone()).unwrap_or_default();
        Ok(DebSourceSet {
            name: name.to_string(),
            arch: src.arch.clone(),
            mirror,
            essential: src.essential,
            required: src.required,
            key_digests,
            records: vec![],
            by_name: HashMap::new(),
            providers: HashMap::new(),
        })
    }

    /// InRelease (or Release + Release.gpg), verified and parsed.
    fn verified_release(name: &str, src: &DebSource, dists: &str, keyring: &Keyring, env: &BuildEnv) -> Result<Release> {
        let in_url = join_url(dists, "InRelease");
        let subject = format!("{} InRelease", src.suite);
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
                    Err(e) => Err((format!("{} Release", src.suite), e, bytes)),
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
        let release = Release::parse(&text).map_err(|e| Error::integrity(format!("{} Release", src.suite), e))?;
        tracing::info!(suite = %src.suite, url = %in_url, "InRelease fetched and verified");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        release.check_valid_at(now).map_err(|e| Error::integrity(format!("{} Release", src.suite), e))?;
        Ok(release)
    }

    /// One component's Packages index: the best listed variant the mirror
    /// has, checked against the Release.
    fn packages(src: &DebSource, component: &str, dists: &str, release: &Release, env: &BuildEnv) -> Result<Vec<PackageRecord>> {
        let (fetcher, cache) = (&env.fetcher, &env.cache);
        let variants = release.packages_indices(component, &src.arch);
        if variants.is_empty() {
            return Err(Error::integrity(format!("{} Release", src.suite), format!("lists no {component}/binary-{}/Packages index", src.arch)));
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
            let subject = || format!("{} {}", src.suite, f.path);
            f.verify(&bytes).map_err(|e| Error::integrity(subject(), e))?;
            let _ = cache.write_atomic(&cached, |w| w.write_all(&bytes));
            let plain = dinv_deb::decompress(&bytes, f.compression(), &f.path).map_err(|e| Error::integrity(subject(), e))?;
            let recs = dinv_deb::parse_packages_bytes(&plain, &f.path).map_err(|e| Error::integrity(subject(), e))?;
            tracing::info!(index = %f.path, packages = recs.len(), "Packages verified");
            let _ = cache.write_atomic(&snapshot, |w| w.write_all(&dinv_deb::snapshot::encode(&recs)));
            return Ok(recs);
        }
        Err(last.map(Error::from).unwrap_or_else(|| Error::integrity(format!("{} Release", src.suite), format!("no Packages index for {component}"))))
    }

    /// Fills the name and provides indexes from the records.
    fn index_records(&mut self) {
        for (i, rec) in self.records.iter().enumerate() {
            self.by_name.entry(rec.package.clone()).or_default().push(i);
            if !rec.provides.is_empty() {
                // A malformed Provides is reported when the record is made a candidate.
                for p in dinv_deb::parse_provides(&rec.provides, "Provides").unwrap_or_default() {
                    self.providers.entry(p.name).or_default().push(i);
                }
            }
        }
    }

    /// The candidates the requests can reach: every record named by a
    /// request or by a dependency alternative of a reached record, or
    /// providing such a name, in index order (so ties break as over the
    /// whole index). Returns each candidate's record index too. Records
    /// that cannot be read as candidates are left out, as before.
    fn reachable(&self, requests: &[Request]) -> (Vec<usize>, Vec<Candidate>) {
        let mut work: Vec<String> = requests.iter().flat_map(|r| r.dependency.alternatives.iter().map(|c| c.name.clone())).collect();
        let mut seen: HashSet<String> = work.iter().cloned().collect();
        let mut made: BTreeMap<usize, Candidate> = BTreeMap::new();
        let mut tried: HashSet<usize> = HashSet::new();
        while let Some(name) = work.pop() {
            for &ri in self.by_name.get(&name).into_iter().chain(self.providers.get(&name)).flatten() {
                if !tried.insert(ri) {
                    continue;
                }
                let rec = &self.records[ri];
                match dinv_deb::to_candidate(rec, 0, &self.arch) {
                    Ok(mut c) => {
                        c.provider_priority = priority_rank(&rec.priority);
                        for alt in c.depends.iter().flat_map(|d| &d.alternatives) {
                            if seen.insert(alt.name.clone()) {
                                work.push(alt.name.clone());
                            }
                        }
                        made.insert(ri, c);
                    }
                    Err(e) => tracing::debug!("skipping {} {}: {e}", rec.package, rec.version),
                }
            }
        }
        made.into_iter().unzip()
    }

    /// Resolves package names (`name` or `name=version`) plus the essential
    /// (and, if asked, required) set into packages in install order.
    fn resolve_names(&self, packages: &[String], reason: &str, what: &str) -> Result<Vec<ResolvedPackage>> {
        let request = |name: &str, op: Op, version: &str, reason: &str| Request {
            dependency: Dependency {
                alternatives: vec![Constraint { name: name.to_string(), op, version: version.to_string(), tag: None }],
            },
            reason: reason.to_string(),
        };
        let mut requests = Vec::new();
        for p in packages {
            let p = p.trim();
            match p.split_once('=') {
                Some((n, v)) if !n.is_empty() && !v.is_empty() => requests.push(request(n.trim(), Op::Eq, v.trim(), reason)),
                None if !p.is_empty() && !p.contains(char::is_whitespace) => requests.push(request(p, Op::Any, "", reason)),
                _ => return Err(Error::Usage(format!("{what} packages: {p:?} is not `name` or `name=version`"))),
            }
        }
        for rec in &self.records {
            let wanted = (self.essential && rec.essential).then_some("essential").or((self.required && rec.priority == "required").then_some("priority required"));
            if let Some(why) = wanted {
                if dinv_deb::to_candidate(rec, 0, &self.arch).is_ok() {
                    requests.push(request(&rec.package, Op::Any, "", why));
                }
            }
        }
        let (index, candidates) = self.reachable(&requests);
        tracing::debug!(source = %self.name, set = what, candidates = candidates.len(), of = self.records.len(), "universe");
        let universe = Universe { candidates: candidates.into(), scheme: &DebVersions, rules: dinv_solver::Rules::Generic };
        let res = dinv_solver::solve(&universe, &requests)
            .map_err(|source| Error::Resolve { source_name: self.name.clone(), set: what.to_string(), source })?;
        Ok(res
            .selected
            .iter()
            .map(|s| {
                let r = &self.records[index[s.candidate]];
                ResolvedPackage {
                    source: self.name.clone(),
                    name: r.package.clone(),
                    version: r.version.clone(),
                    arch: r.architecture.clone(),
                    url: join_url(&self.mirror, &r.filename),
                    checksum: r.sha256.clone(),
                    size: r.size,
                    installed_size: r.installed_size.unwrap_or(0) * 1024,
                    license: None,
                    origin: Some(r.source.clone()).filter(|s| !s.is_empty()),
                    maintainer: Some(r.maintainer.clone()).filter(|s| !s.is_empty()),
                    homepage: Some(r.homepage.clone()).filter(|s| !s.is_empty()),
                    description: Some(r.description.clone()).filter(|s| !s.is_empty()),
                    build_time: None,
                    reasons: s.reasons.clone(),
                }
            })
            .collect())
    }

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
        self.by_name.keys().map(String::as_str).collect()
    }

    fn vendor_name(&self, p: &ResolvedPackage) -> Result<PathBuf> {
        Ok(Path::new("sha256").join(sha256_hex(p)?))
    }

    /// The index checksum of a .deb is already the file's SHA-256, verified on fetch.
    fn file_sha256(&self, _cache: &Cache, p: &ResolvedPackage) -> Result<String> {
        sha256_hex(p)
    }
}

/// Like apt, prefer more important packages among the providers of a
/// virtual name (`awk`: mawk is `required`, gawk `optional`).
fn priority_rank(priority: &str) -> u32 {
    match priority.trim() {
        "required" => 5,
        "important" => 4,
        "standard" => 3,
        "optional" => 2,
        "extra" => 1,
        _ => 0,
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

    fn set_of(records: Vec<PackageRecord>) -> DebSourceSet {
        let mut set = DebSourceSet {
            name: "debian".into(),
            arch: "amd64".into(),
            mirror: "http://mirror.invalid/debian".into(),
            essential: true,
            required: false,
            key_digests: BTreeMap::new(),
            records,
            by_name: HashMap::new(),
            providers: HashMap::new(),
        };
        set.index_records();
        set
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
        let set = set_of(records);
        let mut all = Vec::new();
        for rec in &set.records {
            if let Ok(mut c) = dinv_deb::to_candidate(rec, 0, "amd64") {
                c.provider_priority = priority_rank(&rec.priority);
                all.push(c);
            }
        }
        for packages in [
            vec!["docker.io", "qemu-guest-agent", "linux-image-amd64", "iptables", "e2fsprogs", "kmod", "iproute2", "ca-certificates"],
            vec!["qemu-system-x86", "docker.io", "ca-certificates"],
        ] {
            let names: Vec<String> = packages.iter().map(|s| s.to_string()).collect();
            let reached = set.resolve_names(&names, "recipe", "guest").unwrap();
            let mut requests: Vec<Request> = names
                .iter()
                .map(|n| Request {
                    dependency: Dependency { alternatives: vec![Constraint { name: n.clone(), op: Op::Any, version: String::new(), tag: None }] },
                    reason: "recipe".into(),
                })
                .collect();
            requests.extend(all.iter().filter(|c| c.essential).map(|c| Request {
                dependency: Dependency { alternatives: vec![Constraint { name: c.name.clone(), op: Op::Any, version: String::new(), tag: None }] },
                reason: "essential".into(),
            }));
            let universe = Universe { candidates: (&all[..]).into(), scheme: &DebVersions, rules: dinv_solver::Rules::Generic };
            let whole = dinv_solver::solve(&universe, &requests).unwrap();
            let a: Vec<(String, String)> = reached.iter().map(|p| (p.name.clone(), p.version.clone())).collect();
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
