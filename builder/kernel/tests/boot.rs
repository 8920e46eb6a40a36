//! Boots the real Debian kernel with our initramfs under QEMU microvm and
//! checks that dinv-init reaches the root disk's init.

mod common;

use std::time::Duration;

use common::boot::*;
use dinv_fstree::Content;
use dinv_kernel::*;

const MARKER: &str = "DINV-BOOT-MARKER-7f3a";

/// Writes kernel, initramfs and root image for a boot into `dir`.
pub fn prepare(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let k = common::debian_kernel();
    let pkg = find_kernel(&k.tree).unwrap();
    let set = ModuleSet::load(&k.tree, &pkg.release).unwrap();
    let spec = InitramfsSpec {
        init_binary: Content::from_bytes(std::fs::read(dinv_init_binary()).unwrap()),
        modules: &set,
        load: ["virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "ext4"].iter().map(|s| s.to_string()).collect(),
        config: InitramfsConfig::default(),
        mtime: 0,
    };
    let initrd = dir.join("initrd.img");
    std::fs::write(&initrd, build_initramfs(&spec).unwrap().to_cpio().unwrap()).unwrap();
    let kernel = dir.join("vmlinuz");
    std::fs::write(&kernel, pkg.image.to_vec().unwrap()).unwrap();
    let rootfs = make_rootfs(dir, &marker_init(MARKER));
    (kernel, initrd, rootfs)
}

#[test]
fn marker_program_is_a_static_executable() {
    let elf = marker_init("x");
    assert!(is_static_elf(&elf));
    assert!(elf.ends_with(b"x\n"));
}

#[test]
fn debian_kernel_boots_to_the_root_disk_init() {
    let dir = tempfile::tempdir().unwrap();
    let (kernel, initrd, rootfs) = prepare(dir.path());
    let cmd = qemu_command(&kernel, &initrd, &rootfs, "console=ttyS0 root=/dev/vda rw panic=-1");
    let timeout = Duration::from_secs(if accel(&kernel) == "kvm" { 60 } else { 180 });
    let r = boot(cmd, MARKER, timeout);
    let tail: String = r.console.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    assert!(r.to_marker.is_some(), "no marker on the console within {timeout:?} ({}); last lines:\n{tail}", accel(&kernel));
    assert!(r.status.is_some(), "QEMU did not exit after the marker (poweroff failed?); last lines:\n{tail}");
    for want in ["dinv-init: loading virtio_mmio", "dinv-init: loading virtio_blk", "dinv-init: loading ext4", "dinv-init: mounting /dev/vda (ext4, rw) on /newroot"] {
        assert!(r.console.contains(want), "missing {want:?}; last lines:\n{tail}");
    }
    assert!(!r.console.contains("FATAL"), "{tail}");
    assert!(!r.console.contains("cannot load"), "{tail}");
    for l in r.console.lines().filter(|l| l.contains("dinv-init") || l.contains(MARKER)) {
        eprintln!("console: {l}");
    }
    eprintln!("accel {}: marker after {:?}, QEMU exited after {:?}", accel(&kernel), r.to_marker.unwrap(), r.total);
}

#[test]
fn missing_root_device_powers_off_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let (kernel, initrd, rootfs) = prepare(dir.path());
    let cmd = qemu_command(&kernel, &initrd, &rootfs, "console=ttyS0 root=/dev/vdz dinv.root_timeout=1 panic=-1");
    let timeout = Duration::from_secs(if accel(&kernel) == "kvm" { 60 } else { 180 });
    let r = boot(cmd, "dinv-init: FATAL", timeout);
    assert!(r.status.is_some(), "QEMU did not exit:\n{}", r.console);
    assert!(r.console.contains("dinv-init: waiting for /dev/vdz (up to 1 s)"), "{}", r.console);
    assert!(r.console.contains("dinv-init: FATAL: root device /dev/vdz did not appear within"), "{}", r.console);
    assert!(r.console.contains("block devices: vda"), "{}", r.console);
    assert!(!r.console.contains(MARKER));
}
