//! The guest kernel stage: check the kernel package against the recipe's
//! config fragments, build the initramfs, and give the guest depmod's
//! index files plus the modules it must load itself (`/etc/modules`).

use std::fs;
use std::io::Read;
use std::path::Path;

use dinv_fstree::{Content, Meta, Tree, TreePath};
use dinv_kernel::{add_to_tree, find_kernels, prepare_guest_kernel, Fragment, GuestKernel, GuestKernelSpec, InitramfsConfig, KernelError};
use serde::Serialize;

use crate::recipe::LoadedRecipe;
use crate::sources::ResolvedPackage;
use crate::{assets, Error, Result};

const STAGE: &str = "kernel";

/// File names of the kernel outputs in the output directory.
pub const VMLINUZ: &str = "vmlinuz";
pub const INITRAMFS: &str = "initramfs";

/// What the kernel stage did, for `report.json`.
#[derive(Clone, Debug, Serialize)]
pub struct KernelSummary {
    /// `name version` of the package that shipped the kernel.
    pub package: String,
    /// Kernel release (`uname -r`).
    pub release: String,
    /// Modules the initramfs loads, in order.
    pub initramfs_modules: Vec<String>,
    /// Modules the fragments need that the guest loads from `/etc/modules`.
    pub guest_modules: Vec<String>,
}

/// Runs the stage when the recipe has a kernel (`kernel.package`, or a
/// `/boot/vmlinuz-*` in the guest tree): writes `vmlinuz` and `initramfs`
/// into `out` and adds the module files to `tree`. `Ok(None)` when the
/// guest has no kernel.
pub fn run(l: &LoadedRecipe, guest: &[ResolvedPackage], tree: &mut Tree, epoch: i64, out: &Path) -> Result<Option<KernelSummary>> {
    let k = &l.recipe.kernel;
    let found = find_kernels(tree).map_err(|e| Error::stage(STAGE, e))?;
    if k.package.is_none() && found.is_empty() {
        tracing::info!("no kernel package in the recipe and no /boot/vmlinuz-* in the guest: skipping the kernel stage");
        return Ok(None);
    }
    if let Some(p) = &k.package {
        if !guest.iter().any(|g| &g.name == p) {
            return Err(Error::stage(
                STAGE,
                format!("kernel.package {p:?} is not in the resolved guest packages; add it to guest.packages"),
            ));
        }
    }
    // The package that installed the image (a metapackage such as
    // linux-image-amd64 only depends on it), for reports and errors.
    let origin = found.first().and_then(|f| f.origin.clone()).or_else(|| k.package.clone());
    let package_version = origin.as_deref().and_then(|o| guest.iter().find(|g| g.name == o)).map(|g| g.version.clone());
    let package = match (&origin, &package_version) {
        (Some(o), Some(v)) => format!("{o} {v}"),
        (Some(o), None) => o.clone(),
        (None, _) => "the guest kernel".to_string(),
    };

    let fragments = read_fragments(l)?;
    let spec = GuestKernelSpec {
        fragments: &fragments,
        init_binary: Content::from_bytes(assets::initramfs_init()),
        package_version,
        // The initramfs loads what reaching the root disk needs; the guest's
        // own modprobe (kmod's, reading the indexes written here) loads the
        // rest from /etc/modules.
        initramfs_loads_all: false,
        extra_initramfs_modules: k.initramfs_modules.clone(),
        config: InitramfsConfig {
            root: "/dev/vda".into(),
            fstype: "ext4".into(),
            init: "/sbin/init".into(),
            ..InitramfsConfig::default()
        },
        mtime: epoch,
    };
    let gk = prepare_guest_kernel(tree, &spec).map_err(|e| match e {
        // Each problem already names the kernel package.
        KernelError::ConfigCheck { .. } => Error::stage(STAGE, e),
        _ => Error::stage(STAGE, format!("{package}: {e}")),
    })?;
    for o in &gk.report.modules {
        tracing::debug!(option = o.option, module = o.module, "module needed");
    }
    add_to_tree(tree, &gk.guest_files, epoch).map_err(|e| Error::stage(STAGE, e))?;
    merge_etc_modules(tree, &gk.guest_modules, epoch)?;
    write_outputs(&gk, k.initramfs_compression.as_deref(), out)?;
    Ok(Some(KernelSummary {
        package,
        release: gk.release,
        initramfs_modules: gk.initramfs_modules,
        guest_modules: gk.guest_modules,
    }))
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
            let text = fs::read_to_string(p).map_err(Error::io(p))?;
            let name = display_name(p, base, base_abs.as_deref());
            Fragment::parse(&name, &text).map_err(|e| Error::stage(STAGE, e))
        })
        .collect()
}

