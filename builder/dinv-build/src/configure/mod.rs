//! Guest configuration: every edit of the unpacked guest tree. Package
//! scripts are never run; each module here produces one of their effects
//! declaratively.
//!
//! Order (later steps may rely on earlier ones; overlays go late so a
//! recipe can replace any generated file): `guest.remove`, busybox applet
//! links, accounts, system files, daemon.json, init system, the dinv-guest
//! binary, CA certificates, Debian alternatives, overlays and `[[files]]`,
//! the guest kernel's module files and `/etc/modules`, then a check that
//! every service the recipe enabled has its script.

mod accounts;
mod alternatives;
mod busybox;
mod ca;
mod docker;
mod kernel;
pub mod overlays;
pub mod runtime;
mod services;
mod strip;
mod system;
pub mod template;
mod tree;

use dinv_fstree::Tree;

pub use kernel::{check_kernel, KernelPlan};
pub use strip::{remove_paths, Removal};

use crate::recipe::LoadedRecipe;
use crate::sources::ResolvedPackage;
use crate::Result;

/// What configuring needs besides the recipe.
#[derive(Clone, Copy, Debug, Default)]
pub struct GuestInputs<'a> {
    /// The resolved guest packages (which one ships the kernel).
    pub packages: &'a [ResolvedPackage],
    /// SOURCE_DATE_EPOCH, for generated files.
    pub epoch: i64,
}

/// The configured guest's facts the emitters need.
pub struct Configured {
    /// The checked guest kernel, when the guest has one.
    pub kernel: Option<KernelPlan>,
    /// What left the tree besides packages, by reason (`rootfs.strip`,
    /// `guest.remove`, `kernel.modules`).
    pub removed: Vec<Removal>,
}

/// Applies every configuration step to the guest tree, in a fixed order.
pub fn apply(l: &LoadedRecipe, tree: &mut Tree, inputs: &GuestInputs) -> Result<Configured> {
    let recipe = &l.recipe;
    let mut removed = Vec::new();
    if recipe.rootfs.strip {
        removed.extend(strip::strip(tree));
    }
    removed.extend(remove_paths(l, tree, "guest.remove", &recipe.guest.remove)?);
    if recipe.guest.busybox_links {
        let n = busybox::link_applets(tree)?;
        tracing::info!(links = n, "busybox applet links");
    }
    accounts::apply(tree, &recipe.groups, &recipe.users)?;
    system::apply(tree, &recipe.guest, recipe.rootfs.label.as_deref().unwrap_or(dinv_contract::disks::ROOT_LABEL))?;
    docker::apply(tree, recipe)?;
    services::apply(tree, recipe)?;
    tree::install_guest_binary(tree, crate::assets::for_arch(recipe.arch()).guest)?;
    ca::apply(tree, &recipe.docker.ca_certificates)?;
    alternatives::apply(tree, &recipe.guest.alternatives).map_err(|e| match e {
        alternatives::AltError::NotInstalled { group, message } => l.error(&format!("guest.alternatives.{group}"), message).into(),
        alternatives::AltError::Tree(e) => e,
    })?;
    overlays::apply(tree, recipe)?;
    let kernel = kernel::apply(l, inputs.packages, tree, inputs.epoch)?;
    removed.extend(kernel.iter().flat_map(|k| k.trimmed.iter().cloned()));
    if let Some(k) = &kernel {
        system::merge_modules(tree, &k.plan.guest_modules, inputs.epoch)?;
    }
    services::check_enabled(tree, &recipe.guest).map_err(|m| l.error(&format!("guest.services[{}]", m.index), m.message))?;
    Ok(Configured { kernel, removed })
}
