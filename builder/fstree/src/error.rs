//! Errors of tree operations.

use crate::path::PathError;
use crate::TreePath;

/// Why a path or node was refused.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error(transparent)]
    BadPath(#[from] PathError),
    #[error("{path}: refused because {symlink} is a symlink (to {target:?}); writing through it could leave the tree")]
    ThroughSymlink { path: TreePath, symlink: TreePath, target: String },
    #[error("{path}: parent {parent} is a {kind}, not a directory")]
    NotADirectory { path: TreePath, parent: TreePath, kind: &'static str },
    #[error("{path}: hard link to {target}, which is {why}")]
    BadHardlink { path: TreePath, target: TreePath, why: &'static str },
    #[error("{path}: {new} from {new_origin} conflicts with {existing} from {existing_origin}")]
    Conflict { path: TreePath, existing: &'static str, existing_origin: String, new: &'static str, new_origin: String },
}
