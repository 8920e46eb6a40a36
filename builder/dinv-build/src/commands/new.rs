//! `new`: write a starter team recipe.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::outcome::{object, Outcome};
use super::starter;
use crate::recipe::vfs;
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

/// The repository's default recipe, when dinv-build runs in a checkout.
const REPOSITORY_DEFAULT: &str = "recipes/default.toml";

/// `dir` defaults to `recipes/` when it exists, else the current directory;
/// `extends` to the repository's default recipe when there is one, else
/// the one built into dinv-build (`dinv:default`).
pub fn run(name: &str, dir: Option<PathBuf>, extends: Option<PathBuf>) -> Result<Box<dyn Outcome>> {
    let dir = dir.unwrap_or_else(|| if Path::new("recipes").is_dir() { PathBuf::from("recipes") } else { PathBuf::from(".") });
    let extends = extends.unwrap_or_else(|| {
        if Path::new(REPOSITORY_DEFAULT).is_file() {
            PathBuf::from(REPOSITORY_DEFAULT)
        } else {
            PathBuf::from(format!("{}default", vfs::SCHEME))
        }
    });
    Ok(Box::new(Written { path: starter::write_starter(name, &dir, &extends)? }))
}
