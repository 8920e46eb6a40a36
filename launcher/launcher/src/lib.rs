//! The launcher: the container entrypoint that boots the DinV guest in QEMU,
//! waits for its dockerd, runs the container's command and shuts the guest
//! down cleanly on SIGTERM.
//!
//! Pure parts (settings, QEMU arguments, launcher.json) are separate from
//! the parts that touch the system (accel probe, disks, sockets, processes).

pub mod accel;
pub mod certs;
pub mod cli;
pub mod config;
pub mod console_watch;
pub mod disks;
pub mod error;
pub mod kvm_probe;
pub mod qemu;
pub mod qga;
pub mod qmp;
pub mod ready;
pub mod restore;
pub mod save;
pub mod settings;
pub mod signals;
pub mod snapshot_vm;
pub mod start;
pub mod supervise;
pub mod timeline;

pub use error::LauncherError;
