//! Both platforms of the Debian appliance, measured (not a test): trixie
//! for amd64 (recipes/debian.toml) beside arm64
//! (recipes/examples/debian-arm64.toml), side by side in one run: cold
//! build (empty cache), warm rebuild, sizes; then boot-to-ready of each
//! under TCG on this x86_64 host, median of 3: amd64 with the x86_64
//! launcher and the host's qemu-system-x86_64 (microvm), arm64 with the
//! image's aarch64 launcher under qemu-user and the host's
//! qemu-system-aarch64 (virt, emulating another architecture: expect it to
//! be slower; on an arm64 host the arm64 image runs as fast as amd64 here).
//!
//! Needs `cargo build --release -p dinv-build` first; the mirrors are the
//! tests' (target/tmp), filled here when packages are missing.
//!
//! Run: `cargo run --release -p dinv-build --example bench_arm64`

use dinv_test_support::{appliance, debian_mirror};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const BOOTS: usize = 3;

fn workspace() -> PathBuf {
    dinv_test_support::docker::workspace()
}

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent().and_then(Path::parent).and_then(Path::parent).expect("target dir above the example").to_path_buf()
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

/// `dinv-build build`, timed; report.json.
fn build(dinv: &Path, recipe: &Path, out: &Path, cache: &Path, mirror: &str) -> (f64, serde_json::Value) {
    let _ = fs::remove_dir_all(out);
    let t = Instant::now();
    let o = Command::new(dinv)
        .args(["build", "-q", "--json"])
        .arg(recipe)
        .arg("--out")
        .arg(out)
        .env("DINV_CACHE_DIR", cache)
        .env("DINV_DEBIAN_MIRROR", mirror)
        .env_remove("RUST_LOG")
        .output()
        .expect("run dinv-build");
    let secs = t.elapsed().as_secs_f64();
    assert!(o.status.success(), "building {}: {}{}", recipe.display(), String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    (secs, serde_json::from_slice(&fs::read(out.join("report.json")).unwrap()).unwrap())
}

struct Platform {
    name: &'static str,
    recipe: PathBuf,
    arch: &'static str,
    out: PathBuf,
    cold: f64,
    warm: f64,
    report: serde_json::Value,
    boots: Vec<f64>,
    phases: String,
}

/// Starts one platform's launcher on `out` with a fresh VM directory.
fn start(p: &Platform, target: &Path, vmdir: &Path) -> Child {
    let _ = fs::remove_dir_all(vmdir);
    fs::create_dir_all(vmdir).unwrap();
    if p.arch == "arm64" {
        return appliance::spawn_arm64_launcher(&target.join("static/aarch64-unknown-linux-gnu/release/dinv-launcher"), &p.out, vmdir);
    }
    let config = appliance::launcher_config(&p.out, vmdir);
    let launcher = target.join("static/x86_64-unknown-linux-gnu/release/dinv-launcher");
    appliance::spawn_launcher(&launcher, &config, &vmdir.join("console.txt"), &[("DINV_ACCEL", "tcg"), ("DINV_MEMORY", "1G")])
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

fn main() {
    let ws = workspace();
    let target = target_dir();
    let dinv = target.join("release/dinv-build");
    assert!(dinv.is_file(), "run `cargo build --release -p dinv-build` first");
    let tmp = target.join("tmp/bench-arm64");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).unwrap();

    let mut platforms = vec![
        Platform { name: "linux/amd64", recipe: ws.join("recipes/debian.toml"), arch: "amd64", out: tmp.join("amd64"), cold: 0.0, warm: 0.0, report: Default::default(), boots: Vec::new(), phases: String::new() },
        Platform { name: "linux/arm64", recipe: ws.join("recipes/examples/debian-arm64.toml"), arch: "arm64", out: tmp.join("arm64"), cold: 0.0, warm: 0.0, report: Default::default(), boots: Vec::new(), phases: String::new() },
    ];
    for p in &mut platforms {
        let mirror = debian_mirror::release_mirror_for(&target.join("tmp"), "trixie", p.arch);
        mirror.fill_for(&dinv, &p.recipe, &tmp.join(format!("resolve-cache-{}", p.arch)));
        eprintln!("bench: {} builds", p.name);
        let cache = tmp.join(format!("cache-{}", p.arch));
        let (cold, _) = build(&dinv, &p.recipe, &p.out, &cache, &mirror.url());
        let (warm, report) = build(&dinv, &p.recipe, &p.out, &cache, &mirror.url());
        (p.cold, p.warm, p.report) = (cold, warm, report);
    }
    for p in &mut platforms {
        let vmdir = tmp.join(format!("vm-{}", p.arch));
        let mut readies = Vec::new();
        for i in 0..=BOOTS {
            eprintln!("bench: {} boot {i}/{BOOTS}", p.name);
            let t = Instant::now();
            let mut child = start(p, &target, &vmdir);
            while !appliance::ping("127.0.0.1:2375") {
                assert!(child.try_wait().unwrap().is_none(), "launcher exited:\n{}", fs::read_to_string(vmdir.join("console.txt")).unwrap_or_default());
                assert!(t.elapsed() < Duration::from_secs(600), "not ready after 600 s");
                std::thread::sleep(Duration::from_millis(100));
            }
            let ready = t.elapsed().as_secs_f64();
            unsafe { libc_kill(child.id() as i32, 15) };
            assert!(child.wait().unwrap().success(), "stop");
            let console = fs::read_to_string(vmdir.join("console.txt")).unwrap_or_default();
            // Boot 0 formats the docker disk; the VM directory is fresh each time, so all count.
            let _ = i;
            readies.push(ready);
            if let Some(l) = console.lines().find(|l| l.starts_with("dinv-launcher: ready in")) {
                p.phases = l.trim_start_matches("dinv-launcher: ").to_string();
            }
        }
        readies.remove(0);
        p.boots = readies;
    }

    let size = |p: &Platform, name: &str| p.report["outputs"].as_array().unwrap().iter().find(|o| o["name"] == name).and_then(|o| o["size"].as_u64()).unwrap_or(0);
    let packages = |p: &Platform| format!("{} + {}", p.report["packages"]["guest"], p.report["packages"]["runtime"]);
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    println!("\nThe Debian trixie appliance for both platforms (recipes/debian.toml, recipes/examples/debian-arm64.toml), local mirrors of the archive's three suites, this x86_64 host");
    println!("  {:<44}{:<30}{:<30}", "", platforms[0].name, platforms[1].name);
    let row = |label: &str, f: &dyn Fn(&Platform) -> String| println!("  {label:<44}{:<30}{:<30}", f(&platforms[0]), f(&platforms[1]));
    row("cold build (empty cache)", &|p| format!("{:.1} s", p.cold));
    row("warm rebuild", &|p| format!("{:.1} s", p.warm));
    row("image.tar", &|p| mib(size(p, "image.tar")));
    row("rootfs.ext4", &|p| mib(size(p, "rootfs.ext4")));
    row("vmlinuz (kernel boot)", &|p| format!("{} ({})", mib(size(p, "vmlinuz")), p.report["kernel"]["boot"].as_str().unwrap_or("?")));
    row("initramfs", &|p| mib(size(p, "initramfs")));
    row("packages (guest + runtime)", &|p| packages(p));
    row(&format!("boot-to-ready under TCG, median of {BOOTS}"), &|p| {
        let each: Vec<String> = p.boots.iter().map(|b| format!("{b:.1}")).collect();
        format!("{:.1} s ({})", median(&p.boots), each.join(", "))
    });
    println!("  (amd64: x86_64 guest on x86_64 TCG with microvm; arm64: aarch64 guest on x86_64 TCG with virt, its launcher under qemu-user)");
    for p in &platforms {
        println!("  {} last boot: {}", p.name, p.phases);
    }
}
