//! The kernel emitter: `vmlinuz` and `initramfs` from the kernel plan the
//! configure step made.

use std::fs;
use std::io::Read;

use dinv_contract::disks::ROOT_SERIAL;
use dinv_fstree::Content;
use dinv_kernel::InitramfsConfig;
use super::context::Emit;
use super::outputs::{KernelOutputs, KernelSummary};
use crate::error::Stage;
use crate::recipe::InitramfsCompression;
use crate::{assets, Error, Result};

/// File names of the kernel outputs in the output directory.
pub const VMLINUZ: &str = "vmlinuz";
pub const INITRAMFS: &str = "initramfs";

/// Writes `vmlinuz` and `initramfs` when the guest has a kernel.
pub fn emit(e: &mut Emit) -> Result<()> {
    let Some(k) = e.kernel_plan else { return Ok(()) };
    let vmlinuz = e.out.join(VMLINUZ);
    let mut f = fs::File::create(&vmlinuz).map_err(Error::io(&vmlinuz))?;
    std::io::copy(&mut k.plan.vmlinuz.reader(), &mut f).map_err(Error::io(&vmlinuz))?;
    let config = InitramfsConfig { root: format!("SERIAL={ROOT_SERIAL}"), ..InitramfsConfig::default() };
    let gz = k.plan.initramfs(Content::from_bytes(assets::initramfs_init()), config, e.epoch).map_err(|err| Error::stage(Stage::Kernel, err))?;
    let initramfs = e.out.join(INITRAMFS);
    // dinv-kernel always gzips; `none` stores the plain cpio.
    let bytes = match e.recipe.recipe.kernel.initramfs_compression {
        InitramfsCompression::None => {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut plain).map_err(Error::io(&initramfs))?;
            plain
        }
        InitramfsCompression::Gzip => gz,
    };
    fs::write(&initramfs, bytes).map_err(Error::io(&initramfs))?;
    let summary = KernelSummary {
        package: k.package.clone(),
        release: k.plan.release.clone(),
        initramfs_modules: k.plan.initramfs_modules.clone(),
        guest_modules: k.plan.guest_modules.clone(),
    };
    e.kernel = Some(KernelOutputs { vmlinuz, initramfs, summary });
    Ok(())
}
