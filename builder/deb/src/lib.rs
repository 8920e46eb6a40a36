//! Debian archive formats for dinv-build: signed `InRelease`/`Release`,
//! `Packages` indices, version ordering, dependency relations, `.deb`
//! archives and the merged-/usr layout.
//!
//! A pure library: callers fetch and cache bytes, this crate verifies and
//! parses them. Data flows: keyring + InRelease → [`Release`] → verified
//! `Packages` → [`PackageRecord`]s → solver [`dinv_solver::Candidate`]s;
//! chosen `.deb` bytes → [`verify_blob`] → [`open_deb`] → data tar stream
//! (unpacked by `dinv_fstree::tar` with [`merged_usr`] as the rewrite).

pub mod archive;
pub mod candidate;
pub mod compression;
pub mod deb822;
mod index;
mod error;
pub mod openpgp;
pub mod packages;
pub mod relations;
pub mod release;
pub mod snapshot;
pub mod usrmerge;
pub mod version;

pub use archive::{open_deb, verify_blob, verify_file, verify_reader, DebControl, DebReader, MAINTAINER_SCRIPTS};
pub use candidate::to_candidate;
pub use compression::{decompress, Compression, Decoder};
pub use error::DebError;
pub use index::{mention_order, parse_request, priority_rank, Chosen, DebIndex, SuiteRecords};
pub use openpgp::{verify_clearsigned, verify_detached, Keyring, Signer, Verified};
pub use packages::{parse_packages, parse_packages_bytes, MultiArch, PackageRecord};
pub use relations::{parse_conflicts, parse_dependencies, parse_provides, parse_relations, Relation};
pub use release::{Release, ReleaseFile};
pub use usrmerge::{create_merged_usr_links, merged_usr, MERGED_DIRS};
pub use version::{compare_versions, validate_version, DebVersions};