fn display_name(p: &Path, base: &Path, base_abs: Option<&Path>) -> String {
    let rel = p.strip_prefix(base).ok().or_else(|| base_abs.and_then(|b| p.strip_prefix(b).ok()));
    rel.filter(|r| !r.as_os_str().is_empty()).unwrap_or(p).display().to_string()
}

/// Appends to `/etc/modules` every name not listed yet (creating the file
/// if needed), so the guest's init loads what the initramfs did not.
pub fn merge_etc_modules(tree: &mut Tree, names: &[String], mtime: i64) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let path = TreePath::new("etc/modules");
    let resolved = tree.resolve(&path).unwrap_or_else(|| path.clone());
    let mut text = tree.read_file(&resolved).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let listed: Vec<String> = text
        .lines()
        .filter_map(|l| l.split('#').next().and_then(|l| l.split_whitespace().next()))
        .map(dinv_kernel::normalize_name)
        .collect();
    let mut added = false;
    for n in names {
        if !listed.contains(&dinv_kernel::normalize_name(n)) {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(n);
            text.push('\n');
            added = true;
        }
    }
    if !added {
        return Ok(());
    }
    let meta = tree.get(&resolved).map(|n| n.meta.clone()).unwrap_or(Meta { mtime, ..Meta::root(0o644) });
    tree.write_file(&resolved, text, meta)
        .map_err(|e| Error::stage(STAGE, format!("writing /{resolved}: {e}")))
}

fn write_outputs(gk: &GuestKernel, compression: Option<&str>, out: &Path) -> Result<()> {
    let vmlinuz = out.join(VMLINUZ);
    let mut f = fs::File::create(&vmlinuz).map_err(Error::io(&vmlinuz))?;
    std::io::copy(&mut gk.vmlinuz.reader(), &mut f).map_err(Error::io(&vmlinuz))?;
    let initramfs = out.join(INITRAMFS);
    // dinv-kernel always gzips; `none` stores the plain cpio.
    let bytes = match compression {
        Some("none") => {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&gk.initramfs[..])
                .read_to_end(&mut plain)
                .map_err(Error::io(&initramfs))?;
            plain
        }
        _ => gk.initramfs.clone(),
    };
    fs::write(&initramfs, bytes).map_err(Error::io(&initramfs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etc_modules_gets_only_missing_names() {
        let mut t = Tree::new();
        merge_etc_modules(&mut t, &["overlay".into(), "veth".into()], 5).unwrap();
        assert_eq!(t.read_file(&TreePath::new("etc/modules")).unwrap(), b"overlay\nveth\n");
        assert_eq!(t.get(&TreePath::new("etc/modules")).unwrap().meta.mtime, 5);
        t.write_file(&TreePath::new("etc/modules"), "# boot\naf_packet\nbr-netfilter opt=1", Meta::root(0o600))
            .unwrap();
        merge_etc_modules(&mut t, &["br_netfilter".into(), "overlay".into(), "af_packet".into()], 5).unwrap();
        assert_eq!(
            t.read_file(&TreePath::new("etc/modules")).unwrap(),
            b"# boot\naf_packet\nbr-netfilter opt=1\noverlay\n"
        );
        assert_eq!(t.get(&TreePath::new("etc/modules")).unwrap().meta.mode, 0o600, "existing metadata is kept");
    }

    #[test]
    fn fragments_are_named_relative_to_the_recipe() {
        let base = Path::new("/r/x");
        assert_eq!(display_name(Path::new("/r/x/kernel-configs/a.config"), base, None), "kernel-configs/a.config");
        assert_eq!(display_name(Path::new("/elsewhere/a.config"), base, None), "/elsewhere/a.config");
    }
}
