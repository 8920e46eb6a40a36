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

/// Removes a directory that only makes a later run of the tests faster (a
/// package cache, unpacked trees) once its last user is done, when
/// `DINV_TEST_DISCARD=1`: `.ci/run` sets it, since a CI machine runs the
/// suite once and its free disk may be a few GiB. Without it the directory
/// stays for the next local run.
pub fn discard_cache(dir: &std::path::Path) {
    if std::env::var_os("DINV_TEST_DISCARD").is_some_and(|v| v == "1") {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => eprintln!("notice: removed {} (DINV_TEST_DISCARD=1)", dir.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!("notice: cannot remove {}: {e}", dir.display()),
        }
    }
}
