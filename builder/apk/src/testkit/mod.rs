//! Real-format fixtures generated at run time: RSA keys, signed `.apk`
//! files laid out like abuild writes them, signed `APKINDEX.tar.gz`, and
//! repository directories. Options produce unsigned, wrongly signed and
//! tampered variants. Nothing here is used outside tests and benchmarks.

mod apk;
mod index;
mod key;
mod repo;
mod tar;

pub use apk::{build_apk, ApkOptions, BuiltApk, PackageSpec, SpecEntry, SpecKind, Tamper};
pub use index::{build_index, IndexOptions};
pub use key::{shared_key, TestKey};
pub use repo::{write_repository, write_repository_styled, WrittenRepo};
pub use tar::{gzip, StyledTar, TarStyle};
