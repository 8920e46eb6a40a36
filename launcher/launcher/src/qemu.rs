//! Settings + paths → the QEMU argument list. Pure, so the exact command
//! line is unit-tested for both machine types.
//!
//! Choices: the root disk is opened with `snapshot=on`, so guest writes go
//! to a temporary overlay QEMU creates in $TMPDIR (the launcher points it at
//! the run dir) and the shipped image is never modified; no qemu-img needed.
//! Disks carry serials (`dinv-root`, `dinv-docker`, `dinv-volume`) so the
//! guest can find them without relying on device probe order. The console
//! goes to stdout and, through the chardev's logfile, to the console log.

use std::path::PathBuf;

use super::accel::Accel;
use super::certs::{CertDir, Role};
use super::config::Paths;
use super::settings::{Machine, Settings};
use dinv_contract::settings::{self as table, fw_cfg_key, PortForward};

/// The 9p mount tag of the n-th DINV_MOUNTS entry.
pub fn mount_tag(n: usize) -> String {
    format!("dinv{n}")
}

/// QEMU option values double their commas.
fn esc(s: &str) -> String {
    s.replace(',', ",,")
}

/// The value of one fw_cfg entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FwCfg {
    /// `string=`: short settings.
    String(String),
    /// `file=`: read by QEMU at start (the TLS server files).
    File(PathBuf),
}

/// The `opt/dinv/<key>` fw_cfg entries the guest reads, in order.
pub fn fw_cfg_entries(s: &Settings) -> Vec<(&'static str, FwCfg)> {
    let mut out: Vec<(&'static str, FwCfg)> = fw_cfg_strings(s).into_iter().map(|(k, v)| (k, FwCfg::String(v))).collect();
    if let Some(dir) = &s.tls_certdir {
        // The server set goes in by file, so the key never shows on a command line.
        use dinv_contract::fw_cfg::{TLS_CA, TLS_CERT, TLS_KEY};
        let dir = CertDir(dir.clone());
        for (key, name) in [(TLS_CA, "ca.pem"), (TLS_CERT, "cert.pem"), (TLS_KEY, "key.pem")] {
            out.push((key, FwCfg::File(dir.file(Role::Server, name))));
        }
    }
    out
}

/// The `opt/dinv/*` strings (not the TLS files) a guest reads at boot.
pub fn fw_cfg_strings(s: &Settings) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if !s.mounts.is_empty() {
        let list: Vec<String> = s.mounts.iter().enumerate().map(|(i, p)| format!("{}={p}", mount_tag(i))).collect();
        out.push((fw_cfg_key(table::MOUNTS), list.join(";")));
    }
    if let Some(v) = &s.volume {
        out.push((fw_cfg_key(table::VOLUME_PATH), v.path.clone()));
        out.push((fw_cfg_key(table::VOLUME_UID), v.uid.to_string()));
        out.push((fw_cfg_key(table::VOLUME_GID), v.gid.to_string()));
    }
    out.push((fw_cfg_key(table::SOCK_UID), s.sock_uid.to_string()));
    out.push((fw_cfg_key(table::SOCK_GID), s.sock_gid.to_string()));
    out.push((fw_cfg_key(table::SHUTDOWN_TIMEOUT), s.shutdown_timeout.to_string()));
    out
}

/// The TSC frequency in kHz from /proc/cpuinfo text (`cpu MHz`).
pub fn tsc_khz(cpuinfo: &str) -> Option<u64> {
    cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("cpu MHz").and_then(|r| r.split(':').nth(1)))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|mhz| (mhz * 1000.0).round() as u64)
        .filter(|&k| k > 0)
}

/// `-M`'s value for `machine`, for a boot and for a snapshot VM alike.
pub fn machine_option(machine: Machine) -> String {
    match machine {
        // GICv3 hosts (Graviton, Ampere) have no GICv2 for KVM to give the
        // guest, and virt's default is v2: take the best the accelerator has.
        Machine::Virt => "virt,gic-version=max".into(),
        // No 8259 PIC. microvm's ACPI is hardware-reduced, so Linux never
        // programs one (null legacy PIC) and routes everything through the
        // IOAPICs. QEMU's PIC is still there, and the PIT the firmware
        // started raises IRQ0 on it, which it delivers as vector 0: when a
        // tick is pending at the kernel's first `sti`, "Oops: divide error"
        // in start_kernel, and the guest hangs with nothing on the console
        // after "Booting from ROM". Seen with Debian trixie's QEMU 10 or its
        // SeaBIOS 1.16.3 (never with bookworm's QEMU 7.2 and SeaBIOS): 9
        // boots in 10 died so in a chroot, 4 in 12 under `docker run`; with
        // the PIC off, none in 10 and none in 12. (`pit=off` helps too, but
        // the PIT still calibrates the TSC when `tsc_early_khz` is missing.)
        Machine::Microvm => "microvm,pic=off".into(),
        Machine::Q35 => "q35".into(),
    }
}

