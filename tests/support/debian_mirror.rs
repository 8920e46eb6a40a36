//! A local Debian mirror for tests.
//!
//! `debian/dists/<suite>/InRelease` and `main/binary-amd64/Packages` (and
//! `debian-security/dists/...` for security suites) are the real files:
//! from `/var/lib/apt/lists` for bookworm, or from a private apt's lists
//! ([`crate::apt`]) for any suite (the Packages file is stored
//! lz4-compressed there, and once decompressed its SHA256 matches the
//! InRelease entry). Package files are fetched with `apt-get download
//! NAME=VERSION` into the archive's pool at their `Filename`, kept in a
//! cache directory across runs, and the tree is served over HTTP on
//! 127.0.0.1.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use crate::apt::{release_suites, Apt, Archive};

/// A file in /var/lib/apt/lists whose name ends with `suffix`.
pub fn apt_list(suffix: &str) -> PathBuf {
    let dir = Path::new("/var/lib/apt/lists");
    let found = fs::read_dir(dir)
        .ok()
        .and_then(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| p.file_name().unwrap().to_string_lossy().ends_with(suffix)));
    found.unwrap_or_else(|| panic!("no *{suffix} in {}: run `apt-get update` (with bookworm main in the apt sources) first", dir.display()))
}

/// Decompresses a file of concatenated LZ4 frames (apt's `.lz4` lists).
pub fn lz4_frames(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    lz4_flex::frame::FrameDecoder::new(fs::File::open(path).unwrap()).read_to_end(&mut out).unwrap();
    out
}

pub use crate::http::{percent_decode, serve};

/// The served mirror: `debian/` and `debian-security/` trees on
/// 127.0.0.1, as Debian lays them out, so a recipe's security suites are
/// found `debian-security` next to the mirror's `debian`.
pub struct Mirror {
    pub root: PathBuf,
    pub port: u16,
    /// Package → (version → Filename) over every suite.
    pub filenames: BTreeMap<String, BTreeMap<String, String>>,
    /// (package, version) → each archive whose suites list it, with its
    /// Filename there (the security archive's pool is `pool/updates/`).
    archives: BTreeMap<(String, String), Vec<(Archive, String)>>,
    /// Where packages are downloaded from: the host's apt, or a private one.
    apt: Option<Apt>,
    _dir: Option<tempfile::TempDir>,
}

impl Mirror {
    /// A bookworm-only mirror with the real metadata in a fresh temporary directory.
    pub fn new() -> Mirror {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("mirror");
        let mut m = Mirror::at(&root);
        m._dir = Some(dir);
        m
    }

    /// A bookworm-only mirror in `root` (kept between runs, so downloaded
    /// packages are reused), from this host's apt lists.
    pub fn at(root: &Path) -> Mirror {
        let in_release = fs::read(apt_list("_dists_bookworm_InRelease")).unwrap();
        let packages = lz4_frames(&apt_list("_dists_bookworm_main_binary-amd64_Packages.lz4"));
        Mirror::from_suites(root, vec![("bookworm".into(), Archive::Main, in_release, packages)], None, "amd64")
    }

    /// A mirror of several suites of the real archive (e.g.
    /// [`release_suites`]`("trixie")`), read through a private apt whose
    /// state is kept in `apt_dir`; packages come from that apt too.
    pub fn of_suites(root: &Path, apt_dir: &Path, suites: &[(String, Archive)]) -> Mirror {
        Mirror::of_suites_for(root, apt_dir, suites, "amd64")
    }

    /// [`Mirror::of_suites`] of another architecture (`arm64`).
    pub fn of_suites_for(root: &Path, apt_dir: &Path, suites: &[(String, Archive)], arch: &str) -> Mirror {
        let apt = Apt::for_arch(apt_dir, suites, arch);
        let data = suites.iter().map(|(s, a)| (s.clone(), *a, apt.in_release(s), apt.packages(s))).collect();
        Mirror::from_suites(root, data, Some(apt), arch)
    }

    fn from_suites(root: &Path, suites: Vec<(String, Archive, Vec<u8>, Vec<u8>)>, apt: Option<Apt>, arch: &str) -> Mirror {
        let mut filenames: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut archives: BTreeMap<(String, String), Vec<(Archive, String)>> = BTreeMap::new();
        for (suite, archive, in_release, packages) in suites {
            let dists = root.join(archive.dir()).join("dists").join(&suite);
            let binary = format!("main/binary-{arch}");
            fs::create_dir_all(dists.join(&binary)).unwrap();
            write_if_changed(&dists.join("InRelease"), &in_release);
            write_if_changed(&dists.join(&binary).join("Packages"), &packages);
            for para in String::from_utf8_lossy(&packages).split("\n\n") {
                let get = |f: &str| para.lines().find_map(|l| l.strip_prefix(&format!("{f}: ")[..]).map(str::to_string));
                if let (Some(n), Some(v), Some(f)) = (get("Package"), get("Version"), get("Filename")) {
                    filenames.entry(n.clone()).or_default().insert(v.clone(), f.clone());
                    let a = archives.entry((n, v)).or_default();
                    if !a.contains(&(archive, f.clone())) {
                        a.push((archive, f));
                    }
                }
            }
        }
        let port = serve(root.to_path_buf());
        Mirror { root: root.to_path_buf(), port, filenames, archives, apt, _dir: None }
    }

