//! dinv-build: builds Docker-in-VM appliances from declarative recipes.
//!
//! Data flows one way: [`recipe`] (load, merge, validate) → `resolve`
//! (package sets from `sources`, or the lock file) → fetch and unpack into
//! one in-memory tree → [`configure`] (every edit of the guest tree) →
//! `emit` (kernel + initramfs, ext4, image, SBOM) → `report` → atomic
//! publication. The binary (`main.rs`) parses arguments and prints;
//! [`commands`] run the subcommands.

mod assets;
mod cache;
pub mod commands;
pub mod configure;
mod context;
pub mod currency;
mod emit;
mod error;
mod fetch;
mod lock;
mod output;
mod pipeline;
mod progress;
mod push;
pub mod recipe;
mod resolve;
pub mod snapshot;
pub mod sign;
pub mod sources;
pub mod suggest;
mod vendor;

pub use assets::{for_arch as binaries_for, Binaries};
pub use assets::launcher as launcher_binary;
pub use context::{BuildEnv, Context};
pub use emit::image::{build_image, ImageInputs, ImageOutputs};
pub use emit::report::RUN_FIELDS as REPORT_RUN_FIELDS;
pub use error::{Error, ErrorKind, Result, EXIT_CODES};
pub use pipeline::configured_guest;
pub use push::{fetch_attestations, verify_signatures, Reference};
