//! A generated Alpine-format repository's packages: a fake `linux-virt`
//! (a bzImage header, a config generated from our fragments, modules with
//! real `.modinfo` sections and a shipped `modules.dep`) and a fake runtime
//! (QEMU and docker CLI stand-ins), so the kernel, initramfs, ext4 and
//! image stages all run on test data.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use dinv_apk::testkit::PackageSpec;

pub const RELEASE: &str = "6.6.58-0-virt";
pub const KERNEL_VERSION: &str = "6.6.58-r0";

/// Options the fake kernel builds as modules (everything else the
/// fragments want is built in).
pub const AS_MODULES: &[&str] = &[
    "CONFIG_BRIDGE",
    "CONFIG_CRYPTO_CRC32C",
    "CONFIG_EXT4_FS",
    "CONFIG_OVERLAY_FS",
    "CONFIG_VETH",
    "CONFIG_VIRTIO",
    "CONFIG_VIRTIO_BLK",
    "CONFIG_VIRTIO_MMIO",
];

/// (path under /lib/modules/RELEASE, dependencies as paths, extra modinfo lines).
pub const MODULES: &[(&str, &[&str], &str)] = &[
    ("kernel/drivers/virtio/virtio_ring.ko", &[], ""),
    ("kernel/drivers/virtio/virtio.ko", &["kernel/drivers/virtio/virtio_ring.ko"], ""),
    (
        "kernel/drivers/virtio/virtio_mmio.ko",
        &["kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_ring.ko"],
        "alias=of:N*T*Cvirtio,mmio",
    ),
    (
        "kernel/drivers/block/virtio_blk.ko.gz",
        &["kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_ring.ko"],
        "alias=virtio:d00000002v*",
    ),
    ("kernel/lib/crc16.ko", &[], ""),
    ("kernel/fs/mbcache.ko", &[], ""),
    ("kernel/fs/jbd2/jbd2.ko.gz", &[], ""),
    ("kernel/crypto/crc32c_generic.ko", &[], "alias=crypto-crc32c\nalias=crc32c"),
    (
        "kernel/fs/ext4/ext4.ko.gz",
        &["kernel/fs/mbcache.ko", "kernel/fs/jbd2/jbd2.ko.gz", "kernel/lib/crc16.ko"],
        "alias=fs-ext4\nsoftdep=pre: crc32c",
    ),
    ("kernel/fs/overlayfs/overlay.ko", &[], "alias=fs-overlay"),
    ("kernel/drivers/net/veth.ko", &[], "alias=rtnl-link-veth"),
    ("kernel/net/llc/llc.ko", &[], ""),
    ("kernel/net/802/stp.ko", &["kernel/net/llc/llc.ko"], ""),
    (
        "kernel/net/bridge/bridge.ko",
        &["kernel/net/802/stp.ko", "kernel/net/llc/llc.ko"],
        "alias=rtnl-link-bridge",
    ),
];

pub fn module_name(rel: &str) -> String {
    let file = rel.rsplit('/').next().unwrap();
    file.split(".ko").next().unwrap().replace('-', "_")
}