    /// The private apt the mirror is filled through, if any.
    pub fn apt(&self) -> Option<&Apt> {
        self.apt.as_ref()
    }

    /// The main archive's URL (`--debian-mirror`); the security archive is
    /// `debian-security` next to it.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/debian", self.port)
    }

    /// The security archive's URL.
    pub fn security_url(&self) -> String {
        format!("http://127.0.0.1:{}/debian-security", self.port)
    }

    /// Makes sure every `(name, version)` is in the pool of each archive
    /// that lists it, fetching missing ones with `apt-get download`
    /// (several per call). Panics with apt's message when a download fails.
    pub fn ensure_packages(&self, pkgs: &[(String, String)]) {
        let mut missing = Vec::new();
        for (n, v) in pkgs {
            let at = self.archives.get(&(n.clone(), v.clone())).unwrap_or_else(|| panic!("{n}={v} is not in the mirror's indexes"));
            let dests: Vec<PathBuf> = at.iter().map(|(a, f)| self.root.join(a.dir()).join(f)).collect();
            if dests.iter().any(|d| !d.is_file()) {
                missing.push((n.clone(), v.clone(), dests));
            }
        }
        if missing.is_empty() {
            return;
        }
        // Tests share mirrors: each call downloads into its own directory
        // and renames into the pool.
        fs::create_dir_all(self.root.join(".download")).unwrap();
        let dl_dir = tempfile::tempdir_in(self.root.join(".download")).unwrap();
        let dl = dl_dir.path().to_path_buf();
        for chunk in missing.chunks(40) {
            let args: Vec<(String, String)> = chunk.iter().map(|(n, v, _)| (n.clone(), v.clone())).collect();
            match &self.apt {
                Some(apt) => apt.download(&args, &dl),
                None => {
                    let names: Vec<String> = args.iter().map(|(n, v)| format!("{n}={v}")).collect();
                    let out = Command::new("apt-get").args(["download", "-q", "-o", "Debug::NoLocking=1"]).args(&names).current_dir(&dl).output().expect("apt-get");
                    assert!(out.status.success(), "apt-get download failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
                }
            }
            for (n, _, dests) in chunk {
                // apt names a download NAME_VERSION_ARCH.deb with the epoch as
                // `%3a`, while pool names drop the epoch: match by name.
                let find = || {
                    fs::read_dir(&dl).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).find(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("{n}_")))
                };
                let got = find().or_else(|| {
                    // Seen once under load: a package of the batch missing
                    // although apt succeeded. Once more, alone.
                    let v = &chunk.iter().find(|(m, _, _)| m == n).unwrap().1;
                    match &self.apt {
                        Some(apt) => apt.download(&[(n.clone(), v.clone())], &dl),
                        None => {
                            let _ = Command::new("apt-get").args(["download", "-q", "-o", "Debug::NoLocking=1", &format!("{n}={v}")]).current_dir(&dl).status();
                        }
                    }
                    find()
                });
                let got = got.unwrap_or_else(|| panic!("apt-get download did not produce {n} in {}: {:?}", dl.display(), fs::read_dir(&dl).unwrap().map(|e| e.unwrap().file_name()).collect::<Vec<_>>()));
                for dest in dests {
                    write_if_changed(dest, &fs::read(&got).unwrap());
                }
                fs::remove_file(&got).unwrap();
            }
        }
    }
}

/// Writes `bytes` to `path` by a rename (readers never see half a file),
/// unless it holds them already: tests running at once share a mirror.
fn write_if_changed(path: &Path, bytes: &[u8]) {
    if fs::read(path).is_ok_and(|b| b == bytes) {
        return;
    }
    let dir = path.parent().unwrap();
    fs::create_dir_all(dir).unwrap();
    let mut tmp = tempfile::NamedTempFile::new_in(dir).unwrap();
    std::io::Write::write_all(&mut tmp, bytes).unwrap();
    tmp.persist(path).unwrap();
}

/// The mirror of a release's three suites the tests keep under `tmp`
/// (target/tmp): trixie's is the end-to-end test's, bookworm's the suites
/// test's, so a benchmark reuses what the tests downloaded.
pub fn release_mirror(tmp: &Path, codename: &str) -> Mirror {
    release_mirror_for(tmp, codename, "amd64")
}

/// [`release_mirror`] of another architecture (`arm64`): its own mirror
/// and apt state, `…-arm64` beside the amd64 ones.
pub fn release_mirror_for(tmp: &Path, codename: &str, arch: &str) -> Mirror {
    let (root, apt) = release_dirs(tmp, codename, arch);
    Mirror::of_suites_for(&root, &apt, &release_suites(codename), arch)
}

