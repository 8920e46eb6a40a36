//! Errors of the guest helper.

use std::io;
use std::path::PathBuf;

/// Why a guest step failed; the message names the path, key or command to look at.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: io::Error },
    #[error("fw_cfg setting {key} = {value:?}: {why}")]
    Setting { key: &'static str, value: String, why: String },
    #[error("{path}: {why}")]
    Config { path: PathBuf, why: String },
    #[error("{command}: {why}")]
    Command { command: String, why: String },
    #[error("{0}")]
    Usage(String),
    #[error("{what} did not happen within {secs} s")]
    Timeout { what: String, secs: u64 },
    #[error("{failed} setup step(s) failed (see the messages above)")]
    SetupFailed { failed: usize },
}

impl GuestError {
    /// An I/O error on `path` while doing `what` (e.g. "reading", "mounting").
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        GuestError::Io { what, path: path.into(), source }
    }
}

/// Result of guest steps.
pub type Result<T, E = GuestError> = std::result::Result<T, E>;
