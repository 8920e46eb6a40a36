//! The recipe: TOML files, merged through `extends`, typed and validated.

mod load;
mod model;
mod validate;

pub use load::{load, normalize, LoadedRecipe, Location, RecipeError};
pub use model::*;
pub use validate::{overlaps, parse_cidr, parse_size};
