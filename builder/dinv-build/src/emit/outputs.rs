//! What the emitters write and report: file names and typed summaries.

use std::path::PathBuf;

use serde::Serialize;

/// File name of the root filesystem image in the output directory.
pub const ROOTFS: &str = "rootfs.ext4";
/// File name of the docker-archive in the output directory.
pub const IMAGE_TAR: &str = "image.tar";

/// What the kernel stage did, for `report.json`.
#[derive(Clone, Debug, Serialize)]
pub struct KernelSummary {
    /// `name version` of the package that shipped the kernel.
    pub package: String,
    /// Kernel release (`uname -r`).
    pub release: String,
    /// Modules the initramfs loads, in order.
    pub initramfs_modules: Vec<String>,
    /// Modules the fragments need that the guest loads from `/etc/modules`.
    pub guest_modules: Vec<String>,
    /// How the image boots the kernel: `pvh` (the uncompressed `vmlinux`)
    /// or `bzimage`.
    pub boot: String,
    /// The kernel command line the image's launcher passes (its `append`).
    pub cmdline: String,
}

/// The written kernel files.
pub struct KernelOutputs {
    pub vmlinuz: PathBuf,
    /// The PVH-bootable kernel, when `kernel.boot` made one.
    pub vmlinux: Option<PathBuf>,
    pub initramfs: PathBuf,
    pub summary: KernelSummary,
}

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

/// The emitted image in the report.
#[derive(Clone, Debug, Serialize)]
pub struct ImageSummary {
    pub reference: String,
    pub manifest_digest: String,
    pub config_digest: String,
    pub layers: Vec<LayerSummary>,
}

/// One written layer, for the build report.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LayerSummary {
    /// `runtime` or `dinv`.
    pub name: String,
    /// OCI media type (`…tar+gzip` or `…tar+zstd`).
    pub media_type: String,
    /// `sha256:` of the compressed blob.
    pub digest: String,
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
    /// Compressed size in bytes.
    pub size: u64,
    /// Uncompressed tar size in bytes.
    pub uncompressed_size: u64,
}
