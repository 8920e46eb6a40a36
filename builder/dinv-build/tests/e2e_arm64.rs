//! The arm64 Debian appliance end to end, on this x86_64 host
//! (recipes/examples/debian-arm64.toml; trixie's three suites):
//! 1. it builds from a local mirror of the real archive's arm64 packages,
//!    and `dinv-build verify` rebuilds it bit for bit;
//! 2. the outputs are arm64's: the kernel Image, the image config, the
//!    launcher in the image, the packages;
//! 3. the image's own aarch64 `dinv-launcher`, under qemu-user, boots the
//!    guest with the host's qemu-system-aarch64 under TCG (`virt`) to
//!    dockerd ready; the real docker client imports an arm64 busybox
//!    (Debian's arm64 busybox-static) and runs it in the guest; `snapshot`
//!    refuses an image this machine cannot run;
//! 4. virt's power button (QMP system_powerdown, no guest agent) shuts
//!    the guest down cleanly (dockerd stopped, exit 0).
//!
//! Needs qemu-system-arm, qemu-user-static and docker.io (the client)
//! from scripts/setup. Several minutes under TCG.

use dinv_test_support as support;
use support::cli::{text, Cli};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::appliance::{ping, spawn_arm64_launcher, tiny_rootfs_tar_with};
use support::debian_mirror::{release_mirror_for, Mirror};
use support::docker::{docker_ok, wait_until, workspace};

/// The guest's dockerd, forwarded by the launcher (test binaries run one at a time).
const DOCKER_PORT: u16 = 2375;

fn tmp_root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-arm64")
}

fn step(msg: &str) {
    eprintln!("e2e-arm64: {msg}");
}

fn dinv_build(args: &[&str], mirror: &Mirror) -> Output {
    Cli::new(env!("CARGO_BIN_EXE_dinv-build"), &workspace()).cache(tmp_root().join("cache")).env("DINV_DEBIAN_MIRROR", mirror.url()).run(args)
}

/// ELF e_machine of AArch64.
const EM_AARCH64: u16 = 183;

fn elf_machine(b: &[u8]) -> u16 {
    assert_eq!(&b[..4], b"\x7fELF");
    u16::from_le_bytes([b[18], b[19]])
}

/// A file of the image in `image_tar` (docker-archive), from the topmost
/// layer that has it, read with the system's tar.
fn image_file(image_tar: &Path, work: &Path, path: &str) -> Option<Vec<u8>> {
    let x = work.join("image-x");
    if !x.join("manifest.json").is_file() {
        fs::create_dir_all(&x).unwrap();
        let o = Command::new("tar").arg("-xf").arg(image_tar).arg("-C").arg(&x).output().unwrap();
        assert!(o.status.success(), "tar -xf image.tar: {}", text(&o));
    }
    let manifest: serde_json::Value = serde_json::from_slice(&fs::read(x.join("manifest.json")).unwrap()).unwrap();
    manifest[0]["Layers"].as_array().unwrap().iter().rev().find_map(|l| {
        let o = Command::new("tar").arg("-xOf").arg(x.join(l.as_str().unwrap())).arg(path).output().unwrap();
        o.status.success().then_some(o.stdout)
    })
}

/// The image's aarch64 launcher, as dinv-build's build.rs built it.
fn arm64_launcher() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("static/aarch64-unknown-linux-gnu/release/dinv-launcher")
}

