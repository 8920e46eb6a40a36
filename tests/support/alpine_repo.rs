//! A generated mirror shaped like Alpine v3.22's, standing in for the real
//! one (no Alpine mirror is reachable from tests). It follows the facts in
//! `shared/reference/alpine-v3.22.md`, not our own idea of Alpine:
//!
//! - indexes and packages in GNU tar's posix style: every signature,
//!   control and data member opens with a PAX `x` header
//!   (`./PaxHeaders/.SIGN.RSA…`, `mtime=S.N`, `ctime=0`, `atime=0`), the
//!   signature member without end-of-archive blocks, the index content
//!   member with GNU magic (see `dinv_apk::testkit::TarStyle::Pax`);
//! - `alpine-base` with its ten dependencies; `openrc` needing
//!   `ifupdown-any` and `openrc-user`; busybox at `/bin/busybox` with
//!   `/etc/busybox-paths.d/busybox`; busybox's `acpid` and `syslog` scripts
//!   in `busybox-openrc`, `mdev` in `busybox-mdev-openrc`;
//! - `linux-virt` in the installkernel 4.0 layout (`/boot/vmlinuz-virt`,
//!   `/boot/config-<release>`, `/boot/System.map-<release>`,
//!   `/lib/modules/<release>/kernel-suffix`), `.ko.gz` modules with
//!   `modules.order`, `modules.builtin` and `modules.builtin.modinfo` but
//!   no depmod output, depending on `initramfs-generator`, which `mkinitfs`
//!   provides, which depends on `kmod` (kmod's `/sbin/modprobe`);
//! - `/etc/init.d/docker` only in `docker-openrc` and
//!   `/etc/init.d/qemu-guest-agent` only in `qemu-guest-agent-openrc`, both
//!   pulled in by `install_if` (`openrc` + the package); `docker-openrc`
//!   depends on `log_proxy`; the scripts read `DOCKER_OPTS` and `GA_PATH`.
//!
//! The kernel config meets every fragment in `kernel-configs/` and
//! `recipes/examples/kernel-configs/`, with Alpine's `=m` choices for the
//! options a DinV guest loads as modules.

use std::fs;
use std::path::{Path, PathBuf};

use dinv_apk::testkit::{write_repository, PackageSpec, TestKey};
use dinv_elf::testkit::ElfSpec;

use crate::fake_kernel::{fake_bzimage, fake_module, gzip, kernel_config_with, module_name};

/// `uname -r` of the fake kernel (the modules directory's name).
pub const KERNEL_RELEASE: &str = "6.12.58-0-virt";
/// Package version of the fake `linux-virt`.
pub const KERNEL_VERSION: &str = "6.12.58-r0";
/// The branch the default recipe asks for.
pub const BRANCH: &str = "v3.22";
/// The bundle the fake `ca-certificates-bundle` ships.
pub const ALPINE_BUNDLE: &str = "-----BEGIN CERTIFICATE-----\nMIIfakeAlpineRootCA\n-----END CERTIFICATE-----\n";

/// Options the fake linux-virt builds as modules, as Alpine's virt config
/// does; every other option a fragment asks for is built in.
pub const AS_MODULES: &[&str] = &[
    "CONFIG_ACPI_BUTTON",
    "CONFIG_BRIDGE",
    "CONFIG_BRIDGE_NETFILTER",
    "CONFIG_CRYPTO_CRC32C",
    "CONFIG_EXT4_FS",
    "CONFIG_FUSE_FS",
    "CONFIG_FW_CFG_SYSFS",
    "CONFIG_HW_RANDOM_VIRTIO",
    "CONFIG_INPUT_EVDEV",
    "CONFIG_IP_NF_FILTER",
    "CONFIG_IP_NF_IPTABLES",
    "CONFIG_IP_NF_NAT",
    "CONFIG_IP_NF_TARGET_MASQUERADE",
    "CONFIG_NETFILTER_XT_MATCH_ADDRTYPE",
    "CONFIG_NETFILTER_XT_MATCH_CONNTRACK",
    "CONFIG_NETFILTER_XT_NAT",
    "CONFIG_NETFILTER_XT_TARGET_MASQUERADE",
    "CONFIG_NFT_COMPAT",
    "CONFIG_NFT_CT",
    "CONFIG_NFT_MASQ",
    "CONFIG_NFT_NAT",
    "CONFIG_NF_CONNTRACK",
    "CONFIG_NF_NAT",
    "CONFIG_NF_TABLES",
    "CONFIG_NET_9P",
    "CONFIG_NET_9P_VIRTIO",
    "CONFIG_9P_FS",
    "CONFIG_OVERLAY_FS",
    "CONFIG_VETH",
    "CONFIG_VIRTIO_BALLOON",
    "CONFIG_VIRTIO_BLK",
    "CONFIG_VIRTIO_NET",
];

