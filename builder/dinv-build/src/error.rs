//! The builder's error type: typed errors from the format crates, kept as
//! they are up to the CLI, with the context a user can act on (which
//! package, which check, which stage), and the one table of exit codes.

use std::fmt;
use std::path::PathBuf;

use crate::fetch::FetchError;
use crate::recipe::RecipeError;

/// What kind of failure an error is; each kind has one exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Io,
    Recipe,
    Usage,
    Lock,
    Resolve,
    Fetch,
    Integrity,
    Stage,
    NotReproducible,
}

/// The exit code of every kind, with what it means (the README's table).
pub const EXIT_CODES: &[(ErrorKind, u8, &str)] = &[
    (ErrorKind::Io, 1, "internal or I/O error; the message names the path"),
    (ErrorKind::Recipe, 2, "bad recipe; the message gives `file:line: key`"),
    (ErrorKind::Usage, 2, "bad command line; or an `--out` that is not ours to replace (refused before any work)"),
    (ErrorKind::Lock, 2, "a lock file that is missing, invalid or out of date; the message names what changed"),
    (ErrorKind::Resolve, 3, "dependency resolution failed; the message gives the chain"),
    (ErrorKind::Fetch, 4, "a download failed (network, HTTP status, missing index, offline)"),
    (ErrorKind::Integrity, 4, "an integrity check failed; the message names the package or index and the check"),
    (ErrorKind::Stage, 5, "a build stage failed; the message names the stage"),
    (ErrorKind::NotReproducible, 6, "`verify` found outputs that differ"),
];

impl ErrorKind {
    /// The process exit code (from [`EXIT_CODES`]).
    pub fn exit_code(self) -> u8 {
        EXIT_CODES.iter().find(|(k, _, _)| *k == self).map(|(_, c, _)| *c).expect("every kind is in the table")
    }

    /// The name used in `--json` errors.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Io => "io",
            ErrorKind::Recipe => "recipe",
            ErrorKind::Usage => "usage",
            ErrorKind::Lock => "lock",
            ErrorKind::Resolve => "resolve",
            ErrorKind::Fetch => "fetch",
            ErrorKind::Integrity => "integrity",
            ErrorKind::Stage => "stage",
            ErrorKind::NotReproducible => "not-reproducible",
        }
    }
}

/// A stage of the build: the one list the pipeline runs, progress names,
/// errors report, `report.json` times and `DINV_TEST_PAUSE_AT` pauses at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Resolve,
    Fetch,
    Unpack,
    Configure,
    UnpackRuntime,
    Kernel,
    Rootfs,
    Image,
    Sbom,
    Publish,
    Verify,
    /// `dinv-build snapshot`: boot a built image once and save it.
    Snapshot,
}

impl Stage {
    /// Every stage of a build, in the order it runs (`verify` runs builds;
    /// `snapshot` runs on a build's output).
    pub const ALL: [Stage; 12] = [
        Stage::Resolve,
        Stage::Fetch,
        Stage::Unpack,
        Stage::Configure,
        Stage::UnpackRuntime,
        Stage::Kernel,
        Stage::Rootfs,
        Stage::Image,
        Stage::Sbom,
        Stage::Publish,
        Stage::Verify,
        Stage::Snapshot,
    ];

