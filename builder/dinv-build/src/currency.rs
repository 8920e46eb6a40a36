//! Is a Debian guest current and patched? For each Debian source: how
//! many packages each suite gave (the updates and security suites are the
//! patches on top of the release), whether the source lists the suites
//! that carry fixes at all, and which installed packages are older than
//! what those suites offer now. `report.json` and `resolve --json` carry
//! it as `current`; `current.ok` is the one field a pipeline checks.
//!
//! Pure: the sets and the suites in, the summary out.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::recipe::{DebArchive, LoadedRecipe, Source};
use crate::resolve::PackageSet;

/// The summary over every Debian source of a recipe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Currency {
    /// True when every Debian source lists updates and security suites
    /// and no installed package is older than its suites offer; None
    /// when the packages were not compared with the suites (a locked
    /// build, or `--offline`).
    pub ok: Option<bool>,
    pub sources: Vec<SourceCurrency>,
}

/// One Debian source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceCurrency {
    pub source: String,
    /// Each suite in the recipe's order, with the packages taken from it
    /// (each package once over the guest and runtime sets).
    pub suites: Vec<SuiteCount>,
    /// Packages from `-updates` suites (point-release fixes).
    pub updates: usize,
    /// Packages from the security archive's suites.
    pub security: usize,
    /// What keeps the source from being current, in words (no security
    /// suite, no updates suite, packages older than offered).
    pub problems: Vec<String>,
    /// Installed packages older than the suites offer (a `name=version`
    /// pin, or a lock written before the fix); None when not compared.
    pub outdated: Option<Vec<Outdated>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SuiteCount {
    pub suite: String,
    pub archive: &'static str,
    pub packages: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outdated {
    pub set: String,
    pub name: String,
    pub version: String,
    pub available: String,
}

/// The summary for the recipe's Debian sources (None when it has none).
/// `newest(source, name)` is the version the source's suites offer now;
/// pass None when the packages cannot be compared (no indexes opened).
pub fn currency(l: &LoadedRecipe, sets: &[PackageSet], newest: Option<&dyn Fn(&str, &str) -> Option<String>>) -> Option<Currency> {
    let mut sources = Vec::new();
    for (name, src) in &l.recipe.sources {
        let Source::Deb(d) = src else { continue };
        let pkgs: Vec<(&str, &crate::sources::ResolvedPackage)> =
            sets.iter().filter(|s| &s.source == name).flat_map(|s| s.packages.iter().map(move |p| (s.set.as_str(), p))).collect();
        if pkgs.is_empty() {
            continue;
        }
        let list = d.suite_list();
        // Each package once, though the guest and the runtime share many.
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let distinct: std::collections::BTreeSet<(&str, &str, &str)> =
            pkgs.iter().map(|(_, p)| (p.name.as_str(), p.version.as_str(), p.suite.as_deref().unwrap_or(""))).collect();
        for (_, _, suite) in distinct {
            *counts.entry(suite).or_default() += 1;
        }
        let suites: Vec<SuiteCount> =
            list.iter().map(|(s, a)| SuiteCount { suite: s.clone(), archive: a.as_str(), packages: counts.get(s.as_str()).copied().unwrap_or(0) }).collect();
        let updates = suites.iter().filter(|s| is_updates(&s.suite)).map(|s| s.packages).sum();
        let security = suites.iter().filter(|s| s.archive == DebArchive::Security.as_str()).map(|s| s.packages).sum();
        let mut problems = Vec::new();
        if !list.iter().any(|(_, a)| *a == DebArchive::Security) {
            problems.push("no security suite (e.g. trixie-security): security fixes are not installed".to_string());
        }
        if !list.iter().any(|(s, _)| is_updates(s)) {
            problems.push("no updates suite (e.g. trixie-updates): point-release fixes are not installed".to_string());
        }
        let outdated = newest.map(|newest| {
            pkgs
                .iter()
                .filter_map(|(set, p)| {
                    let available = newest(name, &p.name)?;
                    (dinv_deb::compare_versions(&available, &p.version) == std::cmp::Ordering::Greater).then(|| Outdated {
                        set: set.to_string(),
                        name: p.name.clone(),
                        version: p.version.clone(),
                        available,
                    })
                })
                .collect::<Vec<Outdated>>()
        });
        if let Some(o) = outdated.as_ref().filter(|o| !o.is_empty()) {
            let names: Vec<String> = o.iter().take(5).map(|x| format!("{} {} < {}", x.name, x.version, x.available)).collect();
            let more = if o.len() > 5 { format!(" and {} more", o.len() - 5) } else { String::new() };
            problems.push(format!("{} installed packages are older than the suites offer: {}{more}", o.len(), names.join(", ")));
        }
        sources.push(SourceCurrency { source: name.clone(), suites, updates, security, problems, outdated });
    }
    if sources.is_empty() {
        return None;
    }
    // Missing suites are known without comparing: not current either way.
    let ok = if sources.iter().any(|s| !s.problems.is_empty()) {
        Some(false)
    } else {
        sources.iter().all(|s| s.outdated.is_some()).then_some(true)
    };
    Some(Currency { ok, sources })
}

/// A suite of point-release fixes (`trixie-updates`, `trixie-proposed-updates`).
fn is_updates(suite: &str) -> bool {
    suite.ends_with("-updates")
}

impl Currency {
    /// One line per source, for `resolve` and `build` text output.
    pub fn lines(&self) -> Vec<String> {
        self.sources
            .iter()
            .map(|s| {
                let per: Vec<String> = s.suites.iter().map(|c| format!("{} {}", c.packages, c.suite)).collect();
                let verdict = match (&s.outdated, s.problems.is_empty()) {
                    (_, false) => format!("NOT current: {}", s.problems.join("; ")),
                    (Some(_), true) => "current".to_string(),
                    (None, true) => "not compared with the suites now (locked or offline)".to_string(),
                };
                format!("source {}: {} ({} updates, {} security fixes); {verdict}", s.source, per.join(", "), s.updates, s.security)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::SetName;
    use crate::sources::ResolvedPackage;

    fn recipe(sources: &str) -> LoadedRecipe {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.toml");
        std::fs::write(&p, format!("[image]\nname = \"x\"\n\n[sources.debian]\ntype = \"deb\"\nallow_untrusted = true\n{sources}\n\n[guest]\nsource = \"debian\"\npackages = [\"a\"]\n")).unwrap();
        crate::recipe::load(&p).unwrap()
    }

    fn pkg(name: &str, version: &str, suite: &str) -> ResolvedPackage {
        ResolvedPackage {
            source: "debian".into(),
            name: name.into(),
            version: version.into(),
            arch: "amd64".into(),
            url: String::new(),
            checksum: String::new(),
            size: 0,
            installed_size: 0,
            license: None,
            origin: None,
            maintainer: None,
            homepage: None,
            description: None,
            build_time: None,
            reasons: vec![],
            suite: Some(suite.into()),
        }
    }

    fn sets(p: Vec<ResolvedPackage>) -> Vec<PackageSet> {
        vec![PackageSet { set: SetName::Guest, source: "debian".into(), packages: p }]
    }

    #[test]
    fn a_single_suite_is_not_current() {
        let l = recipe("suite = \"bookworm\"");
        let c = currency(&l, &sets(vec![pkg("a", "1", "bookworm")]), Some(&|_: &str, _: &str| Some("1".to_string()))).unwrap();
        assert_eq!(c.ok, Some(false));
        let p = &c.sources[0].problems;
        assert!(p[0].contains("no security suite") && p[1].contains("no updates suite"), "{p:?}");
        assert!(c.lines()[0].contains("NOT current"), "{:?}", c.lines());
    }

    #[test]
    fn counts_per_suite_and_outdated_packages() {
        let l = recipe("suites = [\"trixie\", \"trixie-updates\", \"trixie-security\"]");
        let p = vec![pkg("a", "1", "trixie"), pkg("b", "2+deb13u1", "trixie-security"), pkg("c", "3", "trixie-updates")];
        let newest = |_: &str, n: &str| Some(if n == "a" { "1.1".to_string() } else { "0".to_string() });
        let c = currency(&l, &sets(p.clone()), Some(&newest)).unwrap();
        let s = &c.sources[0];
        assert_eq!((s.updates, s.security), (1, 1));
        assert_eq!(s.suites.iter().map(|x| x.packages).collect::<Vec<_>>(), [1, 1, 1]);
        assert_eq!(c.ok, Some(false));
        assert_eq!(s.outdated.as_ref().unwrap()[0].available, "1.1");
        // Not compared (a locked build): unknown, unless a suite is missing.
        assert_eq!(currency(&l, &sets(p), None).unwrap().ok, None);
    }
}
