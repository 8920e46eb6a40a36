//! apt as the judge of the solver. A private apt (tests/support/apt.rs:
//! its own state, lists, caches, an empty dpkg status, no recommends, the
//! archive keyring) reads the same suites as the recipe, and
//! `apt-get install --simulate` says what it would install on an empty
//! system. Its name=version set must equal ours:
//!
//! - for the guest and runtime sets of recipes/debian.toml (trixie,
//!   trixie-updates, trixie-security) and of the bookworm example, through
//!   `dinv-build resolve --json` (the request is the recipe's packages
//!   plus every `Essential: yes` package, as ours);
//! - for random single-package requests drawn from the real trixie index
//!   (`DINV_APT_JUDGE_REQUESTS`, default 300; seed `DINV_APT_JUDGE_SEED`,
//!   printed on failure), resolved by the same `dinv_deb::DebIndex` the
//!   Debian source uses.
//!
//! Where we differ on purpose, the difference is listed in
//! `apt_differences.toml` beside this file, with why; the test reads it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use dinv_test_support as support;
use support::apt::Apt;
use support::cli::{text, Cli};
use support::debian_mirror::{release_suites, Mirror};

fn tmp() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// `apt_differences.toml`: `[[difference]]` tables with `request` (a
/// package name, or `recipe:<file>:<set>`), `package` (the package whose
/// choice differs), and `why`.
fn deliberate() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/sources/apt_differences.toml")).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    doc.get("difference")
        .and_then(|d| d.as_array())
        .map(|a| {
            a.iter()
                .map(|d| {
                    let get = |k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or_else(|| panic!("apt_differences.toml: a difference without `{k}`")).to_string();
                    assert!(!get("why").trim().is_empty(), "apt_differences.toml: every difference says why");
                    (get("request"), get("package"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The packages in only one of the two answers, by name.
fn differences(ours: &BTreeSet<(String, String)>, apt: &BTreeSet<(String, String)>) -> BTreeMap<String, (Option<String>, Option<String>)> {
    let mut out: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    for (n, v) in ours.difference(apt) {
        out.entry(n.clone()).or_default().0 = Some(v.clone());
    }
    for (n, v) in apt.difference(ours) {
        out.entry(n.clone()).or_default().1 = Some(v.clone());
    }
    out
}

fn unexplained(request: &str, diff: BTreeMap<String, (Option<String>, Option<String>)>, allowed: &[(String, String)]) -> Vec<String> {
    diff.into_iter()
        .filter(|(n, _)| !allowed.iter().any(|(r, p)| (r == request || r == "*") && (p == n || p == "*")))
        .map(|(n, (ours, apt))| format!("{request}: {n}: ours {}, apt {}", ours.as_deref().unwrap_or("-"), apt.as_deref().unwrap_or("-")))
        .collect()
}

/// The recipe's sets resolved by us (through the CLI) and by apt.
fn judge_recipe(recipe: &str, codename: &str, allowed: &[(String, String)]) -> Vec<String> {
    let suites = release_suites(codename);
    let m = Mirror::of_suites(&tmp().join(format!("apt-judge/{codename}-mirror")), &tmp().join(format!("apt-{codename}")), &suites);
    let apt = Apt::at(&tmp().join(format!("apt-{codename}")), &suites);
    let dir = tempfile::tempdir().unwrap();
    let out = Cli::new(env!("CARGO_BIN_EXE_dinv-build"), dir.path()).cache(dir.path().join("cache")).env("DINV_DEBIAN_MIRROR", m.url()).run(&["resolve", "--json", &repo_root().join(recipe).display().to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let l = dinv_build::recipe::load(&repo_root().join(recipe)).unwrap();
    let essential = essential_names(&apt, &suites);
    let mut problems = Vec::new();
    for set in v["sets"].as_array().unwrap() {
        let name = set["set"].as_str().unwrap();
        let ours: BTreeSet<(String, String)> =
            set["packages"].as_array().unwrap().iter().map(|p| (p["name"].as_str().unwrap().to_string(), p["version"].as_str().unwrap().to_string())).collect();
        let mut request: Vec<String> = if name == "guest" { l.recipe.guest.packages.clone() } else { l.recipe.runtime.as_ref().unwrap().packages.clone() };
        request.extend(essential.iter().cloned());
        let theirs: BTreeSet<(String, String)> = apt.simulate(&request).unwrap_or_else(|e| panic!("apt refused {recipe} {name}: {e}")).into_iter().collect();
        eprintln!("{recipe} {name}: ours {} packages, apt {}", ours.len(), theirs.len());
        problems.extend(unexplained(&format!("recipe:{recipe}:{name}"), differences(&ours, &theirs), allowed));
    }
    problems
}

/// Every `Essential: yes` name of the suites' candidates, as our resolver requests them.
fn essential_names(apt: &Apt, suites: &[(String, support::apt::Archive)]) -> Vec<String> {
    let index = index_of(apt, suites);
    index.base_requests(true, false).into_iter().map(|r| r.dependency.alternatives[0].name.clone()).collect()
}

fn index_of(apt: &Apt, suites: &[(String, support::apt::Archive)]) -> dinv_deb::DebIndex {
    let suites = suites
        .iter()
        .map(|(s, _)| dinv_deb::SuiteRecords { suite: s.clone(), records: dinv_deb::parse_packages_bytes(&apt.packages(s), s).unwrap() })
        .collect();
    dinv_deb::DebIndex::new("amd64", suites)
}

#[test]
fn apt_agrees_with_the_debian_recipes() {
    let allowed = deliberate();
    let mut problems = judge_recipe("recipes/debian.toml", "trixie", &allowed);
    problems.extend(judge_recipe("recipes/examples/debian-bookworm.toml", "bookworm", &allowed));
    assert!(problems.is_empty(), "we differ from apt (match it, or list the difference in apt_differences.toml with why):\n{}", problems.join("\n"));
}

/// FNV-1a of a name.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

/// splitmix64: a fixed, dependency-free sequence for a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
}

#[test]
fn apt_agrees_on_random_requests_from_the_trixie_index() {
    let suites = release_suites("trixie");
    let apt = Apt::at(&tmp().join("apt-trixie"), &suites);
    let index = index_of(&apt, &suites);
    let seed: u64 = std::env::var("DINV_APT_JUDGE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(21);
    let count: usize = std::env::var("DINV_APT_JUDGE_REQUESTS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    // The names with the smallest keyed hashes: a sample that stays the
    // same as the index gains and loses packages (a new name joins it only
    // when its own hash is that small), unlike positions in a list.
    let mut keyed: Vec<(u64, &str)> = index.names().map(|n| (Rng(seed ^ fnv(n)).next(), n)).collect();
    keyed.sort_unstable();
    let requests: Vec<String> = keyed.iter().take(count).map(|(_, n)| n.to_string()).collect();
    let allowed = deliberate();
    // apt spends over a second a request loading its cache: two at once.
    let results: Vec<(String, Result<Vec<(String, String)>, String>)> = std::thread::scope(|s| {
        let halves: Vec<_> = requests
            .chunks(requests.len().div_ceil(2).max(1))
            .map(|part| s.spawn(|| part.iter().map(|r| (r.clone(), apt.simulate(std::slice::from_ref(r)))).collect::<Vec<_>>()))
            .collect();
        halves.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut problems = Vec::new();
    let (mut agreed_ok, mut agreed_err) = (0, 0);
    for (request, theirs) in results {
        let ours = dinv_deb::parse_request(&request, "random").map(|r| index.resolve(&[r]));
        match (ours, theirs) {
            (Some(Ok(chosen)), Ok(theirs)) => {
                let ours: BTreeSet<(String, String)> = chosen.iter().map(|c| (index.record(c.record).package.clone(), index.record(c.record).version.clone())).collect();
                let theirs: BTreeSet<(String, String)> = theirs.into_iter().collect();
                let p = unexplained(&request, differences(&ours, &theirs), &allowed);
                if p.is_empty() {
                    agreed_ok += 1;
                }
                problems.extend(p);
            }
            (Some(Err(_)), Err(_)) | (None, Err(_)) => agreed_err += 1,
            // A refusal on one side only is listed with package "*".
            _ if allowed.iter().any(|(r, p)| r == &request && p == "*") => {}
            (Some(Ok(_)), Err(e)) => problems.push(format!("{request}: we resolve it, apt refuses: {}", e.lines().rev().find(|l| l.starts_with("E:")).unwrap_or(""))),
            (Some(Err(e)), Ok(_)) => problems.push(format!("{request}: apt installs it, we refuse: {e}")),
            (None, Ok(_)) => problems.push(format!("{request}: not a request we read")),
        }
    }
    eprintln!("apt judge: {count} random requests (seed {seed}): {agreed_ok} resolved alike, {agreed_err} refused by both, {} differences", problems.len());
    assert!(
        problems.is_empty(),
        "we differ from apt on random trixie requests (seed {seed}; rerun with DINV_APT_JUDGE_SEED={seed}); match it, or list the difference in apt_differences.toml with why:\n{}",
        problems.join("\n")
    );
}