    /// The name in messages, `report.json` and `DINV_TEST_PAUSE_AT`.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Resolve => "resolve",
            Stage::Fetch => "fetch",
            Stage::Unpack => "unpack",
            Stage::Configure => "configure",
            Stage::UnpackRuntime => "unpack-runtime",
            Stage::Kernel => "kernel",
            Stage::Rootfs => "rootfs",
            Stage::Image => "image",
            Stage::Sbom => "sbom",
            Stage::Publish => "publish",
            Stage::Verify => "verify",
            Stage::Snapshot => "snapshot",
        }
    }

    /// The stage of a name.
    pub fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The status-line verb on a terminal.
    pub fn verb(self) -> &'static str {
        match self {
            Stage::Resolve => "Resolving",
            Stage::Fetch => "Fetching",
            Stage::Unpack | Stage::UnpackRuntime => "Unpacking",
            Stage::Configure => "Configuring",
            Stage::Kernel => "Building",
            Stage::Rootfs | Stage::Image | Stage::Sbom => "Writing",
            Stage::Publish => "Publishing",
            Stage::Verify => "Verifying",
            Stage::Snapshot => "Snapshotting",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a stage failed.
#[derive(Debug, thiserror::Error)]
pub enum StageFailure {
    #[error(transparent)]
    Kernel(#[from] dinv_kernel::KernelError),
    #[error(transparent)]
    Ext4(#[from] dinv_ext4::Ext4Error),
    #[error(transparent)]
    Image(#[from] dinv_image::ImageError),
    #[error(transparent)]
    Tree(#[from] dinv_fstree::TreeError),
    /// A typed failure with what it happened to (`linux-virt 6.12: …`).
    #[error("{what}: {source}")]
    In { what: String, source: Box<StageFailure> },
    #[error("{0}")]
    Message(String),
}

/// Why a downloaded, cached or trusted input was refused.
#[derive(Debug, thiserror::Error)]
pub enum Check {
    #[error(transparent)]
    ApkIndex(#[from] dinv_apk::IndexError),
    #[error(transparent)]
    ApkPackage(#[from] dinv_apk::PackageProblem),
    #[error(transparent)]
    ApkKey(#[from] dinv_apk::KeyError),
    #[error(transparent)]
    Deb(#[from] dinv_deb::DebError),
    #[error(transparent)]
    Unpack(#[from] dinv_fstree::tar::UnpackError),
    /// A package's data archive (its files) is corrupt.
    #[error("data archive: {0}")]
    DataArchive(#[source] dinv_fstree::tar::TarError),
    /// An index that no trusted key signed, with the keys that were trusted.
    #[error("{source} (trusted keys: {keys})")]
    IndexSignature { source: dinv_apk::IndexError, keys: String },
    /// A package file in the cache failed its check.
    #[error("{source} (cached file {})", path.display())]
    Cached { path: PathBuf, source: Box<Check> },
    #[error("{0}")]
    Message(String),
}

impl Check {
    /// This failure, found in the cached file `path`.
    pub fn in_cached(self, path: &std::path::Path) -> Check {
        Check::Cached { path: path.to_path_buf(), source: Box::new(self) }
    }
}

/// Everything that can stop a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Recipe(#[from] RecipeError),
    #[error("{0}")]
    Usage(String),
    /// A lock file that is missing, invalid or out of date (`--locked`).
    #[error("{0}")]
    Lock(String),
    #[error("cannot resolve the {set} packages of source {source_name:?}: {source}")]
    Resolve { source_name: String, set: String, source: dinv_solver::SolveError },
    /// A resolve failure at the recipe line that asked for the package,
    /// with a suggestion from the index (`file:line: guest.packages[3]: …`).
    #[error("{at}: {inner}{hint}")]
    ResolveAt { at: String, inner: Box<Error>, hint: String },
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// An integrity check failed: names the package or index and the check.
    #[error("{subject}: {check}")]
    Integrity { subject: String, check: Check },
    #[error("{stage}: {failure}")]
    Stage { stage: Stage, failure: StageFailure },
    #[error("outputs differ: {0}")]
    NotReproducible(String),
    /// An output directory that is not ours to write (exit 2, before any work).
    #[error("refusing to write the output into {}: {why}", path.display())]
    OutputRefused { path: PathBuf, why: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

impl Error {
    /// The kind of failure (and so the exit code).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Recipe(_) => ErrorKind::Recipe,
            Error::Usage(_) | Error::OutputRefused { .. } => ErrorKind::Usage,
            Error::Lock(_) => ErrorKind::Lock,
            Error::Resolve { .. } | Error::ResolveAt { .. } => ErrorKind::Resolve,
            Error::Fetch(_) => ErrorKind::Fetch,
            Error::Integrity { .. } => ErrorKind::Integrity,
            // A stage that failed on reading or writing a file (a full disk) is an I/O error.
            Error::Stage { failure, .. } if failure.is_io() => ErrorKind::Io,
            Error::Stage { .. } => ErrorKind::Stage,
            Error::NotReproducible(_) => ErrorKind::NotReproducible,
            Error::Io { .. } => ErrorKind::Io,
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    /// A failure in a named build stage.
    pub fn stage(stage: Stage, failure: impl Into<StageFailure>) -> Error {
        Error::Stage { stage, failure: failure.into() }
    }

    /// An integrity check that failed for `subject`.
    pub fn integrity(subject: impl Into<String>, check: impl Into<Check>) -> Error {
        Error::Integrity { subject: subject.into(), check: check.into() }
    }
}

impl From<String> for StageFailure {
    fn from(s: String) -> Self {
        StageFailure::Message(s)
    }
}

impl From<&str> for StageFailure {
    fn from(s: &str) -> Self {
        StageFailure::Message(s.to_string())
    }
}

impl From<String> for Check {
    fn from(s: String) -> Self {
        Check::Message(s)
    }
}

impl StageFailure {
    /// True when the cause is reading or writing a file, not the build's inputs.
    pub fn is_io(&self) -> bool {
        match self {
            StageFailure::Ext4(dinv_ext4::Ext4Error::Write { .. } | dinv_ext4::Ext4Error::Read { .. }) => true,
            StageFailure::Image(dinv_image::ImageError::Io { .. }) => true,
            StageFailure::Kernel(dinv_kernel::KernelError::Io { .. }) => true,
            StageFailure::In { source, .. } => source.is_io(),
            _ => false,
        }
    }

    /// This failure, said to concern `what`.
    pub fn of(self, what: impl Into<String>) -> StageFailure {
        StageFailure::In { what: what.into(), source: Box::new(self) }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_exit_code() {
        for kind in [
            ErrorKind::Io,
            ErrorKind::Recipe,
            ErrorKind::Usage,
            ErrorKind::Lock,
            ErrorKind::Resolve,
            ErrorKind::Fetch,
            ErrorKind::Integrity,
            ErrorKind::Stage,
            ErrorKind::NotReproducible,
        ] {
            assert_eq!(EXIT_CODES.iter().filter(|(k, _, _)| *k == kind).count(), 1, "{kind:?}");
        }
        assert_eq!(Error::Usage("x".into()).kind().exit_code(), 2);
        assert_eq!(Error::stage(Stage::Kernel, "bad").to_string(), "kernel: bad");
        for st in Stage::ALL {
            assert_eq!(Stage::from_name(st.name()), Some(st));
        }
        let full = dinv_ext4::Ext4Error::Write { path: "out/.x.partial-1/rootfs.ext4".into(), source: std::io::Error::from_raw_os_error(28) };
        assert_eq!(Error::stage(Stage::Rootfs, full).kind().exit_code(), 1);
    }
}
