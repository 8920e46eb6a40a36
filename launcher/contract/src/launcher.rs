//! `/etc/dinv/launcher.json`, written by the builder and read by the
//! launcher: where the kernel, initramfs, root filesystem and QEMU are, the
//! kernel command line, and image-specific defaults for DINV_* variables;
//! and where the image keeps those files.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::initramfs::root_by_serial_arg;

/// Default location of the launcher config in the image.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/dinv/launcher.json";
/// The container entrypoint inside the image.
pub const LAUNCHER_PATH: &str = "/usr/bin/dinv-launcher";
/// Where the guest kernel lands in the image.
pub const KERNEL_PATH: &str = "/usr/share/dinv/vmlinuz";
/// Where the uncompressed, PVH-bootable guest kernel lands in the image
/// (instead of the bzImage, when the build made one).
pub const PVH_KERNEL_PATH: &str = "/usr/share/dinv/vmlinux";
/// Where the initramfs lands in the image.
pub const INITRAMFS_PATH: &str = "/usr/share/dinv/initramfs";
/// Where the ext4 root filesystem lands in the image.
pub const ROOTFS_PATH: &str = "/usr/share/dinv/rootfs.ext4";

/// Kernel arguments every DinV guest needs (and the launcher's default
/// command line): the serial console, and the root disk found by serial.
pub fn base_append() -> String {
    append_for("x86_64")
}

/// [`base_append`] for a guest of `arch` (Rust's `target_arch`): the
/// serial console is the 8250 UART (`ttyS0`) on x86_64 and the PL011
/// (`ttyAMA0`) on arm64's `virt` machine.
pub fn append_for(arch: &str) -> String {
    let console = if arch == "aarch64" { "ttyAMA0" } else { "ttyS0" };
    format!("console={console} {} rw quiet", root_by_serial_arg())
}

/// The launcher.json schema (unknown keys are refused to catch typos).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LauncherConfig {
    /// Guest kernel: a bzImage, or an ELF `vmlinux` QEMU boots by PVH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<PathBuf>,
    /// Initramfs; absent when the kernel mounts the root itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initrd: Option<PathBuf>,
    /// ext4 root filesystem image (raw), never modified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<PathBuf>,
    /// qemu-system-x86_64 binary; default found in PATH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qemu: Option<PathBuf>,
    /// Kernel command line; default [`base_append`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append: Option<String>,
    /// Docker data disk image; default `/docker/docker.img`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_disk: Option<PathBuf>,
    /// Extra volume disk image; default `/volume/volume.img`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_disk: Option<PathBuf>,
    /// Sockets, console log and QEMU's snapshot file; default `/run/dinv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_dir: Option<PathBuf>,
    /// Where the image's snapshot would be; default
    /// [`crate::snapshot::SNAPSHOT_DIR`]. No snapshot there: the guest boots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<PathBuf>,
    /// Defaults for DINV_* variables (e.g. `{"DINV_MEMORY": "1G"}`), used
    /// when the environment does not set them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub defaults: BTreeMap<String, String>,
}

impl LauncherConfig {
    /// Parses launcher.json bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    /// A DINV_* lookup: the environment first, then this config's defaults.
    pub fn lookup<'a>(&'a self, env: &'a dyn Fn(&str) -> Option<String>) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| env(k).or_else(|| self.defaults.get(k).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_names_the_root_serial() {
        assert_eq!(base_append(), "console=ttyS0 root=SERIAL=dinv-root rw quiet");
        assert_eq!(append_for("aarch64"), "console=ttyAMA0 root=SERIAL=dinv-root rw quiet");
        assert!(LauncherConfig::parse(br#"{"kernal":"/k"}"#).unwrap_err().contains("kernal"));
    }
}
