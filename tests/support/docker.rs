//! The host's docker client, for the end-to-end tests that drive a DinV
//! appliance (e2e_debian, e2e_snapshot): one way to run it, to require a
//! daemon, and to wait.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::cli::text;

/// The repository root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().and_then(Path::parent).expect("tests/support is two levels down").to_path_buf()
}

/// `docker [-H host] args` with the classic builder (BuildKit needs a
/// buildx the guest's engine may not have). Without `host`, the daemon
/// the environment names, as for [`host_docker_available`].
pub fn docker(host: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new("docker");
    c.env("DOCKER_BUILDKIT", "0");
    if let Some(h) = host {
        c.args(["-H", h]);
    }
    c.args(args).output().expect("docker CLI not found: run scripts/setup")
}

/// [`docker`] that must succeed; its standard output.
pub fn docker_ok(host: Option<&str>, args: &[&str]) -> String {
    let o = docker(host, args);
    assert!(o.status.success(), "docker {}: {}", args.join(" "), text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Polls `f` every `every` until it holds; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, every: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(every);
    }
}

/// Whether the host's dockerd answers `docker info`. Without one the
/// end-to-end tests skip, unless DINV_REQUIRE_DOCKER=1 (CI) makes that a
/// failure.
pub fn host_docker_available() -> bool {
    let ok = Command::new("docker").arg("info").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !ok && std::env::var("DINV_REQUIRE_DOCKER").as_deref() == Ok("1") {
        panic!("DINV_REQUIRE_DOCKER=1 but `docker info` fails: start dockerd (scripts/setup --start-dockerd)");
    }
    ok
}
