//! `resolve`: the package sets with versions, sizes and reasons.

use std::fmt::Write;
use std::time::Instant;

use serde_json::json;

use super::outcome::{human, object, Outcome};
use std::collections::BTreeMap;

use crate::currency::{currency, Currency};
use crate::recipe::{LoadedRecipe, Source};
use crate::sources::PackageSource;
use crate::resolve::{resolve_with, PackageSet};
use crate::{Context, Result};

/// Reasons shown per package in text; `--json` lists them all.
const REASONS_SHOWN: usize = 3;

struct ResolvedSets {
    sets: Vec<PackageSet>,
    current: Option<Currency>,
    seconds: f64,
}

impl Outcome for ResolvedSets {
    fn text(&self) -> String {
        let mut out = String::new();
        for line in self.current.iter().flat_map(|c| c.lines()) {
            let _ = writeln!(out, "{line}");
        }
        for s in &self.sets {
            let size: u64 = s.packages.iter().map(|p| p.size).sum();
            let inst: u64 = s.packages.iter().map(|p| p.installed_size).sum();
            let _ = writeln!(
                out,
                "{} packages from source {:?}: {} packages, {} to download, {} installed",
                s.set.as_str(),
                s.source,
                s.packages.len(),
                human(size),
                human(inst)
            );
            let wn = s.packages.iter().map(|p| p.name.len()).max().unwrap_or(0);
            let wv = s.packages.iter().map(|p| p.version.len()).max().unwrap_or(0);
            for p in &s.packages {
                // One reason per line, so a package many others need stays readable.
                let head = format!("  {:wn$}  {:wv$}  {:>10}  ", p.name, p.version, human(p.size));
                let indent = " ".repeat(head.chars().count());
                for (i, reason) in p.reasons.iter().take(REASONS_SHOWN).enumerate() {
                    let _ = writeln!(out, "{}{reason}", if i == 0 { &head } else { &indent });
                }
                if p.reasons.is_empty() {
                    let _ = writeln!(out, "{}", head.trim_end());
                }
                if p.reasons.len() > REASONS_SHOWN {
                    let _ = writeln!(out, "{indent}(and {} more; --json lists every reason)", p.reasons.len() - REASONS_SHOWN);
                }
            }
        }
        out
    }

    fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        object(json!({"seconds": self.seconds, "sets": self.sets, "current": self.current}))
    }

    fn is_summary(&self) -> bool {
        false
    }

    fn note(&self) -> Option<String> {
        Some(format!("resolved in {:.2} s", self.seconds))
    }
}

/// With `locked`, the packages of RECIPE.lock, compared (unless
/// `offline`) with what the Debian sources' suites offer now: a lock
/// written before a security fix shows as not current.
pub fn run(ctx: &Context, l: &LoadedRecipe, locked: bool, offline: bool) -> Result<Box<dyn Outcome>> {
    if !l.is_multi_platform() {
        return Ok(Box::new(one(ctx, l, locked, offline)?));
    }
    let started = Instant::now();
    let platforms = l.variants.iter().map(|v| Ok((v.platform.expect("a platform's recipe").platform(), one(ctx, v, locked, offline)?))).collect::<Result<Vec<_>>>()?;
    Ok(Box::new(Platforms { platforms, seconds: started.elapsed().as_secs_f64() }))
}

/// Each platform's sets, for a recipe with `image.platforms`.
struct Platforms {
    platforms: Vec<(String, ResolvedSets)>,
    seconds: f64,
}

impl Outcome for Platforms {
    fn text(&self) -> String {
        self.platforms.iter().map(|(p, r)| format!("platform {p}:\n{}", r.text())).collect()
    }

    fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        let platforms: serde_json::Map<String, serde_json::Value> = self.platforms.iter().map(|(p, r)| (p.clone(), serde_json::Value::Object(r.json()))).collect();
        object(json!({"seconds": self.seconds, "platforms": platforms}))
    }

    fn is_summary(&self) -> bool {
        false
    }

    fn note(&self) -> Option<String> {
        Some(format!("resolved {} platforms in {:.2} s", self.platforms.len(), self.seconds))
    }
}

fn one(ctx: &Context, l: &LoadedRecipe, locked: bool, offline: bool) -> Result<ResolvedSets> {
    let started = Instant::now();
    let env = ctx.env(offline)?;
    let r = resolve_with(&env, l, locked)?;
    let sets: Vec<PackageSet> = r.sets().cloned().collect();
    let mut fresh: BTreeMap<String, Box<dyn PackageSource>> = BTreeMap::new();
    if locked && !offline {
        for s in &sets {
            if matches!(l.recipe.sources[&s.source], Source::Deb(_)) && !fresh.contains_key(&s.source) {
                fresh.insert(s.source.clone(), crate::sources::open(&env, l, &s.source, false)?);
            }
        }
    }
    let newest = |src: &str, name: &str| {
        let s = if locked { fresh.get(src) } else { r.sources.get(src) };
        s.and_then(|s| s.newest_version(name))
    };
    let compare = !(locked && offline);
    let current = currency(l, &sets, compare.then_some(&newest as &dyn Fn(&str, &str) -> Option<String>));
    Ok(ResolvedSets { sets, current, seconds: started.elapsed().as_secs_f64() })
}
