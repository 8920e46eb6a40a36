//! Build stages that turn the configured guest tree into artifacts.

pub mod image;
pub mod kernel;
pub mod rootfs;
