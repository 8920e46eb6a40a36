//! Debian sources of several suites, against the real archive read
//! through a private apt (tests/support/apt.rs) and served from
//! 127.0.0.1 in Debian's layout (`debian/`, `debian-security/`): trixie
//! with its updates and security suites, the highest version of any suite
//! winning; the suite of each package in packages.json, the lock, the
//! SBOM and the report; --locked, fetch --vendor and --offline across
//! suites; Valid-Until; the recipe's suite keys checked at file:line; and
//! the bookworm example built from bookworm, bookworm-updates and
//! bookworm-security. The mirrors and apt states are kept under
//! target/tmp between runs.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use dinv_test_support as support;
use support::cli::{text, Cli};
use support::debian_mirror::{release_suites, Mirror};
use support::outputs::assert_same_outputs;

fn tmp() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// The trixie mirror (one per test: each serves on its own port).
fn trixie() -> Mirror {
    Mirror::of_suites(&tmp().join("debian-suites/trixie-mirror"), &tmp().join("apt-trixie"), &release_suites("trixie"))
}

fn cli(dir: &Path, m: &Mirror) -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_dinv-build"), dir).cache(dir.join("cache")).env("DINV_DEBIAN_MIRROR", m.url())
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", text(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

/// (name, version, suite) of every package of every set.
fn packages(v: &serde_json::Value) -> Vec<(String, String, String)> {
    v["sets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["packages"].as_array().unwrap().iter())
        .map(|p| (p["name"].as_str().unwrap().into(), p["version"].as_str().unwrap().into(), p["suite"].as_str().unwrap_or("").into()))
        .collect()
}

/// recipes/debian.toml resolves over trixie, trixie-updates and
/// trixie-security: packages patched in trixie-security come from there,
/// at the security suite's version, from the security archive's URL; the
/// rest from trixie; `current` counts them and says the guest is current.
#[test]
fn the_debian_recipe_takes_security_versions_from_trixie_security() {
    let m = trixie();
    let dir = tempfile::tempdir().unwrap();
    let recipe = repo_root().join("recipes/debian.toml");
    let v = json(&cli(dir.path(), &m).run(&["resolve", "--json", recipe.to_str().unwrap()]));
    let pkgs = packages(&v);
    let security: Vec<&(String, String, String)> = pkgs.iter().filter(|p| p.2 == "trixie-security").collect();
    assert!(security.len() >= 5, "few packages from trixie-security: {security:?}");
    let index = security_index(&m);
    for (name, version, _) in &security {
        assert_eq!(index.get(name.as_str()), Some(version), "{name} is at trixie-security's version");
    }
    // The kernel is the security suite's when it has one.
    if let Some(v) = index.get("linux-image-amd64") {
        assert!(pkgs.iter().any(|p| p.0 == "linux-image-amd64" && &p.1 == v && p.2 == "trixie-security"), "linux-image-amd64 {v} from trixie-security: {pkgs:?}");
    }
    assert!(pkgs.iter().all(|p| ["trixie", "trixie-updates", "trixie-security"].contains(&p.2.as_str())), "{pkgs:?}");
    let sec_url = v["sets"][0]["packages"].as_array().unwrap().iter().find(|p| p["suite"] == "trixie-security").unwrap()["url"].as_str().unwrap().to_string();
    assert!(sec_url.starts_with(&format!("{}/pool/updates/main/", m.security_url())), "{sec_url}");
    let c = &v["current"];
    assert_eq!(c["ok"], true, "{c}");
    let src = &c["sources"][0];
    assert_eq!(src["suites"].as_array().unwrap().iter().map(|s| s["suite"].as_str().unwrap()).collect::<Vec<_>>(), ["trixie", "trixie-updates", "trixie-security"]);
    assert!(src["security"].as_u64().unwrap() >= 5, "{c}");
    assert_eq!(src["outdated"], serde_json::json!([]));

    // The text says it in one line per source.
    let out = cli(dir.path(), &m).run(&["resolve", recipe.to_str().unwrap()]);
    let t = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = t.lines().next().unwrap();
    assert!(line.starts_with("source debian: ") && line.contains("trixie-security") && line.ends_with("; current"), "{t}");
}

/// The trixie-security index: package → version.
fn security_index(m: &Mirror) -> BTreeMap<String, String> {
    let text = fs::read_to_string(m.root.join("debian-security/dists/trixie-security/main/binary-amd64/Packages")).unwrap();
    let mut out = BTreeMap::new();
    for para in text.split("\n\n") {
        let get = |f: &str| para.lines().find_map(|l| l.strip_prefix(&format!("{f}: ")[..]).map(str::to_string));
        if let (Some(n), Some(v)) = (get("Package"), get("Version")) {
            out.insert(n, v);
        }
    }
    out
}

/// A small recipe over the three suites: one package patched in
/// trixie-security (the smallest with no dependencies) and netbase from
/// trixie. Lock, fetch --vendor, then an offline locked build with the
/// mirror gone: the same outputs as the online build, the suite kept in
/// the lock, packages.json and the SBOM. A pin to the superseded trixie
/// version is honoured and reported as not current.
#[test]
fn locked_vendored_and_offline_builds_work_across_suites() {
    let m = trixie();
    let index = security_index(&m);
    let sec_text = fs::read_to_string(m.root.join("debian-security/dists/trixie-security/main/binary-amd64/Packages")).unwrap();
    // Smallest architecture-independent-or-amd64 package without Depends
    // that trixie also has in an older version.
    let mut best: Option<(u64, String)> = None;
    for para in sec_text.split("\n\n") {
        let get = |f: &str| para.lines().find_map(|l| l.strip_prefix(&format!("{f}: ")[..]).map(str::to_string));
        let (Some(n), Some(size)) = (get("Package"), get("Size")) else { continue };
        if get("Depends").is_some() || get("Pre-Depends").is_some() || !m.filenames.get(&n).is_some_and(|v| v.len() > 1) {
            continue;
        }
        let size: u64 = size.parse().unwrap();
        if best.as_ref().map_or(true, |(s, _)| size < *s) {
            best = Some((size, n));
        }
    }
    let (_, patched) = best.expect("a dependency-free package patched in trixie-security");
    let new = index[&patched].clone();
    let old = m.filenames[&patched].keys().find(|v| **v != new).unwrap().clone();
    let netbase = m.filenames["netbase"].keys().next_back().unwrap().clone();
    m.ensure_packages(&[(patched.clone(), new.clone()), (patched.clone(), old.clone()), ("netbase".into(), netbase)]);

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, pkgs: &str| {
        let p = dir.path().join(name);
        fs::write(
            &p,
            format!(
                "[image]\nname = \"deb-suites\"\n\n[sources.debian]\ntype = \"deb\"\nsuites = [\"trixie\", \"trixie-updates\", {{ suite = \"trixie-security\", archive = \"security\" }}]\nkeyrings = [\"{}\"]\nessential = false\n\n[guest]\nsource = \"debian\"\npackages = [{pkgs}]\n",
                support::apt::KEYRING
            ),
        )
        .unwrap();
        p
    };
    let recipe = write("deb.toml", &format!("\"{patched}\", \"netbase\""));
    let r = recipe.to_str().unwrap();
    let run = |args: &[&str], cache: &str| {
        let out = cli(dir.path(), &m).cache(dir.path().join(cache)).run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        out
    };
    run(&["lock", r], "cache");
    let lock = fs::read_to_string(dir.path().join("deb.toml.lock")).unwrap();
    assert!(lock.contains(&format!("name = \"{patched}\"\nversion = \"{new}\"")) && lock.contains("suite = \"trixie-security\"") && lock.contains("suite = \"trixie\""), "{lock}");
    run(&["build", "--out", "out/online", r], "cache");
    let pj: serde_json::Value = serde_json::from_slice(&fs::read(dir.path().join("out/online/packages.json")).unwrap()).unwrap();
    let p = pj[0]["packages"].as_array().unwrap().iter().find(|p| p["name"] == patched.as_str()).unwrap().clone();
    assert_eq!((p["version"].as_str().unwrap(), p["suite"].as_str().unwrap()), (new.as_str(), "trixie-security"), "{p}");
    let sbom = fs::read_to_string(dir.path().join("out/online/sbom.spdx.json")).unwrap();
    assert!(sbom.contains("from Debian suite trixie-security") && sbom.contains("from Debian suite trixie\""), "the SBOM names the suites");
    let report: serde_json::Value = serde_json::from_slice(&fs::read(dir.path().join("out/online/report.json")).unwrap()).unwrap();
    assert_eq!(report["current"]["ok"], true, "{}", report["current"]);
    assert_eq!(report["current"]["sources"][0]["security"], 1, "{}", report["current"]);

    let vendor = dir.path().join("vendor");
    run(&["fetch", "--locked", "--vendor", vendor.to_str().unwrap(), r], "cache");
    assert_eq!(fs::read_dir(vendor.join("sha256")).unwrap().count(), 2);
    run(&["build", "--locked", "--out", "out/locked", r], "cache");
    assert_same_outputs(&dir.path().join("out/online"), &dir.path().join("out/locked"), dinv_build::REPORT_RUN_FIELDS);
    // No mirror, no network: the vendored files, verified.
    let offline = Cli::new(env!("CARGO_BIN_EXE_dinv-build"), dir.path()).cache(dir.path().join("cache-offline")).env("DINV_DEBIAN_MIRROR", "http://127.0.0.1:9/debian");
    let out = offline.run(&["build", "--locked", "--offline", "--vendor", vendor.to_str().unwrap(), "--out", "out/vendored", r]);
    assert!(out.status.success(), "{}", text(&out));
    assert_same_outputs(&dir.path().join("out/online"), &dir.path().join("out/vendored"), dinv_build::REPORT_RUN_FIELDS);
    // `resolve --locked` compares the lock with the suites now: current.
    let v = json(&cli(dir.path(), &m).run(&["resolve", "--locked", "--json", r]));
    assert_eq!(v["current"]["ok"], true, "{}", v["current"]);
    let v = json(&cli(dir.path(), &m).run(&["resolve", "--locked", "--offline", "--json", r]));
    assert_eq!(v["current"]["ok"], serde_json::Value::Null, "not compared offline: {}", v["current"]);

    // A pin to trixie's older version: installed as asked, and not current.
    let pinned = write("pinned.toml", &format!("\"{patched}={old}\""));
    let v = json(&cli(dir.path(), &m).run(&["resolve", "--json", pinned.to_str().unwrap()]));
    assert_eq!(packages(&v), [(patched.clone(), old.clone(), "trixie".to_string())]);
    assert_eq!(v["current"]["ok"], false, "{}", v["current"]);
    let o = &v["current"]["sources"][0]["outdated"][0];
    assert_eq!((o["name"].as_str().unwrap(), o["available"].as_str().unwrap()), (patched.as_str(), new.as_str()), "{o}");
}

/// A suite past its Valid-Until is refused, naming it (trixie itself
/// carries none; its updates suite expires first).
#[test]
fn an_expired_suite_is_refused_by_name() {
    let m = trixie();
    let dir = tempfile::tempdir().unwrap();
    let recipe = repo_root().join("recipes/debian.toml");
    let year_3000 = "32503680000";
    let out = cli(dir.path(), &m).env("DINV_TEST_NOW", year_3000).run(&["resolve", recipe.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("suite trixie-updates") && t.contains("expired (Valid-Until"), "{t}");
}

/// The suite keys are checked at their file:line.
#[test]
fn suite_keys_are_checked_at_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let check = |body: &str| {
        let p = dir.path().join("r.toml");
        fs::write(&p, format!("[image]\nname = \"x\"\n\n[sources.debian]\ntype = \"deb\"\nkeyrings = [\"{}\"]\n{body}\n[guest]\nsource = \"debian\"\npackages = [\"netbase\"]\n", support::apt::KEYRING)).unwrap();
        let out = Cli::new(env!("CARGO_BIN_EXE_dinv-build"), dir.path()).run(&["check", p.to_str().unwrap()]);
        (out.status.code(), text(&out))
    };
    let (code, t) = check("suite = \"trixie\"\nsuites = [\"trixie-updates\"]\n");
    assert!(code == Some(2) && t.contains("r.toml:8: sources.debian.suites") && t.contains("not both"), "{t}");
    let (code, t) = check("suites = [\"trixie\", \"trixie-updates\",\n  \"trixie\"]\n");
    assert!(code == Some(2) && t.contains("r.toml:8: sources.debian.suites[2]") && t.contains("listed twice"), "{t}");
    let (code, t) = check("suites = [\"trixie\"]\nsecurity_mirror = \"http://h.invalid/debian-security\"\n");
    assert!(code == Some(2) && t.contains("r.toml:8: sources.debian.security_mirror") && t.contains("no suite of this source is from the security archive"), "{t}");
    let (code, t) = check("suites = [\"trixie\", { suite = \"trixie-security\", archive = \"securty\" }]\n");
    assert!(code == Some(2) && t.contains("r.toml:4: sources.debian") && t.contains("unknown variant `securty`, did you mean `security`?"), "{t}");
    let (code, t) = check("");
    assert!(code == Some(2) && t.contains("sources.debian") && t.contains("needs `suites`"), "{t}");
    let (code, t) = check("suites = [\"trixie\", \"trixie-updates\", { suite = \"trixie-security\", archive = \"security\" }]\n");
    assert_eq!(code, Some(0), "{t}");
}

/// recipes/examples/debian-bookworm.toml from the real bookworm,
/// bookworm-updates and bookworm-security, built (not booted): packages
/// from bookworm-security at their versions, the report current.
#[test]
fn the_bookworm_example_builds_from_its_three_suites() {
    let m = Mirror::of_suites(&tmp().join("debian-suites/bookworm-mirror"), &tmp().join("apt-bookworm"), &release_suites("bookworm"));
    let dir = tempfile::tempdir().unwrap();
    let recipe = repo_root().join("recipes/examples/debian-bookworm.toml");
    let r = recipe.to_str().unwrap();
    let c = cli(dir.path(), &m).cache(tmp().join("debian-suites/bookworm-cache"));
    let v = json(&c.run(&["resolve", "--json", r]));
    let pkgs = packages(&v);
    let wanted: Vec<(String, String)> = pkgs.iter().map(|p| (p.0.clone(), p.1.clone())).collect();
    m.ensure_packages(&wanted);
    let out_dir = dir.path().join("out");
    let out = c.run(&["build", "--json", r, "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let pj: serde_json::Value = serde_json::from_slice(&fs::read(out_dir.join("packages.json")).unwrap()).unwrap();
    let guest = pj[0]["packages"].as_array().unwrap();
    let from_security: Vec<&serde_json::Value> = guest.iter().filter(|p| p["suite"] == "bookworm-security").collect();
    assert!(from_security.len() >= 5, "{from_security:?}");
    let report: serde_json::Value = serde_json::from_slice(&fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["current"]["ok"], true, "{}", report["current"]);
    assert_eq!(report["kernel"]["boot"], "pvh", "{}", report["kernel"]);
    let size = fs::metadata(out_dir.join("image.tar")).unwrap().len();
    eprintln!("bookworm example: {} packages ({} from bookworm-security), image.tar {:.1} MiB", guest.len(), from_security.len(), size as f64 / 1048576.0);
    support::discard_cache(&tmp().join("debian-suites/bookworm-cache"));
}