/// A minimal ELF64 relocatable whose only content is a `.modinfo` section.
pub fn fake_module(modinfo: &str) -> Vec<u8> {
    let names = b"\0.modinfo\0.shstrtab\0";
    let mut section = modinfo.replace('\n', "\0").into_bytes();
    section.push(0);
    let mut f = vec![0u8; 64];
    f[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
    f[16] = 1; // ET_REL
    f[18] = 0x3e; // x86-64
    let section_at = f.len() as u64;
    f.extend_from_slice(&section);
    let names_at = f.len() as u64;
    f.extend_from_slice(names);
    f.resize(f.len().next_multiple_of(8), 0);
    let headers_at = f.len() as u64;
    for (name, kind, off, size) in [
        (0u32, 0u32, 0u64, 0u64),
        (1, 1, section_at, section.len() as u64),
        (10, 3, names_at, names.len() as u64),
    ] {
        let mut h = [0u8; 64];
        h[0..4].copy_from_slice(&name.to_le_bytes());
        h[4..8].copy_from_slice(&kind.to_le_bytes());
        h[24..32].copy_from_slice(&off.to_le_bytes());
        h[32..40].copy_from_slice(&size.to_le_bytes());
        f.extend_from_slice(&h);
    }
    f[0x28..0x30].copy_from_slice(&headers_at.to_le_bytes());
    f[0x34..0x36].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    f[0x3A..0x3C].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
    f[0x3C..0x3E].copy_from_slice(&3u16.to_le_bytes()); // e_shnum
    f[0x3E..0x40].copy_from_slice(&2u16.to_le_bytes()); // e_shstrndx
    f
}

/// Bytes with an x86 boot setup header whose `kernel_version` string names
/// `release`, followed by filler standing in for the compressed kernel.
pub fn fake_bzimage(release: &str) -> Vec<u8> {
    let mut img: Vec<u8> = (0..16 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    img[0x1FE..0x200].copy_from_slice(&[0x55, 0xAA]);
    img[0x202..0x206].copy_from_slice(b"HdrS");
    img[0x20E..0x210].copy_from_slice(&(0x800u16 - 0x200).to_le_bytes());
    let v = format!("{release} (buildozer@build-3-20-x86_64) #1-Alpine SMP PREEMPT_DYNAMIC\0");
    img[0x800..0x800 + v.len()].copy_from_slice(v.as_bytes());
    img
}

pub fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

pub fn fragments_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kernel-configs")
}

pub fn fragment_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(fragments_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "config"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no fragments in {}", fragments_dir().display());
    v
}

/// A `.config` meeting every fragment: `AS_MODULES` as `=m`, other
/// tristates built in, everything else as the fragment says.
pub fn kernel_config() -> String {
    kernel_config_for(&fragment_files())
}

/// [`kernel_config`] for the given fragment files (an option named twice
/// is written once).
pub fn kernel_config_for(fragments: &[PathBuf]) -> String {
    kernel_config_with(fragments, AS_MODULES)
}

/// A `.config` meeting the given fragments, with `as_modules` as `=m`.
pub fn kernel_config_with(fragments: &[PathBuf], as_modules: &[&str]) -> String {
    let mut out = String::from("#\n# Automatically generated file; DO NOT EDIT.\n#\nCONFIG_64BIT=y\n");
    let mut seen = std::collections::BTreeSet::new();
    for f in fragments {
        for line in fs::read_to_string(f).unwrap().lines().map(str::trim) {
            if let Some((name, value)) = line.split_once('=').filter(|_| line.starts_with("CONFIG_")) {
                if !seen.insert(name.to_string()) {
                    continue;
                }
                let value = if as_modules.contains(&name) {
                    "m"
                } else if value == "m" {
                    "y"
                } else {
                    value
                };
                out.push_str(&format!("{name}={value}\n"));
            } else if line.starts_with("# CONFIG_") && line.ends_with(" is not set") {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The fake `linux-virt` package (version `KERNEL_VERSION`), in Alpine's
/// installkernel 4.0 layout: `vmlinuz-virt`, `config-<release>`,
/// `kernel-suffix`, `modules.order`, and no depmod output (kmod's trigger
/// writes that on a real system; the builder writes it for us).
pub fn kernel_package() -> PackageSpec {
    kernel_package_with(&[])
}

/// [`kernel_package`] with more modules: each (option, module path under
/// `/lib/modules/RELEASE`) adds `option=m` to the config and the module
/// (no dependencies).
pub fn kernel_package_with(extra: &[(&str, &str)]) -> PackageSpec {
    let mut config = kernel_config();
    for (option, _) in extra {
        config.push_str(&format!("{option}=m\n"));
    }
    let mut kernel = PackageSpec::new("linux-virt", KERNEL_VERSION)
        .file("boot/vmlinuz-virt", fake_bzimage(RELEASE), 0o644)
        .file(&format!("boot/config-{RELEASE}"), config.into_bytes(), 0o644)
        .file(&format!("lib/modules/{RELEASE}/kernel-suffix"), b"-virt\n".to_vec(), 0o644);
    let mut order = String::new();
    let extra_modules = extra.iter().map(|(_, rel)| (*rel, &[][..], ""));
    for (rel, deps, info) in MODULES.iter().copied().chain(extra_modules) {
        let name = module_name(rel);
        let depends: Vec<String> = deps.iter().map(|d| module_name(d)).collect();
        let elf = fake_module(&format!(
            "license=GPL\nname={name}\ndepends={}\nvermagic={RELEASE} SMP preempt mod_unload\n{info}",
            depends.join(",")
        ));
        let bytes = if rel.ends_with(".gz") { gzip(&elf) } else { elf };
        kernel = kernel.file(&format!("lib/modules/{RELEASE}/{rel}"), bytes, 0o644);
        order.push_str(rel.trim_end_matches(".gz"));
        order.push('\n');
    }
    kernel.file(&format!("lib/modules/{RELEASE}/modules.order"), order.into_bytes(), 0o644)
}

/// Fake runtime packages: a `qemu-system-x86_64` and a docker CLI.
pub fn runtime_packages() -> Vec<PackageSpec> {
    vec![
        PackageSpec::new("qemu-system-x86_64", "8.2.2-r0").file("usr/bin/qemu-system-x86_64", b"#!/bin/sh\necho fake qemu\n".to_vec(), 0o755),
        PackageSpec::new("docker-cli", "25.0.3-r0").file("usr/bin/docker", b"fake docker cli".to_vec(), 0o755),
    ]
}

/// A bootable guest (base layout + fake kernel) and the fake runtime.
pub fn bootable_specs() -> Vec<PackageSpec> {
    let mut v = vec![PackageSpec::new("alpine-baselayout", "3.6.5-r0")
        .file("etc/motd", b"Welcome to DinV\n".to_vec(), 0o644)
        .file("etc/modules", b"af_packet\n".to_vec(), 0o644)
        .dir("home", 0o755)];
    v.push(kernel_package());
    v.extend(runtime_packages());
    v
}

/// Copies the kernel config fragments into `dir/kernel-configs` and
/// returns them as a recipe's `fragments` list (relative paths).
pub fn copy_fragments(dir: &Path) -> String {
    let frag = dir.join("kernel-configs");
    fs::create_dir_all(&frag).unwrap();
    let mut names = Vec::new();
    for f in fragment_files() {
        fs::copy(&f, frag.join(f.file_name().unwrap())).unwrap();
        names.push(format!("\"kernel-configs/{}\"", f.file_name().unwrap().to_string_lossy()));
    }
    names.join(", ")
}