/// (path under /lib/modules/RELEASE, dependencies, extra modinfo lines).
/// Every `=m` option above has its module here; names as `modprobe` uses them.
pub const MODULES: &[(&str, &[&str], &str)] = &[
    ("kernel/drivers/acpi/button.ko.gz", &[], "alias=acpi*:PNP0C0C:*\nalias=acpi*:LNXPWRBN:*"),
    ("kernel/drivers/input/evdev.ko.gz", &[], "alias=input:b*v*p*e*-e*k*r*a*m*l*s*f*w*"),
    ("kernel/drivers/block/virtio_blk.ko.gz", &[], "alias=virtio:d00000002v*"),
    (
        "kernel/drivers/net/virtio_net.ko.gz",
        &["kernel/drivers/net/net_failover.ko.gz"],
        "alias=virtio:d00000001v*",
    ),
    ("kernel/drivers/net/net_failover.ko.gz", &["kernel/net/core/failover.ko.gz"], ""),
    ("kernel/net/core/failover.ko.gz", &[], ""),
    (
        "kernel/drivers/firmware/qemu_fw_cfg.ko.gz",
        &[],
        "alias=acpi*:QEMU0002:*\nalias=of:N*T*Cqemu,fw-cfg-mmio",
    ),
    ("kernel/lib/crc16.ko.gz", &[], ""),
    ("kernel/fs/mbcache.ko.gz", &[], ""),
    ("kernel/fs/jbd2/jbd2.ko.gz", &[], ""),
    (
        "kernel/crypto/crc32c_generic.ko.gz",
        &[],
        "alias=crypto-crc32c\nalias=crc32c\nalias=crypto-crc32c-generic",
    ),
    (
        "kernel/fs/ext4/ext4.ko.gz",
        &["kernel/fs/mbcache.ko.gz", "kernel/fs/jbd2/jbd2.ko.gz", "kernel/lib/crc16.ko.gz"],
        "alias=fs-ext4\nalias=ext3\nalias=fs-ext3\nsoftdep=pre: crc32c",
    ),
    ("kernel/fs/overlayfs/overlay.ko.gz", &[], "alias=fs-overlay"),
    ("kernel/fs/fuse/fuse.ko.gz", &[], "alias=fs-fuse\nalias=devname:fuse\nalias=char-major-10-229"),
    ("kernel/net/9p/9pnet.ko.gz", &[], "alias=net-pf-37"),
    ("kernel/net/9p/9pnet_virtio.ko.gz", &["kernel/net/9p/9pnet.ko.gz"], "alias=virtio:d00000009v*"),
    ("kernel/fs/9p/9p.ko.gz", &["kernel/net/9p/9pnet.ko.gz"], "alias=fs-9p"),
    ("kernel/drivers/net/veth.ko.gz", &[], "alias=rtnl-link-veth"),
    ("kernel/net/llc/llc.ko.gz", &[], ""),
    ("kernel/net/802/stp.ko.gz", &["kernel/net/llc/llc.ko.gz"], ""),
    (
        "kernel/net/bridge/bridge.ko.gz",
        &["kernel/net/802/stp.ko.gz", "kernel/net/llc/llc.ko.gz"],
        "alias=rtnl-link-bridge",
    ),
    (
        "kernel/net/bridge/br_netfilter.ko.gz",
        &["kernel/net/bridge/bridge.ko.gz"],
        "alias=net-pf-7-proto-?",
    ),
    ("kernel/drivers/virtio/virtio_balloon.ko.gz", &[], "alias=virtio:d00000005v*"),
    // The file name has a dash; modprobe and depmod call it virtio_rng.
    ("kernel/drivers/char/hw_random/virtio-rng.ko.gz", &[], "alias=virtio:d00000004v*"),
    ("kernel/lib/libcrc32c.ko.gz", &[], "softdep=pre: crc32c"),
    ("kernel/net/netfilter/x_tables.ko.gz", &[], ""),
    ("kernel/net/netfilter/nfnetlink.ko.gz", &[], "alias=net-pf-16-proto-12"),
    ("kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko.gz", &[], ""),
    ("kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko.gz", &[], ""),
    (
        "kernel/net/netfilter/nf_conntrack.ko.gz",
        &[
            "kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko.gz",
            "kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko.gz",
            "kernel/lib/libcrc32c.ko.gz",
        ],
        "",
    ),
    (
        "kernel/net/netfilter/nf_nat.ko.gz",
        &["kernel/net/netfilter/nf_conntrack.ko.gz", "kernel/lib/libcrc32c.ko.gz"],
        "",
    ),
    (
        "kernel/net/netfilter/nf_tables.ko.gz",
        &["kernel/net/netfilter/nfnetlink.ko.gz", "kernel/lib/libcrc32c.ko.gz"],
        "alias=nfnetlink-subsys-10\nalias=nft-chain-0-filter",
    ),
    (
        "kernel/net/netfilter/nft_compat.ko.gz",
        &[
            "kernel/net/netfilter/nf_tables.ko.gz",
            "kernel/net/netfilter/x_tables.ko.gz",
            "kernel/net/netfilter/nfnetlink.ko.gz",
        ],
        "alias=nfnetlink-subsys-11\nalias=nft-expr-match\nalias=nft-expr-target",
    ),
    (
        "kernel/net/netfilter/nft_ct.ko.gz",
        &["kernel/net/netfilter/nf_tables.ko.gz", "kernel/net/netfilter/nf_conntrack.ko.gz"],
        "alias=nft-expr-ct",
    ),
    (
        "kernel/net/netfilter/nft_masq.ko.gz",
        &["kernel/net/netfilter/nf_tables.ko.gz", "kernel/net/netfilter/nf_nat.ko.gz"],
        "alias=nft-expr-masq",
    ),
    (
        "kernel/net/netfilter/nft_nat.ko.gz",
        &["kernel/net/netfilter/nf_tables.ko.gz", "kernel/net/netfilter/nf_nat.ko.gz"],
        "alias=nft-expr-nat\nalias=nft-chain-2-nat",
    ),
    (
        "kernel/net/ipv4/netfilter/ip_tables.ko.gz",
        &["kernel/net/netfilter/x_tables.ko.gz"],
        "alias=ipt_icmp",
    ),
    (
        "kernel/net/ipv4/netfilter/iptable_filter.ko.gz",
        &["kernel/net/ipv4/netfilter/ip_tables.ko.gz", "kernel/net/netfilter/x_tables.ko.gz"],
        "",
    ),
    (
        "kernel/net/ipv4/netfilter/iptable_nat.ko.gz",
        &["kernel/net/ipv4/netfilter/ip_tables.ko.gz", "kernel/net/netfilter/nf_nat.ko.gz"],
        "",
    ),
    (
        "kernel/net/netfilter/xt_MASQUERADE.ko.gz",
        &["kernel/net/netfilter/x_tables.ko.gz", "kernel/net/netfilter/nf_nat.ko.gz"],
        "alias=ipt_MASQUERADE\nalias=ip6t_MASQUERADE",
    ),
    (
        "kernel/net/netfilter/xt_addrtype.ko.gz",
        &["kernel/net/netfilter/x_tables.ko.gz"],
        "alias=ipt_addrtype\nalias=ip6t_addrtype",
    ),
    (
        "kernel/net/netfilter/xt_conntrack.ko.gz",
        &["kernel/net/netfilter/x_tables.ko.gz", "kernel/net/netfilter/nf_conntrack.ko.gz"],
        "alias=ipt_conntrack\nalias=ip6t_conntrack",
    ),
    (
        "kernel/net/netfilter/xt_nat.ko.gz",
        &["kernel/net/netfilter/x_tables.ko.gz", "kernel/net/netfilter/nf_nat.ko.gz"],
        "alias=ipt_SNAT\nalias=ipt_DNAT",
    ),
    // Not asked for by any fragment: only loaded on demand, through kmod.
    ("kernel/net/netfilter/nf_conntrack_ftp.ko.gz", &[], "alias=nfct-helper-ftp"),
    // Shipped by linux-virt, never needed by a DinV guest: trimmed by default.
    ("kernel/sound/core/snd.ko.gz", &[], "alias=char-major-116-*"),
    ("kernel/sound/core/snd-timer.ko.gz", &["kernel/sound/core/snd.ko.gz"], ""),
    ("kernel/drivers/net/ethernet/intel/e1000/e1000.ko.gz", &[], "alias=pci:v00008086d00001000sv*sd*bc*sc*i*"),
];

