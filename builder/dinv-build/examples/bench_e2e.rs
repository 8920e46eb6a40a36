//! End-to-end benchmark of the Debian appliance (not a test): build time
//! cold, warm, and after one overlay file changes (with peak memory),
//! `mmdebstrap` + `mke2fs -d` of the same guest package set for comparison,
//! boot-to-ready under the host's accelerator (TCG here), and
//! SIGTERM-to-exit, idle and with an inner container running.
//!
//! Then trixie (recipes/debian.toml) beside bookworm
//! (recipes/examples/debian-bookworm.toml): cold build, warm rebuild,
//! image size, guest size, boot-to-ready.
//!
//! Needs: `cargo build --release -p dinv-build` first (the release
//! `dinv-build` and the static launcher), root, qemu, e2fsprogs, docker
//! CLI; installs `mmdebstrap` when missing. The local mirrors of each
//! release's three suites are the tests' (target/tmp), filled here
//! through a private apt when packages are missing.
//!
//! Run: `cargo run --release -p dinv-build --example bench_e2e`
//! (`-- --builds` stops after the builds and the mmdebstrap comparison).

use dinv_test_support::{appliance, debian_mirror};

use std::fs;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const DOCKER_PORT: u16 = 2375;
const BOOTS: usize = 5;
/// Beyond this bench wall time, the optional with-container part is skipped.
const SOFT_BUDGET: Duration = Duration::from_secs(12 * 60);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().parent().unwrap().to_path_buf()
}

/// target/ (this example runs from target/release/examples/).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent().and_then(Path::parent).and_then(Path::parent).expect("target dir above the example").to_path_buf()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Runs a command, panicking with its output when it fails; returns the wall time.
fn timed(what: &str, cmd: &mut Command) -> (Duration, Output) {
    let t = Instant::now();
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let took = t.elapsed();
    assert!(out.status.success(), "{what} failed ({}):\n{}", out.status, text(&out));
    (took, out)
}

/// (median, min, max) of durations.
fn stats(v: &[Duration]) -> (Duration, Duration, Duration) {
    let mut s = v.to_vec();
    s.sort();
    (s[s.len() / 2], s[0], s[s.len() - 1])
}

fn print_stats(label: &str, v: &[Duration]) {
    let (med, min, max) = stats(v);
    let all: Vec<String> = v.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect();
    println!("  {label}: median {} (min {}, max {}, n={}; each: {})", secs(med), secs(min), secs(max), v.len(), all.join(", "));
}

