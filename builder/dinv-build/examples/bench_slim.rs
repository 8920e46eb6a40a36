//! The slim appliance, measured (not a test): sizes of the Debian
//! appliances, trixie (recipes/debian.toml) beside bookworm
//! (recipes/examples/debian-bookworm.toml), as built now and with every
//! slimming switched off, side by side in one run; the same sizes for the
//! Alpine default on the generated v3.22-shaped mirror; boot-to-ready of
//! each Debian appliance with its phase timeline, median of 5 (their boots take turns); and the
//! trixie one through `docker run` with the real docker client, median of 5.
//!
//! Needs `cargo build --release -p dinv-build` first; the Debian mirrors
//! of each release's three suites are the tests' (target/tmp), filled here
//! through a private apt when packages are missing; qemu and e2fsprogs.
//!
//! Run: `cargo run --release -p dinv-build --example bench_slim`
//! (`-- --sizes` stops before the boots). Boots run under TCG, as for a
//! `docker run` without `/dev/kvm`; `BENCH_ACCEL=kvm` to try KVM.

use dinv_test_support::{alpine_repo::AlpineMirror, appliance, debian_mirror};

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const BOOTS: usize = 5;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().parent().unwrap().to_path_buf()
}

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent().and_then(Path::parent).and_then(Path::parent).expect("target dir above the example").to_path_buf()
}

fn mib(b: u64) -> String {
    if b < 1 << 20 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
    }
}

/// `dinv-build build --json RECIPE --out OUT` with `env`; report.json.
fn build(dinv: &Path, recipe: &Path, out: &Path, cache: &Path, env: &[(&str, &str)]) -> serde_json::Value {
    let _ = fs::remove_dir_all(out);
    let mut cmd = Command::new(dinv);
    cmd.args(["build", "-q", "--json"]).arg(recipe).arg("--out").arg(out).env("DINV_CACHE_DIR", cache).env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("run dinv-build");
    assert!(o.status.success(), "building {}: {}{}", recipe.display(), String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&fs::read(out.join("report.json")).unwrap()).unwrap()
}

/// The figures of one build, by label.
fn sizes(r: &serde_json::Value) -> BTreeMap<&'static str, String> {
    let output = |n: &str| r["outputs"].as_array().unwrap().iter().find(|o| o["name"] == n).and_then(|o| o["size"].as_u64()).unwrap_or(0);
    let layer = |n: &str| r["image"]["layers"].as_array().unwrap().iter().find(|l| l["name"] == n).cloned().unwrap_or_default();
    let removed = |prefix: &str| r["removed"].as_array().map(|a| a.iter().filter(|x| x["why"].as_str().unwrap_or("").starts_with(prefix)).map(|x| x["bytes"].as_u64().unwrap_or(0)).sum::<u64>()).unwrap_or(0);
    let mut m = BTreeMap::new();
    m.insert("1 image.tar", mib(output("image.tar")));
    for (k, n) in [("2 runtime layer", "runtime"), ("3 dinv layer", "dinv")] {
        let l = layer(n);
        m.insert(k, format!("{} ({} uncompressed)", mib(l["size"].as_u64().unwrap_or(0)), mib(l["uncompressed_size"].as_u64().unwrap_or(0))));
    }
    let fs = &r["rootfs"];
    m.insert("4 rootfs.ext4", mib(fs["size"].as_u64().unwrap_or(0)));
    m.insert("5 guest used (ext4 blocks)", format!("{:.0} MB", (fs["blocks_used"].as_u64().unwrap_or(0) * fs["block_size"].as_u64().unwrap_or(4096)) as f64 / 1e6));
    m.insert("6 kernel boot", r["kernel"]["boot"].as_str().unwrap_or("bzimage").to_string());
    m.insert("7 removed: kernel modules", mib(removed("kernel.modules")));
    m.insert("8 removed: rootfs.strip", mib(removed("rootfs.strip")));
    m.insert("9 removed: guest.remove", mib(removed("guest.remove")));
    m.insert("a runtime files dropped", mib(r["runtime_layer"]["dropped_bytes"].as_u64().unwrap_or(0)));
    m
}

