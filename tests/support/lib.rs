//! Shared support for dinv-build's integration tests (`builder/dinv-build/tests`): one
//! CLI runner with one environment policy ([`cli`]), fixtures generated at
//! run time (an Alpine v3.22-shaped mirror, fake kernels, a local Debian
//! mirror from what this machine's apt trusts, a static HTTP server with
//! validators and armable faults, a local OCI registry), and helpers to read the
//! outputs (ext4 via debugfs, output comparison, the appliance).

pub mod alpine_repo;
pub mod appliance;
pub mod cli;
pub mod apt;
pub mod debian_mirror;
pub mod docker;
pub mod ext4;
pub mod fake_kernel;
pub mod http;
pub mod outputs;
pub mod python;
pub mod registry;
pub mod skopeo;

/// SHA-256 of bytes, as lower-case hex (the one digest helper of the tests).
pub fn sha256_hex(bytes: &[u8]) -> String {
    dinv_image::sha256_digest(bytes).trim_start_matches("sha256:").to_string()
}
