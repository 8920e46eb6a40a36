//! The subcommands: one file each. A command returns an [`Outcome`], which
//! `main.rs` prints as text or JSON in one place.

mod build;
mod cache;
mod check;
mod fetch;
mod keygen;
mod lock;
mod new;
mod outcome;
mod push;
mod resolve;
mod show;
mod show_render;
mod snapshot;
mod starter;
mod verify;

use std::path::PathBuf;

pub use crate::pipeline::BuildOptions;
pub use outcome::Outcome;
pub use push::PushOptions;
use crate::recipe::{self, LoadedRecipe};
use crate::{Context, Result};

/// What a command asks for.
#[derive(Clone, Debug)]
pub enum Command {
    /// Build every artifact into the output directory.
    Build { recipe: PathBuf, options: BuildOptions },
    /// Print the package sets (from RECIPE.lock with `locked`).
    Resolve { recipe: PathBuf, locked: bool, offline: bool },
    /// Download and verify every package; copy them into a vendor directory.
    Fetch { recipe: PathBuf, locked: bool, offline: bool, vendor: Option<PathBuf> },
    /// Build twice and compare every output.
    Verify { recipe: PathBuf, options: BuildOptions },
    /// Resolve and write RECIPE.lock.
    Lock { recipe: PathBuf, offline: bool },
    /// Validate a recipe.
    Check { recipe: PathBuf },
    /// Print the merged recipe with the origin of every value.
    Show { recipe: PathBuf },
    /// Boot a built output's image once and write its snapshot image.
    Snapshot { out: PathBuf, options: crate::snapshot::SnapshotOptions },
    /// Push a built image to a registry (signed, attested).
    Push { image: PathBuf, reference: String, options: PushOptions },
    /// Write a signing key pair PREFIX.private / PREFIX.pub.
    Keygen { prefix: PathBuf, passphrase_file: Option<PathBuf> },
    /// Write a starter team recipe (extending `extends`, else the
    /// repository's default recipe when there is one, else `dinv:default`).
    New { name: String, dir: Option<PathBuf>, extends: Option<PathBuf> },
    /// What the cache holds, per kind of entry.
    CacheDu,
    /// Remove cache entries no build of the last `days` used.
    CachePrune { days: f64, dry_run: bool, wait: bool },
}

/// Runs one command.
pub fn run(ctx: &Context, command: Command) -> Result<Box<dyn Outcome>> {
    match command {
        Command::Build { recipe, options } => build::run(ctx, &load(&recipe)?, &options),
        Command::Resolve { recipe, locked, offline } => resolve::run(ctx, &load(&recipe)?, locked, offline),
        Command::Fetch { recipe, locked, offline, vendor } => fetch::run(ctx, &load(&recipe)?, locked, offline, vendor.as_deref()),
        Command::Verify { recipe, options } => verify::run(ctx, &load(&recipe)?, &options),
        Command::Lock { recipe, offline } => lock::run(ctx, &load(&recipe)?, offline),
        Command::Check { recipe } => check::run(ctx, &recipe, &load(&recipe)?),
        Command::Show { recipe } => show::run(&load(&recipe)?),
        Command::Snapshot { out, options } => snapshot::run(ctx, &out, &options),
        Command::Push { image, reference, options } => push::run(&image, &reference, &options),
        Command::Keygen { prefix, passphrase_file } => keygen::run(&prefix, passphrase_file.as_deref()),
        Command::New { name, dir, extends } => new::run(&name, dir, extends),
        Command::CacheDu => cache::du(ctx),
        Command::CachePrune { days, dry_run, wait } => cache::prune(ctx, days, dry_run, wait),
    }
}

fn load(path: &std::path::Path) -> Result<LoadedRecipe> {
    Ok(recipe::load(path)?)
}
