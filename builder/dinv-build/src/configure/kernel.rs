//! The guest kernel, checked and planned: the kernel package must meet the
//! recipe's config fragments; depmod's files (text and kmod's binary
//! indexes) are written for the guest, since package triggers never run.
//! The initramfs itself is emitted later from the plan.

use std::fs;
use std::path::Path;

use dinv_fstree::Tree;
use dinv_kernel::{add_to_tree, check_guest_kernel, find_kernels, plan_guest_kernel, CheckedKernel, Fragment, GuestKernelPlan, KernelError, KernelPackage, OptionModules, PlanSpec};

use crate::error::{Stage, StageFailure};
use super::Removal;
use crate::recipe::{KernelMode, KernelModules, LoadedRecipe, RUNTIME_MODULES};
use crate::sources::ResolvedPackage;
use crate::{Error, Result};

/// The checked guest kernel, for the kernel emitter.
pub struct KernelPlan {
    /// `name version` of the package that shipped the kernel.
    pub package: String,
    pub plan: GuestKernelPlan,
    /// What the slim guest left out of the kernel package: module files
    /// (`kernel.modules`), and the kernel image in `/boot`.
    pub trimmed: Vec<Removal>,
}

fn fail(e: impl Into<StageFailure>) -> Error {
    Error::stage(Stage::Kernel, e)
}

/// A kernel error of the check or the plan, with the package named
/// unless the error's problems already name it.
fn kernel_error(package: &str) -> impl Fn(KernelError) -> Error + '_ {
    move |e| match e {
        KernelError::ConfigCheck { .. } => fail(e),
        _ => fail(StageFailure::from(e).of(package.to_string())),
    }
}

/// Plans the kernel when the recipe has one (`kernel.package`, or a
/// `/boot/vmlinuz-*` in the guest tree) and writes depmod's files into the
/// tree. `None` when the guest has no kernel.
pub fn apply(l: &LoadedRecipe, guest: &[ResolvedPackage], tree: &mut Tree, epoch: i64) -> Result<Option<KernelPlan>> {
    let k = &l.recipe.kernel;
    // The only mode: a package of the guest set ships the kernel.
    let KernelMode::Package = k.mode;
    let found = find_kernels(tree).map_err(fail)?;
    if k.package.is_none() && found.is_empty() {
        tracing::info!("no kernel package in the recipe and no /boot/vmlinuz-* in the guest: no kernel to plan");
        return Ok(None);
    }
    if let Some(p) = &k.package {
        if !guest.iter().any(|g| &g.name == p) {
            return Err(Error::from(l.error("kernel.package", format!("{p:?} is not in the resolved guest packages; add it to guest.packages"))));
        }
    }
    let (package, package_version) = origin(l, guest, &found);
    let fragments = read_fragments(l)?;
    let spec = PlanSpec {
        fragments: &fragments,
        package_version,
        // The initramfs loads what reaching the root disk needs; the guest's
        // own modprobe (kmod's, reading the indexes written here) loads the
        // rest from /etc/modules.
        initramfs_loads_all: false,
        extra_initramfs_modules: k.initramfs_modules.clone(),
        option_modules: OptionModules::with_overrides(k.option_modules.clone()),
    };
    let mut plan = plan_guest_kernel(tree, &spec).map_err(kernel_error(&package))?;
    for o in &plan.report.modules {
        tracing::debug!(option = o.option, module = o.module, "module needed");
    }
    let trimmed = match &k.modules {
        KernelModules::All => vec![],
        KernelModules::Keep { keep, decompress, strip_signatures } => {
            let modules = trim(l, &mut plan, tree, keep, &package)?;
            if *decompress {
                let done = plan.decompress_modules(tree).map_err(kernel_error(&package))?;
                if done.modules > 0 {
                    tracing::info!(modules = done.modules, stored = done.stored_bytes, bytes = done.bytes, "kernel modules stored uncompressed");
                }
            }
            if *strip_signatures {
                let done = plan.strip_module_signatures(tree).map_err(kernel_error(&package))?;
                tracing::info!(modules = done.modules, bytes = done.bytes, "kernel module signatures cut off");
            }
            // The launcher boots the image emitted beside the rootfs
            // (`vmlinuz`/`vmlinux`); the guest never reads its own copy in
            // /boot (12 MiB for trixie's kernel), so it goes like the
            // modules no guest loads. The plan keeps its own reference.
            let mut images = Removal { why: "kernel.modules: the kernel image in /boot (the launcher boots its own copy)".to_string(), files: 0, bytes: 0 };
            for f in &found {
                images.files += 1;
                images.bytes += f.image.len();
                tree.remove(&f.image_path);
            }
            vec![modules, images]
        }
    };
    add_to_tree(tree, &plan.guest_files, epoch).map_err(fail)?;
    Ok(Some(KernelPlan { package, plan, trimmed }))
}