/// Built into the fake kernel (`modules.builtin`, `modules.builtin.modinfo`).
pub const BUILTIN: &[(&str, &str)] = &[
    ("kernel/drivers/virtio/virtio.ko", ""),
    ("kernel/drivers/virtio/virtio_ring.ko", ""),
    ("kernel/drivers/virtio/virtio_mmio.ko", "alias=of:N*T*Cvirtio,mmio\nalias=acpi*:LNRO0005:*"),
    ("kernel/drivers/char/virtio_console.ko", "alias=virtio:d00000003v*"),
    ("kernel/net/unix/unix.ko", "alias=net-pf-1"),
];

/// The repository's top directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `*.config` directly in `dir`, sorted.
pub fn config_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "config"))
        .collect();
    v.sort();
    v
}

fn builtin_modinfo() -> Vec<u8> {
    let mut out = Vec::new();
    for (rel, info) in BUILTIN {
        let name = module_name(rel);
        let file = rel.trim_start_matches("kernel/").trim_end_matches(".ko");
        for line in std::iter::once(format!("file={file}")).chain(info.lines().map(str::to_string)) {
            out.extend_from_slice(format!("{name}.{line}").as_bytes());
            out.push(0);
        }
    }
    out
}

/// `linux-virt` as Alpine v3.22 ships it (see the module doc).
fn linux_virt(config: String) -> PackageSpec {
    let r = KERNEL_RELEASE;
    let mut k = PackageSpec::new("linux-virt", KERNEL_VERSION)
        .depend("initramfs-generator")
        .file("boot/vmlinuz-virt", fake_bzimage(r), 0o644)
        .file(&format!("boot/config-{r}"), config.into_bytes(), 0o644)
        .file(
            &format!("boot/System.map-{r}"),
            b"ffffffff81000000 T _text\nffffffff81000000 T startup_64\n".to_vec(),
            0o644,
        )
        .file(&format!("lib/modules/{r}/kernel-suffix"), b"-virt\n".to_vec(), 0o644)
        .file("usr/share/kernel/virt/kernel.release", format!("{r}\n").into_bytes(), 0o644);
    let mut order = String::new();
    for (rel, deps, extra) in MODULES {
        let depends: Vec<String> = deps.iter().map(|d| module_name(d)).collect();
        let info = format!(
            "license=GPL\nname={}\ndepends={}\nintree=Y\nvermagic={r} SMP preempt mod_unload\n{extra}",
            module_name(rel),
            depends.join(",")
        );
        k = k.file(&format!("lib/modules/{r}/{rel}"), gzip(&fake_module(&info)), 0o644);
        order.push_str(rel.trim_end_matches(".gz"));
        order.push('\n');
    }
    let builtin: String = BUILTIN.iter().map(|(rel, _)| format!("{rel}\n")).collect();
    k.file(&format!("lib/modules/{r}/modules.order"), order.into_bytes(), 0o644)
        .file(&format!("lib/modules/{r}/modules.builtin"), builtin.into_bytes(), 0o644)
        .file(&format!("lib/modules/{r}/modules.builtin.modinfo"), builtin_modinfo(), 0o644)
}

