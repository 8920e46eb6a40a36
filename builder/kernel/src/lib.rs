//! Guest kernel support for dinv-build.
//!
//! Given the guest [`dinv_fstree::Tree`] after its packages are unpacked:
//! find the kernel ([`find_kernel`]), check it against our config
//! fragments ([`kconfig`]), resolve the modules the guest needs
//! ([`ModuleSet::closure`]), generate every file kmod's depmod writes,
//! binary indexes included, byte for byte ([`depmod_files`]), and build a
//! deterministic initramfs ([`build_initramfs`], [`cpio`]).
//! [`check_guest_kernel`] does the checks alone (the builder's `check`
//! command), [`plan_guest_kernel`] the checks and the module plan (the
//! builder's configure step), [`GuestKernelPlan::initramfs`] the initramfs (its
//! emitter); [`prepare_guest_kernel`] does both in one call.

mod alias;
mod compress;
pub mod cpio;
mod depmod;
mod elf;
mod error;
mod guest_kernel;
pub mod initramfs;
pub mod kconfig;
mod kmod_hash;
mod kmod_index;
mod modinfo;
mod modules;
mod names;
pub mod option_modules;
mod package;
mod pvh;

pub use alias::alias_matches;
pub use compress::Compression;
pub use cpio::{cpio_bytes, write_cpio, CpioOptions};
pub use depmod::{add_to_tree, depmod_files, GeneratedFile, KMOD_DEPMOD_FILES};
pub use error::KernelError;
pub use guest_kernel::{check_guest_kernel, plan_guest_kernel, prepare_guest_kernel, CheckedKernel, GuestKernel, GuestKernelPlan, GuestKernelSpec, PlanSpec, TrimmedModules};
pub use initramfs::{build_initramfs, Initramfs, InitramfsConfig, InitramfsSpec, BOOT_MODULES};
pub use kconfig::{check, merge, CheckReport, ConfigOption, ConfigProblem, ConfigValue, Fragment, KernelConfig, KernelId, MergedConfig, ModuleLookup};
pub use option_modules::OptionModules;
pub use modinfo::{parse_builtin_modinfo, ModInfo};
pub use modules::{normalize_name, without_signature, Closure, Decompressed, ModuleFile, ModuleSet, Unsigned, MODULE_SIG_MAGIC};
pub use pvh::{write_pvh_vmlinux, PvhUnsupported};
pub use package::{bzimage_release, find_kernel, find_kernels, KernelPackage};
