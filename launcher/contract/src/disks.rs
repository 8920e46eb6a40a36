//! How the guest finds its disks: virtio-mmio devices are not enumerated in
//! command-line order, so every disk carries a serial.

/// Serial of the root filesystem disk (`root=SERIAL=dinv-root`).
pub const ROOT_SERIAL: &str = "dinv-root";
/// Serial of the docker data disk, mounted on `/var/lib/docker`.
pub const DOCKER_SERIAL: &str = "dinv-docker";
/// Serial of the optional volume disk.
pub const VOLUME_SERIAL: &str = "dinv-volume";
/// The root filesystem's ext4 label (the guest's fstab mounts `LABEL=` it).
pub const ROOT_LABEL: &str = "dinv-root";

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
