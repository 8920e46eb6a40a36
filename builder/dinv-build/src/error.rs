//! The builder's error type and the exit codes it maps to.

use std::path::PathBuf;

use crate::fetch::FetchError;
use crate::recipe::RecipeError;

/// Exit codes (documented in the README):
/// 0 success, 1 internal or I/O error, 2 bad recipe or usage, 3 dependency
/// resolution failed, 4 download or integrity check failed, 5 a build
/// stage failed, 6 `verify` found differing outputs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Recipe(#[from] RecipeError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot resolve the {what} packages of source {source_name:?}: {message}")]
    Resolve { source_name: String, what: String, message: String },
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// An integrity check failed: names the package and the check.
    #[error("{subject}: {check}")]
    Integrity { subject: String, check: String },
    #[error("{stage}: {message}")]
    Stage { stage: &'static str, message: String },
    #[error("outputs differ: {0}")]
    NotReproducible(String),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Recipe(_) | Error::Usage(_) => 2,
            Error::Resolve { .. } => 3,
            Error::Fetch(_) | Error::Integrity { .. } => 4,
            Error::Stage { .. } => 5,
            Error::NotReproducible(_) => 6,
            Error::Io { .. } => 1,
        }
    }

    /// A short machine-readable kind for `--json`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Recipe(_) => "recipe",
            Error::Usage(_) => "usage",
            Error::Resolve { .. } => "resolve",
            Error::Fetch(_) => "fetch",
            Error::Integrity { .. } => "integrity",
            Error::Stage { .. } => "stage",
            Error::NotReproducible(_) => "not-reproducible",
            Error::Io { .. } => "io",
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    /// A failure in a named build stage.
    pub fn stage(stage: &'static str, message: impl std::fmt::Display) -> Error {
        Error::Stage { stage, message: message.to_string() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
