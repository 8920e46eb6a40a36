//! Stop reliability of the Debian appliance as users run it (not a test):
//! `docker stop` / `docker start` cycles, each after writing a file in an
//! inner container (no sync), then every file written so far is checked.
//! Reports each stop's time, the container's exit code and any loss; the
//! target is every cycle clean with nothing lost. A last cycle stops the
//! guest with its agent killed (and unable to restart), so the launcher's
//! fallback, the ACPI power button, must power the guest off cleanly.
//!
//! Needs: root, the host's dockerd, qemu, and either `--image-tar PATH` or
//! the Debian mirror and cache that `tests/e2e_debian.rs` (builder/dinv-build) leaves in
//! target/tmp/e2e-debian (a warm `dinv-build build` of recipes/debian.toml).
//!
//! Run: `flock /tmp/dinv-vm.lock cargo run --release -p dinv-build --example bench_stop -- [--cycles N] [--image-tar PATH]`

use dinv_test_support::{appliance, debian_mirror};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const NAME: &str = "dinv-bench-stop";
const IMAGE: &str = "dinv-debian:latest";
const HOST_PORT: u16 = 12385;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().parent().unwrap().to_path_buf()
}

/// target/<profile>/ (this example runs from target/<profile>/examples/).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent().and_then(Path::parent).expect("profile dir above the example").to_path_buf()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The host's docker (`inner` false) or the guest's through the published port.
fn docker(inner: bool, args: &[&str]) -> Output {
    let mut c = Command::new("docker");
    if inner {
        c.args(["-H", &format!("tcp://127.0.0.1:{HOST_PORT}")]);
    }
    c.args(args).env("DOCKER_BUILDKIT", "0").output().expect("docker CLI")
}