const LIBC: &str = "so:libc.musl-x86_64.so.1";

/// A musl-linked x86-64 executable that needs `needed`.
fn musl_elf(needed: &[&str]) -> Vec<u8> {
    ElfSpec { interpreter: Some("/lib/ld-musl-x86_64.so.1".into()), ..ElfSpec::executable(needed) }.bytes()
}

fn exe(name: &str) -> Vec<u8> {
    format!("#!/bin/sh\n# fake {name}\n").into_bytes()
}

fn openrc_script(body: &str) -> Vec<u8> {
    format!("#!/sbin/openrc-run\n{body}").into_bytes()
}

/// `main`: the base system, kernel, tools.
fn main_specs(kernel_config: String) -> Vec<PackageSpec> {
    let mut openrc = PackageSpec::new("openrc", "0.62.6-r0")
        .depend(LIBC)
        .depend("ifupdown-any")
        .depend("openrc-user")
        .file("sbin/openrc", exe("openrc"), 0o755)
        .file("sbin/openrc-run", exe("openrc-run"), 0o755);
    for s in [
        "devfs",
        "dmesg",
        "modules",
        "sysctl",
        "hostname",
        "bootmisc",
        "networking",
        "localmount",
        "mount-ro",
        "killprocs",
        "savecache",
    ] {
        openrc = openrc.file(&format!("etc/init.d/{s}"), openrc_script(""), 0o755);
    }
    let mut busybox_openrc = PackageSpec::new("busybox-openrc", "1.37.0-r19").depend("openrc");
    for s in ["acpid", "crond", "klogd", "syslog", "ntpd", "loadkmap", "watchdog"] {
        busybox_openrc = busybox_openrc.file(&format!("etc/init.d/{s}"), openrc_script("command=/sbin/{s}\n"), 0o755);
    }
    let applets = "bin/sh\nbin/ash\nbin/ls\nbin/mount\nsbin/getty\nsbin/mdev\nsbin/acpid\nsbin/syslogd\nsbin/poweroff\nsbin/modprobe\nsbin/udhcpc\n";
    vec![
        PackageSpec::new("musl", "1.2.5-r10")
            .provide(&format!("{LIBC}=1"))
            .file("lib/ld-musl-x86_64.so.1", ElfSpec::library("libc.musl-x86_64.so.1", &[]).bytes(), 0o755)
            .symlink("lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1"),
        PackageSpec::new("musl-utils", "1.2.5-r10").depend(LIBC).file("usr/bin/ldd", exe("ldd"), 0o755),
        PackageSpec::new("alpine-baselayout-data", "3.7.0-r0")
            .file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n".to_vec(), 0o644)
            .file("etc/group", b"root:x:0:root\nwheel:x:10:root\ninput:x:23:\n".to_vec(), 0o644)
            .file("etc/hosts", b"127.0.0.1\tlocalhost localhost.localdomain\n".to_vec(), 0o644)
            .file("etc/modules", b"af_packet\nipv6\n".to_vec(), 0o644),
        PackageSpec::new("alpine-baselayout", "3.7.0-r0")
            .depend("alpine-baselayout-data")
            .dir("root", 0o700)
            .dir("tmp", 0o1777),
        PackageSpec::new("alpine-conf", "3.20.0-r1")
            .depend("openrc")
            .file("sbin/setup-alpine", exe("setup-alpine"), 0o755),
        PackageSpec::new("alpine-release", "3.22.2-r0").file("etc/alpine-release", b"3.22.2\n".to_vec(), 0o644),
        PackageSpec::new("apk-tools", "2.14.9-r3").depend(LIBC).file("sbin/apk", exe("apk"), 0o755),
        PackageSpec::new("busybox", "1.37.0-r19")
            .depend(LIBC)
            .file("bin/busybox", exe("busybox"), 0o755)
            .file("etc/busybox-paths.d/busybox", applets.as_bytes().to_vec(), 0o644),
        busybox_openrc,
        PackageSpec::new("busybox-mdev-openrc", "1.37.0-r19")
            .depend("openrc")
            .file("etc/init.d/mdev", openrc_script("command=/sbin/mdev\n"), 0o755),
        PackageSpec::new("busybox-suid", "1.37.0-r19")
            .depend("busybox")
            .file("bin/bbsuid", exe("bbsuid"), 0o4111),
        PackageSpec::new("busybox-ifupdown", "1.37.0-r19").provide("ifupdown-any").depend("busybox"),
        {
            let mut ng = PackageSpec::new("ifupdown-ng", "0.12.1-r7")
                .provide("ifupdown-any")
                .depend(LIBC)
                .file("sbin/ifupdown", exe("ifupdown"), 0o755);
            ng.provider_priority = Some(200);
            ng
        },
        PackageSpec::new("openrc-user", "0.62.6-r0")
            .depend(LIBC)
            .file("etc/init.d/user", openrc_script(""), 0o755),
        openrc,
        PackageSpec::new("alpine-base", "3.22.2-r0")
            .depend("alpine-baselayout")
            .depend("alpine-conf")
            .depend("alpine-release")
            .depend("apk-tools")
            .depend("busybox")
            .depend("busybox-mdev-openrc")
            .depend("busybox-openrc")
            .depend("busybox-suid")
            .depend("musl-utils")
            .depend("openrc"),
        linux_virt(kernel_config),
        {
            let mut m = PackageSpec::new("mkinitfs", "3.12.0-r0")
                .provide("initramfs-generator")
                .depend("kmod")
                .depend("busybox")
                .file("sbin/mkinitfs", exe("mkinitfs"), 0o755);
            m.provider_priority = Some(900);
            m
        },
        PackageSpec::new("kmod", "34.2-r0")
            .depend(LIBC)
            .provide("cmd:depmod=34.2-r0")
            .provide("cmd:kmod=34.2-r0")
            .provide("cmd:modprobe=34.2-r0")
            .file("bin/kmod", exe("kmod"), 0o755)
            .symlink("sbin/depmod", "../bin/kmod")
            .symlink("sbin/insmod", "../bin/kmod")
            .symlink("sbin/lsmod", "../bin/kmod")
            .symlink("sbin/modinfo", "../bin/kmod")
            .symlink("sbin/modprobe", "../bin/kmod")
            .symlink("sbin/rmmod", "../bin/kmod"),
        PackageSpec::new("util-linux", "2.41-r9").depend(LIBC).file("bin/lsblk", exe("lsblk"), 0o755),
        PackageSpec::new("e2fsprogs", "1.47.2-r2")
            .depend(LIBC)
            .file("sbin/mkfs.ext4", exe("mkfs.ext4"), 0o755),
        PackageSpec::new("ca-certificates-bundle", "20250619-r0").file("etc/ssl/certs/ca-certificates.crt", ALPINE_BUNDLE.as_bytes().to_vec(), 0o644),
        PackageSpec::new("ca-certificates", "20250619-r0").depend("ca-certificates-bundle").file(
            "usr/bin/update-ca-certificates",
            exe("update-ca-certificates"),
            0o755,
        ),
        PackageSpec::new("iptables", "1.8.11-r1")
            .depend(LIBC)
            .file("sbin/iptables", exe("iptables"), 0o755),
        PackageSpec::new("ip6tables", "1.8.11-r1")
            .depend("iptables")
            .file("sbin/ip6tables", exe("ip6tables"), 0o755),
        PackageSpec::new("git", "2.49.1-r0").depend(LIBC).file("usr/bin/git", exe("git"), 0o755),
        PackageSpec::new("make", "4.4.1-r3").depend(LIBC).file("usr/bin/make", exe("make"), 0o755),
        PackageSpec::new("bash", "5.2.37-r0").depend(LIBC).file("bin/bash", exe("bash"), 0o755),
    ]
}

