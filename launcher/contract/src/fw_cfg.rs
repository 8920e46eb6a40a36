//! Runtime settings the launcher passes to the guest as QEMU fw_cfg
//! entries `opt/dinv/<key>`, read by dinv-guest.

/// The fw_cfg name prefix.
pub const PREFIX: &str = "opt/dinv";
/// Where the guest's qemu_fw_cfg module shows the entries.
pub const GUEST_DIR: &str = "/sys/firmware/qemu_fw_cfg/by_name/opt/dinv";
/// Every key the guest understands.
pub const KEYS: &[&str] =
    &["mounts", "volume_path", "volume_uid", "volume_gid", "sock_uid", "sock_gid", "shutdown_timeout", TLS_CA, TLS_CERT, TLS_KEY];

/// The CA dockerd checks client certificates against (PEM); with
/// [`TLS_CERT`] and [`TLS_KEY`] it puts dockerd on [`DOCKER_TLS_PORT`]
/// with `--tlsverify`.
pub const TLS_CA: &str = "tls_ca";
/// dockerd's server certificate (PEM).
pub const TLS_CERT: &str = "tls_cert";
/// dockerd's server key (PEM).
pub const TLS_KEY: &str = "tls_key";
/// dockerd's TCP port when TLS is on (2375 without).
pub const DOCKER_TLS_PORT: u16 = 2376;
