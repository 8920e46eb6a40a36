//! The whole kernel step of the pipeline in one call: guest tree in,
//! vmlinuz + initramfs + files for the guest out.

use dinv_fstree::{Content, Tree, TreePath};

use crate::depmod::{depmod_files, GeneratedFile};
use crate::initramfs::{build_initramfs, InitramfsConfig, InitramfsSpec, BOOT_MODULES};
use crate::kconfig::{check, merge, CheckReport, Fragment};
use crate::modules::{Decompressed, ModuleSet, Unsigned};
use crate::option_modules::OptionModules;
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
    /// Which modules provide an option (the recipe's entries over the built-in map).
    pub option_modules: OptionModules,
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

/// What [`plan_guest_kernel`] needs.
pub struct PlanSpec<'a> {
    /// Our config fragments (kernel-configs/*.config), in merge order.
    pub fragments: &'a [Fragment],
    /// Shown in reports after the package name (e.g. "6.1.119-1").
    pub package_version: Option<String>,
    /// Load every module the fragments need from the initramfs (true), or
    /// only what reaching the root disk needs (false).
    pub initramfs_loads_all: bool,
    /// More modules for the initramfs (names or aliases).
    pub extra_initramfs_modules: Vec<String>,
    /// Which modules provide an option (the recipe's entries over the built-in map).
    pub option_modules: OptionModules,
}

/// The guest kernel, checked and planned: everything but the initramfs
/// bytes, which [`GuestKernelPlan::initramfs`] builds later.
pub struct GuestKernelPlan {
    /// Kernel release (`uname -r`).
    pub release: String,
    /// The kernel image for `qemu -kernel`.
    pub vmlinuz: Content,
    /// How the kernel met the fragments.
    pub report: CheckReport,
    /// The kernel's modules.
    pub modules: ModuleSet,
    /// What the initramfs loads (names or aliases; dependencies are added).
    pub initramfs_load: Vec<String>,
    /// The initramfs's modules in load order, dependencies included.
    pub initramfs_modules: Vec<String>,
    /// Modules the fragments need that the initramfs does not load.
    pub guest_modules: Vec<String>,
    /// depmod's index files for the guest tree.
    pub guest_files: Vec<GeneratedFile>,
}

/// The one kernel of a tree, checked against the fragments.
pub struct CheckedKernel {
    /// Kernel release (`uname -r`).
    pub release: String,
    /// The kernel image for `qemu -kernel`.
    pub vmlinuz: Content,
    /// How the kernel met the fragments.
    pub report: CheckReport,
    /// The kernel's modules.
    pub modules: ModuleSet,
}

/// Finds the one kernel in `tree` and checks it against the fragments:
/// every option as required, and every module that meets a requirement
/// present with all its dependencies. Fails with every unmet option listed.
/// `package_version` is shown in reports after the package name.
pub fn check_guest_kernel(tree: &Tree, fragments: &[Fragment], package_version: Option<&str>, option_modules: &OptionModules) -> Result<CheckedKernel, KernelError> {
    let pkg = find_kernel(tree)?;
    let mut id = pkg.id();
    if let Some(v) = package_version {
        id.package = format!("{} {v}", id.package);
    }
    // The modules first: which of an option's known module names this
    // kernel ships decides what the check asks for.
    let modules = ModuleSet::load(tree, &pkg.release)?;
    let report = check(&merge(fragments), pkg.require_config()?, &id, &|o| option_modules.lookup(o, &modules)).into_result()?;
    // Every module the check relies on must exist with all its dependencies,
    // whether the initramfs or the guest loads it.
    modules.closure(&report.module_names())?;
    Ok(CheckedKernel { release: pkg.release.clone(), vmlinuz: pkg.image.clone(), report, modules })
}

/// Finds the one kernel in `tree`, checks it against the fragments, and
/// plans its modules: which the initramfs loads, which the guest loads,
/// and depmod's files. Fails with every unmet option listed.
pub fn plan_guest_kernel(tree: &Tree, spec: &PlanSpec) -> Result<GuestKernelPlan, KernelError> {
    let CheckedKernel { release, vmlinuz, report, modules } = check_guest_kernel(tree, spec.fragments, spec.package_version.as_deref(), &spec.option_modules)?;
    let mut load: Vec<String> = BOOT_MODULES.iter().map(|s| s.to_string()).collect();
    if spec.initramfs_loads_all {
        load.extend(report.module_names());
    }
    load.extend(spec.extra_initramfs_modules.iter().cloned());
    let mut seen = std::collections::BTreeSet::new();
    load.retain(|m| seen.insert(m.clone()));
    let initramfs_modules = modules.closure(&load)?.modules;
    let guest_modules = report.module_names().into_iter().filter(|m| !initramfs_modules.contains(&crate::normalize_name(m))).collect();
    let guest_files = depmod_files(&modules)?;
    Ok(GuestKernelPlan { release, vmlinuz, report, modules, initramfs_load: load, initramfs_modules, guest_modules, guest_files })
}

