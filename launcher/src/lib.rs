//! Runtime pieces of a DinV appliance. Each binary has its own module tree:
//! `launcher` (container entrypoint), `initramfs` (first-stage init),
//! `guest` (guest-side setup and supervisor); `console` is the console line
//! format they share (time stamps, boot-phase markers).

pub mod console;
pub mod guest;
pub mod initramfs;
pub mod launcher;
