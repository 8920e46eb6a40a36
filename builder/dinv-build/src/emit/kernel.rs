//! The kernel emitter: `vmlinuz` and `initramfs` from the kernel plan the
//! configure step made.

use std::fs;
use std::io::Read;
use std::path::PathBuf;

use dinv_contract::disks::ROOT_SERIAL;
use dinv_fstree::Content;
use dinv_kernel::{write_pvh_vmlinux, InitramfsConfig};
use super::context::Emit;
use super::outputs::{KernelOutputs, KernelSummary};
use crate::error::Stage;
use crate::configure::KernelPlan;
use crate::recipe::{Arch, InitramfsCompression, KernelBoot};
use crate::{assets, Error, Result};

/// File names of the kernel outputs in the output directory.
pub const VMLINUZ: &str = "vmlinuz";
pub const VMLINUX: &str = "vmlinux";
pub const INITRAMFS: &str = "initramfs";

/// Writes `vmlinuz` and `initramfs` when the guest has a kernel.
pub fn emit(e: &mut Emit) -> Result<()> {
    let Some(k) = e.kernel_plan else { return Ok(()) };
    let vmlinuz = e.out.join(VMLINUZ);
    let arm64 = e.recipe.recipe.arch() == Arch::Aarch64;
    let vmlinux = if arm64 {
        if e.recipe.recipe.kernel.boot == KernelBoot::Pvh {
            return Err(Error::from(e.recipe.error("kernel.boot", "\"pvh\" is how x86_64 guests boot; an arm64 guest boots its kernel Image")));
        }
        fs::write(&vmlinuz, arm64_image(k)?).map_err(Error::io(&vmlinuz))?;
        None
    } else {
        let mut f = fs::File::create(&vmlinuz).map_err(Error::io(&vmlinuz))?;
        std::io::copy(&mut k.plan.vmlinuz.reader(), &mut f).map_err(Error::io(&vmlinuz))?;
        pvh(e, k)?
    };
    let config = InitramfsConfig { root: format!("SERIAL={ROOT_SERIAL}"), ..InitramfsConfig::default() };
    let gz = k.plan.initramfs(Content::from_bytes(assets::for_arch(e.recipe.recipe.arch()).init), config, e.epoch).map_err(|err| Error::stage(Stage::Kernel, err))?;
    let initramfs = e.out.join(INITRAMFS);
    // dinv-kernel always gzips; `none` stores the plain cpio.
    let mut bytes = match e.recipe.recipe.kernel.initramfs_compression {
        InitramfsCompression::None => {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut plain).map_err(Error::io(&initramfs))?;
            plain
        }
        InitramfsCompression::Gzip => gz,
    };
    pad_below_firmware_tables(&mut bytes);
    fs::write(&initramfs, bytes).map_err(Error::io(&initramfs))?;
    let summary = KernelSummary {
        package: k.package.clone(),
        release: k.plan.release.clone(),
        initramfs_modules: k.plan.initramfs_modules.clone(),
        guest_modules: k.plan.guest_modules.clone(),
        boot: if arm64 {
            "image"
        } else if vmlinux.is_some() {
            "pvh"
        } else {
            "bzimage"
        }
        .to_string(),
        cmdline: super::image::kernel_cmdline(&e.recipe.recipe),
    };
    e.kernel = Some(KernelOutputs { vmlinuz, vmlinux, initramfs, summary });
    Ok(())
}

/// Pads the initramfs for QEMU's microvm, whose loader puts the initrd as
/// high in RAM as it fits: at `(top - 1 - size)` rounded down to a page,
/// so that it ends in the last page. Debian's SeaBIOS build for microvm
/// keeps the ACPI tables in the top bytes of that page (XSDT, MADT, FACP,
/// and the DSDT below them), and microvm reserves no room for them: an
/// initramfs ending there overwrote them, and the kernel stopped in its
/// ACPI set-up without a word. Whether it did hung on the size modulo 4096
/// (ending 685 bytes below the top hung; 3252 and 3757 booted). Zeros
/// after the archive (the kernel skips them between and after archives)
/// make its size one more than a multiple of 4096, so that it ends 4095
/// bytes below the top, as far below the tables as a size can put it.
pub fn pad_below_firmware_tables(bytes: &mut Vec<u8>) {
    let len = bytes.len().max(1);
    bytes.resize((len - 1).div_ceil(4096) * 4096 + 1, 0);
}

