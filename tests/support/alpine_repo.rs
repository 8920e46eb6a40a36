//! A small Alpine-format mirror that can stand in for the real one: the
//! packages `recipes/default.toml` (and the examples) name, with tiny but
//! plausible files and dependencies, signed with a test key, laid out as
//! `<root>/v3.22/{main,community}/x86_64/`. `linux-virt` is a fake kernel
//! package (bzImage header, a config meeting every fragment in
//! `kernel-configs/` and `recipes/examples/kernel-configs/`, modules with
//! real `.modinfo` sections and a `modules.dep`).

use std::fs;
use std::path::{Path, PathBuf};

use dinv_apk::testkit::{write_repository, PackageSpec, TestKey};

use super::fake_kernel::{fake_bzimage, fake_module, kernel_config_for, module_name};

/// `uname -r` of the fake kernel.
pub const KERNEL_RELEASE: &str = "6.12.40-0-virt";
/// Package version of the fake `linux-virt`.
pub const KERNEL_VERSION: &str = "6.12.40-r0";
/// The branch the default recipe asks for.
pub const BRANCH: &str = "v3.22";
/// The bundle the fake `ca-certificates-bundle` ships.
pub const ALPINE_BUNDLE: &str = "-----BEGIN CERTIFICATE-----\nMIIfakeAlpineRootCA\n-----END CERTIFICATE-----\n";

/// (path under /lib/modules/RELEASE, dependencies, extra modinfo lines).
const MODULES: &[(&str, &[&str], &str)] = &[
    ("kernel/drivers/virtio/virtio_ring.ko", &[], ""),
    ("kernel/drivers/virtio/virtio.ko", &["kernel/drivers/virtio/virtio_ring.ko"], ""),
    ("kernel/drivers/virtio/virtio_mmio.ko", &["kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_ring.ko"], "alias=of:N*T*Cvirtio,mmio"),
    ("kernel/drivers/block/virtio_blk.ko", &["kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_ring.ko"], "alias=virtio:d00000002v*"),
    ("kernel/lib/crc16.ko", &[], ""),
    ("kernel/fs/mbcache.ko", &[], ""),
    ("kernel/fs/jbd2/jbd2.ko", &[], ""),
    ("kernel/crypto/crc32c_generic.ko", &[], "alias=crypto-crc32c\nalias=crc32c"),
    ("kernel/fs/ext4/ext4.ko", &["kernel/fs/mbcache.ko", "kernel/fs/jbd2/jbd2.ko", "kernel/lib/crc16.ko"], "alias=fs-ext4\nsoftdep=pre: crc32c"),
    ("kernel/fs/overlayfs/overlay.ko", &[], "alias=fs-overlay"),
    ("kernel/drivers/net/veth.ko", &[], "alias=rtnl-link-veth"),
    ("kernel/net/llc/llc.ko", &[], ""),
    ("kernel/net/802/stp.ko", &["kernel/net/llc/llc.ko"], ""),
    ("kernel/net/bridge/bridge.ko", &["kernel/net/802/stp.ko", "kernel/net/llc/llc.ko"], "alias=rtnl-link-bridge"),
];

/// The repository's top directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `*.config` directly in `dir`, sorted.
pub fn config_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "config")).collect();
    v.sort();
    v
}

fn linux_virt(config: String) -> PackageSpec {
    let mut k = PackageSpec::new("linux-virt", KERNEL_VERSION)
        .file("boot/vmlinuz-virt", fake_bzimage(KERNEL_RELEASE), 0o644)
        .file("boot/config-virt", config.into_bytes(), 0o644);
    let mut dep = String::new();
    for (rel, deps, extra) in MODULES {
        let depends: Vec<String> = deps.iter().map(|d| module_name(d)).collect();
        let info = format!("license=GPL\nname={}\ndepends={}\nvermagic={KERNEL_RELEASE} SMP preempt mod_unload\n{extra}", module_name(rel), depends.join(","));
        k = k.file(&format!("lib/modules/{KERNEL_RELEASE}/{rel}"), fake_module(&info), 0o644);
        dep.push_str(&format!("{rel}:{}\n", deps.iter().map(|d| format!(" {d}")).collect::<String>()));
    }
    k.file(&format!("lib/modules/{KERNEL_RELEASE}/modules.dep"), dep.into_bytes(), 0o644)
}

const LIBC: &str = "so:libc.musl-x86_64.so.1";

fn exe(name: &str) -> Vec<u8> {
    format!("#!/bin/sh\n# fake {name}\n").into_bytes()
}

