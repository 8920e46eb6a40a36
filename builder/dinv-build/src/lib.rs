//! dinv-build: builds Docker-in-VM appliances from declarative recipes.
//!
//! Data flows one way: [`recipe`] → [`sources`] (resolve, fetch, verify) →
//! one in-memory tree per layer → [`configure`] → emitted artifacts (ext4,
//! kernel + initramfs, image). The [`cache`] is content-addressed and shared
//! by concurrent builds.

pub mod assets;
pub mod cache;
pub mod commands;
pub mod configure;
pub mod error;
pub mod fetch;
pub mod lock;
pub mod pipeline;
pub mod progress;
pub mod push;
pub mod recipe;
pub mod sbom;
pub mod show;
pub mod starter;
pub mod sources;
pub mod stages;
pub mod vendor;
pub mod verify;

pub use error::{Error, Result};

use std::path::PathBuf;

/// Settings from the command line that every command needs.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Print JSON on stdout instead of text.
    pub json: bool,
    /// No progress bars, no summary.
    pub quiet: bool,
    /// Cache root override.
    pub cache_dir: Option<PathBuf>,
    /// Debian mirror override (flag or DINV_DEBIAN_MIRROR).
    pub debian_mirror: Option<String>,
}

impl Context {
    /// The progress display for this invocation.
    pub fn progress(&self) -> progress::Progress {
        progress::Progress::new(!self.quiet && !self.json)
    }

    /// Opens the cache.
    pub fn cache(&self) -> Result<cache::Cache> {
        let root = self.cache_dir.clone().unwrap_or_else(cache::Cache::default_root);
        cache::Cache::open(&root).map_err(Error::io(root))
    }
}
