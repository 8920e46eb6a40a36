//! The emitters: each writes artifacts from the configured guest tree and
//! the typed results of the emitters before it, and changes no tree. They
//! run in the order of [`EMITTERS`].

mod context;
pub mod image;
mod kernel;
pub(crate) mod layers;
pub mod outputs;
pub mod platforms;
pub mod report;
mod rootfs;
mod sbom;

pub use context::{Emit, Emitter};

use crate::error::Stage;

/// Every emitter, in order: later ones read earlier ones' results (the
/// image holds the kernel and the root filesystem; the SBOM names the
/// image digest).
pub const EMITTERS: &[(Stage, Emitter)] = &[(Stage::Kernel, kernel::emit), (Stage::Rootfs, rootfs::emit), (Stage::Image, image::emit), (Stage::Sbom, sbom::emit)];