/// The full QEMU argument list (without the program name).
pub fn qemu_args(s: &Settings, p: &Paths, accel: Accel) -> Vec<String> {
    let dev = |name: &str| match s.machine {
        Machine::Microvm | Machine::Virt => format!("{name}-device"),
        Machine::Q35 => format!("{name}-pci"),
    };
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|x| x.to_string()));
    push(&["-M", &machine_option(s.machine)]);
    match accel {
        Accel::Kvm => push(&["-accel", "kvm", "-cpu", "host"]),
        Accel::Tcg => push(&["-accel", "tcg", "-cpu", "max"]),
    }
    push(&["-smp", &s.cpus.to_string(), "-m", &format!("{}M", s.memory_mib)]);
    push(&["-nodefaults", "-no-user-config", "-no-reboot", "-nographic"]);
    push(&["-kernel", &p.kernel.to_string_lossy()]);
    if let Some(initrd) = &p.initrd {
        push(&["-initrd", &initrd.to_string_lossy()]);
    }
    let mut append = p.append.clone();
    if accel == Accel::Tcg && s.machine == Machine::Microvm && !append.contains("tsc_early_khz=") {
        // microvm's hardware-reduced ACPI has no PIT to calibrate the TSC
        // against; under TCG the kernel hangs at "Marking TSC unstable"
        // unless told the frequency. TCG's TSC is the host's.
        if let Some(khz) = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| tsc_khz(&t)) {
            append.push_str(&format!(" tsc_early_khz={khz}"));
        }
    }
    push(&["-append", &append]);
    push(&["-chardev", &format!("stdio,id=console,signal=off,logfile={}", esc(&p.console_log().to_string_lossy()))]);
    push(&["-serial", "chardev:console"]);

    let mut disk = |id: &str, file: &str, extra: &str| {
        push(&["-drive", &format!("file={},format=raw,if=none,id={id}{extra}", esc(file))]);
        push(&["-device", &format!("{},drive={id},serial={}", dev("virtio-blk"), dinv_contract::disks::serial_for(id))]);
    };
    disk("root", &p.rootfs.to_string_lossy(), ",snapshot=on");
    disk("docker", &p.docker_disk.to_string_lossy(), ",discard=unmap");
    if s.volume.is_some() {
        disk("volume", &p.volume_disk.to_string_lossy(), ",discard=unmap");
    }

    let docker = s.docker_port();
    let net = user_netdev(&forwards(PortForward { host: docker, guest: docker }, &s.tcp_ports, &s.udp_ports));
    push(&["-netdev", &net, "-device", &format!("{},netdev=net0", dev("virtio-net"))]);

    for (i, path) in s.mounts.iter().enumerate() {
        push(&["-fsdev", &format!("local,security_model=none,id=fs{i},path={}", esc(path))]);
        push(&["-device", &format!("{},fsdev=fs{i},mount_tag={}", dev("virtio-9p"), mount_tag(i))]);
    }

    push(&["-device", &format!("{},id=vser0", dev("virtio-serial"))]);
    push(&["-chardev", &format!("socket,id=qga0,path={},server=on,wait=off", esc(&p.qga_socket().to_string_lossy()))]);
    push(&["-device", "virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0"]);
    push(&["-device", &dev("virtio-balloon")]);
    push(&["-qmp", &format!("unix:{},server=on,wait=off", esc(&p.qmp_socket().to_string_lossy()))]);
    for (key, value) in fw_cfg_entries(s) {
        let value = match value {
            FwCfg::String(v) => format!("string={}", esc(&v)),
            FwCfg::File(p) => format!("file={}", esc(&p.to_string_lossy())),
        };
        push(&["-fw_cfg", &format!("name={}/{key},{value}", dinv_contract::fw_cfg::PREFIX)]);
    }
    a
}

/// The command line quoted for a POSIX shell (for print-qemu-args).
pub fn shell_quote(args: &[String]) -> String {
    let quote = |s: &String| {
        if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_=/.,:+@%".contains(c)) {
            s.clone()
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    };
    args.iter().map(quote).collect::<Vec<_>>().join(" ")
}

/// SLIRP's `hostfwd` rules (`tcp::2375-:2375`): dockerd's port, then the
/// TCP and the UDP forwards.
pub fn forwards(docker_port: PortForward, tcp: &[PortForward], udp: &[PortForward]) -> Vec<String> {
    let rule = |proto: &str, f: &PortForward| format!("{proto}::{}-:{}", f.host, f.guest);
    std::iter::once(rule("tcp", &docker_port)).chain(tcp.iter().map(|f| rule("tcp", f))).chain(udp.iter().map(|f| rule("udp", f))).collect()
}

