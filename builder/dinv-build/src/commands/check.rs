//! `check`: validate a recipe.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::outcome::{object, Outcome};
use crate::recipe::LoadedRecipe;
use crate::Result;

struct Checked {
    recipe: PathBuf,
    files: Vec<PathBuf>,
}

impl Outcome for Checked {
    fn text(&self) -> String {
        let n = self.files.len();
        format!("{}: ok ({n} file{})\n", self.recipe.display(), if n == 1 { "" } else { "s" })
    }

    fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        object(json!({"recipe": self.recipe, "files": self.files}))
    }
}

/// Loading validated it; templates are rendered as the build would;
/// report what went into it.
pub fn run(path: &Path, l: &LoadedRecipe) -> Result<Box<dyn Outcome>> {
    crate::configure::overlays::check(&l.recipe).map_err(|(key, message)| l.error(&key, message))?;
    Ok(Box::new(Checked { recipe: path.to_path_buf(), files: l.files.clone() }))
}
