//! The whole kernel step of the pipeline in one call: guest tree in,
//! vmlinuz + initramfs + files for the guest out.

use dinv_fstree::{Content, Tree};

use crate::depmod::{depmod_files, GeneratedFile};
use crate::initramfs::{build_initramfs, InitramfsConfig, InitramfsSpec, BOOT_MODULES};
use crate::kconfig::{check, merge, CheckReport, Fragment};
use crate::modules::ModuleSet;
use crate::option_modules::module_for_option;
use crate::package::find_kernel;
use crate::KernelError;

/// Inputs of [`prepare_guest_kernel`].
pub struct GuestKernelSpec<'a> {
    /// Our config fragments (kernel-configs/*.config), in merge order.
    pub fragments: &'a [Fragment],
    /// The static dinv-init binary.
    pub init_binary: Content,
    /// Shown in reports after the package name (e.g. "6.1.119-1").
    pub package_version: Option<String>,
    /// Load every module the fragments need from the initramfs (true), or
    /// only what reaching the root disk needs (false; the guest then loads
    /// the rest itself, see [`GuestKernel::guest_modules`]).
    pub initramfs_loads_all: bool,
    /// More modules for the initramfs (names or aliases).
    pub extra_initramfs_modules: Vec<String>,
    pub config: InitramfsConfig,
    /// SOURCE_DATE_EPOCH for generated files.
    pub mtime: i64,
}

/// Outputs of [`prepare_guest_kernel`].
pub struct GuestKernel {
    /// Kernel release (`uname -r`).
    pub release: String,
    /// The kernel image for `qemu -kernel`.
    pub vmlinuz: Content,
    /// The gzip'd cpio for `qemu -initrd`.
    pub initramfs: Vec<u8>,
    /// How the kernel met the fragments (modules needed, overrides seen).
    pub report: CheckReport,
    /// Modules the initramfs loads, in order.
    pub initramfs_modules: Vec<String>,
    /// Modules the fragments need that the initramfs does not load; the
    /// guest must load them (e.g. list them in /etc/modules or
    /// /etc/modules-load.d/).
    pub guest_modules: Vec<String>,
    /// depmod's index files to add to the guest tree (see [`crate::add_to_tree`]).
    pub guest_files: Vec<GeneratedFile>,
}

/// Finds the one kernel in `tree`, checks it against the fragments, builds
/// the initramfs and the depmod files. Fails with every unmet option listed.
pub fn prepare_guest_kernel(tree: &Tree, spec: &GuestKernelSpec) -> Result<GuestKernel, KernelError> {
    let pkg = find_kernel(tree)?;
    let mut id = pkg.id();
    if let Some(v) = &spec.package_version {
        id.package = format!("{} {v}", id.package);
    }
    let report = check(&merge(spec.fragments), pkg.require_config()?, &id, &module_for_option).into_result()?;
    let modules = ModuleSet::load(tree, &pkg.release)?;
    // Every module the check relies on must exist with all its dependencies,
    // whether the initramfs or the guest loads it.
    modules.closure(&report.module_names())?;
    let mut load: Vec<String> = BOOT_MODULES.iter().map(|s| s.to_string()).collect();
    if spec.initramfs_loads_all {
        load.extend(report.module_names());
    }
    load.extend(spec.extra_initramfs_modules.iter().cloned());
    let mut seen = std::collections::BTreeSet::new();
    load.retain(|m| seen.insert(m.clone()));
    let ir = build_initramfs(&InitramfsSpec { init_binary: spec.init_binary.clone(), modules: &modules, load, config: spec.config.clone(), mtime: spec.mtime })?;
    let guest_modules = report.module_names().into_iter().filter(|m| !ir.closure.modules.contains(&crate::normalize_name(m))).collect();
    Ok(GuestKernel {
        release: pkg.release.clone(),
        vmlinuz: pkg.image.clone(),
        initramfs: ir.to_cpio()?,
        report,
        initramfs_modules: ir.closure.modules.clone(),
        guest_modules,
        guest_files: depmod_files(&modules)?,
    })
}