fn side_by_side(title: &str, cols: &[(&str, BTreeMap<&'static str, String>)]) {
    println!("\n{title}");
    print!("  {:<30}", "");
    for (c, _) in cols {
        print!("{c:<38}");
    }
    println!();
    for key in cols[0].1.keys() {
        print!("  {:<30}", &key[2..]);
        for (_, m) in cols {
            print!("{:<38}", m.get(key).map(String::as_str).unwrap_or("-"));
        }
        println!();
    }
}

/// Everything slimming does, switched off: every module, no strip, the
/// bzImage, the whole runtime packages, no path removals, perl back in.
const UNSLIM: &str = "[kernel]\nmodules = \"all\"\nboot = \"bzimage\"\n\n[rootfs]\nstrip = false\nfree = \"20%\"\n\n[runtime]\nkeep = { replace = [\"/\"] }\n";

fn main() {
    let ws = workspace();
    let target = target_dir();
    let dinv = target.join("release/dinv-build");
    let launcher = target.join("static/x86_64-unknown-linux-gnu/release/dinv-launcher");
    assert!(dinv.is_file() && launcher.is_file(), "run `cargo build --release -p dinv-build` first");
    let tmp = target.join("tmp/bench-slim");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).unwrap();
    let cache = tmp.join("cache");

    // Debian: trixie (recipes/debian.toml) beside bookworm (the example),
    // each as shipped and with slimming off, from local mirrors of their
    // three suites (kept under target/tmp; filled here when missing).
    let releases = [("trixie", ws.join("recipes/debian.toml")), ("bookworm", ws.join("recipes/examples/debian-bookworm.toml"))];
    let mut columns = Vec::new();
    let mut slim_outs = Vec::new();
    let mut mirrors = Vec::new();
    for (codename, parent) in &releases {
        let mirror = debian_mirror::release_mirror(&target.join("tmp"), codename);
        mirror.fill_for(&dinv, parent, &tmp.join("resolve-cache"));
        let slim_recipe = tmp.join(format!("{codename}-slim.toml"));
        let unslim_recipe = tmp.join(format!("{codename}-unslim.toml"));
        fs::write(&slim_recipe, format!("extends = {parent:?}\n")).unwrap();
        fs::write(&unslim_recipe, format!("extends = {parent:?}\n\n{UNSLIM}\n[guest]\nremove = {{ replace = [] }}\npackages = {{ remove = [\"usr-is-merged\"] }}\n")).unwrap();
        eprintln!("bench: Debian {codename} builds");
        let url = mirror.url();
        let env = [("DINV_DEBIAN_MIRROR", url.as_str())];
        let slim_out = tmp.join(format!("{codename}-slim"));
        let slim = build(&dinv, &slim_recipe, &slim_out, &cache, &env);
        let unslim = build(&dinv, &unslim_recipe, &tmp.join(format!("{codename}-unslim")), &cache, &env);
        columns.push((format!("{codename}: slimming off"), sizes(&unslim)));
        columns.push((format!("{codename}: as shipped"), sizes(&slim)));
        let _ = fs::remove_dir_all(tmp.join(format!("{codename}-unslim")));
        slim_outs.push((codename.to_string(), slim_out));
        mirrors.push(mirror);
    }
    let cols: Vec<(&str, BTreeMap<&'static str, String>)> = columns.iter().map(|(l, m)| (l.as_str(), m.clone())).collect();
    side_by_side("1. Debian appliances: trixie (recipes/debian.toml) beside bookworm (recipes/examples/debian-bookworm.toml), local mirrors of their three suites", &cols);

    // Alpine: the default recipe on the generated v3.22-shaped mirror.
    eprintln!("bench: Alpine builds");
    let alpine = AlpineMirror::write(&tmp.join("alpine-mirror"));
    let default = ws.join("recipes/default.toml");
    let a_slim = tmp.join("alpine-slim.toml");
    let a_unslim = tmp.join("alpine-unslim.toml");
    fs::write(&a_slim, alpine.child_recipe(&default, "")).unwrap();
    fs::write(&a_unslim, alpine.child_recipe(&default, UNSLIM)).unwrap();
    let s = build(&dinv, &a_slim, &tmp.join("alpine-slim"), &cache, &[]);
    let u = build(&dinv, &a_unslim, &tmp.join("alpine-unslim"), &cache, &[]);
    side_by_side(
        "2. Alpine default (recipes/default.toml on the generated v3.22-shaped mirror: fake kernel and runtime stand-ins, so only the trend means something)",
        &[("slimming off", sizes(&u)), ("as shipped", sizes(&s))],
    );
    if std::env::args().any(|a| a == "--sizes") {
        return;
    }

    // 3. Boots of each slim Debian appliance: launcher started → /_ping OK,
    // taking turns, so that a machine that slows down or speeds up during
    // the run weighs on both alike.
    let accel = std::env::var("BENCH_ACCEL").unwrap_or_else(|_| "tcg".to_string());
    let mut runs: Vec<Boots> = slim_outs.iter().map(|(codename, out)| Boots::new(codename, out, &tmp.join(format!("vm-{codename}")))).collect();
    for i in 0..=BOOTS {
        for r in &mut runs {
            r.boot(&launcher, i, &accel);
        }
    }
    let mut medians = Vec::new();
    for r in &runs {
        medians.push((r.codename.clone(), r.report(&accel)));
    }
    let line: Vec<String> = medians.iter().map(|(c, m)| format!("{c} {m:.1} s")).collect();
    println!("\n  boot-to-ready medians side by side (boots taking turns): {}", line.join(", "));

    docker_run_boots(&slim_outs[0].1.join("image.tar"));
}

/// 3. Boot-to-ready of one slim appliance (median of BOOTS after a first
/// boot that formats the data disk), with the launcher's phases.
struct Boots {
    codename: String,
    vmdir: PathBuf,
    config: PathBuf,
    first: f64,
    readies: Vec<f64>,
    lines: Vec<String>,
    phases: BTreeMap<String, Vec<f64>>,
    order: Vec<String>,
}

impl Boots {
    fn new(codename: &str, slim_out: &Path, vmdir: &Path) -> Boots {
        fs::create_dir_all(vmdir).unwrap();
        let config = appliance::launcher_config(slim_out, vmdir);
        Boots { codename: codename.to_string(), vmdir: vmdir.to_path_buf(), config, first: 0.0, readies: Vec::new(), lines: Vec::new(), phases: BTreeMap::new(), order: Vec::new() }
    }

    /// Boot `i` (0: the first, not counted) until /_ping answers, then SIGTERM.
    fn boot(&mut self, launcher: &Path, i: usize, accel: &str) {
        eprintln!("bench: {} boot {i}/{BOOTS}", self.codename);
        let console = self.vmdir.join("console.txt");
        let t = Instant::now();
        let mut child = appliance::spawn_launcher(launcher, &self.config, &console, &[("DINV_ACCEL", accel), ("DINV_MEMORY", "512M")]);
        loop {
            if appliance::ping("127.0.0.1:2375") {
                break;
            }
            assert!(child.try_wait().unwrap().is_none(), "launcher exited:\n{}", fs::read_to_string(&console).unwrap_or_default());
            assert!(t.elapsed() < Duration::from_secs(300), "not ready after 300 s:\n{}", fs::read_to_string(&console).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(100));
        }
        let ready = t.elapsed().as_secs_f64();
        unsafe { libc_kill(child.id() as i32, 15) };
        let status = child.wait().unwrap();
        // Read after the exit: the launcher's own ready line may come after our ping.
        let text = fs::read_to_string(&console).unwrap_or_default();
        assert!(status.success(), "launcher exit after SIGTERM: {status}");
        if i == 0 {
            self.first = ready;
            return;
        }
        self.readies.push(ready);
        let timeline: serde_json::Value = fs::read(self.vmdir.join("run/timeline.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        for p in timeline["phases"].as_array().cloned().unwrap_or_default() {
            let name = p["name"].as_str().unwrap_or("?").to_string();
            if !self.order.contains(&name) {
                self.order.push(name.clone());
            }
            self.phases.entry(name).or_default().push(p["seconds"].as_f64().unwrap_or(0.0));
        }
        if let Some(l) = text.lines().find(|l| l.contains("ready in")) {
            self.lines.push(format!("  boot {i}: {ready:.1} s; {}", l.trim()));
        }
    }

    /// Prints the boots and returns the median.
    fn report(&self, accel: &str) -> f64 {
        println!("\n3. Boot-to-ready of the Debian {} appliance as shipped (DINV_ACCEL={accel}, 1 vCPU, 512 MiB; launcher started → GET /_ping OK on 127.0.0.1:2375, polled every 100 ms; first boot formats the data disk and is not counted)", self.codename);
        println!("  first boot: ready in {:.1} s", self.first);
        for l in &self.lines {
            println!("{l}");
        }
        let median = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[v.len() / 2]
        };
        let all: Vec<String> = self.readies.iter().map(|r| format!("{r:.1}")).collect();
        let m = median(&self.readies);
        println!("  boot-to-ready: median {m:.1} s (each: {})", all.join(", "));
        let line: Vec<String> = self.order.iter().map(|n| format!("{n} {:.1}", median(&self.phases[n]))).collect();
        println!("  phases, median of {BOOTS} (s): {}", line.join(", "));
        m
    }
}

/// 4. The same appliance as `docker run` users see it: `docker load`, then
/// fresh containers (`docker run -d -p ... IMAGE sleep infinity`, no
/// /dev/kvm passed), each timed from `docker run` to the first `docker
/// version` through the published port that reaches the guest's dockerd.
/// The container's log tells how many times QEMU started.
fn docker_run_boots(image_tar: &Path) {
    const NAME: &str = "dinv-bench-slim";
    let docker = |args: &[&str]| Command::new("docker").args(args).output().expect("docker CLI");
    if !docker(&["version"]).status.success() {
        println!("\n4. docker run boots: skipped (no docker daemon)");
        return;
    }
    let loaded = docker(&["load", "-i", image_tar.to_str().unwrap()]);
    assert!(loaded.status.success(), "docker load: {}", String::from_utf8_lossy(&loaded.stderr));
    let image = String::from_utf8_lossy(&loaded.stdout).lines().find_map(|l| l.strip_prefix("Loaded image: ").map(str::to_string)).expect("docker load names the image");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let host = format!("tcp://127.0.0.1:{port}");
    println!("\n4. Boot-to-ready as `docker run` users see it ({image}, no /dev/kvm passed, launcher defaults; `docker run -d` → first `docker -H {host} version` that answers, polled every 100 ms; each a fresh container)");
    let mut readies = Vec::new();
    for i in 1..=BOOTS {
        eprintln!("bench: docker run {i}/{BOOTS}");
        let _ = docker(&["rm", "-f", "-v", NAME]);
        let t = Instant::now();
        let run = docker(&["run", "-d", "--name", NAME, "-p", &format!("127.0.0.1:{port}:2375"), &image, "sleep", "infinity"]);
        assert!(run.status.success(), "docker run: {}", String::from_utf8_lossy(&run.stderr));
        loop {
            if docker(&["-H", &host, "version", "--format", "{{.Server.Version}}"]).status.success() {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(300), "not ready after 300 s:\n{}", String::from_utf8_lossy(&docker(&["logs", NAME]).stderr));
            std::thread::sleep(Duration::from_millis(100));
        }
        let ready = t.elapsed().as_secs_f64();
        // The client can get in before the launcher's own poll says ready.
        let logs = || {
            let out = docker(&["logs", NAME]);
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
        };
        let mut log = logs();
        let waited = Instant::now();
        while !log.contains("ready in") && waited.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(100));
            log = logs();
        }
        let starts = 1 + log.lines().filter(|l| l.contains("retrying with TCG") || l.contains("starting QEMU again")).count();
        let accel = log.lines().find(|l| l.contains("KVM")).map(|l| l.trim().to_string()).unwrap_or_else(|| "(no accelerator note)".into());
        let line = log.lines().find(|l| l.contains("ready in")).map(str::trim).unwrap_or("(no ready line)");
        println!("  run {i}: {ready:.1} s, QEMU started {starts}x; {line}{}", if i == 1 { format!("; {accel}") } else { String::new() });
        readies.push(ready);
        let stop = docker(&["stop", "-t", "60", NAME]);
        assert!(stop.status.success(), "docker stop: {}", String::from_utf8_lossy(&stop.stderr));
    }
    let _ = docker(&["rm", "-f", "-v", NAME]);
    let each: Vec<String> = readies.iter().map(|r| format!("{r:.1}")).collect();
    readies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("  docker run → docker version: median {:.1} s (each: {})", readies[readies.len() / 2], each.join(", "));
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