/// Where [`release_mirror_for`] keeps a release's mirror of one
/// architecture, and its private apt's state.
fn release_dirs(tmp: &Path, codename: &str, arch: &str) -> (PathBuf, PathBuf) {
    match (codename, arch) {
        ("trixie", "amd64") => (tmp.join("e2e-debian/mirror"), tmp.join("e2e-debian/apt")),
        (_, "amd64") => (tmp.join(format!("debian-suites/{codename}-mirror")), tmp.join(format!("apt-{codename}"))),
        _ => (tmp.join(format!("debian-{arch}/{codename}-mirror")), tmp.join(format!("apt-{codename}-{arch}"))),
    }
}

impl Mirror {
    /// Downloads every package `dinv-build resolve --json RECIPE` selects
    /// (guest and runtime) into the mirror.
    pub fn fill_for(&self, dinv: &Path, recipe: &Path, cache: &Path) {
        let out = Command::new(dinv)
            .args(["resolve", "--json"])
            .arg(recipe)
            .env("DINV_DEBIAN_MIRROR", self.url())
            .env("DINV_CACHE_DIR", cache)
            .env_remove("RUST_LOG")
            .output()
            .expect("dinv-build resolve");
        assert!(out.status.success(), "dinv-build resolve {}: {}", recipe.display(), String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut wanted: Vec<(String, String)> = v["sets"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["packages"].as_array().unwrap().iter())
            .map(|p| (p["name"].as_str().unwrap().to_string(), p["version"].as_str().unwrap().to_string()))
            .collect();
        wanted.sort();
        wanted.dedup();
        self.ensure_packages(&wanted);
    }
}

/// One mirror of a release's three suites serving several architectures
/// (`amd64`, `arm64`) from one root, for a multi-platform recipe: each
/// architecture's lists come from its own private apt (the ones
/// [`release_mirror_for`] keeps), and its packages through that apt. The
/// suites' InRelease files must be the same for all (they list every
/// architecture's Packages): when the apts fetched them at different times
/// they are refreshed once. Pool files the per-architecture mirrors hold
/// already are linked, not downloaded again.
pub fn release_mirror_multi(tmp: &Path, codename: &str, arches: &[&str]) -> Vec<(String, Mirror)> {
    let suites = release_suites(codename);
    let root = tmp.join(format!("debian-multi/{codename}-mirror"));
    let apt_dir = |arch: &str| release_dirs(tmp, codename, arch).1;
    for arch in arches {
        link_pool(&release_dirs(tmp, codename, arch).0, &root);
    }
    for attempt in 0..2 {
        let apts: Vec<Apt> = arches.iter().map(|a| Apt::for_arch(&apt_dir(a), &suites, a)).collect();
        let same = suites.iter().all(|(s, _)| apts.iter().all(|a| a.in_release(s) == apts[0].in_release(s)));
        if same {
            return arches.iter().map(|a| (a.to_string(), Mirror::of_suites_for(&root, &apt_dir(a), &suites, a))).collect();
        }
        assert_eq!(attempt, 0, "the apts of {arches:?} still disagree on {codename}'s InRelease after a refresh");
        for a in arches {
            let _ = fs::remove_file(apt_dir(a).join("updated"));
        }
    }
    unreachable!()
}

/// Hard-links every pool file below `from` into `to` where `to` lacks it.
fn link_pool(from: &Path, to: &Path) {
    let mut stack = vec![from.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(from).unwrap();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                if rel != Path::new("debian/dists") && rel != Path::new("debian-security/dists") && rel != Path::new(".download") {
                    stack.push(p);
                }
            } else if rel.components().any(|c| c.as_os_str() == "pool") {
                let dest = to.join(rel);
                if !dest.exists() {
                    fs::create_dir_all(dest.parent().unwrap()).unwrap();
                    if fs::hard_link(&p, &dest).is_err() {
                        fs::copy(&p, &dest).unwrap();
                    }
                }
            }
        }
    }
}

/// Downloads every package `dinv-build resolve --json RECIPE` selects for
/// each platform of a multi-platform recipe into the mirror of its
/// architecture (from [`release_mirror_multi`]).
pub fn fill_platforms(mirrors: &[(String, Mirror)], dinv: &Path, recipe: &Path, cache: &Path) {
    let url = mirrors[0].1.url();
    let out = Command::new(dinv).args(["resolve", "--json"]).arg(recipe).env("DINV_DEBIAN_MIRROR", &url).env("DINV_CACHE_DIR", cache).env_remove("RUST_LOG").output().expect("dinv-build resolve");
    assert!(out.status.success(), "dinv-build resolve {}: {}", recipe.display(), String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (arch, mirror) in mirrors {
        let sets = v["platforms"][format!("linux/{arch}")]["sets"].as_array().unwrap_or_else(|| panic!("no linux/{arch} in the resolution: {v}"));
        let mut wanted: Vec<(String, String)> =
            sets.iter().flat_map(|s| s["packages"].as_array().unwrap().iter()).map(|p| (p["name"].as_str().unwrap().to_string(), p["version"].as_str().unwrap().to_string())).collect();
        wanted.sort();
        wanted.dedup();
        mirror.ensure_packages(&wanted);
    }
}
