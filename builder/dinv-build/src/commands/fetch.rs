//! `fetch`: download and verify every package into the cache and, with a
//! vendor directory, copy each blob there for offline builds.

use std::path::Path;

use serde_json::json;

use super::outcome::{human, object, Outcome};
use crate::recipe::LoadedRecipe;
use crate::resolve::resolve_with;
use crate::vendor::{self, VendorSummary};
use crate::{Context, Result};

enum Fetched {
    Cache { packages: usize, downloaded: u64 },
    Vendor(VendorSummary),
}

impl Outcome for Fetched {
    fn text(&self) -> String {
        match self {
            Fetched::Cache { packages, downloaded } => format!("{packages} packages in the cache ({} downloaded)\n", human(*downloaded)),
            Fetched::Vendor(s) => format!("vendored {} packages into {} ({} new, {})\n", s.packages, s.dir.display(), s.written, human(s.bytes)),
        }
    }

    fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        match self {
            Fetched::Cache { packages, downloaded } => object(json!({"packages": packages, "downloaded_bytes": downloaded})),
            Fetched::Vendor(s) => object(json!({"vendor": s})),
        }
    }
}

pub fn run(ctx: &Context, l: &LoadedRecipe, locked: bool, offline: bool, vendor: Option<&Path>) -> Result<Box<dyn Outcome>> {
    let env = ctx.env(offline)?;
    // Every platform's packages, for a recipe with `image.platforms`.
    let builds = l.builds().into_iter().map(|v| resolve_with(&env, v, locked)).collect::<Result<Vec<_>>>()?;
    if let Some(dir) = vendor {
        let mut all: Option<VendorSummary> = None;
        for resolved in &builds {
            let s = vendor::write(&env, resolved, dir)?;
            all = Some(match all {
                None => s,
                Some(a) => VendorSummary { packages: a.packages + s.packages, written: a.written + s.written, bytes: a.bytes + s.bytes, ..a },
            });
        }
        return Ok(Box::new(Fetched::Vendor(all.expect("a recipe builds at least once"))));
    }
    let mut downloaded = 0;
    for resolved in &builds {
        for set in resolved.sets() {
            downloaded += resolved.source_of(set).fetch(&set.packages, &env)?;
        }
    }
    let recipe = l.path.canonicalize().unwrap_or_else(|_| l.path.clone());
    if let Err(e) = env.cache.write_root(&format!("fetch:{}", recipe.display()), serde_json::json!({ "fetch": recipe })) {
        tracing::warn!("cache: cannot record the fetched entries: {e}");
    }
    Ok(Box::new(Fetched::Cache { packages: builds.iter().map(|r| r.packages().count()).sum(), downloaded }))
}
