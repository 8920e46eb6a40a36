//! Errors of every Debian format in this crate; each names the file,
//! package or check it concerns so a user can act on it.

use std::io;

/// Why a Debian archive file was refused.
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    /// The input carries no OpenPGP signature at all.
    #[error("{what}: not signed: {why}")]
    NotSigned { what: String, why: String },
    /// Every signature was made by a key that is not in the keyring.
    #[error("{what}: signed only by keys not in the keyring (issuers: {})", issuers.join(", "))]
    UnknownKey { what: String, issuers: Vec<String> },
    /// A signature by a key in the keyring does not verify (tampering or corruption).
    #[error("{what}: bad signature by key {key}: {why}")]
    BadSignature { what: String, key: String, why: String },
    /// Signatures exist but none could be checked (unsupported, unbound subkey, expired key...).
    #[error("{what}: no valid signature: {}", why.join("; "))]
    NoValidSignature { what: String, why: Vec<String> },
    /// The keyring itself could not be read.
    #[error("keyring: {why}")]
    Keyring { why: String },
    /// A syntax error in a text format (deb822, Release, relations, versions).
    #[error("{what}{}: {why}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Malformed { what: String, line: Option<usize>, why: String },
    /// A Release file whose Valid-Until lies in the past.
    #[error("{what}: expired (Valid-Until {valid_until}); the mirror is stale or the clock is wrong")]
    Expired { what: String, valid_until: String },
    /// Bytes whose SHA256 differs from the one the signed index lists.
    #[error("{what}: SHA256 mismatch: expected {expected}, got {actual}")]
    Checksum { what: String, expected: String, actual: String },
    /// Bytes whose length differs from the one the signed index lists.
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    Size { what: String, expected: u64, actual: u64 },
    /// A structural problem in a `.deb` (ar layout, members, control tarball).
    #[error("{package}.deb: {why}")]
    Archive { package: String, why: String },
    /// A tar error inside a `.deb`'s control member.
    #[error("{package}.deb: {member}: {source}")]
    Tar { package: String, member: String, source: dinv_fstree::tar::TarError },
    /// An I/O error (reading or decompressing) with what was being read.
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
}

impl DebError {
    /// A [`DebError::Malformed`] without a line number.
    pub(crate) fn malformed(what: impl Into<String>, why: impl Into<String>) -> Self {
        DebError::Malformed { what: what.into(), line: None, why: why.into() }
    }

    /// An [`DebError::Io`] naming what was read.
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        DebError::Io { what: what.into(), source }
    }
}
