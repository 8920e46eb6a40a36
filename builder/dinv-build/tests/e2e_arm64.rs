//! The multi-platform Debian appliance end to end, on this x86_64 host
//! (recipes/examples/debian-multiplatform.toml: amd64 and arm64, trixie's
//! three suites):
//! 1. both platforms build in one run from a local mirror of the real
//!    archive's amd64 and arm64 packages, and `dinv-build verify` rebuilds
//!    every platform's outputs bit for bit;
//! 2. `oci/` is an image index the real skopeo reads with an amd64 and an
//!    arm64 manifest; `push` sends the index to a local registry, where
//!    `skopeo inspect --override-arch` resolves each platform to its own
//!    manifest; each platform has its docker-archive, and image.tar is
//!    this machine's;
//! 3. the arm64 outputs are arm64's: the kernel Image, the image config,
//!    the launcher in the image, the packages;
//! 4. the image's own aarch64 `dinv-launcher`, under qemu-user, boots the
//!    guest with the host's qemu-system-aarch64 under TCG (`virt`) to
//!    dockerd ready; the real docker client imports an arm64 busybox
//!    (Debian's arm64 busybox-static) and runs it in the guest; `snapshot`
//!    refuses an image this machine cannot run;
//! 5. virt's power button (QMP system_powerdown, no guest agent) shuts
//!    the guest down cleanly (dockerd stopped, exit 0).
//!
//! Needs qemu-system-arm, qemu-user-static, skopeo, docker-registry and
//! docker.io (the client) from scripts/setup. Several minutes under TCG.

