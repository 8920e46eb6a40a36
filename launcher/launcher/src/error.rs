//! Errors of the launcher, rendered once by the binary.

use std::path::PathBuf;

/// Why the launcher could not start or run the guest.
#[derive(Debug, thiserror::Error)]
pub enum LauncherError {
    /// A DINV_* variable has a value we cannot use.
    #[error("{var}={value:?}: {why}")]
    Setting { var: &'static str, value: String, why: String },
    #[error("launcher config {path}: {why}")]
    Config { path: PathBuf, why: String },
    #[error("{path}: {what}: {source}")]
    Io { path: PathBuf, what: &'static str, source: std::io::Error },
    #[error("{0}")]
    Runtime(String),
}

impl LauncherError {
    /// Maps an io::Error to one naming the path and the action.
    pub fn io(path: impl Into<PathBuf>, what: &'static str) -> impl FnOnce(std::io::Error) -> LauncherError {
        let path = path.into();
        move |source| LauncherError::Io { path, what, source }
    }

    /// Exit code for the binary: 2 for bad configuration, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            LauncherError::Setting { .. } | LauncherError::Config { .. } => 2,
            _ => 1,
        }
    }
}
