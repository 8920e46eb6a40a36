//! The recipe: TOML files merged through `extends`, typed, validated, and
//! the digests of every file they use. Imports nothing from the build.

mod error;
mod inputs;
mod load;
mod loaded;
mod model;
pub mod runtime;
mod validate;
mod values;
pub mod vfs;

pub use error::{Location, RecipeError};
pub use inputs::inputs_digest;
pub use load::{load, normalize};
pub use loaded::LoadedRecipe;
pub use model::*;
pub use validate::{overlaps, parse_cidr, parse_free, parse_size};