/// What [`GuestKernelPlan::trim_modules`] removed.
#[derive(Debug, Default)]
pub struct TrimmedModules {
    /// Modules kept.
    pub kept: usize,
    /// The removed module files: their paths in the tree and stored sizes.
    pub removed: Vec<(TreePath, u64)>,
}

impl TrimmedModules {
    /// Stored bytes of the removed module files.
    pub fn removed_bytes(&self) -> u64 {
        self.removed.iter().map(|(_, n)| n).sum()
    }
}

impl GuestKernelPlan {
    /// Keeps only the closure (dependencies and softdeps included) of the
    /// modules the fragments need, the initramfs loads, and `keep` (names
    /// or aliases, each of which must resolve), and writes depmod's files
    /// for exactly that set. Returns what went; the caller removes those
    /// files from the tree.
    pub fn trim_modules<S: AsRef<str>>(&mut self, keep: &[S]) -> Result<TrimmedModules, KernelError> {
        let mut want: Vec<String> = self.report.module_names();
        want.extend(self.initramfs_load.iter().cloned());
        want.extend(keep.iter().map(|k| k.as_ref().to_string()));
        let closure = self.modules.closure(&want)?;
        let kept: std::collections::BTreeSet<String> = closure.modules.into_iter().collect();
        let removed = self.modules.retain(&kept);
        self.guest_files = depmod_files(&self.modules)?;
        Ok(TrimmedModules { kept: self.modules.len(), removed: removed.iter().map(|m| (m.path.clone(), m.content().len())).collect() })
    }

    /// Stores the planned modules uncompressed in `tree`
    /// ([`ModuleSet::decompress_in`]) and writes depmod's files again for
    /// them.
    pub fn decompress_modules(&mut self, tree: &mut Tree) -> Result<Decompressed, KernelError> {
        let done = self.modules.decompress_in(tree)?;
        if done.modules > 0 {
            self.guest_files = depmod_files(&self.modules)?;
        }
        Ok(done)
    }

    /// Cuts the signatures off the planned (uncompressed) modules in `tree`
    /// ([`ModuleSet::strip_signatures_in`]); the initramfs built afterwards
    /// gets the same bytes. depmod's files do not change.
    pub fn strip_module_signatures(&mut self, tree: &mut Tree) -> Result<Unsigned, KernelError> {
        self.modules.strip_signatures_in(tree)
    }

    /// The initramfs as a gzip'd cpio: `init_binary` as `/init`, the planned
    /// modules and `config`, every entry at `mtime`.
    pub fn initramfs(&self, init_binary: Content, config: InitramfsConfig, mtime: i64) -> Result<Vec<u8>, KernelError> {
        build_initramfs(&InitramfsSpec { init_binary, modules: &self.modules, load: self.initramfs_load.clone(), config, mtime })?.to_cpio()
    }
}

/// Finds the one kernel in `tree`, checks it against the fragments, builds
/// the initramfs and the depmod files. Fails with every unmet option listed.
pub fn prepare_guest_kernel(tree: &Tree, spec: &GuestKernelSpec) -> Result<GuestKernel, KernelError> {
    let plan = plan_guest_kernel(
        tree,
        &PlanSpec {
            fragments: spec.fragments,
            package_version: spec.package_version.clone(),
            initramfs_loads_all: spec.initramfs_loads_all,
            extra_initramfs_modules: spec.extra_initramfs_modules.clone(),
            option_modules: spec.option_modules.clone(),
        },
    )?;
    let initramfs = plan.initramfs(spec.init_binary.clone(), spec.config.clone(), spec.mtime)?;
    Ok(GuestKernel {
        release: plan.release,
        vmlinuz: plan.vmlinuz,
        initramfs,
        report: plan.report,
        initramfs_modules: plan.initramfs_modules,
        guest_modules: plan.guest_modules,
        guest_files: plan.guest_files,
    })
}