/// `main`: the base system, kernel, tools.
fn main_specs(kernel_config: String) -> Vec<PackageSpec> {
    let rc = b"#!/sbin/openrc-run\n".to_vec();
    let mut openrc = PackageSpec::new("openrc", "0.62.6-r0").depend(LIBC).file("sbin/openrc", exe("openrc"), 0o755);
    for s in ["devfs", "dmesg", "mdev", "modules", "sysctl", "hostname", "bootmisc", "syslog", "networking", "mount-ro", "killprocs", "savecache"] {
        openrc = openrc.file(&format!("etc/init.d/{s}"), rc.clone(), 0o755);
    }
    vec![
        PackageSpec::new("musl", "1.2.5-r10").provide(&format!("{LIBC}=1")).file("lib/ld-musl-x86_64.so.1", b"\x7fELF musl".to_vec(), 0o755),
        PackageSpec::new("alpine-baselayout", "3.7.0-r0")
            .file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n".to_vec(), 0o644)
            .file("etc/group", b"root:x:0:root\nwheel:x:10:root\n".to_vec(), 0o644)
            .file("etc/hosts", b"127.0.0.1\tlocalhost localhost.localdomain\n".to_vec(), 0o644)
            .file("etc/modules", b"af_packet\nipv6\n".to_vec(), 0o644)
            .dir("root", 0o700)
            .dir("tmp", 0o1777),
        PackageSpec::new("busybox", "1.37.0-r18")
            .depend(LIBC)
            .file("bin/busybox", exe("busybox"), 0o755)
            .file("etc/busybox-paths.d/busybox", b"bin/sh\nbin/ls\nsbin/getty\nsbin/mdev\n".to_vec(), 0o644),
        openrc,
        PackageSpec::new("alpine-base", "3.22.1-r0")
            .depend("alpine-baselayout")
            .depend("busybox")
            .depend("openrc")
            .file("etc/alpine-release", b"3.22.1\n".to_vec(), 0o644),
        linux_virt(kernel_config),
        PackageSpec::new("util-linux", "2.41-r9").depend(LIBC).file("bin/lsblk", exe("lsblk"), 0o755),
        PackageSpec::new("e2fsprogs", "1.47.2-r2").depend(LIBC).file("sbin/mkfs.ext4", exe("mkfs.ext4"), 0o755),
        PackageSpec::new("ca-certificates-bundle", "20250619-r0").file("etc/ssl/certs/ca-certificates.crt", ALPINE_BUNDLE.as_bytes().to_vec(), 0o644),
        PackageSpec::new("ca-certificates", "20250619-r0")
            .depend("ca-certificates-bundle")
            .file("usr/bin/update-ca-certificates", exe("update-ca-certificates"), 0o755),
        PackageSpec::new("git", "2.49.1-r0").depend(LIBC).file("usr/bin/git", exe("git"), 0o755),
        PackageSpec::new("make", "4.4.1-r3").depend(LIBC).file("usr/bin/make", exe("make"), 0o755),
        PackageSpec::new("bash", "5.2.37-r0").depend(LIBC).file("bin/bash", exe("bash"), 0o755),
    ]
}

/// `community`: docker and QEMU.
fn community_specs() -> Vec<PackageSpec> {
    vec![
        PackageSpec::new("docker-cli", "28.3.3-r0").depend(LIBC).file("usr/bin/docker", exe("docker"), 0o755),
        PackageSpec::new("docker-engine", "28.3.3-r0")
            .depend(LIBC)
            .file("usr/bin/dockerd", exe("dockerd"), 0o755)
            .file("etc/init.d/docker", b"#!/sbin/openrc-run\n".to_vec(), 0o755)
            .file("etc/conf.d/docker", b"DOCKER_OPTS=\"\"\n".to_vec(), 0o644),
        PackageSpec::new("docker", "28.3.3-r0").depend("docker-engine").depend("docker-cli"),
        PackageSpec::new("qemu-guest-agent", "10.0.3-r0")
            .depend(LIBC)
            .file("usr/bin/qemu-ga", exe("qemu-ga"), 0o755)
            .file("etc/init.d/qemu-guest-agent", b"#!/sbin/openrc-run\n".to_vec(), 0o755),
        PackageSpec::new("qemu-system-x86_64", "10.0.3-r0")
            .depend(LIBC)
            .file("usr/bin/qemu-system-x86_64", exe("qemu-system-x86_64"), 0o755)
            .file("usr/share/qemu/bios-microvm.bin", vec![0u8; 512], 0o644),
        PackageSpec::new("qemu-img", "10.0.3-r0").depend(LIBC).file("usr/bin/qemu-img", exe("qemu-img"), 0o755),
    ]
}

/// A generated mirror and the key that signs it.
pub struct AlpineMirror {
    /// Use as `sources.alpine.mirror = "file://<root>"`.
    pub root: PathBuf,
    /// The public key file (named as the signatures name it).
    pub key_file: PathBuf,
}

impl AlpineMirror {
    /// Writes the mirror (and the key, in `test-keys/`) under `dir`.
    pub fn write(dir: &Path) -> AlpineMirror {
        let mut fragments = config_files(&repo_root().join("kernel-configs"));
        fragments.extend(config_files(&repo_root().join("recipes/examples/kernel-configs")));
        let key = TestKey::generate("test-signer@dinv.invalid-5e1f0003.rsa.pub", 1024, 13);
        let root = dir.join("mirror");
        let branch = root.join(BRANCH);
        write_repository(&branch, "main", "x86_64", &main_specs(kernel_config_for(&fragments)), &key).unwrap();
        write_repository(&branch, "community", "x86_64", &community_specs(), &key).unwrap();
        let keys = dir.join("test-keys");
        fs::create_dir_all(&keys).unwrap();
        let key_file = keys.join(&key.name);
        fs::write(&key_file, key.public_pem()).unwrap();
        AlpineMirror { root, key_file }
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