/// `-netdev`'s user (SLIRP) network `net0` with these `hostfwd` rules.
pub fn user_netdev(forwards: &[String]) -> String {
    let mut net = "user,id=net0".to_string();
    for f in forwards {
        net.push_str(&format!(",hostfwd={f}"));
    }
    net
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{PortForward, Volume};
    use std::path::PathBuf;
    use std::time::Duration;

    fn paths() -> Paths {
        Paths {
            kernel: "/usr/lib/dinv/vmlinuz".into(),
            initrd: Some("/usr/lib/dinv/initramfs.img".into()),
            rootfs: "/usr/lib/dinv/rootfs.ext4".into(),
            qemu: "/usr/bin/qemu-system-x86_64".into(),
            append: "console=ttyS0 root=SERIAL=dinv-root rw quiet".into(),
            docker_disk: "/docker/docker.img".into(),
            volume_disk: "/volume/volume.img".into(),
            run_dir: PathBuf::from("/run/dinv"),
            snapshot_dir: PathBuf::from("/usr/share/dinv/snapshot"),
        }
    }

    fn settings(machine: Machine) -> Settings {
        Settings {
            cpus: 2,
            memory_mib: 1024,
            tcp_ports: vec![PortForward { host: 8080, guest: 80 }],
            udp_ports: vec![PortForward { host: 53, guest: 53 }],
            mounts: vec!["/data".into(), "/srv/a,b".into()],
            docker_size: 64 << 30,
            volume: Some(Volume { path: "/work".into(), size: 1 << 30, uid: 1000, gid: 100 }),
            sock_uid: 1000,
            sock_gid: 999,
            shutdown_timeout: 5,
            machine,
            stop_timeout: Duration::from_secs(20),
            ready_timeout: Duration::from_secs(300),
            kvm_watchdog: Duration::from_secs(20),
            ping_addr: "127.0.0.1:2375".parse().unwrap(),
            tls_certdir: None,
            tls_san: Vec::new(),
        }
    }

    fn expected(machine: &str, cpu: &[&str], d: &str) -> Vec<String> {
        let dv = |n: &str| format!("{n}-{d}");
        let mut v: Vec<String> = vec!["-M", machine].into_iter().map(String::from).collect();
        v.extend(cpu.iter().map(|s| s.to_string()));
        v.extend(
            [
                "-smp", "2", "-m", "1024M", "-nodefaults", "-no-user-config", "-no-reboot", "-nographic",
                "-kernel", "/usr/lib/dinv/vmlinuz", "-initrd", "/usr/lib/dinv/initramfs.img",
                "-append", "console=ttyS0 root=SERIAL=dinv-root rw quiet",
                "-chardev", "stdio,id=console,signal=off,logfile=/run/dinv/console.log", "-serial", "chardev:console",
                "-drive", "file=/usr/lib/dinv/rootfs.ext4,format=raw,if=none,id=root,snapshot=on",
                "-device", &format!("{},drive=root,serial=dinv-root", dv("virtio-blk")),
                "-drive", "file=/docker/docker.img,format=raw,if=none,id=docker,discard=unmap",
                "-device", &format!("{},drive=docker,serial=dinv-docker", dv("virtio-blk")),
                "-drive", "file=/volume/volume.img,format=raw,if=none,id=volume,discard=unmap",
                "-device", &format!("{},drive=volume,serial=dinv-volume", dv("virtio-blk")),
                "-netdev", "user,id=net0,hostfwd=tcp::2375-:2375,hostfwd=tcp::8080-:80,hostfwd=udp::53-:53",
                "-device", &format!("{},netdev=net0", dv("virtio-net")),
                "-fsdev", "local,security_model=none,id=fs0,path=/data",
                "-device", &format!("{},fsdev=fs0,mount_tag=dinv0", dv("virtio-9p")),
                "-fsdev", "local,security_model=none,id=fs1,path=/srv/a,,b",
                "-device", &format!("{},fsdev=fs1,mount_tag=dinv1", dv("virtio-9p")),
                "-device", &format!("{},id=vser0", dv("virtio-serial")),
                "-chardev", "socket,id=qga0,path=/run/dinv/qga.sock,server=on,wait=off",
                "-device", "virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0",
                "-device", &dv("virtio-balloon"),
                "-qmp", "unix:/run/dinv/qmp.sock,server=on,wait=off",
                "-fw_cfg", "name=opt/dinv/mounts,string=dinv0=/data;dinv1=/srv/a,,b",
                "-fw_cfg", "name=opt/dinv/volume_path,string=/work",
                "-fw_cfg", "name=opt/dinv/volume_uid,string=1000",
                "-fw_cfg", "name=opt/dinv/volume_gid,string=100",
                "-fw_cfg", "name=opt/dinv/sock_uid,string=1000",
                "-fw_cfg", "name=opt/dinv/sock_gid,string=999",
                "-fw_cfg", "name=opt/dinv/shutdown_timeout,string=5",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        v
    }

    #[test]
    fn microvm_with_kvm() {
        let got = qemu_args(&settings(Machine::Microvm), &paths(), Accel::Kvm);
        assert_eq!(got, expected("microvm,pic=off", &["-accel", "kvm", "-cpu", "host"], "device"));
    }

    #[test]
    fn tsc_frequency_from_cpuinfo() {
        assert_eq!(tsc_khz("processor\t: 0\ncpu MHz\t\t: 2999.998\ncache size\t: 1 KB\n"), Some(2_999_998));
        assert_eq!(tsc_khz("processor\t: 0\n"), None);
    }

    #[test]
    fn microvm_under_tcg_gets_the_tsc_frequency() {
        let got = qemu_args(&settings(Machine::Microvm), &paths(), Accel::Tcg);
        let append = &got[got.iter().position(|a| a == "-append").unwrap() + 1];
        let expect_tsc = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| tsc_khz(&t)).is_some();
        assert_eq!(append.contains("tsc_early_khz="), expect_tsc, "{append}");
        let kvm = qemu_args(&settings(Machine::Microvm), &paths(), Accel::Kvm);
        assert!(!kvm[kvm.iter().position(|a| a == "-append").unwrap() + 1].contains("tsc_early_khz"));
    }

    #[test]
    fn virt_takes_the_hosts_gic_and_mmio_devices() {
        for (accel, cpu) in [(Accel::Kvm, "host"), (Accel::Tcg, "max")] {
            let got = qemu_args(&settings(Machine::Virt), &paths(), accel);
            assert_eq!(got[..6], ["-M", "virt,gic-version=max", "-accel", accel.name(), "-cpu", cpu]);
            assert!(got.iter().all(|a| !a.contains("tsc_early_khz") && !a.contains("-pci")), "{got:?}");
            assert!(got.iter().any(|a| a == "virtio-blk-device,drive=root,serial=dinv-root"), "{got:?}");
        }
    }

    #[test]
    fn q35_with_tcg() {
        let got = qemu_args(&settings(Machine::Q35), &paths(), Accel::Tcg);
        assert_eq!(got, expected("q35", &["-accel", "tcg", "-cpu", "max"], "pci"));
    }

    #[test]
    fn minimal_settings_have_no_optional_devices() {
        let mut s = settings(Machine::Microvm);
        s.mounts.clear();
        s.volume = None;
        s.tcp_ports.clear();
        s.udp_ports.clear();
        let mut p = paths();
        p.initrd = None;
        let got = qemu_args(&s, &p, Accel::Kvm);
        for absent in ["-initrd", "-fsdev", "id=volume", "opt/dinv/mounts", "opt/dinv/volume_path"] {
            assert!(!got.iter().any(|a| a.contains(absent)), "{absent} in {got:?}");
        }
        assert!(got.contains(&"user,id=net0,hostfwd=tcp::2375-:2375".to_string()));
        assert_eq!(fw_cfg_entries(&s).iter().map(|e| e.0).collect::<Vec<_>>(), ["sock_uid", "sock_gid", "shutdown_timeout"]);
    }

    #[test]
    fn tls_forwards_2376_only_and_passes_the_server_files() {
        let mut s = settings(Machine::Microvm);
        s.tls_certdir = Some("/certs,x".into());
        let got = qemu_args(&s, &paths(), Accel::Kvm);
        let net = got.iter().find(|a| a.starts_with("user,id=net0")).unwrap();
        assert!(net.starts_with("user,id=net0,hostfwd=tcp::2376-:2376,"), "{net}");
        assert!(!net.contains("2375"), "{net}");
        let files: Vec<&String> = got.iter().filter(|a| a.contains(",file=")).collect();
        assert_eq!(
            files,
            [
                "name=opt/dinv/tls_ca,file=/certs,,x/server/ca.pem",
                "name=opt/dinv/tls_cert,file=/certs,,x/server/cert.pem",
                "name=opt/dinv/tls_key,file=/certs,,x/server/key.pem"
            ]
        );
    }

    #[test]
    fn quoting() {
        let q = shell_quote(&["-append".into(), "console=ttyS0 quiet".into(), "it's".into(), "a,b".into()]);
        assert_eq!(q, r#"-append 'console=ttyS0 quiet' 'it'\''s' a,b"#);
    }
}
