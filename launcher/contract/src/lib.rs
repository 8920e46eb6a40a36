//! The contract between dinv-build and the binaries inside a DinV image.
//!
//! dinv-build writes these files and names; the launcher (container
//! entrypoint), dinv-init (initramfs) and dinv-guest (guest helper) read
//! them. Each lives here once, so a change shows on both sides at compile
//! time:
//!
//! - [`initramfs`]: `/etc/dinv/initramfs.json` and the module load list;
//! - [`launcher`]: `/etc/dinv/launcher.json` and where the image keeps the
//!   kernel, initramfs and root filesystem;
//! - [`services`]: `/etc/dinv/services.json`, the services `dinv-guest init`
//!   supervises;
//! - [`disks`]: the virtio serials and label the disks are found by;
//! - [`fw_cfg`]: the runtime settings the launcher passes to the guest.

pub mod disks;
pub mod fw_cfg;
pub mod initramfs;
pub mod launcher;
pub mod services;
