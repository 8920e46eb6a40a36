//! Errors: a malformed ELF file, and a closure that cannot be completed.

use dinv_fstree::TreePath;

/// Why an ELF file could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed ELF: {why}")]
pub struct ParseError {
    pub why: String,
}

impl ParseError {
    pub(crate) fn new(why: impl Into<String>) -> Self {
        ParseError { why: why.into() }
    }
}

/// Why the closure of a path could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum ClosureError {
    /// A path to keep (or a symlink on the way to it) leads nowhere.
    #[error("{path} is not in the tree")]
    Missing { path: String },
    /// An ELF file's program interpreter is not in the tree.
    #[error("{object}: its program interpreter {interpreter} is not in the tree")]
    Interpreter { object: TreePath, interpreter: String },
    /// A `DT_NEEDED` library is in none of the directories ld.so searches.
    #[error("{object} needs {library}, which is in none of {}", searched.join(", "))]
    Unresolved { object: TreePath, library: String, searched: Vec<String> },
    #[error("{path}: {source}")]
    Parse { path: TreePath, source: ParseError },
    #[error("{path}: cannot read: {source}")]
    Read { path: TreePath, source: std::io::Error },
}
