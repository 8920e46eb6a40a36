//! Measures boot time of the real Debian kernel with our initramfs under
//! QEMU microvm: QEMU start → marker printed by the root disk's init, and
//! the kernel's own timestamp at that point. Median of 5 boots.
//!
//! cargo run -p dinv-kernel --example boot_time

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::boot::*;
use dinv_fstree::Content;
use dinv_kernel::*;

const MARKER: &str = "DINV-BOOT-TIME-MARKER";

/// The kernel's timestamp (`[   1.234567]`) of the last message before the marker.
fn kernel_time_at_marker(console: &str) -> Option<f64> {
    let mut last = None;
    for l in console.lines() {
        if l.contains(MARKER) {
            return last;
        }
        if let Some(rest) = l.strip_prefix('[') {
            if let Some((t, _)) = rest.split_once(']') {
                last = t.trim().parse().ok().or(last);
            }
        }
    }
    None
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let k = common::debian_kernel();
    let pkg = find_kernel(&k.tree).unwrap();
    let set = ModuleSet::load(&k.tree, &pkg.release).unwrap();
    let init = std::fs::read(dinv_init_binary()).unwrap();
    let spec = InitramfsSpec {
        init_binary: Content::from_bytes(init.clone()),
        modules: &set,
        load: ["virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "ext4"].iter().map(|s| s.to_string()).collect(),
        config: InitramfsConfig::default(),
        mtime: 0,
    };
    let dir = tempfile::tempdir().unwrap();
    let initrd_bytes = build_initramfs(&spec).unwrap().to_cpio().unwrap();
    let initrd = dir.path().join("initrd.img");
    std::fs::write(&initrd, &initrd_bytes).unwrap();
    let kernel = dir.path().join("vmlinuz");
    std::fs::write(&kernel, pkg.image.to_vec().unwrap()).unwrap();
    let rootfs = make_rootfs(dir.path(), &marker_init(MARKER));
    println!("kernel {} ({}), dinv-init {} bytes, initramfs {} bytes, accel {}", pkg.release, k.version, init.len(), initrd_bytes.len(), accel(&kernel));
    let (mut wall, mut ktime) = (Vec::new(), Vec::new());
    for i in 0..5 {
        let r = boot(qemu_command(&kernel, &initrd, &rootfs, "console=ttyS0 root=/dev/vda rw panic=-1"), MARKER, Duration::from_secs(180));
        let m = r.to_marker.unwrap_or_else(|| panic!("boot {i}: no marker:\n{}", r.console));
        let kt = kernel_time_at_marker(&r.console).unwrap_or(f64::NAN);
        println!("boot {i}: QEMU start -> marker {:.3} s, kernel clock at marker {:.3} s, QEMU exit {:.3} s", m.as_secs_f64(), kt, r.total.as_secs_f64());
        wall.push(m.as_secs_f64());
        ktime.push(kt);
    }
    println!("median of 5: QEMU start -> marker {:.3} s; kernel clock at marker {:.3} s", median(wall), median(ktime));
}
