//! Runtime pieces of a DinV appliance. Each binary has its own module tree:
//! `launcher` (container entrypoint), `initramfs` (first-stage init),
//! `guest` (guest-side setup and supervisor).

pub mod guest;
pub mod initramfs;
pub mod launcher;