#[test]
fn arm64_appliance_end_to_end() {
    if !support::docker::host_docker_available() {
        eprintln!("notice: no host dockerd; skipped (DINV_REQUIRE_DOCKER=1 makes this fail)");
        return;
    }
    assert!(Path::new("/usr/bin/qemu-system-aarch64").is_file(), "qemu-system-aarch64 missing: scripts/setup installs qemu-system-arm");
    let started = Instant::now();
    fs::create_dir_all(tmp_root()).unwrap();
    let work = tempfile::tempdir_in(tmp_root()).unwrap();

    // 1. Build from a mirror of the archive's arm64 packages, then verify.
    let recipe = workspace().join("recipes/examples/debian-arm64.toml");
    let mirror = release_mirror_for(&PathBuf::from(env!("CARGO_TARGET_TMPDIR")), "trixie", "arm64");
    mirror.fill_for(Path::new(env!("CARGO_BIN_EXE_dinv-build")), &recipe, &tmp_root().join("cache"));
    let outdir = work.path().join("out");
    let t = Instant::now();
    let o = dinv_build(&["build", recipe.to_str().unwrap(), "--out", outdir.to_str().unwrap()], &mirror);
    assert!(o.status.success(), "build: {}", text(&o));
    step(&format!("built in {:.1} s", t.elapsed().as_secs_f64()));
    let o = dinv_build(&["verify", recipe.to_str().unwrap()], &mirror);
    assert!(o.status.success(), "verify: {}", text(&o));
    step("verify: a second build is bit-identical");
    // A snapshot boots the image's own QEMU: not on this x86_64 machine.
    let o = dinv_build(&["snapshot", outdir.to_str().unwrap()], &mirror);
    assert_eq!(o.status.code(), Some(2), "snapshot: {}", text(&o));
    assert!(text(&o).contains("the image is for arm64, and a snapshot boots the image's own QEMU"), "{}", text(&o));

    // 2. arm64's outputs.
    let image = fs::read(outdir.join("vmlinuz")).unwrap();
    assert_eq!(&image[0x38..0x3c], b"ARM\x64", "vmlinuz is not an arm64 Image");
    assert!(!outdir.join("vmlinux").exists(), "a PVH vmlinux for an arm64 guest");
    let report: serde_json::Value = serde_json::from_slice(&fs::read(outdir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["kernel"]["boot"], "image", "{}", report["kernel"]);
    assert!(report["kernel"]["release"].as_str().unwrap().ends_with("-arm64"), "{}", report["kernel"]);
    let packages: serde_json::Value = serde_json::from_slice(&fs::read(outdir.join("packages.json")).unwrap()).unwrap();
    let archs: std::collections::BTreeSet<&str> =
        packages.as_array().unwrap().iter().flat_map(|set| set["packages"].as_array().unwrap()).map(|p| p["arch"].as_str().unwrap()).collect();
    assert!(archs.contains("arm64") && !archs.contains("amd64"), "package architectures: {archs:?}");
    let index: serde_json::Value = serde_json::from_slice(&fs::read(outdir.join("oci/index.json")).unwrap()).unwrap();
    let blob = |digest: &str| fs::read(outdir.join("oci/blobs/sha256").join(digest.trim_start_matches("sha256:"))).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let config: serde_json::Value = serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    assert_eq!((config["architecture"].as_str(), config["os"].as_str()), (Some("arm64"), Some("linux")));
    let launcher_cfg = image_file(&outdir.join("image.tar"), work.path(), "etc/dinv/launcher.json").expect("launcher.json in the image");
    let launcher_cfg: serde_json::Value = serde_json::from_slice(&launcher_cfg).unwrap();
    assert_eq!(launcher_cfg["qemu"], "/usr/bin/qemu-system-aarch64", "{launcher_cfg}");
    assert!(launcher_cfg["append"].as_str().unwrap().starts_with("console=ttyAMA0 "), "{launcher_cfg}");
    assert_eq!(launcher_cfg["defaults"]["DINV_MACHINE"], "virt", "{launcher_cfg}");
    let launcher_bin = image_file(&outdir.join("image.tar"), work.path(), "usr/bin/dinv-launcher").expect("the launcher in the image");
    assert_eq!(elf_machine(&launcher_bin), EM_AARCH64, "the image's launcher is not aarch64");
    let qemu = image_file(&outdir.join("image.tar"), work.path(), "usr/bin/qemu-system-aarch64").expect("qemu-system-aarch64 in the runtime layer");
    assert_eq!(elf_machine(&qemu), EM_AARCH64);

    // 3. Boot with the image's aarch64 launcher under qemu-user.
    let vmdir = work.path().join("vm");
    fs::create_dir_all(&vmdir).unwrap();
    step("boot under TCG (qemu-system-aarch64 -M virt)");
    let mut child = spawn_arm64_launcher(&arm64_launcher(), &outdir, &vmdir);
    let console = || fs::read_to_string(vmdir.join("console.txt")).unwrap_or_default();
    let t = Instant::now();
    wait_until("dockerd in the arm64 guest", Duration::from_secs(600), Duration::from_millis(250), || {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("launcher exited early ({st}):\n{}", console());
        }
        ping(&format!("127.0.0.1:{DOCKER_PORT}"))
    });
    step(&format!("dockerd ready after {:.1} s", t.elapsed().as_secs_f64()));
    let h = format!("tcp://127.0.0.1:{DOCKER_PORT}");
    let h = Some(h.as_str());
    let server = docker_ok(h, &["version", "--format", "{{.Server.Arch}} {{.Server.Os}}"]);
    assert_eq!(server.trim(), "arm64 linux");
    let apt = mirror.apt().expect("the arm64 mirror's apt");
    let tar = tiny_rootfs_tar_with(&tmp_root(), apt.command());
    docker_ok(h, &["import", tar.to_str().unwrap(), "tiny:arm64"]);
    let out = docker_ok(h, &["run", "--rm", "tiny:arm64", "/bin/busybox", "sh", "-c", "/bin/busybox uname -m; echo hello from an arm64 container"]);
    assert_eq!(out, "aarch64\nhello from an arm64 container\n");

    // 4. The power button, without the guest agent: QMP's system_powerdown
    //    presses virt's GPIO key, and the guest shuts down by itself.
    assert!(console().contains("dinv-guest: power button: watching /dev/input/"), "{}", console());
    let qmp = std::os::unix::net::UnixStream::connect(vmdir.join("run/qmp.sock")).expect("the launcher's QMP socket");
    let mut reader = std::io::BufReader::new(qmp.try_clone().unwrap());
    let mut w = qmp;
    let mut line = String::new();
    for cmd in ["", "{\"execute\":\"qmp_capabilities\"}", "{\"execute\":\"system_powerdown\"}"] {
        if !cmd.is_empty() {
            std::io::Write::write_all(&mut w, format!("{cmd}\n").as_bytes()).unwrap();
        }
        // Events (POWERDOWN) may come before the answer.
        loop {
            line.clear();
            assert!(std::io::BufRead::read_line(&mut reader, &mut line).unwrap() > 0, "QMP closed after {cmd}");
            assert!(!line.contains("\"error\""), "QMP {cmd}: {line}");
            if line.contains("\"QMP\"") || line.contains("\"return\"") {
                break;
            }
        }
    }
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(t.elapsed() < Duration::from_secs(300), "the guest did not power off:\n{}", console());
        std::thread::sleep(Duration::from_millis(200));
    };
    let log = console();
    assert!(status.success() && log.contains("dinv-guest: stopping dockerd") && log.contains("dinv-launcher: the guest powered off"), "power button: {status}\n{log}");
    step(&format!("powered off by its button in {:.1} s", t.elapsed().as_secs_f64()));
    step(&format!("done in {:.0} s", started.elapsed().as_secs_f64()));
}
