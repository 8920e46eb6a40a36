//! Snapshot images, measured (not a test), side by side in one run: the
//! Debian appliance booted vs restored from its snapshot, each as `docker
//! run` users see it without /dev/kvm (fresh container → the docker API's
//! first answer, `/_ping` through the published port, and then the first
//! `docker version`, median of 5, `DINV_BENCH_RUNS` to change); the
//! snapshot layer's compressed size; and how long `dinv-build snapshot`
//! takes. Targets: restore-to-ready <= 1.5 s, snapshot layer <= 64 MiB
//! compressed. The launcher's own `ready in` / `restored in` (from its
//! start inside the container) is shown too: the gap to the client's
//! figure is `docker run` itself and the first API call (under TCG a
//! restored guest translates dockerd's code again on first use).
//!
//! Needs `cargo build --release -p dinv-build` first and a docker daemon;
//! the local trixie mirror is the one the e2e tests keep in
//! target/tmp/e2e-debian (filled here when packages are missing).
//!
//! Run: `cargo run --release -p dinv-build --example bench_snapshot`

use dinv_test_support::{appliance, debian_mirror};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Runs of each image (`DINV_BENCH_RUNS` overrides, for a quick look).
fn runs() -> usize {
    std::env::var("DINV_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(5)
}
const NAME: &str = "dinv-bench-snapshot";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().parent().unwrap().to_path_buf()
}

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent().and_then(Path::parent).and_then(Path::parent).expect("target dir above the example").to_path_buf()
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").env_remove("DOCKER_HOST").args(args).output().expect("docker CLI")
}

fn logs() -> String {
    let o = docker(&["logs", NAME]);
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[s.len() / 2]
}

