//! Driving a built DinV appliance from tests and benchmarks: a launcher
//! config for the build outputs, dockerd's `/_ping`, and a tiny image to run
//! inside the guest (no registry is reachable).

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Writes `vmdir/launcher.json` booting the outputs in `out`, with the VM's
/// disks and sockets in `vmdir`, and the kernel command line the image
/// passes (report.json's `kernel.cmdline`); returns its path.
pub fn launcher_config(out: &Path, vmdir: &Path) -> PathBuf {
    let config = vmdir.join("launcher.json");
    let report: serde_json::Value = serde_json::from_slice(&fs::read(out.join("report.json")).unwrap()).unwrap();
    let append = report["kernel"]["cmdline"].as_str().unwrap_or_else(|| panic!("no kernel.cmdline in {}/report.json", out.display()));
    fs::write(
        &config,
        serde_json::json!({
            "append": append,
            // The kernel the image boots: the PVH vmlinux when the build made one.
            "kernel": if out.join("vmlinux").is_file() { out.join("vmlinux") } else { out.join("vmlinuz") }, "initrd": out.join("initramfs"), "rootfs": out.join("rootfs.ext4"),
            "qemu": "/usr/bin/qemu-system-x86_64", "docker_disk": vmdir.join("docker.img"),
            "volume_disk": vmdir.join("volume.img"), "run_dir": vmdir.join("run"),
            "defaults": {"DINV_MEMORY": "1G", "DINV_DOCKER_SIZE": "8G"}
        })
        .to_string(),
    )
    .unwrap();
    config
}

/// Starts `launcher` (no command: the VM runs until signalled) with
/// `config`, a 60 s graceful stop and `env`; its output goes to `console`.
pub fn spawn_launcher(launcher: &Path, config: &Path, console: &Path, env: &[(&str, &str)]) -> Child {
    spawn(Command::new(launcher), config, console, env)
}

/// The arm64 appliance in `out`, booted on this x86_64 host: the image's
/// aarch64 `launcher` under qemu-user, driving the host's
/// qemu-system-aarch64 (qemu-user runs the x86_64 QEMU it starts
/// natively) with the kernel Image, under TCG with 1 GiB; its output in
/// `vmdir/console.txt`.
pub fn spawn_arm64_launcher(launcher: &Path, out: &Path, vmdir: &Path) -> Child {
    assert!(launcher.is_file(), "{} missing (built by dinv-build's build.rs)", launcher.display());
    let config = launcher_config(out, vmdir);
    let mut c: serde_json::Value = serde_json::from_slice(&fs::read(&config).unwrap()).unwrap();
    c["kernel"] = out.join("vmlinuz").to_string_lossy().into();
    c["qemu"] = "/usr/bin/qemu-system-aarch64".into();
    fs::write(&config, c.to_string()).unwrap();
    let mut qemu_user = Command::new("qemu-aarch64-static");
    qemu_user.arg(launcher);
    spawn(qemu_user, &config, &vmdir.join("console.txt"), &[("DINV_ACCEL", "tcg"), ("DINV_MEMORY", "1G")])
}

fn spawn(mut cmd: Command, config: &Path, console: &Path, env: &[(&str, &str)]) -> Child {
    let log = fs::File::create(console).unwrap();
    cmd.env("DINV_LAUNCHER_CONFIG", config)
        .env("DINV_STOP_TIMEOUT", "60")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start the launcher ({cmd:?}): {e} (scripts/setup installs qemu-user-static)"))
}

/// GET /_ping on `addr` answers OK.
pub fn ping(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.") && buf.ends_with("OK")
}

fn run(what: &str, cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(out.status.success(), "{what}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// `dir/tiny.tar`: a rootfs with Debian's static busybox and a few applet
/// links, made once (fetched with `apt-get download busybox-static`).
pub fn tiny_rootfs_tar(dir: &Path) -> PathBuf {
    tiny_rootfs_tar_with(dir, Command::new("apt-get"))
}

/// [`tiny_rootfs_tar`] with busybox-static from `apt_get` (e.g. a private
/// apt of another architecture: its `Apt::command`).
pub fn tiny_rootfs_tar_with(dir: &Path, mut apt_get: Command) -> PathBuf {
    let tar = dir.join("tiny.tar");
    if tar.is_file() {
        return tar;
    }
    let dl = dir.join("busybox-dl");
    let _ = fs::remove_dir_all(&dl);
    fs::create_dir_all(&dl).unwrap();
    run("apt-get download busybox-static", apt_get.args(["download", "-q", "-o", "Debug::NoLocking=1", "busybox-static"]).current_dir(&dl));
    let deb = fs::read_dir(&dl).unwrap().next().unwrap().unwrap().path();
    let x = dir.join("busybox-x");
    run("dpkg-deb -x", Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&x));
    let root = dir.join("tiny-root");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("tmp")).unwrap();
    let bb = ["bin/busybox", "usr/bin/busybox"].iter().map(|p| x.join(p)).find(|p| p.is_file()).expect("busybox binary in busybox-static");
    fs::copy(&bb, root.join("bin/busybox")).unwrap();
    for applet in ["sh", "echo", "cat", "mkdir", "httpd", "sleep", "ls"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    let part = dir.join("tiny.tar.part");
    run("tar", Command::new("tar").arg("-C").arg(&root).args(["--numeric-owner", "--owner=0", "--group=0", "-cf"]).arg(&part).arg("."));
    fs::rename(&part, &tar).unwrap();
    tar
}
