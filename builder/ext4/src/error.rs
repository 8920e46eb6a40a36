//! Errors of image writing, each naming what the user can change.

use std::io;
use std::path::PathBuf;

/// Why an image could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Ext4Error {
    /// The options themselves are unusable.
    #[error("ext4 options: {0}")]
    Options(String),
    /// The tree holds something ext4 (or this writer) cannot represent.
    #[error("{path}: {why}")]
    Unsupported { path: String, why: String },
    /// The requested image size is smaller than the tree needs.
    #[error(
        "the tree does not fit: it needs an image of at least {needed} bytes ({} MiB), but the size asked for is {size} bytes ({} MiB)",
        needed.div_ceil(1 << 20),
        size / (1 << 20)
    )]
    TooSmall { needed: u64, size: u64 },
    /// A file's content could not be read from its backing file.
    #[error("reading the content of {path}: {source}")]
    Read { path: String, source: io::Error },
    /// The image file could not be created or written.
    #[error("writing ext4 image {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}
