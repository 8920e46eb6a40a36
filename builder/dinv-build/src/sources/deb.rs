//! The Debian source: a signed `InRelease`, `Packages` indices checked
//! against it, resolution (with the essential set), verified `.deb`
//! downloads, and data archives streamed into a merged-/usr tree.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use dinv_deb::{DebVersions, Keyring, PackageRecord, Release};
use dinv_fstree::Tree;
use dinv_solver::{Candidate, Constraint, Dependency, Op, Request, Universe};
use sha2::{Digest, Sha256};

use super::common::{cached_data, fetch_all, unpack_all, Prepared, UnpackStats};
use super::ResolvedPackage;
use crate::cache::Cache;
use crate::fetch::{join_url, FetchError, Fetcher};
use crate::progress::Progress;
use crate::recipe::DebSource;
use crate::{Error, Result};

/// An opened Debian source: verified Release, parsed indices, candidates.
pub struct DebSourceSet {
    name: String,
    arch: String,
    mirror: String,
    essential: bool,
    required: bool,
    /// Keyring file name → SHA-256 of the file, for the lock file.
    key_digests: BTreeMap<String, String>,
    records: Vec<PackageRecord>,
    /// Record index of each candidate.
    index: Vec<usize>,
    candidates: Vec<Candidate>,
}

/// Where the apt configuration lives on the host.
const APT_ETC: &str = "/etc/apt";

