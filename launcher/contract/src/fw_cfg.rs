//! Runtime settings the launcher passes to the guest as QEMU fw_cfg
//! entries `opt/dinv/<key>`, read by dinv-guest.

/// The fw_cfg name prefix.
pub const PREFIX: &str = "opt/dinv";
/// Where the guest's qemu_fw_cfg module shows the entries.
pub const GUEST_DIR: &str = "/sys/firmware/qemu_fw_cfg/by_name/opt/dinv";
/// Every key the guest understands.
pub const KEYS: &[&str] = &["mounts", "volume_path", "volume_uid", "volume_gid", "sock_uid", "sock_gid", "shutdown_timeout"];
