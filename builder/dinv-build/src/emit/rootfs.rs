//! The root filesystem stage: the configured guest tree as an ext4 image,
//! with ids derived from the build's inputs so the same inputs give the
//! same bytes.

use dinv_contract::disks::ROOT_LABEL;
use dinv_ext4::{write_image, Ext4Options};
use sha2::{Digest, Sha256};

use super::context::Emit;
use super::outputs::RootfsSummary;
use crate::error::Stage;
use crate::recipe::LoadedRecipe;
use crate::{Error, Result};

pub use super::outputs::ROOTFS;

/// Free space when `rootfs.free` is not given: this share of the content,
/// or [`DEFAULT_FREE_BYTES`], whichever is larger.
pub const DEFAULT_FREE_PERCENT: u32 = 10;
pub const DEFAULT_FREE_BYTES: u64 = 64 << 20;

/// The seed of the file system's ids (UUID, directory hash and checksum
/// seeds): derived from the image's name only, so it is the same for every
/// build of a recipe. Were it derived from the content, one changed overlay
/// file would change every checksummed metadata block; as it is, only the
/// blocks of what changed differ, and the image layer reuses the rest.
pub fn seed(l: &LoadedRecipe) -> String {
    let mut h = Sha256::new();
    h.update(b"dinv-build rootfs seed 1\0");
    h.update(l.recipe.image.name.as_bytes());
    hex::encode(h.finalize())
}

/// The writer's options from `[rootfs]`.
pub fn options(l: &LoadedRecipe, seed: &str, epoch: i64) -> Result<Ext4Options> {
    let r = &l.recipe.rootfs;
    // Parsed when the recipe was read (recipe::Size, recipe::Free).
    let size = r.size.as_ref().map(|s| s.bytes);
    let free = r.free.as_ref().map_or((DEFAULT_FREE_PERCENT, DEFAULT_FREE_BYTES), |f| (f.percent, f.bytes));
    Ok(Ext4Options {
        size,
        headroom_percent: free.0,
        min_free_bytes: free.1,
        label: r.label.clone().unwrap_or_else(|| ROOT_LABEL.to_string()),
        ..Ext4Options::from_seed(seed, epoch.max(0))
    })
}

/// Writes the configured guest tree to `rootfs.ext4`.
pub fn emit(e: &mut Emit) -> Result<()> {
    let seed = seed(e.recipe);
    let opts = options(e.recipe, &seed, e.epoch)?;
    let path = e.out.join(ROOTFS);
    // The writer reports no progress, so show a spinner with the elapsed time.
    let bar = e.env.progress.spinner("rootfs.ext4", format!("{} MiB of files", e.guest.content_bytes() >> 20));
    let report = write_image(e.guest, &path, &opts).map_err(|err| Error::stage(Stage::Rootfs, err));
    bar.finish_and_clear();
    let report = report?;
    // The report needs the image's digest: take it now, beside the image stage.
    let p = path.clone();
    e.hashing.push((ROOTFS.to_string(), std::thread::spawn(move || crate::sources::sha256_file(&p))));
    tracing::info!(size = report.size, blocks_used = report.blocks_used, inodes_used = report.inodes_used, "rootfs.ext4 written");
    e.rootfs = Some(RootfsSummary {
        size: report.size,
        block_size: report.block_size,
        blocks: report.blocks,
        blocks_used: report.blocks_used,
        inodes: report.inodes,
        inodes_used: report.inodes_used,
        label: opts.label,
        seed,
    });
    Ok(())
}
