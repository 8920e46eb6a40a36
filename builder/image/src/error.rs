//! Errors of the image writers.

use std::path::PathBuf;

/// Why a layer or image could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("image reference {reference:?} refused: {why}")]
    BadReference { reference: String, why: &'static str },
    #[error("layer blob {path}: {why}")]
    BadLayer { path: PathBuf, why: String },
    #[error("{path}: existing index.json is not valid JSON: {source}")]
    BadIndex { path: PathBuf, source: serde_json::Error },
}

impl ImageError {
    /// Wraps an io::Error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ImageError {
        let path = path.into();
        move |source| ImageError::Io { path, source }
    }
}