fn docker_ok(inner: bool, args: &[&str]) -> String {
    let o = docker(inner, args);
    assert!(o.status.success(), "docker {}: {}", args.join(" "), text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Polls /_ping until OK; the time it took.
fn wait_ready(what: &str) -> Duration {
    let t = Instant::now();
    while !appliance::ping(&format!("127.0.0.1:{HOST_PORT}")) {
        assert!(t.elapsed() < Duration::from_secs(600), "{what}: not ready after 600 s:\n{}", text(&docker(false, &["logs", NAME])));
        std::thread::sleep(Duration::from_millis(200));
    }
    t.elapsed()
}

/// The image.tar to load: `--image-tar`, or a warm build of recipes/debian.toml.
fn image_tar(args: &[String]) -> PathBuf {
    if let Some(i) = args.iter().position(|a| a == "--image-tar") {
        return PathBuf::from(args.get(i + 1).expect("--image-tar PATH"));
    }
    let target = profile_dir().parent().unwrap().to_path_buf();
    let dinv = profile_dir().join("dinv-build");
    assert!(dinv.is_file(), "{} missing: build dinv-build in this profile first", dinv.display());
    let e2e = target.join("tmp/e2e-debian");
    // trixie's three suites, the end-to-end test's mirror.
    let m = debian_mirror::release_mirror(&target.join("tmp"), "trixie");
    m.fill_for(&dinv, &workspace().join("recipes/debian.toml"), &e2e.join("cache"));
    let out = target.join("tmp/bench-stop/out");
    let _ = fs::remove_dir_all(&out);
    let t = Instant::now();
    let o = Command::new(&dinv)
        .args(["build", "--json"])
        .arg(workspace().join("recipes/debian.toml"))
        .arg("--out")
        .arg(&out)
        .env("DINV_DEBIAN_MIRROR", m.url())
        .env("DINV_CACHE_DIR", e2e.join("cache"))
        .output()
        .expect("dinv-build");
    assert!(o.status.success(), "dinv-build build: {}", text(&o));
    eprintln!("bench: built {} in {:.1} s", out.display(), t.elapsed().as_secs_f64());
    out.join("image.tar")
}

/// One `docker stop`: (seconds, exit code, the logs of this run).
fn stop() -> (f64, String, String) {
    let started = docker_ok(false, &["inspect", "--format", "{{.State.StartedAt}}", NAME]).trim().to_string();
    let t = Instant::now();
    docker_ok(false, &["stop", "-t", "90", NAME]);
    let took = t.elapsed().as_secs_f64();
    let code = docker_ok(false, &["inspect", "--format", "{{.State.ExitCode}}", NAME]).trim().to_string();
    (took, code, text(&docker(false, &["logs", "--since", &started, NAME])))
}

/// Files `/data/cycle-1..=n` that do not hold `cycle-<i>` (lost or torn).
fn lost(n: usize) -> Vec<usize> {
    let listing = docker_ok(true, &["run", "--rm", "-v", "bench:/data", "tiny:1", "/bin/busybox", "sh", "-c", "for f in /data/cycle-*; do echo \"$f $(cat $f)\"; done"]);
    (1..=n).filter(|i| !listing.lines().any(|l| l == format!("/data/cycle-{i} cycle-{i}"))).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let cycles: usize = args.iter().position(|a| a == "--cycles").map(|i| args[i + 1].parse().expect("--cycles N")).unwrap_or(20);
    let tar = image_tar(&args);
    docker_ok(false, &["load", "-i", tar.to_str().unwrap()]);
    let _ = docker(false, &["rm", "-f", "-v", NAME]);
    let tiny = appliance::tiny_rootfs_tar(&profile_dir().parent().unwrap().join("tmp/bench-stop"));

    println!("stop reliability: {cycles} docker stop/start cycles of {IMAGE}, a file written in an inner container (no sync) before each stop");
    docker_ok(false, &["run", "-d", "--name", NAME, "-p", &format!("127.0.0.1:{HOST_PORT}:2375"), "-e", "DINV_STOP_TIMEOUT=60", IMAGE, "sleep", "infinity"]);
    let first = wait_ready("first boot");
    println!("  first boot ready in {:.1} s", first.as_secs_f64());
    docker_ok(true, &["import", tiny.to_str().unwrap(), "tiny:1"]);
    docker_ok(true, &["volume", "create", "bench"]);

    let mut stops = Vec::new();
    let mut bad = Vec::new();
    let total = cycles + 1;
    for i in 1..=total {
        let agent_killed = i == total;
        docker_ok(true, &["run", "--rm", "-v", "bench:/data", "tiny:1", "/bin/busybox", "sh", "-c", &format!("echo cycle-{i} > /data/cycle-{i}")]);
        if agent_killed {
            // Rename the agent on the (snapshot) root disk so init cannot restart it, then kill it.
            docker_ok(
                true,
                &[
                    "run", "--rm", "--privileged", "--pid=host", "tiny:1", "/bin/busybox", "sh", "-c",
                    "/bin/busybox mv /proc/1/root/usr/sbin/qemu-ga /proc/1/root/usr/sbin/qemu-ga.off && /bin/busybox kill -9 $(/bin/busybox pidof qemu-ga)",
                ],
            );
        }
        let (took, code, logs) = stop();
        let via = if logs.contains("via the guest agent") {
            "guest agent"
        } else if logs.contains("via the ACPI power button") {
            "ACPI power button"
        } else {
            "neither (forced)"
        };
        let clean = code == "0" && logs.contains("dinv-guest: dockerd stopped") && logs.contains("dinv-guest: powering off");
        let expected_via = if agent_killed { "ACPI power button" } else { "guest agent" };
        docker_ok(false, &["start", NAME]);
        let ready = wait_ready("after docker start");
        let missing = lost(i);
        let label = if agent_killed { "agent killed".to_string() } else { format!("cycle {i:>2}") };
        println!(
            "  {label}: stop {took:.1} s, exit {code}, via {via}{}, ready again in {:.1} s, files checked {i}, lost {:?}",
            if agent_killed && logs.contains("power button pressed") { " (guest saw the press)" } else { "" },
            ready.as_secs_f64(),
            missing
        );
        if !clean || via != expected_via || !missing.is_empty() {
            bad.push(label.clone());
            eprintln!("bench: {label} was not clean; its logs:\n{logs}");
        }
        if !agent_killed {
            stops.push(took);
        }
    }
    docker_ok(false, &["stop", "-t", "90", NAME]);
    let _ = docker(false, &["rm", "-f", "-v", NAME]);
    stops.sort_by(f64::total_cmp);
    if !stops.is_empty() {
        println!(
            "  stop time over {} agent cycles: median {:.1} s, min {:.1} s, max {:.1} s",
            stops.len(),
            stops[stops.len() / 2],
            stops[0],
            stops[stops.len() - 1]
        );
    }
    println!("  result: {}/{} stops clean with nothing lost{}", total - bad.len(), total, if bad.is_empty() { String::new() } else { format!("; not clean: {}", bad.join(", ")) });
}
