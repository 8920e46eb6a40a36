//! `lock`: resolve and write RECIPE.lock.

use std::path::PathBuf;

use serde_json::json;

use super::outcome::{object, Outcome};
use crate::lock::lock_path;
use crate::recipe::LoadedRecipe;
use crate::resolve::{lock_file, resolve};
use crate::{Context, Result};

struct Locked {
    path: PathBuf,
    packages: usize,
}

impl Outcome for Locked {
    fn text(&self) -> String {
        format!("wrote {} ({} packages)\n", self.path.display(), self.packages)
    }

    fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        object(json!({"lock": self.path}))
    }
}

pub fn run(ctx: &Context, l: &LoadedRecipe, offline: bool) -> Result<Box<dyn Outcome>> {
    let env = ctx.env(offline)?;
    let builds = l.builds().into_iter().map(|v| Ok((v, resolve(&env, v)?))).collect::<Result<Vec<_>>>()?;
    let lock = lock_file(l, &builds);
    let path = lock_path(&l.path);
    lock.write(&path)?;
    Ok(Box::new(Locked { path, packages: lock.packages.len() }))
}
