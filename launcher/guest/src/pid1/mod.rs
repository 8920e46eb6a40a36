//! PID 1 on guests without OpenRC (`dinv-guest init`): the boot steps, the
//! service supervisor, and power: signals, the ACPI power button, shutdown.

pub(crate) mod boot;
pub mod init;
pub mod power;
pub mod power_button;
pub mod services;
pub(crate) mod shutdown;
pub mod spawn;
pub mod supervisor;