/// `community`: docker and QEMU.
fn community_specs() -> Vec<PackageSpec> {
    let docker = "28.3.3-r0";
    let qemu = "10.0.3-r0";
    vec![
        PackageSpec::new("docker-cli", docker)
            .depend(LIBC)
            .depend("ca-certificates")
            .file("usr/bin/docker", exe("docker"), 0o755),
        PackageSpec::new("containerd", "2.1.4-r0")
            .depend(LIBC)
            .file("usr/bin/containerd", exe("containerd"), 0o755),
        PackageSpec::new("tini-static", "0.19.0-r3").file("sbin/tini-static", exe("tini"), 0o755),
        PackageSpec::new("docker-engine", docker)
            .depend(LIBC)
            .depend("ca-certificates")
            .depend("containerd")
            .depend("iptables")
            .depend("ip6tables")
            .depend("tini-static")
            .file("usr/bin/dockerd", exe("dockerd"), 0o755)
            .symlink("usr/bin/docker-init", "/sbin/tini-static"),
        PackageSpec::new("docker", docker).depend("docker-engine").depend("docker-cli"),
        PackageSpec::new("log_proxy", "0.7.3-r0")
            .depend(LIBC)
            .file("usr/bin/log_proxy", exe("log_proxy"), 0o755),
        PackageSpec::new("docker-openrc", docker)
            .depend("log_proxy")
            .install_if("openrc")
            .install_if(&format!("docker-engine={docker}"))
            .file(
                "etc/init.d/docker",
                openrc_script("command=\"${DOCKERD_BINARY:-/usr/bin/dockerd}\"\ncommand_args=\"${DOCKER_OPTS}\"\n"),
                0o755,
            )
            .file("etc/conf.d/docker", b"# /etc/conf.d/docker\nDOCKER_OPTS=\"\"\n".to_vec(), 0o644),
        PackageSpec::new("qemu-guest-agent", qemu)
            .depend(LIBC)
            .file("usr/bin/qemu-ga", exe("qemu-ga"), 0o755),
        PackageSpec::new("qemu-guest-agent-openrc", qemu)
            .install_if("openrc")
            .install_if(&format!("qemu-guest-agent={qemu}"))
            .file(
                "etc/init.d/qemu-guest-agent",
                openrc_script("GA_PATH=\"${GA_PATH:-/dev/virtio-ports/org.qemu.guest_agent.0}\"\ncommand=/usr/bin/qemu-ga\n"),
                0o755,
            ),
        PackageSpec::new("glib", "2.84.4-r0")
            .depend(LIBC)
            .provide("so:libglib-2.0.so.0=0.8400.4")
            .file("usr/lib/libglib-2.0.so.0.8400.4", ElfSpec::library("libglib-2.0.so.0", &["libc.musl-x86_64.so.1"]).bytes(), 0o755)
            .symlink("usr/lib/libglib-2.0.so.0", "libglib-2.0.so.0.8400.4"),
        // ELF files, so the runtime layer keeps what they link to; TCG
        // is a module QEMU loads at run time (aports' qemu APKBUILD puts
        // it in this package).
        PackageSpec::new("qemu-system-x86_64", qemu)
            .depend(LIBC)
            .depend("so:libglib-2.0.so.0")
            .file("usr/bin/qemu-system-x86_64", musl_elf(&["libglib-2.0.so.0", "libc.musl-x86_64.so.1"]), 0o755)
            .file("usr/lib/qemu/accel-tcg-x86_64.so", ElfSpec::library("accel-tcg-x86_64.so", &["libglib-2.0.so.0", "libc.musl-x86_64.so.1"]).bytes(), 0o755)
            .file("usr/share/qemu/bios-microvm.bin", vec![0u8; 512], 0o644),
        PackageSpec::new("qemu-img", qemu).depend(LIBC).file("usr/bin/qemu-img", exe("qemu-img"), 0o755),
    ]
}

