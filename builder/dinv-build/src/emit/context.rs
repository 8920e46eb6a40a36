//! What the emitters share: their inputs, and what each has written so far.

use std::path::Path;

use dinv_fstree::Tree;

use super::outputs::{ImageSummary, KernelOutputs, RootfsSummary};
use crate::configure::KernelPlan;
use crate::context::BuildEnv;
use crate::recipe::LoadedRecipe;
use crate::resolve::Resolved;
use crate::Result;

/// What the emitters read, and what each has written so far.
pub struct Emit<'a> {
    pub recipe: &'a LoadedRecipe,
    pub resolved: &'a Resolved,
    pub env: &'a BuildEnv,
    /// The configured guest tree.
    pub guest: &'a Tree,
    /// The checked guest kernel.
    pub kernel_plan: Option<&'a KernelPlan>,
    /// The runtime packages unpacked, when an image is built.
    pub runtime: Option<&'a Tree>,
    /// SOURCE_DATE_EPOCH.
    pub epoch: i64,
    /// The staging directory the outputs are written into.
    pub out: &'a Path,
    pub kernel: Option<KernelOutputs>,
    pub rootfs: Option<RootfsSummary>,
    pub image: Option<ImageSummary>,
    /// Image layers taken from the layer cache (run information).
    pub cached_layers: Vec<String>,
    /// SHA-256 of output files, being computed on their own threads while
    /// later emitters run (file name → the hashing thread).
    pub hashing: Vec<(String, std::thread::JoinHandle<Result<String>>)>,
}

/// An emitter: writes its files and records its result in [`Emit`].
pub type Emitter = fn(&mut Emit) -> Result<()>;