/// `name version` of the package that installed the kernel (a metapackage
/// such as linux-image-amd64 only depends on it), for reports and errors,
/// and its version alone.
fn origin(l: &LoadedRecipe, guest: &[ResolvedPackage], found: &[KernelPackage]) -> (String, Option<String>) {
    let origin = found.first().and_then(|f| f.origin.clone()).or_else(|| l.recipe.kernel.package.clone());
    let package_version = origin.as_deref().and_then(|o| guest.iter().find(|g| g.name == o)).map(|g| g.version.clone());
    let package = match (&origin, &package_version) {
        (Some(o), Some(v)) => format!("{o} {v}"),
        (Some(o), None) => o.clone(),
        (None, _) => "the guest kernel".to_string(),
    };
    (package, package_version)
}

/// The check alone, as [`apply`] runs it, on a tree holding the kernel
/// package (`check` unpacks only that): `None` when the tree has no kernel.
pub fn check_kernel(l: &LoadedRecipe, guest: &[ResolvedPackage], tree: &Tree) -> Result<Option<(String, CheckedKernel)>> {
    let found = find_kernels(tree).map_err(fail)?;
    if found.is_empty() {
        return Ok(None);
    }
    let (package, package_version) = origin(l, guest, &found);
    let fragments = read_fragments(l)?;
    let map = OptionModules::with_overrides(l.recipe.kernel.option_modules.clone());
    let checked = check_guest_kernel(tree, &fragments, package_version.as_deref(), &map).map_err(kernel_error(&package))?;
    Ok(Some((package, checked)))
}

/// Keeps only the modules the guest can need (see [`KernelModules`]) and
/// removes the other module files from the tree. Every module the recipe
/// names must exist.
fn trim(l: &LoadedRecipe, plan: &mut GuestKernelPlan, tree: &mut Tree, keep: &[String], package: &str) -> Result<Removal> {
    let set = &plan.modules;
    let missing = |what: &str| format!("{what} is not in {package} (kernel {}): not a module, not built in, and no module alias matches", plan.release);
    let mut wanted: Vec<String> = Vec::new();
    for (i, m) in l.recipe.guest.modules.iter().enumerate() {
        if !set.resolves(m).map_err(fail)? {
            return Err(l.error(&format!("guest.modules[{i}]"), missing(&format!("module {m:?}"))).into());
        }
        wanted.push(m.clone());
    }
    for (i, k) in keep.iter().enumerate() {
        if k.ends_with('/') {
            let under = set.under(k);
            if under.is_empty() {
                return Err(l.error(&format!("kernel.modules.keep[{i}]"), format!("no module below /lib/modules/{}/{k} in {package}", plan.release)).into());
            }
            wanted.extend(under);
        } else if set.resolves(k).map_err(fail)? {
            wanted.push(k.clone());
        } else {
            return Err(l.error(&format!("kernel.modules.keep[{i}]"), missing(&format!("module {k:?}"))).into());
        }
    }
    // What dockerd and the guest load at run time, where the kernel has it as a module.
    for r in RUNTIME_MODULES {
        if r.ends_with('/') {
            wanted.extend(set.under(r));
        } else if set.resolves(r).map_err(fail)? {
            wanted.push(r.to_string());
        }
    }
    let trimmed = plan.trim_modules(&wanted).map_err(|e| fail(StageFailure::from(e).of(package.to_string())))?;
    for (path, _) in &trimmed.removed {
        tree.remove(path);
    }
    tracing::info!(kept = trimmed.kept, removed = trimmed.removed.len(), bytes = trimmed.removed_bytes(), "kernel modules trimmed");
    Ok(Removal { why: "kernel.modules: modules the guest cannot need".to_string(), files: trimmed.removed.len() as u64, bytes: trimmed.removed_bytes() })
}

/// Parses `kernel.fragments`, naming each by its path relative to the
/// recipe's directory so errors read `kernel-configs/docker.config:12`.
fn read_fragments(l: &LoadedRecipe) -> Result<Vec<Fragment>> {
    let base = l.path.parent().unwrap_or(Path::new("."));
    let base_abs = fs::canonicalize(base).ok();
    l.recipe
        .kernel
        .fragments
        .iter()
        .map(|f| {
            let p = Path::new(f);
            let text = crate::recipe::vfs::read_to_string(p).map_err(Error::io(p))?;
            let name = display_name(p, base, base_abs.as_deref());
            Fragment::parse(&name, &text).map_err(fail)
        })
        .collect()
}

fn display_name(p: &Path, base: &Path, base_abs: Option<&Path>) -> String {
    if crate::recipe::vfs::is_embedded(p) {
        return p.display().to_string();
    }
    let rel = p.strip_prefix(base).ok().or_else(|| base_abs.and_then(|b| p.strip_prefix(b).ok()));
    rel.filter(|r| !r.as_os_str().is_empty()).unwrap_or(p).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_are_named_relative_to_the_recipe() {
        let base = Path::new("/r/x");
        assert_eq!(display_name(Path::new("/r/x/kernel-configs/a.config"), base, None), "kernel-configs/a.config");
        assert_eq!(display_name(Path::new("/elsewhere/a.config"), base, None), "/elsewhere/a.config");
    }
}
