//! A recipe after loading: the typed model, where every value came from,
//! and the digests of every file it uses.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::error::{Location, RecipeError};
use super::model::{Arch, Recipe};

/// A loaded, merged and typed recipe.
#[derive(Clone, Debug)]
pub struct LoadedRecipe {
    pub recipe: Recipe,
    /// The recipe file given by the user.
    pub path: PathBuf,
    /// Every file that went into it, parents first.
    pub files: Vec<PathBuf>,
    /// Origin of every key and array element (dotted paths).
    pub origins: BTreeMap<String, Location>,
    /// The merged document (for `show`).
    pub merged: toml::Table,
    /// SHA-256 of every input file (the recipe files and every file or
    /// directory they name), by path relative to the recipe's directory;
    /// computed once, at load.
    pub inputs: BTreeMap<String, String>,
    /// The platform this is the recipe of, for one of `image.platforms`.
    pub platform: Option<Arch>,
    /// With `image.platforms`: the recipe of each platform, in order (what
    /// is built); empty for a single-platform recipe.
    pub variants: Vec<LoadedRecipe>,
}

impl LoadedRecipe {
    /// What is built: each platform's recipe, or this one.
    pub fn builds(&self) -> Vec<&LoadedRecipe> {
        if self.variants.is_empty() {
            vec![self]
        } else {
            self.variants.iter().collect()
        }
    }

    /// Is this a recipe of several platforms (`image.platforms`)?
    pub fn is_multi_platform(&self) -> bool {
        !self.variants.is_empty()
    }

    /// The origin of a key, or of its nearest ancestor that has one.
    pub fn locate(&self, key: &str) -> Option<Location> {
        locate_in(&self.origins, key)
    }

    /// A [`RecipeError`] located at `key`.
    pub fn error(&self, key: &str, message: impl Into<String>) -> RecipeError {
        RecipeError { location: self.locate(key), key: key.to_string(), message: message.into() }
    }
}


/// The origin of `key` in `origins`, or of its nearest ancestor that has one.
pub(super) fn locate_in(origins: &BTreeMap<String, Location>, key: &str) -> Option<Location> {
    let mut k = key.to_string();
    loop {
        if let Some(l) = origins.get(&k) {
            return Some(l.clone());
        }
        match k.rfind(['.', '[']) {
            Some(i) => k.truncate(i),
            None => return None,
        }
    }
}
