//! The root filesystem stage: the configured guest tree as an ext4 image,
//! with ids derived from the build's inputs so the same inputs give the
//! same bytes.

use std::path::Path;

use dinv_ext4::{write_image, Ext4Options};
use dinv_fstree::Tree;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::lock::input_hashes;
use crate::progress::Progress;
use crate::recipe::{parse_size, LoadedRecipe};
use crate::sources::ResolvedPackage;
use crate::{Error, Result};

const STAGE: &str = "rootfs";

/// File name of the image in the output directory.
pub const ROOTFS: &str = "rootfs.ext4";

/// Headroom when `rootfs.size` is not given, in percent of the content.
pub const DEFAULT_HEADROOM_PERCENT: u32 = 20;

/// Label when `rootfs.label` is not given.
pub const DEFAULT_LABEL: &str = "dinv-root";

/// What the image holds, for `report.json`.
#[derive(Clone, Debug, Serialize)]
pub struct RootfsSummary {
    pub size: u64,
    pub block_size: u32,
    pub blocks: u64,
    pub blocks_used: u64,
    pub inodes: u64,
    pub inodes_used: u64,
    pub label: String,
    /// Seed of the filesystem UUID and hash seed.
    pub seed: String,
}

/// A stable seed over the recipe's input files and every resolved package
/// checksum: same inputs, same UUID.
pub fn seed<'a>(l: &LoadedRecipe, packages: impl IntoIterator<Item = &'a ResolvedPackage>) -> Result<String> {
    let mut h = Sha256::new();
    for (k, v) in input_hashes(l)? {
        h.update(format!("input {k}\0{v}\n").as_bytes());
    }
    for p in packages {
        h.update(format!("package {}\0{}\0{}\n", p.source, p.name, p.checksum).as_bytes());
    }
    Ok(hex::encode(h.finalize()))
}

/// The writer's options from `[rootfs]`.
pub fn options(l: &LoadedRecipe, seed: &str, epoch: i64) -> Result<Ext4Options> {
    let r = &l.recipe.rootfs;
    let size = match &r.size {
        Some(s) => Some(parse_size(s).ok_or_else(|| Error::stage(STAGE, format!("rootfs.size {s:?} is not a size (e.g. 512M, 2G)")))?),
        None => None,
    };
    Ok(Ext4Options {
        size,
        headroom_percent: r.headroom_percent.unwrap_or(DEFAULT_HEADROOM_PERCENT),
        label: r.label.clone().unwrap_or_else(|| DEFAULT_LABEL.to_string()),
        ..Ext4Options::from_seed(seed, epoch.max(0))
    })
}

/// Writes `tree` to `out/rootfs.ext4`.
pub fn run<'a>(l: &LoadedRecipe, packages: impl IntoIterator<Item = &'a ResolvedPackage>, tree: &Tree, epoch: i64, out: &Path, progress: &Progress) -> Result<RootfsSummary> {
    let seed = seed(l, packages)?;
    let opts = options(l, &seed, epoch)?;
    let path = out.join(ROOTFS);
    // The writer reports no progress, so show a spinner with the content size.
    let bar = progress.bytes("rootfs.ext4", None);
    bar.set_message(format!("{} MiB of files", tree.content_bytes() >> 20));
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let report = write_image(tree, &path, &opts).map_err(|e| Error::stage(STAGE, format!("writing {}: {e}", path.display())));
    bar.finish_and_clear();
    let report = report?;
    tracing::info!(size = report.size, blocks_used = report.blocks_used, inodes_used = report.inodes_used, "rootfs.ext4 written");
    Ok(RootfsSummary {
        size: report.size,
        block_size: report.block_size,
        blocks: report.blocks,
        blocks_used: report.blocks_used,
        inodes: report.inodes,
        inodes_used: report.inodes_used,
        label: opts.label,
        seed,
    })
}
