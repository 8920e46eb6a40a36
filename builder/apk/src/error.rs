//! Typed errors of the crate; callers match on them, the CLI renders them.

use std::io;
use std::path::PathBuf;

use dinv_fstree::tar::TarError;

use crate::algo::SigAlgo;
use crate::Checksum;

/// A trusted key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file or directory could not be read.
    #[error("reading key {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// A file is not a usable public key.
    #[error("key {name}: not an RSA public key in PEM form ({why})")]
    Pem { name: String, why: String },
}

/// A gzip member could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// Invalid, truncated or missing gzip data.
    #[error("gzip member at byte {offset}: {source}")]
    Corrupt { offset: usize, source: io::Error },
    /// A signature member holds something other than `.SIGN.*` files.
    #[error("signature member at byte {offset}: {why}")]
    BadSignatureMember { offset: usize, why: String },
}

/// Why a signature check failed.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// There is no signature at all.
    #[error("not signed (no .SIGN.* member)")]
    Unsigned,
    /// No signature is by a trusted key (lists the keys that signed).
    #[error("signed only by untrusted keys: {}", keys.join(", "))]
    UnknownKey { keys: Vec<String> },
    /// The trusted key's signature does not verify: the content changed or the key is forged.
    #[error("signature by {key} ({algo}) does not match the content")]
    BadSignature { key: String, algo: SigAlgo },
}

/// Why an `APKINDEX.tar.gz` was refused.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Corrupt compression.
    #[error("APKINDEX: {0}")]
    Gzip(#[from] SegmentError),
    /// The signature check failed.
    #[error("APKINDEX signature: {0}")]
    Signature(#[from] SignatureError),
    /// Corrupt tar inside.
    #[error("APKINDEX: {0}")]
    Tar(#[from] TarError),
    /// The tar has no `APKINDEX` file.
    #[error("APKINDEX.tar.gz holds no APKINDEX member")]
    MissingApkindex,
    /// The index text is malformed.
    #[error("APKINDEX line {line}: {why}")]
    Format { line: usize, why: String },
    /// A member claims more bytes than any real index holds.
    #[error("APKINDEX.tar.gz: member {member} of {size} bytes is over the limit of {max} bytes")]
    TooLarge { member: &'static str, size: u64, max: u64 },
}

/// The check of a `.apk` that failed.
#[derive(Debug, thiserror::Error)]
pub enum PackageProblem {
    /// Nothing to verify against was given.
    #[error("neither an index checksum nor trusted keys to verify against")]
    Untrusted,
    /// Corrupt compression.
    #[error("{0}")]
    Gzip(#[from] SegmentError),
    /// The file ends after the signature.
    #[error("no control member after the signature")]
    NoControl,
    /// The control tar is corrupt.
    #[error("control member: {0}")]
    ControlTar(#[from] TarError),
    /// The control tar lacks `.PKGINFO`.
    #[error("control member has no .PKGINFO")]
    NoPkgInfo,
    /// `.PKGINFO` is malformed.
    #[error(".PKGINFO: {0}")]
    PkgInfo(String),
    /// The control member is not the one the index names.
    #[error("control checksum (C:) mismatch: index says {expected}, file has {actual}")]
    ChecksumMismatch { expected: Checksum, actual: Checksum },
    /// The package's own signature failed.
    #[error("signature: {0}")]
    Signature(#[from] SignatureError),
    /// The file ends after the control member.
    #[error("no data member after the control member")]
    NoData,
    /// The data member is not the one `.PKGINFO` names.
    #[error("data hash mismatch: .PKGINFO says {expected}, data member has {actual}")]
    DataHashMismatch { expected: String, actual: String },
    /// The package is another name or version than expected.
    #[error(".PKGINFO names {found}, expected {expected}")]
    WrongPackage { expected: String, found: String },
}

/// A `.apk` failed verification; names the package and the check.
#[derive(Debug, thiserror::Error)]
#[error("{package}: {problem}")]
pub struct PackageError {
    /// `name-version`.
    pub package: String,
    /// The failed check.
    pub problem: PackageProblem,
}