/// The first archive URL in the apt sources under `etc` (`sources.list`,
/// `sources.list.d/*.list` and `*.sources`) that serves `suite`.
pub fn host_mirror(etc: &Path, suite: &str) -> Option<String> {
    let mut files = vec![etc.join("sources.list")];
    if let Ok(rd) = fs::read_dir(etc.join("sources.list.d")) {
        let mut more: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    for f in files {
        let Ok(text) = fs::read_to_string(&f) else { continue };
        let found = match f.extension().and_then(|e| e.to_str()) {
            Some("list") => mirror_in_one_line(&text, suite),
            Some("sources") => mirror_in_deb822(&text, suite),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// One-line style: `deb [opts] URL SUITE COMPONENTS...`.
fn mirror_in_one_line(text: &str, suite: &str) -> Option<String> {
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(rest) = line.strip_prefix("deb ").or_else(|| line.strip_prefix("deb\t")) else { continue };
        let mut rest = rest.trim_start();
        if rest.starts_with('[') {
            rest = rest.split_once(']').map(|(_, r)| r.trim_start()).unwrap_or("");
        }
        let mut words = rest.split_whitespace();
        if let (Some(url), Some(s)) = (words.next(), words.next()) {
            if s == suite {
                return Some(url.to_string());
            }
        }
    }
    None
}

/// deb822 style: paragraphs with `Types`, `URIs`, `Suites`.
fn mirror_in_deb822(text: &str, suite: &str) -> Option<String> {
    for para in text.split("\n\n") {
        let mut fields: BTreeMap<String, String> = BTreeMap::new();
        for line in para.lines().filter(|l| !l.trim_start().starts_with('#')) {
            if let Some((k, v)) = line.split_once(':').filter(|_| !line.starts_with(' ')) {
                fields.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let has = |k: &str, w: &str| fields.get(k).is_some_and(|v| v.split_whitespace().any(|x| x == w));
        if fields.get("enabled").is_some_and(|v| v == "no") || !has("types", "deb") || !has("suites", suite) {
            continue;
        }
        if let Some(url) = fields.get("uris").and_then(|u| u.split_whitespace().next()) {
            return Some(url.to_string());
        }
    }
    None
}

fn load_keyrings(src_name: &str, paths: &[String]) -> Result<(Keyring, BTreeMap<String, String>)> {
    let mut ring: Option<Keyring> = None;
    let mut digests = BTreeMap::new();
    for p in paths {
        let path = Path::new(p);
        let bytes = fs::read(path).map_err(|e| Error::Usage(format!("sources.{src_name}.keyrings: {p}: {e}")))?;
        let k = Keyring::from_bytes(&bytes).map_err(|e| Error::Integrity { subject: format!("keyring {p}"), check: e.to_string() })?;
        match &mut ring {
            Some(r) => r.extend(k),
            None => ring = Some(k),
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        digests.insert(name, hex::encode(Sha256::digest(&bytes)));
    }
    let ring = match ring {
        Some(r) => r,
        None => Keyring::from_bytes(&[]).map_err(|e| Error::Usage(format!("sources.{src_name}.keyrings is empty: {e}")))?,
    };
    Ok((ring, digests))
}

/// The cache path of a mirror-relative metadata file (named by a digest
/// of its URL, so no host name appears on disk).
fn meta_cache_path(cache: &Cache, url: &str) -> PathBuf {
    cache.root().join("indexes").join(format!("deb-{}", hex::encode(Sha256::digest(url.as_bytes()))))
}

/// Fetches a metadata file, caching it; offline, reads the cached copy.
fn fetch_meta(fetcher: &Fetcher, cache: &Cache, url: &str) -> Result<Vec<u8>, FetchError> {
    let cached = meta_cache_path(cache, url);
    if fetcher.is_offline() && Fetcher::local_path(url).is_none() {
        return fs::read(&cached).map_err(|_| FetchError::Offline { url: url.to_string() });
    }
    let b = fetcher.fetch_bytes(url, "index")?;
    // A failed cache write only costs the offline copy.
    if let Err(e) = cache.write_atomic(&cached, |f| f.write_all(&b)) {
        tracing::debug!("cannot cache {url}: {e}");
    }
    Ok(b)
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
    pub fn open(name: &str, src: &DebSource, mirror_override: Option<&str>, fetcher: &Fetcher, cache: &Cache) -> Result<DebSourceSet> {
        let mirror = src
            .mirror
            .clone()
            .or_else(|| mirror_override.map(str::to_string))
            .or_else(|| host_mirror(Path::new(APT_ETC), &src.suite))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "sources.{name}: no mirror: set `mirror`, pass --debian-mirror or DINV_DEBIAN_MIRROR, or add suite {} to the host's apt sources",
                    src.suite
                ))
            })?;
        let (keyring, key_digests) = load_keyrings(name, &src.keyrings)?;
        let dists = join_url(&mirror, &format!("dists/{}", src.suite));
        let release = Self::verified_release(name, src, &dists, &keyring, fetcher, cache)?;
        let mut records = Vec::new();
        for component in &src.components {
            records.extend(Self::packages(src, component, &dists, &release, fetcher, cache)?);
        }
        let mut set = DebSourceSet {
            name: name.to_string(),
            arch: src.arch.clone(),
            mirror,
            essential: src.essential,
            required: src.required,
            key_digests,
            records,
            index: vec![],
            candidates: vec![],
        };
        for (i, rec) in set.records.iter().enumerate() {
            match dinv_deb::to_candidate(rec, 0, &set.arch) {
                Ok(mut c) => {
                    c.provider_priority = priority_rank(&rec.priority);
                    set.candidates.push(c);
                    set.index.push(i);
                }
                Err(e) => tracing::debug!("skipping {} {}: {e}", rec.package, rec.version),
            }
        }
        tracing::info!(source = name, suite = %src.suite, packages = set.candidates.len(), "Debian indices verified");
        Ok(set)
    }

    /// Loads keyrings only, for installing packages fixed by a lock file:
    /// no Release or Packages index is fetched; each `.deb` is checked
    /// against the locked SHA-256 and size.
    pub fn from_lock(name: &str, src: &DebSource, mirror_override: Option<&str>) -> Result<DebSourceSet> {
        let (_, key_digests) = load_keyrings(name, &src.keyrings)?;
        let mirror = src.mirror.clone().or_else(|| mirror_override.map(str::to_string)).unwrap_or_default();
        Ok(DebSourceSet {
            name: name.to_string(),
            arch: src.arch.clone(),
            mirror,
            essential: src.essential,
            required: src.required,
            key_digests,
            records: vec![],
            index: vec![],
            candidates: vec![],
        })
    }

    /// InRelease (or Release + Release.gpg), verified and parsed.
    fn verified_release(name: &str, src: &DebSource, dists: &str, keyring: &Keyring, fetcher: &Fetcher, cache: &Cache) -> Result<Release> {
        let in_url = join_url(dists, "InRelease");
        let subject = format!("{} InRelease", src.suite);
        let verified = match fetch_meta(fetcher, cache, &in_url) {
            Ok(bytes) => match dinv_deb::verify_clearsigned(&bytes, keyring, "InRelease") {
                Ok(v) => Ok(v.text),
                Err(e) => Err((subject, e, bytes)),
            },
            Err(e) if is_not_found(&e) => {
                let rel_url = join_url(dists, "Release");
                let bytes = fetch_meta(fetcher, cache, &rel_url)?;
                let sig = fetch_meta(fetcher, cache, &join_url(dists, "Release.gpg"))?;
                match dinv_deb::verify_detached(&bytes, &sig, keyring, "Release") {
                    Ok(v) => Ok(v.text),
                    Err(e) => Err((format!("{} Release", src.suite), e, bytes)),
                }
            }
            Err(e) => return Err(e.into()),
        };
        let text = match verified {
            Ok(t) => t,
            Err((subject, e, bytes)) if src.allow_untrusted => {
                tracing::warn!("UNTRUSTED {subject} of source {name}: {e}; using it because allow_untrusted = true");
                clear_text(&bytes)
            }
            Err((subject, e, _)) => return Err(Error::Integrity { subject, check: e.to_string() }),
        };
        let release = Release::parse(&text).map_err(|e| Error::Integrity { subject: format!("{} Release", src.suite), check: e.to_string() })?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        release.check_valid_at(now).map_err(|e| Error::Integrity { subject: format!("{} Release", src.suite), check: e.to_string() })?;
        Ok(release)
    }

    /// One component's Packages index: the best listed variant the mirror
    /// has, checked against the Release.
    fn packages(src: &DebSource, component: &str, dists: &str, release: &Release, fetcher: &Fetcher, cache: &Cache) -> Result<Vec<PackageRecord>> {
        let variants = release.packages_indices(component, &src.arch);
        if variants.is_empty() {
            return Err(Error::Usage(format!("{} Release lists no {component}/binary-{}/Packages index", src.suite, src.arch)));
        }
        let mut last = None;
        for f in variants {
            let url = join_url(dists, &f.path);
            // Content-addressed: a cached index with the listed digest is current.
            let cached = cache.root().join("indexes").join(format!("deb-sha256-{}", f.sha256));
            let bytes = match fs::read(&cached) {
                Ok(b) => b,
                Err(_) => match fetcher.fetch_bytes(&url, "index") {
                    Ok(b) => b,
                    Err(e) if is_not_found(&e) => {
                        last = Some(e);
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                },
            };
            f.verify(&bytes).map_err(|e| Error::Integrity { subject: format!("{} {}", src.suite, f.path), check: e.to_string() })?;
            let _ = cache.write_atomic(&cached, |w| w.write_all(&bytes));
            let plain = dinv_deb::decompress(&bytes, f.compression(), &f.path)
                .map_err(|e| Error::Integrity { subject: format!("{} {}", src.suite, f.path), check: e.to_string() })?;
            let recs = dinv_deb::parse_packages_bytes(&plain, &f.path)
                .map_err(|e| Error::Integrity { subject: format!("{} {}", src.suite, f.path), check: e.to_string() })?;
            tracing::info!(index = %f.path, packages = recs.len(), "Packages verified");
            return Ok(recs);
        }
        Err(last.map(Error::from).unwrap_or_else(|| Error::Usage(format!("no Packages index for {component}"))))
    }

    /// SHA-256 of each keyring file, by file name.
    pub fn key_digests(&self) -> &BTreeMap<String, String> {
        &self.key_digests
    }

    /// Number of installable index records.
    pub fn index_len(&self) -> usize {
        self.candidates.len()
    }

    /// Resolves package names (`name` or `name=version`) plus the essential
    /// (and, if asked, required) set into packages in install order.
    pub fn resolve(&self, packages: &[String], reason: &str, what: &str) -> Result<Vec<ResolvedPackage>> {
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
        for &ri in &self.index {
            let rec = &self.records[ri];
            if self.essential && rec.essential {
                requests.push(request(&rec.package, Op::Any, "", "essential"));
            } else if self.required && rec.priority == "required" {
                requests.push(request(&rec.package, Op::Any, "", "priority required"));
            }
        }
        let universe = Universe { candidates: self.candidates.clone(), scheme: &DebVersions };
        let res = dinv_solver::solve(&universe, &requests)
            .map_err(|e| Error::Resolve { source_name: self.name.clone(), what: what.to_string(), message: e.to_string() })?;
        Ok(res
            .selected
            .iter()
            .map(|s| {
                let r = &self.records[self.index[s.candidate]];
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

    /// Downloads every package not yet in the cache, verifying each against
    /// the signed index before it enters the cache. Returns bytes downloaded.
    pub fn fetch(&self, pkgs: &[ResolvedPackage], fetcher: &Fetcher, cache: &Cache, progress: &Progress) -> Result<u64> {
        fetch_all(pkgs, fetcher, cache, progress, |p| blob_path(cache, p), verify)
    }

    /// Lays out merged-/usr, then verifies each cached package again and
    /// unpacks its data into the tree in install order (decompression in
    /// parallel, insertion sequential so later packages win deterministically).
    pub fn unpack(&self, pkgs: &[ResolvedPackage], cache: &Cache, tree: &mut Tree, progress: &Progress) -> Result<UnpackStats> {
        dinv_deb::create_merged_usr_links(tree, &self.arch).map_err(|e| Error::stage("unpack", format!("merged-/usr layout: {e}")))?;
        let rewrite = |p: &dinv_fstree::TreePath| dinv_deb::merged_usr(p);
        unpack_all(pkgs, tree, progress, Some(&rewrite), |p| prepare(p, cache))
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

/// Cache path of a package file (by its SHA-256).
pub fn blob_path(cache: &Cache, p: &ResolvedPackage) -> Result<PathBuf> {
    if p.checksum.len() != 64 || !p.checksum.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Integrity { subject: p.id(), check: format!("index has no usable SHA256 ({:?})", p.checksum) });
    }
    Ok(cache.blob_path("sha256", &p.checksum.to_ascii_lowercase()))
}

fn verify(p: &ResolvedPackage, bytes: &[u8]) -> Result<()> {
    dinv_deb::verify_blob(bytes, &p.checksum, p.size, &format!("{}.deb", p.id()))
        .map_err(|e| Error::Integrity { subject: p.id(), check: e.to_string() })
}

fn prepare(p: &ResolvedPackage, cache: &Cache) -> Result<Prepared> {
    let path = blob_path(cache, p)?;
    let bytes = fs::read(&path).map_err(Error::io(&path))?;
    verify(p, &bytes).map_err(|e| match e {
        Error::Integrity { subject, check } => Error::Integrity { subject, check: format!("{check} (cached file {})", path.display()) },
        e => e,
    })?;
    let deb_err = |e: dinv_deb::DebError| Error::Integrity { subject: p.id(), check: e.to_string() };
    let mut deb = dinv_deb::open_deb(io::BufReader::new(&bytes[..]), &p.id()).map_err(deb_err)?;
    let scripts = deb.take_control().scripts;
    let key = format!("deb-{}", p.checksum.to_ascii_lowercase());
    cached_data(cache, &key, &p.id(), scripts, || Ok(Box::new(deb.into_data().map_err(deb_err)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_sources_in_both_formats() {
        let one = "# c\ndeb [signed-by=/k.gpg arch=amd64] http://a.invalid/debian bookworm main\ndeb http://b.invalid/debian trixie main\n";
        assert_eq!(mirror_in_one_line(one, "trixie").as_deref(), Some("http://b.invalid/debian"));
        assert_eq!(mirror_in_one_line(one, "bookworm").as_deref(), Some("http://a.invalid/debian"));
        assert_eq!(mirror_in_one_line(one, "sid"), None);
        let d = "Types: deb\nURIs: http://c.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb deb-src\nURIs: http://d.invalid/sec\nSuites: bookworm-security\n";
        assert_eq!(mirror_in_deb822(d, "bookworm-updates").as_deref(), Some("http://c.invalid/debian"));
        assert_eq!(mirror_in_deb822(d, "bookworm-security").as_deref(), Some("http://d.invalid/sec"));
        assert_eq!(mirror_in_deb822(d, "sid"), None);

        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("sources.list.d")).unwrap();
        fs::write(dir.path().join("sources.list.d/x.sources"), d).unwrap();
        fs::write(dir.path().join("sources.list.d/y.list.disabled"), one).unwrap();
        assert_eq!(host_mirror(dir.path(), "bookworm").as_deref(), Some("http://c.invalid/debian"));
        assert_eq!(host_mirror(dir.path(), "trixie"), None);
    }

    #[test]
    fn clear_text_undoes_dash_escaping() {
        let s = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: X\n- -dash\n-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n";
        assert_eq!(clear_text(s.as_bytes()), "Origin: X\n-dash");
    }
}
