//! How the guest finds its disks: virtio-mmio devices are not enumerated in
//! command-line order, so every disk carries a serial.

use std::path::{Path, PathBuf};

/// Serial of the root filesystem disk (`root=SERIAL=dinv-root`).
pub const ROOT_SERIAL: &str = "dinv-root";
/// Serial of the docker data disk, mounted on `/var/lib/docker`.
pub const DOCKER_SERIAL: &str = "dinv-docker";
/// Serial of the optional volume disk.
pub const VOLUME_SERIAL: &str = "dinv-volume";
/// The root filesystem's ext4 label (the guest's fstab mounts `LABEL=` it).
pub const ROOT_LABEL: &str = "dinv-root";

/// The block device whose virtio serial (`/sys/block/*/serial`) is
/// `serial`, as `/dev/NAME`. Disks are found by serial because virtio-mmio
/// devices on microvm are not enumerated in command-line order.
pub fn find_by_serial(sys_block: &Path, serial: &str) -> Option<PathBuf> {
    let mut names: Vec<String> = std::fs::read_dir(sys_block).ok()?.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
        .into_iter()
        .find(|n| std::fs::read_to_string(sys_block.join(n).join("serial")).map(|s| s.trim() == serial).unwrap_or(false))
        .map(|n| Path::new("/dev").join(n))
}

/// The virtio serial of the disk with QEMU drive id `id` (`root` → `dinv-root`).
pub fn serial_for(id: &str) -> String {
    format!("dinv-{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_follow_drive_ids() {
        assert_eq!(serial_for("root"), ROOT_SERIAL);
        assert_eq!(serial_for("docker"), DOCKER_SERIAL);
        assert_eq!(serial_for("volume"), VOLUME_SERIAL);
    }
}