/// The arm64 kernel as QEMU's `virt` loads it: the `Image` (Debian ships
/// it plain; gzip-compressed ones are unpacked), checked by its header's
/// magic (`ARM\x64` at offset 0x38, Documentation/arch/arm64/booting.rst).
fn arm64_image(k: &KernelPlan) -> Result<Vec<u8>> {
    let bad = |why: String| Error::stage(Stage::Kernel, format!("{}: {why}", k.package));
    let mut image = k.plan.vmlinuz.to_vec().map_err(|err| bad(format!("cannot read the kernel image: {err}")))?;
    if image.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&image[..]).read_to_end(&mut plain).map_err(|err| bad(format!("cannot gunzip the kernel image: {err}")))?;
        image = plain;
    }
    if image.get(0x38..0x3c) != Some(b"ARM\x64") {
        return Err(bad("the kernel image is not an arm64 Image (no ARM\\x64 magic at 0x38)".into()));
    }
    Ok(image)
}

/// The uncompressed, PVH-bootable `vmlinux` (see [`KernelBoot`]), when the
/// recipe and the kernel allow it. Under TCG this saves the seconds the
/// bzImage spends decompressing itself.
fn pvh(e: &Emit, k: &KernelPlan) -> Result<Option<PathBuf>> {
    let mode = e.recipe.recipe.kernel.boot;
    if mode == KernelBoot::Bzimage {
        return Ok(None);
    }
    let bz = k.plan.vmlinuz.to_vec().map_err(|err| Error::stage(Stage::Kernel, format!("{}: cannot read the kernel image: {err}", k.package)))?;
    let path = e.out.join(VMLINUX);
    // Read back as it is checked: open for both.
    let mut f = fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).map_err(Error::io(&path))?;
    match write_pvh_vmlinux(&bz, &mut f).map_err(Error::io(&path))? {
        Ok(entry) => {
            tracing::info!(entry = format!("{entry:#x}"), "PVH-bootable vmlinux written");
            Ok(Some(path))
        }
        Err(why) => {
            drop(f);
            fs::remove_file(&path).map_err(Error::io(&path))?;
            if mode == KernelBoot::Pvh {
                let msg = format!("kernel.boot = \"pvh\", but the kernel of {} cannot boot by PVH: {why}", k.package);
                return Err(Error::from(e.recipe.error("kernel.boot", msg)));
            }
            tracing::info!(package = %k.package, %why, "booting the bzImage");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes between the initrd's end and the top of RAM, as QEMU's
    /// microvm places it.
    fn microvm_initrd_gap(size: u64, top: u64) -> u64 {
        let addr = (top - 1 - size) & !4095;
        top - (addr + size)
    }

    #[test]
    fn padded_initramfs_ends_a_page_below_the_top_under_microvm() {
        let top = 512 << 20;
        // Sizes seen: 0x156d53 ended 685 bytes below the top of a 512 MiB
        // guest and hung in ACPI set-up; the others booted.
        assert_eq!(microvm_initrd_gap(0x156d53, top), 685);
        assert_eq!(microvm_initrd_gap(0x15734c, top), 3252);
        assert_eq!(microvm_initrd_gap(0x157153, top), 3757);
        for len in [1usize, 2, 4096, 4097, 4098, 0x156d53, 0x15734c, 1 << 20] {
            let mut b = vec![7u8; len];
            pad_below_firmware_tables(&mut b);
            assert!(b.len() >= len && b.len() - len < 4096 && b[len..].iter().all(|&z| z == 0), "{len}");
            assert_eq!(b.len() % 4096, 1, "{len}");
            for top in [256u64 << 20, 512 << 20, 3 << 30] {
                assert_eq!(microvm_initrd_gap(b.len() as u64, top), 4095, "{len} in {top}");
            }
        }
    }
}
