//! Guest configuration applied to the unpacked tree. Package scripts are
//! never run; each module here produces one of their effects declaratively.

pub mod accounts;
pub mod busybox;

use dinv_fstree::Tree;

use crate::recipe::LoadedRecipe;
use crate::Result;

/// Applies every configuration step to the guest tree, in a fixed order.
pub fn apply(l: &LoadedRecipe, tree: &mut Tree) -> Result<()> {
    let recipe = &l.recipe;
    if recipe.guest.busybox_links {
        let n = busybox::link_applets(tree)?;
        tracing::info!(links = n, "busybox applet links");
    }
    accounts::apply(tree, &recipe.groups, &recipe.users)?;
    Ok(())
}