/// One fresh container of `image`: seconds from `docker run -d` to the
/// first `/_ping` through its published port that answers OK (polled every
/// 20 ms), then to the first `docker version` (asked right after), and the
/// launcher's own line (`ready in …` or `restored in …`).
fn run_once(image: &str, port: u16) -> (f64, f64, String) {
    let _ = docker(&["rm", "-f", "-v", NAME]);
    let host = format!("tcp://127.0.0.1:{port}");
    let t = Instant::now();
    let run = docker(&["run", "-d", "--name", NAME, "-p", &format!("127.0.0.1:{port}:2375"), image, "sleep", "infinity"]);
    assert!(run.status.success(), "docker run: {}", String::from_utf8_lossy(&run.stderr));
    while !appliance::ping(&format!("127.0.0.1:{port}")) {
        assert!(t.elapsed() < Duration::from_secs(300), "not ready after 300 s:\n{}", logs());
        std::thread::sleep(Duration::from_millis(20));
    }
    let pinged = t.elapsed().as_secs_f64();
    while !docker(&["-H", &host, "version", "--format", "{{.Server.Version}}"]).status.success() {
        assert!(t.elapsed() < Duration::from_secs(300), "no docker version after 300 s:\n{}", logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    let version = t.elapsed().as_secs_f64();
    let waited = Instant::now();
    let mut log = logs();
    while !(log.contains("ready in") || log.contains("restored in")) && waited.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        log = logs();
    }
    let line = log.lines().find(|l| l.contains("ready in") || l.contains("restored in")).map(|l| l.trim_start_matches("dinv-launcher: ").to_string()).unwrap_or_default();
    let stop = docker(&["stop", "-t", "60", NAME]);
    assert!(stop.status.success(), "docker stop: {}", String::from_utf8_lossy(&stop.stderr));
    let _ = docker(&["rm", "-f", "-v", NAME]);
    (pinged, version, line)
}

fn main() {
    let ws = workspace();
    let target = target_dir();
    let dinv = target.join("release/dinv-build");
    assert!(dinv.is_file(), "run `cargo build --release -p dinv-build` first");
    assert!(docker(&["version"]).status.success(), "bench_snapshot needs a docker daemon");
    let tmp = target.join("tmp/bench-snapshot");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).unwrap();
    // The trixie mirror (three suites) the e2e test keeps under
    // target/tmp/e2e-debian, filled here when a package is missing.
    let recipe = ws.join("recipes/debian.toml");
    let debian = debian_mirror::release_mirror(&target.join("tmp"), "trixie");
    debian.fill_for(&dinv, &recipe, &tmp.join("resolve-cache"));
    let mirror = debian.url();

    eprintln!("bench: building the Debian appliance");
    let out = tmp.join("out");
    let cmd = |args: &[&str]| {
        let o = Command::new(&dinv).args(args).env("DINV_CACHE_DIR", target.join("tmp/e2e-debian/cache")).env("DINV_DEBIAN_MIRROR", &mirror).env_remove("RUST_LOG").output().expect("run dinv-build");
        assert!(o.status.success(), "dinv-build {args:?}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    };
    cmd(&["build", "-q", recipe.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    eprintln!("bench: dinv-build snapshot");
    let t = Instant::now();
    cmd(&["snapshot", "-q", out.to_str().unwrap()]);
    let snapshot_s = t.elapsed().as_secs_f64();
    let report: serde_json::Value = serde_json::from_slice(&fs::read(out.join("snapshot/report.json")).unwrap()).unwrap();

    let load = |tar: &Path| {
        let o = docker(&["load", "-i", tar.to_str().unwrap()]);
        assert!(o.status.success(), "docker load: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).lines().find_map(|l| l.strip_prefix("Loaded image: ").map(str::to_string)).expect("docker load names the image")
    };
    let base = load(&out.join("image.tar"));
    let snap = load(&out.join("snapshot/image.tar"));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // Alternating, so both see the same machine load.
    let (mut boots, mut restores) = (Vec::new(), Vec::new());
    let (mut boot_versions, mut restore_versions) = (Vec::new(), Vec::new());
    let (mut boot_lines, mut restore_lines) = (Vec::new(), Vec::new());
    let runs = runs();
    for i in 1..=runs {
        for (image, into, versions, lines) in [(&base, &mut boots, &mut boot_versions, &mut boot_lines), (&snap, &mut restores, &mut restore_versions, &mut restore_lines)] {
            eprintln!("bench: run {i}/{runs} of {image}");
            let (s, v, line) = run_once(image, port);
            println!("  run {i} {image}: /_ping {s:.2} s, docker version {v:.2} s; {line}");
            into.push(s);
            versions.push(v);
            // `ready in 19.7 s (...)` / `restored in 1.1 s (...)`: the launcher's own count.
            lines.push(line.split(" in ").nth(1).and_then(|r| r.split(' ').next()).and_then(|x| x.parse::<f64>().ok()).unwrap_or(f64::NAN));
        }
    }
    let each = |v: &[f64]| v.iter().map(|s| format!("{s:.2}")).collect::<Vec<_>>().join(", ");
    let sizes = &report["sizes"];
    let steps: Vec<String> = report["steps"].as_array().unwrap().iter().map(|s| format!("{} {:.1}", s[0].as_str().unwrap(), s[1].as_f64().unwrap())).collect();
    println!("\nSnapshot image of the Debian appliance (recipes/debian.toml), docker run without /dev/kvm, 1 vCPU, 512 MiB, TCG; from `docker run -d`, median of {runs}, fresh container each:");
    println!("  {:<34}{:<22}{}", "", base, snap);
    println!("  {:<34}{:<22}{}", "to ready: first /_ping OK (s)", format!("{:.2}", median(&boots)), format!("{:.2}   (target <= 1.5)", median(&restores)));
    println!("  {:<34}{:<22}{}", "  each (s)", format!("{} ", each(&boots)), each(&restores));
    println!("  {:<34}{:<22}{}", "to the first `docker version` (s)", format!("{:.2}", median(&boot_versions)), format!("{:.2}", median(&restore_versions)));
    println!("  {:<34}{:<22}{}", "  each (s)", format!("{} ", each(&boot_versions)), each(&restore_versions));
    println!("  {:<34}{:<22}{}", "launcher's own line, median (s)", format!("{:.2} (ready in)", median(&boot_lines)), format!("{:.2} (restored in: launcher start → /_ping OK after the fixups)", median(&restore_lines)));
    println!("  {:<34}{}", "snapshot layer, compressed", format!("{}   (target <= 64 MiB)", mib(report["image"]["layer_bytes"].as_u64().unwrap())));
    println!("  {:<34}{}", "  memory (all, not zero), state", format!("{}, {}, {:.0} KiB", mib(sizes["memory_bytes"].as_u64().unwrap()), mib(sizes["memory_data_bytes"].as_u64().unwrap()), sizes["state_bytes"].as_u64().unwrap() as f64 / 1024.0));
    println!("  {:<34}{}", "  root overlay, docker disk data", format!("{}, {}", mib(sizes["root_overlay_data_bytes"].as_u64().unwrap()), mib(sizes["docker_disk_data_bytes"].as_u64().unwrap())));
    println!("  {:<34}{}", "dinv-build snapshot", format!("{snapshot_s:.1} s ({})", steps.join(", ")));
    let _ = docker(&["rmi", &snap]);
}