use dinv_test_support as support;
use support::cli::{text, Cli};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::appliance::{ping, spawn_arm64_launcher, tiny_rootfs_tar_with};
use support::debian_mirror::{fill_platforms, release_mirror_multi, Mirror};
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

    // 1. Both platforms from one mirror of the archive's amd64 and arm64
    //    packages, then verify.
    let recipe = workspace().join("recipes/examples/debian-multiplatform.toml");
    let mirrors = release_mirror_multi(&PathBuf::from(env!("CARGO_TARGET_TMPDIR")), "trixie", &["amd64", "arm64"]);
    fill_platforms(&mirrors, Path::new(env!("CARGO_BIN_EXE_dinv-build")), &recipe, &tmp_root().join("cache"));
    let (mirror, arm_mirror) = (&mirrors[0].1, &mirrors[1].1);
    let top = work.path().join("out");
    let t = Instant::now();
    let o = dinv_build(&["build", recipe.to_str().unwrap(), "--out", top.to_str().unwrap()], mirror);
    assert!(o.status.success(), "build: {}", text(&o));
    step(&format!("built both platforms in {:.1} s", t.elapsed().as_secs_f64()));
    let o = dinv_build(&["verify", "--json", recipe.to_str().unwrap()], mirror);
    assert!(o.status.success(), "verify: {}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let compared: Vec<&str> = v["verify"]["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    for f in ["linux-amd64/rootfs.ext4", "linux-arm64/rootfs.ext4", "linux-arm64/vmlinuz", "linux-amd64/image.tar", "oci/index.json", "image-linux-arm64.tar", "report.json"] {
        assert!(compared.contains(&f), "verify did not compare {f}: {compared:?}");
    }
    step("verify: a second build of both platforms is bit-identical");

    // 2. One image index: skopeo reads it, a registry takes it whole, and
    //    each platform resolves to its own manifest.
    let report: serde_json::Value = serde_json::from_slice(&fs::read(top.join("report.json")).unwrap()).unwrap();
    let digest_of = |p: &str| report["platforms"][p]["image"]["manifest_digest"].as_str().unwrap_or_else(|| panic!("no {p} in {report}")).to_string();
    let (amd_digest, arm_digest) = (digest_of("linux/amd64"), digest_of("linux/arm64"));
    let o = Command::new("skopeo").arg("inspect").arg("--raw").arg(format!("oci:{}", top.join("oci").display())).output().expect("skopeo");
    assert!(o.status.success(), "skopeo inspect --raw: {}", text(&o));
    let index: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json", "{index}");
    let listed: Vec<(String, String)> = index["manifests"].as_array().unwrap().iter().map(|m| (m["platform"]["architecture"].as_str().unwrap().to_string(), m["digest"].as_str().unwrap().to_string())).collect();
    assert_eq!(listed, [("amd64".to_string(), amd_digest.clone()), ("arm64".to_string(), arm_digest.clone())]);
    assert_eq!(report["image"]["index_digest"].as_str().unwrap(), format!("sha256:{}", support::sha256_hex(&o.stdout)));
    let sha = |p: &Path| support::sha256_hex(&fs::read(p).unwrap());
    assert_eq!(sha(&top.join("image-linux-arm64.tar")), sha(&top.join("linux-arm64/image.tar")));
    assert_eq!(sha(&top.join("image.tar")), sha(&top.join("linux-amd64/image.tar")), "image.tar is this (amd64) machine's");
    let reg = support::registry::start_registry();
    let reference = format!("{}/dinv/multi:1", reg.host());
    let o = dinv_build(&["push", "--json", top.to_str().unwrap(), &reference], mirror);
    assert!(o.status.success(), "push: {}", text(&o));
    let pushed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(pushed["push"]["manifest_digest"], report["image"]["index_digest"], "{pushed}");
    // skopeo's Digest is the tag's (the index); the layers are the
    // platform manifest's it resolved to.
    for (arch, want) in [("arm64", &arm_digest), ("amd64", &amd_digest)] {
        let o = Command::new("skopeo").args(["inspect", "--tls-verify=false", "--override-os", "linux", "--override-arch", arch]).arg(format!("docker://{reference}")).output().expect("skopeo");
        assert!(o.status.success(), "skopeo inspect --override-arch {arch}: {}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&fs::read(top.join("oci/blobs/sha256").join(want.trim_start_matches("sha256:"))).unwrap()).unwrap();
        let layers: Vec<&str> = manifest["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap()).collect();
        assert_eq!((v["Architecture"].as_str(), v["Digest"].as_str()), (Some(arch), report["image"]["index_digest"].as_str()), "{v}");
        assert_eq!(v["Layers"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect::<Vec<_>>(), layers, "{arch}: {v}");
    }
    step("skopeo: the index lists amd64 and arm64; the pushed index resolves per platform");
    let outdir = top.join("linux-arm64");
    // A snapshot is of one platform, and boots the image's own QEMU: not
    // on this x86_64 machine for arm64.
    let o = dinv_build(&["snapshot", top.to_str().unwrap()], mirror);
    assert_eq!(o.status.code(), Some(2), "snapshot: {}", text(&o));
    assert!(text(&o).contains("is a multi-platform output"), "{}", text(&o));
    let o = dinv_build(&["snapshot", outdir.to_str().unwrap()], mirror);
    assert_eq!(o.status.code(), Some(2), "snapshot: {}", text(&o));
    assert!(text(&o).contains("the image is for arm64, and a snapshot boots the image's own QEMU"), "{}", text(&o));

    // 3. arm64's outputs.
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

    // 4. Boot with the image's aarch64 launcher under qemu-user.
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
    let apt = arm_mirror.apt().expect("the arm64 mirror's apt");
    let tar = tiny_rootfs_tar_with(&tmp_root(), apt.command());
    docker_ok(h, &["import", tar.to_str().unwrap(), "tiny:arm64"]);
    let out = docker_ok(h, &["run", "--rm", "tiny:arm64", "/bin/busybox", "sh", "-c", "/bin/busybox uname -m; echo hello from an arm64 container"]);
    assert_eq!(out, "aarch64\nhello from an arm64 container\n");

    // 5. The power button, without the guest agent: QMP's system_powerdown
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
    support::discard_cache(&tmp_root().join("cache"));
    step(&format!("done in {:.0} s", started.elapsed().as_secs_f64()));
}