/// A generated mirror and the key that signs it.
pub struct AlpineMirror {
    /// Use as `sources.alpine.mirror = "file://<root>"`.
    pub root: PathBuf,
    /// The public key file (named as the signatures name it).
    pub key_file: PathBuf,
    /// The key that signs it, for tests that add a repository.
    pub key: TestKey,
}

impl AlpineMirror {
    /// Writes the mirror (and the key, in `test-keys/`) under `dir`.
    pub fn write(dir: &Path) -> AlpineMirror {
        let mut fragments = config_files(&repo_root().join("kernel-configs"));
        fragments.extend(config_files(&repo_root().join("recipes/examples/kernel-configs")));
        let key = TestKey::generate("test-signer@dinv.invalid-5e1f0003.rsa.pub", 1024, 13);
        let root = dir.join("mirror");
        let branch = root.join(BRANCH);
        write_repository(&branch, "main", "x86_64", &main_specs(kernel_config_with(&fragments, AS_MODULES)), &key).unwrap();
        write_repository(&branch, "community", "x86_64", &community_specs(), &key).unwrap();
        let keys = dir.join("test-keys");
        fs::create_dir_all(&keys).unwrap();
        let key_file = keys.join(&key.name);
        fs::write(&key_file, key.public_pem()).unwrap();
        AlpineMirror { root, key_file, key }
    }

    /// A child recipe text that extends `parent`, points the Alpine source
    /// at this mirror, trusts only its key (replacing the inherited `keys`), then adds
    /// `extra` (TOML that must not repeat `[sources.alpine]` or `[build]`).
    pub fn child_recipe(&self, parent: &Path, extra: &str) -> String {
        format!(
            "extends = {parent:?}\n\n[sources.alpine]\nmirror = \"file://{root}\"\n# The inherited Alpine keys stay trusted; the test key signs this mirror.\nkeys = [{key:?}]\n\n[build]\nsource_date_epoch = 1750000000\n\n{extra}",
            parent = parent.display().to_string(),
            root = self.root.display(),
            key = self.key_file.display().to_string(),
        )
    }
}