/// The mirror's package set for the guest: every resolved name.
fn guest_names(dinv: &Path, recipe: &Path, mirror: &str, cache: &Path) -> Vec<String> {
    let (_, out) = timed(
        "dinv-build resolve",
        Command::new(dinv).args(["resolve", "--json"]).arg(recipe).env("DINV_DEBIAN_MIRROR", mirror).env("DINV_CACHE_DIR", cache).env_remove("RUST_LOG"),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("resolve --json output");
    let guest = v["sets"].as_array().unwrap().iter().find(|s| s["set"] == "guest").expect("a guest set in resolve --json");
    let mut names: Vec<String> = guest["packages"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect();
    names.sort();
    names.dedup();
    names
}

/// One build's figures.
struct Built {
    took: Duration,
    stages: Vec<(String, f64)>,
    reported: f64,
    peak_rss: u64,
    cached_layers: Vec<String>,
}

/// One `dinv-build build --json`; returns wall time and report.json's figures.
fn build(dinv: &Path, recipe: &Path, mirror: &str, cache: &Path, out: &Path) -> Built {
    let _ = fs::remove_dir_all(out);
    let (took, _) = timed(
        "dinv-build build",
        Command::new(dinv).args(["build", "--json"]).arg(recipe).arg("--out").arg(out).env("DINV_DEBIAN_MIRROR", mirror).env("DINV_CACHE_DIR", cache).env_remove("RUST_LOG"),
    );
    let report: serde_json::Value = serde_json::from_slice(&fs::read(out.join("report.json")).expect("report.json")).expect("report.json is JSON");
    let stages = report["stages"].as_object().expect("report.json stages").iter().map(|(k, v)| (k.clone(), v.as_f64().unwrap_or(0.0))).collect();
    let cached_layers = report["cached_layers"].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect()).unwrap_or_default();
    Built { took, stages, reported: report["seconds"].as_f64().unwrap_or(0.0), peak_rss: report["peak_rss_bytes"].as_u64().unwrap_or(0), cached_layers }
}

/// A copy of the recipe with its own overlay directory, so the bench can
/// change one overlay file without touching the checkout.
fn recipe_copy(ws: &Path, tmp: &Path, rel: &str) -> (PathBuf, PathBuf) {
    let root = tmp.join(format!("recipe-{}", rel.replace('/', "-")));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(root.join("recipes")).unwrap();
    let copy = |from: &Path, to: &Path| {
        let st = Command::new("cp").arg("-a").arg(from).arg(to).status().expect("cp");
        assert!(st.success(), "cp -a {} {}", from.display(), to.display());
    };
    copy(&ws.join("kernel-configs"), &root.join("kernel-configs"));
    copy(&ws.join("rootfs-overlays"), &root.join("rootfs-overlays"));
    fs::create_dir_all(root.join(rel).parent().unwrap()).unwrap();
    copy(&ws.join(rel), &root.join(rel));
    (root.join(rel), root.join("rootfs-overlays/dinv/etc/sysctl.d/dinv.conf"))
}

fn print_build(label: &str, b: &Built) {
    let (took, stages, reported) = (b.took, &b.stages, b.reported);
    let cached = if b.cached_layers.is_empty() { "none".to_string() } else { b.cached_layers.join(", ") };
    println!(
        "  {label}: {} wall (report.json seconds {reported:.2}), peak RSS {} MB, layers from the cache: {cached}",
        secs(took),
        b.peak_rss / 1_000_000
    );
    let order = ["resolve", "fetch", "unpack", "configure", "unpack-runtime", "kernel", "rootfs", "image", "sbom"];
    let mut line = Vec::new();
    for name in order {
        if let Some((_, s)) = stages.iter().find(|(k, _)| k == name) {
            line.push(format!("{name} {s:.2}"));
        }
    }
    for (k, s) in stages.iter().filter(|(k, _)| !order.contains(&k.as_str())) {
        line.push(format!("{k} {s:.2}"));
    }
    println!("    stages (s): {}", line.join(", "));
    let rootfs_part: f64 = stages.iter().filter(|(k, _)| ["resolve", "fetch", "unpack", "configure", "kernel", "rootfs"].contains(&k.as_str())).map(|(_, s)| s).sum();
    println!("    rootfs-only part (resolve+fetch+unpack+configure+kernel+rootfs; resolve and fetch include the runtime set): {rootfs_part:.2} s");
}

/// True when something listens on 127.0.0.1:2375 / *:2375 (per `ss -ltn`).
fn port_busy() -> bool {
    let out = Command::new("ss").args(["-ltnH"]).output().expect("ss (iproute2)");
    String::from_utf8_lossy(&out.stdout).lines().any(|l| l.split_whitespace().nth(3).is_some_and(|a| a.ends_with(&format!(":{DOCKER_PORT}"))))
}

/// Waits (up to 15 min) until nobody listens on the docker port: another
/// launcher (someone else's test) may hold it, and only one can.
fn wait_port_free() {
    let start = Instant::now();
    let mut said = false;
    while port_busy() {
        if !said {
            eprintln!("bench: port {DOCKER_PORT} is in use; waiting for it to be free");
            said = true;
        }
        assert!(start.elapsed() < Duration::from_secs(15 * 60), "port {DOCKER_PORT} still busy after 15 min");
        std::thread::sleep(Duration::from_secs(1));
    }
    if said {
        eprintln!("bench: port free after {}", secs(start.elapsed()));
    }
}

/// GET /_ping answers OK.
fn ping() -> bool {
    appliance::ping(&format!("127.0.0.1:{DOCKER_PORT}"))
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// A launcher we started, booting the built artifacts.
struct Vm {
    child: Child,
    console: PathBuf,
    /// Just before the launcher was spawned (after any wait for the port).
    spawned: Instant,
}

impl Vm {
    fn start(launcher: &Path, out: &Path, vmdir: &Path) -> Vm {
        wait_port_free();
        let config = appliance::launcher_config(out, vmdir);
        let console = vmdir.join("console.txt");
        let spawned = Instant::now();
        let child = appliance::spawn_launcher(launcher, &config, &console, &[]);
        Vm { child, console, spawned }
    }

    fn console(&self) -> String {
        fs::read_to_string(&self.console).unwrap_or_default()
    }

    /// Polls /_ping every 100 ms; the time from spawning to the first OK.
    fn wait_ready(&mut self) -> Duration {
        let started = self.spawned;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("launcher exited before ready ({st}):\n{}", self.console());
            }
            if ping() {
                return started.elapsed();
            }
            assert!(started.elapsed() < Duration::from_secs(420), "not ready after 420 s:\n{}", self.console());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then (exit code, time to exit), polled every 20 ms.
    fn stop(mut self) -> (i32, Duration) {
        let start = Instant::now();
        unsafe { libc_kill(self.child.id() as i32, 15) };
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return (st.code().unwrap_or(-1), start.elapsed());
            }
            if start.elapsed() > Duration::from_secs(120) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("launcher did not stop within 120 s:\n{}", self.console());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn docker(args: &[&str]) -> String {
    let o = Command::new("docker").args(["-H", "tcp://127.0.0.1:2375"]).args(args).env("DOCKER_BUILDKIT", "0").output().expect("docker CLI");
    assert!(o.status.success(), "docker {}: {}", args.join(" "), text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn main() {
    let bench_start = Instant::now();
    let ws = workspace();
    let target = target_dir();
    let dinv = target.join("release/dinv-build");
    let launcher = target.join("static/x86_64-unknown-linux-gnu/release/dinv-launcher");
    assert!(dinv.is_file(), "{} missing: run `cargo build --release -p dinv-build` first", dinv.display());
    assert!(launcher.is_file(), "{} missing: run `cargo build --release -p dinv-build` first (its build.rs builds the launcher)", launcher.display());
    let tmp = target.join("tmp/bench-e2e");
    fs::create_dir_all(&tmp).unwrap();
    // trixie's three suites, the end-to-end test's mirror (filled here
    // through a private apt when packages are missing).
    let m = debian_mirror::release_mirror(&target.join("tmp"), "trixie");
    m.fill_for(&dinv, &ws.join("recipes/debian.toml"), &tmp.join("resolve-cache"));
    let mirror = m.url();
    let mirror_root = m.root.clone();
    println!("dinv-build end-to-end benchmark ({}; recipe: a copy of recipes/debian.toml; mirror {} = {})", dinv.display(), mirror, mirror_root.display());
    println!("host: {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));

    // 1. Builds.
    let builds_only = std::env::args().any(|a| a == "--builds");
    let cache = tmp.join("cache");
    let _ = fs::remove_dir_all(&cache);
    let (recipe, overlay_file) = recipe_copy(&ws, &tmp, "recipes/debian.toml");
    let names = guest_names(&dinv, &recipe, &mirror, &tmp.join("resolve-cache"));
    println!("\n1. dinv-build build (wall time of the release binary, mirror on 127.0.0.1, stages and peak RSS from out/report.json)");
    eprintln!("bench: cold build");
    let out_cold = tmp.join("out-cold");
    let cold = build(&dinv, &recipe, &mirror, &cache, &out_cold);
    print_build("cold (empty DINV_CACHE_DIR)", &cold);
    eprintln!("bench: warm build");
    let out = tmp.join("out-warm");
    let warm = build(&dinv, &recipe, &mirror, &cache, &out);
    print_build("warm (same DINV_CACHE_DIR, nothing changed)", &warm);
    let _ = fs::remove_dir_all(&out_cold);
    let original = fs::read_to_string(&overlay_file).unwrap();
    let mut rebuilds = Vec::new();
    for i in 1..=3 {
        eprintln!("bench: rebuild {i} after one overlay file changed");
        fs::write(&overlay_file, format!("{original}# bench rebuild {i}\n")).unwrap();
        let out_re = tmp.join("out-rebuild");
        let b = build(&dinv, &recipe, &mirror, &cache, &out_re);
        print_build(&format!("rebuild {i} (warm cache, one overlay file changed: {})", overlay_file.file_name().unwrap().to_string_lossy()), &b);
        rebuilds.push(b);
        let _ = fs::remove_dir_all(&out_re);
    }
    fs::write(&overlay_file, original).unwrap();
    print_stats("rebuild after one overlay change", &rebuilds.iter().map(|b| b.took).collect::<Vec<_>>());
    println!("  rebuild peak RSS: max {} MB", rebuilds.iter().map(|b| b.peak_rss).max().unwrap_or(0) / 1_000_000);

    // 2. mmdebstrap + mke2fs -d of the same guest set.
    println!("\n2. mmdebstrap + mke2fs -d of the same guest package set ({} packages from `dinv-build resolve --json`)", names.len());
    if Command::new("mmdebstrap").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().map(|s| !s.success()).unwrap_or(true) {
        eprintln!("bench: installing mmdebstrap");
        timed("apt-get install mmdebstrap", Command::new("apt-get").args(["install", "-y", "-q", "--no-install-recommends", "mmdebstrap"]).env("DEBIAN_FRONTEND", "noninteractive"));
    }
    // apt percent-encodes `+` in pool paths (`%2b`), which the tests'
    // mirror server does not decode: mmdebstrap gets Python's file server
    // on the same directory instead.
    let apt_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut httpd = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
        .arg(&mirror_root)
        .arg(apt_port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m http.server");
    let apt_mirror = format!("http://127.0.0.1:{apt_port}");
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", apt_port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(20), "python3 -m http.server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let chroot = tmp.join("mmdebstrap-root");
    let _ = fs::remove_dir_all(&chroot);
    eprintln!("bench: mmdebstrap");
    let (mmd, _) = timed(
        "mmdebstrap",
        Command::new("mmdebstrap")
            .args(["--quiet", "--mode=root", "--variant=custom", "--keyring=/usr/share/keyrings/debian-archive-keyring.gpg"])
            .arg(format!("--include={}", names.join(",")))
            .arg("trixie")
            .arg(&chroot)
            .arg(format!("deb {apt_mirror}/debian trixie trixie-updates main"))
            .arg(format!("deb {apt_mirror}/debian-security trixie-security main")),
    );
    let _ = httpd.kill();
    let _ = httpd.wait();
    let size = fs::metadata(out.join("rootfs.ext4")).expect("rootfs.ext4").len();
    let img = tmp.join("mmdebstrap.ext4");
    let _ = fs::remove_file(&img);
    eprintln!("bench: mke2fs -d");
    let (mkfs, _) = timed("mke2fs -d", Command::new("mke2fs").args(["-q", "-t", "ext4", "-d"]).arg(&chroot).arg(&img).arg(format!("{}k", size / 1024)));
    let du = Command::new("du").args(["-sh"]).arg(&chroot).output().map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().next().unwrap_or("?").to_string()).unwrap_or_default();
    println!("  mmdebstrap --mode=root --variant=custom --include=<{} names> trixie DIR 'deb {apt_mirror}/debian trixie trixie-updates main' 'deb {apt_mirror}/debian-security trixie-security main' (python3 -m http.server on the same mirror directory): {} (tree {du})", names.len(), secs(mmd));
    println!("  mke2fs -q -t ext4 -d DIR IMG {}k (= our rootfs.ext4 size): {}", size / 1024, secs(mkfs));
    println!("  mmdebstrap + mke2fs: {}", secs(mmd + mkfs));
    let part = |st: &[(String, f64)]| -> f64 { st.iter().filter(|(k, _)| ["resolve", "fetch", "unpack", "configure", "kernel", "rootfs"].contains(&k.as_str())).map(|(_, s)| s).sum() };
    println!(
        "  dinv-build, whole build incl. kernel/initramfs, docker image, SBOM: cold {} / warm {}; rootfs-only stages: cold {:.2} s / warm {:.2} s",
        secs(cold.took),
        secs(warm.took),
        part(&cold.stages),
        part(&warm.stages)
    );
    let base = (mmd + mkfs).as_secs_f64();
    println!(
        "  speed-up of the rootfs stages over mmdebstrap + mke2fs: cold {:.1}x, warm {:.1}x",
        base / part(&cold.stages).max(0.001),
        base / part(&warm.stages).max(0.001)
    );
    let _ = fs::remove_dir_all(&chroot);
    let _ = fs::remove_file(&img);
    if builds_only {
        releases(&ws, &target, &dinv, &launcher, &tmp, false);
        println!("\nbench wall time: {} (--builds: no boots)", secs(bench_start.elapsed()));
        return;
    }

    // 3 + 4. Boots and stops: one data disk, reused; the first boot (which
    // formats it) is a warm-up, then BOOTS measured boot/stop cycles.
    println!("\n3+4. boot-to-ready and SIGTERM-to-exit (launcher started → GET /_ping OK on 127.0.0.1:{DOCKER_PORT}, polled every 100 ms; SIGTERM → launcher exit, polled every 20 ms)");
    let vmdir = tmp.join("vm");
    let _ = fs::remove_dir_all(&vmdir);
    fs::create_dir_all(&vmdir).unwrap();
    eprintln!("bench: warm-up boot (fresh data disk)");
    let mut vm = Vm::start(&launcher, &out, &vmdir);
    let first = vm.wait_ready();
    let console = vm.console();
    // The launcher says so when it falls back from KVM to TCG.
    let accel = match console.lines().find(|l| l.starts_with("dinv-launcher:") && l.contains("TCG")) {
        Some(l) => format!("TCG (every boot first tries KVM, which fails on this host; launcher: {})", l.trim()),
        None => "KVM or TCG chosen directly (no fallback message on the console)".to_string(),
    };
    let tar = appliance::tiny_rootfs_tar(&tmp);
    docker(&["import", tar.to_str().unwrap(), "tiny:1"]);
    let (code, first_stop) = vm.stop();
    assert_eq!(code, 0, "launcher exit code after SIGTERM");
    println!("  accelerator: {accel}");
    println!("  first boot (formats the data disk; not in the stats): ready {}, stop {} (exit {code})", secs(first), secs(first_stop));

    let (mut readies, mut stops) = (Vec::new(), Vec::new());
    for i in 1..=BOOTS {
        eprintln!("bench: boot {i}/{BOOTS}");
        let mut vm = Vm::start(&launcher, &out, &vmdir);
        readies.push(vm.wait_ready());
        let (code, took) = vm.stop();
        assert_eq!(code, 0, "launcher exit code after SIGTERM (boot {i})");
        stops.push(took);
    }
    print_stats("boot-to-ready", &readies);
    print_stats("SIGTERM-to-exit, idle dockerd (all exit 0)", &stops);

    // With a running inner container, while the time budget allows.
    let mut busy = Vec::new();
    for i in 1..=BOOTS {
        if bench_start.elapsed() > SOFT_BUDGET {
            println!("  (with-container stops: stopped after {} of {BOOTS} to keep the bench under ~15 min)", busy.len());
            break;
        }
        eprintln!("bench: boot with a container {i}/{BOOTS}");
        let mut vm = Vm::start(&launcher, &out, &vmdir);
        vm.wait_ready();
        docker(&["run", "-d", "tiny:1", "/bin/busybox", "sleep", "100000"]);
        let (code, took) = vm.stop();
        assert_eq!(code, 0, "launcher exit code after SIGTERM with a running container (boot {i})");
        busy.push(took);
    }
    if !busy.is_empty() {
        print_stats("SIGTERM-to-exit, one running container (`docker run -d tiny:1 sleep`; all exit 0)", &busy);
    }
    releases(&ws, &target, &dinv, &launcher, &tmp, true);
    println!("\nbench wall time: {}", secs(bench_start.elapsed()));
}

/// 5. trixie (recipes/debian.toml) beside bookworm
/// (recipes/examples/debian-bookworm.toml), each from its three suites:
/// cold build, warm rebuild after one overlay change, image.tar, guest
/// size, and (with `boot`) boot-to-ready, median of 3 after a first boot.
fn releases(ws: &Path, target: &Path, dinv: &Path, launcher: &Path, tmp: &Path, boot: bool) {
    println!("\n5. trixie beside bookworm (each a copy of its recipe, its own local mirror of three suites, cold cache)");
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    for (codename, rel) in [("trixie", "recipes/debian.toml"), ("bookworm", "recipes/examples/debian-bookworm.toml")] {
        let m = debian_mirror::release_mirror(&target.join("tmp"), codename);
        m.fill_for(dinv, &ws.join(rel), &tmp.join("resolve-cache"));
        let (recipe, overlay_file) = recipe_copy(ws, tmp, rel);
        let cache = tmp.join(format!("cache-{codename}"));
        let _ = fs::remove_dir_all(&cache);
        let out = tmp.join(format!("out-{codename}"));
        eprintln!("bench: {codename} cold build");
        let cold = build(dinv, &recipe, &m.url(), &cache, &out);
        let original = fs::read_to_string(&overlay_file).unwrap();
        fs::write(&overlay_file, format!("{original}# bench rebuild\n")).unwrap();
        eprintln!("bench: {codename} warm rebuild");
        let re = build(dinv, &recipe, &m.url(), &cache, &out);
        fs::write(&overlay_file, original).unwrap();
        let report: serde_json::Value = serde_json::from_slice(&fs::read(out.join("report.json")).unwrap()).unwrap();
        let image = report["outputs"].as_array().unwrap().iter().find(|o| o["name"] == "image.tar").and_then(|o| o["size"].as_u64()).unwrap_or(0);
        let fsr = &report["rootfs"];
        let guest = fsr["blocks_used"].as_u64().unwrap_or(0) * fsr["block_size"].as_u64().unwrap_or(4096);
        let sec = &report["current"]["sources"][0];
        let mut row = vec![
            secs(cold.took),
            secs(re.took),
            format!("{:.1} MiB", image as f64 / 1048576.0),
            format!("{:.0} MB", guest as f64 / 1e6),
            format!("{} from -security", sec["security"]),
        ];
        if boot {
            let vmdir = tmp.join(format!("vm-{codename}"));
            let _ = fs::remove_dir_all(&vmdir);
            fs::create_dir_all(&vmdir).unwrap();
            let mut vm = Vm::start(launcher, &out, &vmdir);
            vm.wait_ready();
            vm.stop();
            let mut readies = Vec::new();
            for i in 1..=3 {
                eprintln!("bench: {codename} boot {i}/3");
                let mut vm = Vm::start(launcher, &out, &vmdir);
                readies.push(vm.wait_ready());
                let (code, _) = vm.stop();
                assert_eq!(code, 0, "launcher exit code after SIGTERM ({codename} boot {i})");
            }
            row.push(secs(stats(&readies).0));
        }
        rows.push((codename.to_string(), row));
    }
    let heads = ["cold build", "warm rebuild (one overlay change)", "image.tar", "guest used (ext4 blocks)", "packages", "boot-to-ready (median of 3)"];
    for (i, h) in heads.iter().enumerate() {
        if rows.iter().any(|(_, r)| r.len() > i) {
            let cells: Vec<String> = rows.iter().map(|(c, r)| format!("{c} {}", r.get(i).map(String::as_str).unwrap_or("-"))).collect();
            println!("  {h:<36} {}", cells.join("   |   "));
        }
    }
}
