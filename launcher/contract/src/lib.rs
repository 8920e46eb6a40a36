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
//! - [`console`]: the console line format and boot-phase markers the
//!   three programs print and the launcher reads back;
//! - [`openrc`]: the OpenRC services of Alpine guests that run `dinv-guest`;
//! - [`disks`]: the virtio serials and label the disks are found by;
//! - [`fw_cfg`]: the runtime settings the launcher passes to the guest;
//! - [`qcow2`]: the snapshot's disk overlays, written and read without qemu-img;
//! - [`snapshot`]: the snapshot a DinV image may carry, and what the
//!   launcher asks of a restored guest;
//! - [`settings`]: every runtime setting (`DINV_*`), its recipe key, type,
//!   bounds and default, in one table.

pub mod console;
pub mod disks;
pub mod fw_cfg;
pub mod initramfs;
pub mod launcher;
pub mod openrc;
pub mod qcow2;
pub mod services;
pub mod settings;
pub mod snapshot;
