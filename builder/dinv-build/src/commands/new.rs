//! `new`: write a starter team recipe.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::outcome::{object, Outcome};
use super::starter;
use crate::Result;

struct Written {
    path: PathBuf,
}

impl Outcome for Written {
    fn text(&self) -> String {
        format!("wrote {}; build it with `dinv-build {}`\n", self.path.display(), self.path.display())
    }

    fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        object(json!({"recipe": self.path}))
    }
}

/// `dir` defaults to `recipes/` when it exists, else the current directory.
pub fn run(name: &str, dir: Option<PathBuf>, extends: &Path) -> Result<Box<dyn Outcome>> {
    let dir = dir.unwrap_or_else(|| if Path::new("recipes").is_dir() { PathBuf::from("recipes") } else { PathBuf::from(".") });
    Ok(Box::new(Written { path: starter::write_starter(name, &dir, extends)? }))
}
