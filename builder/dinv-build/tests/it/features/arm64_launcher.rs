//! The arm64 image's `dinv-launcher` (the aarch64 binary dinv-build
//! embeds), run under qemu-user on this x86_64 host beside the x86_64 one:
//! it starts, reads its settings, plans arm64's `virt` machine with
//! qemu-system-aarch64, and its `health` and error paths answer exactly as
//! the x86_64 launcher's do.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// qemu-user for aarch64 (Debian's qemu-user-static, from scripts/setup).
const QEMU_USER: &str = "qemu-aarch64-static";

fn write_exe(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// The two launchers of one test: x86_64 natively, aarch64 under qemu-user.
struct Launchers {
    _dir: tempfile::TempDir,
    x86_64: PathBuf,
    aarch64: PathBuf,
    config: PathBuf,
}

impl Launchers {
    fn new(config: &str) -> Launchers {
        let dir = tempfile::tempdir().unwrap();
        let x86_64 = write_exe(dir.path(), "dinv-launcher-x86_64", dinv_build::launcher_binary());
        let aarch64 = write_exe(dir.path(), "dinv-launcher-aarch64", dinv_build::binaries_for(dinv_build::recipe::Arch::Aarch64).launcher);
        let path = dir.path().join("launcher.json");
        fs::write(&path, config).unwrap();
        Launchers { _dir: dir, x86_64, aarch64, config: path }
    }

    /// `dinv-launcher args` of one architecture with only `env` set.
    fn run(&self, arm: bool, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = if arm {
            let mut c = Command::new(QEMU_USER);
            c.arg(&self.aarch64);
            c
        } else {
            Command::new(&self.x86_64)
        };
        c.args(args).env_clear().env("DINV_LAUNCHER_CONFIG", &self.config).envs(env.iter().copied());
        c.output().unwrap_or_else(|e| panic!("running {QEMU_USER}: {e} (install qemu-user-static: scripts/setup)"))
    }

    /// Both launchers' (exit code, stdout, stderr).
    fn both(&self, args: &[&str], env: &[(&str, &str)]) -> [(Option<i32>, String, String); 2] {
        [false, true].map(|arm| {
            let o = self.run(arm, args, env);
            (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
        })
    }
}

#[test]
fn the_arm64_launcher_plans_virt_with_qemu_system_aarch64() {
    // No "qemu" and no "append": the launcher's own defaults.
    let l = Launchers::new(r#"{"kernel":"/usr/share/dinv/vmlinuz","rootfs":"/usr/share/dinv/rootfs.ext4"}"#);
    let [x86, arm] = l.both(&["print-qemu-args"], &[("DINV_ACCEL", "tcg")]);
    assert_eq!((x86.0, arm.0), (Some(0), Some(0)), "x86_64: {}\naarch64: {}", x86.2, arm.2);
    let arm_args = &arm.1;
    assert!(arm_args.starts_with("qemu-system-aarch64 -M virt,gic-version=max -accel tcg -cpu max "), "{arm_args}");
    assert!(x86.1.starts_with("qemu-system-x86_64 -M microvm,pic=off -accel tcg -cpu max "), "{}", x86.1);
    // virt's virtio-mmio transports take the same -device names as microvm's;
    // the console is the PL011, and no TSC frequency (an x86 matter) is passed.
    for want in ["virtio-blk-device,drive=root", "virtio-net-device,netdev=net0", "virtio-serial-device", "console=ttyAMA0 root=SERIAL=dinv-root"] {
        assert!(arm_args.contains(want), "{want} missing: {arm_args}");
    }
    assert!(!arm_args.contains("tsc_early_khz") && !arm_args.contains("ttyS0"), "{arm_args}");
    // The same devices otherwise: disks, network, 9p slots, serial, balloon.
    let devices = |s: &str| s.split_whitespace().filter(|w| *w == "-device" || *w == "-drive" || *w == "-netdev").count();
    assert_eq!(devices(arm_args), devices(&x86.1), "x86_64: {}\naarch64: {arm_args}", x86.1);
}

#[test]
fn the_arm64_launcher_refuses_what_the_x86_64_one_refuses() {
    let l = Launchers::new(r#"{"kernel":"/k","rootfs":"/r","qemu":"/q"}"#);
    for env in [
        &[("DINV_CPUS", "300")][..],
        &[("DINV_MEMORY", "0")],
        &[("DINV_TCP_PORTS", "2375")],
        &[("DINV_SHUTDOWN_TIMEOUT", "30"), ("DINV_STOP_TIMEOUT", "10")],
        &[("DINV_ACCEL", "hvf")],
    ] {
        let [x86, arm] = l.both(&["print-qemu-args"], env);
        assert_eq!(x86.0, Some(2), "{env:?}: {}", x86.2);
        assert_eq!((arm.0, &arm.2), (x86.0, &x86.2), "{env:?}: the two launchers differ");
    }
    // Each architecture's QEMU has its own machines.
    let [x86, arm] = l.both(&["print-qemu-args"], &[("DINV_MACHINE", "virt")]);
    assert_eq!(x86.0, Some(2), "{}", x86.2);
    assert!(x86.2.contains("DINV_MACHINE") && x86.2.contains("this image is x86_64, whose QEMU has microvm or q35"), "{}", x86.2);
    assert_eq!(arm.0, Some(0), "{}", arm.2);
    let [x86, arm] = l.both(&["print-qemu-args"], &[("DINV_MACHINE", "microvm")]);
    assert_eq!((x86.0, arm.0), (Some(0), Some(2)), "{}", arm.2);
    assert!(arm.2.contains("this image is aarch64, whose QEMU has virt"), "{}", arm.2);
    // A config that is not there.
    let gone = Launchers::new("{}");
    fs::remove_file(&gone.config).unwrap();
    let [x86, arm] = gone.both(&["print-qemu-args"], &[]);
    assert_eq!(x86.0, Some(2), "{}", x86.2);
    assert_eq!((arm.0, &arm.2), (x86.0, &x86.2));
}

/// One loopback dockerd stand-in that answers `GET /_ping` with OK, `n` times.
fn fake_dockerd(n: usize) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        for _ in 0..n {
            let (mut c, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let got = c.read(&mut buf).unwrap();
            assert!(buf[..got].starts_with(b"GET /_ping"), "{}", String::from_utf8_lossy(&buf[..got]));
            c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK").unwrap();
        }
    });
    (port, h)
}

#[test]
fn the_arm64_launcher_answers_health_as_the_x86_64_one() {
    let l = Launchers::new(r#"{"kernel":"/k","rootfs":"/r","qemu":"/q"}"#);
    let (port, server) = fake_dockerd(2);
    let addr = format!("127.0.0.1:{port}");
    let [x86, arm] = l.both(&["health"], &[("DINV_PING_ADDR", &addr)]);
    server.join().unwrap();
    assert_eq!((x86.0, x86.1.as_str()), (Some(0), "OK\n"), "{}", x86.2);
    assert_eq!((arm.0, arm.1.as_str()), (Some(0), "OK\n"), "{}", arm.2);
    // Nobody listening: both fail the same way, naming the address.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let [x86, arm] = l.both(&["health"], &[("DINV_PING_ADDR", &closed)]);
    assert_eq!(x86.0, Some(1), "{}", x86.2);
    assert!(x86.2.starts_with("dinv-launcher health: ") && x86.2.contains(&closed), "{}", x86.2);
    assert_eq!((arm.0, &arm.2), (x86.0, &x86.2));
}
