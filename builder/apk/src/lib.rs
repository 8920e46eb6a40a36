//! Alpine apk-tools v2 formats: bytes in, verified data out.
//!
//! - [`version`]: apk version ordering ([`ApkVersions`] for the solver).
//! - [`Keyring`]: trusted RSA public keys, named by file name.
//! - [`segments`] and [`sign`]: apk files are concatenated gzip members; a
//!   leading signature member signs the raw compressed bytes that follow.
//! - [`index`]: signed `APKINDEX.tar.gz` into [`IndexEntry`]s and solver
//!   [`dinv_solver::Candidate`]s.
//! - [`package`]: `.apk` verification against the index checksum, the
//!   signature and the data hash.
//! - [`world`]: a world resolved against repositories under apk-tools' rules.
//! - `testkit` (feature `testkit`): real-format fixtures generated at run time.
//!
//! No I/O beyond reading key files: fetching and caching belong to the caller.

mod algo;
mod candidate;
mod checksum;
mod dep;
mod error;
pub mod index;
mod keys;
pub mod package;
mod pkginfo;
pub mod segments;
pub mod sign;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod version;
pub mod world;

pub use candidate::ConvertError;
pub use checksum::Checksum;
pub use dep::{ApkDep, ApkOp, DepParseError};
pub use error::{IndexError, KeyError, PackageError, PackageProblem, SegmentError, SignatureError};
pub use index::{ApkIndex, IndexEntry};
pub use keys::Keyring;
pub use package::{ApkCheck, ControlScript, VerifiedApk};
pub use pkginfo::PkgInfo;
pub use sign::{SigAlgo, Signature};
pub use version::ApkVersions;
pub use world::{ApkUniverse, Chosen, Repository, WorldError};
