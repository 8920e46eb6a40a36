//! A local OCI registry (Debian's `docker-registry`) on 127.0.0.1 for push
//! tests, and the rule for host tools a test needs: missing, the test
//! skips with a printed reason, unless `DINV_REQUIRE_DOCKER=1` (CI), where
//! it fails.

use std::fs;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running registry; stopped when dropped.
pub struct Registry {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// True when `tool` runs (`tool --version`, or the given probe args); else
/// prints why the test skips, or panics under `DINV_REQUIRE_DOCKER=1`.
pub fn tool_available(tool: &str, probe: &[&str], test: &str) -> bool {
    let ok = Command::new(tool).args(probe).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !ok {
        if std::env::var("DINV_REQUIRE_DOCKER").as_deref() == Ok("1") {
            panic!("DINV_REQUIRE_DOCKER=1 but {tool} is missing: run scripts/setup");
        }
        eprintln!("notice: {test}: skipped, {tool} is not installed (scripts/setup installs it; DINV_REQUIRE_DOCKER=1 makes this a failure)");
    }
    ok
}

/// Starts `docker-registry` on a free loopback port (panics when it does not come up).
pub fn start_registry() -> Registry {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("config.yml");
    fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let child = Command::new("docker-registry")
        .args(["serve", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker-registry not found: run scripts/setup (apt-get install docker-registry)");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "registry did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Registry { child, port, _dir: dir }
}
