//! `show`: the merged recipe with the origin of every value.

use std::path::Path;

use serde_json::json;

use super::outcome::{object, Outcome};
use super::show_render;
use crate::recipe::LoadedRecipe;
use crate::Result;

struct Shown {
    text: String,
    json: serde_json::Map<String, serde_json::Value>,
}

impl Outcome for Shown {
    fn text(&self) -> String {
        self.text.clone()
    }

    fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.json.clone()
    }

    fn is_summary(&self) -> bool {
        false
    }
}

/// Paths are shown relative to the working directory when they can be.
pub fn run(l: &LoadedRecipe) -> Result<Box<dyn Outcome>> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let rel = |p: &Path| p.strip_prefix(&cwd).unwrap_or(p).display().to_string();
    let origins: serde_json::Map<String, serde_json::Value> = l.origins.iter().map(|(k, v)| (k.clone(), json!(format!("{}:{}", rel(&v.file), v.line)))).collect();
    let text = show_render::render(&l.merged, &|key| l.locate(key).map(|loc| format!("{}:{}", rel(&loc.file), loc.line)));
    Ok(Box::new(Shown { text, json: object(json!({"recipe": l.merged, "origins": origins})) }))
}
