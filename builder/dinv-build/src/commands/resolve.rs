//! `resolve`: the package sets with versions, sizes and reasons.

use std::fmt::Write;
use std::time::Instant;

use serde_json::json;

use super::outcome::{human, object, Outcome};
use crate::recipe::LoadedRecipe;
use crate::resolve::{resolve_with, PackageSet};
use crate::{Context, Result};

/// Reasons shown per package in text; `--json` lists them all.
const REASONS_SHOWN: usize = 3;

struct ResolvedSets {
    sets: Vec<PackageSet>,
    seconds: f64,
}

impl Outcome for ResolvedSets {
    fn text(&self) -> String {
        let mut out = String::new();
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
        object(json!({"seconds": self.seconds, "sets": self.sets}))
    }

    fn is_summary(&self) -> bool {
        false
    }

    fn note(&self) -> Option<String> {
        Some(format!("resolved in {:.2} s", self.seconds))
    }
}

/// With `locked`, the packages of RECIPE.lock.
pub fn run(ctx: &Context, l: &LoadedRecipe, locked: bool, offline: bool) -> Result<Box<dyn Outcome>> {
    let started = Instant::now();
    let env = ctx.env(offline)?;
    let r = resolve_with(&env, l, locked)?;
    let sets = r.sets().cloned().collect();
    Ok(Box::new(ResolvedSets { sets, seconds: started.elapsed().as_secs_f64() }))
}
