//! The recipe's runtime settings through the contract's table
//! (`dinv_contract::settings`): each recipe key with a `DINV_*` variable is
//! read here, in one place, checked with the launcher's own parser (so
//! `check` refuses exactly what the launcher would), and becomes the
//! image's default for that variable.

use dinv_contract::settings::{check_relations, SettingError, SETTINGS};

use super::error::RecipeError;
use super::loaded::LoadedRecipe;
use super::model::{Arch, Recipe};

/// The recipe's value for a table recipe key, as the launcher reads it
/// from `launcher.json`. None for a key the table does not have.
pub fn recipe_value(r: &Recipe, key: &str) -> Option<String> {
    Some(match key {
        "vm.cpus" => r.vm.cpus.to_string(),
        "vm.memory" => r.vm.memory.clone(),
        "vm.docker_disk_size" => r.vm.docker_disk_size.clone(),
        "vm.machine" => r.vm.machine.as_str().to_string(),
        "vm.stop_timeout" => r.vm.stop_timeout.to_string(),
        "docker.shutdown_timeout" => r.docker.shutdown_timeout.to_string(),
        _ => return None,
    })
}

/// `(DINV_* variable, value)` for every setting the recipe sets, in table order.
pub fn launcher_defaults(r: &Recipe) -> Vec<(&'static str, String)> {
    SETTINGS.iter().filter_map(|s| Some((s.var, recipe_value(r, s.recipe_key?)?))).collect()
}

/// The image's `Env`: the original DinV's variables, each with the
/// recipe's value or the table's default (empty: unset), so `docker image
/// inspect` shows every knob.
pub fn image_env(r: &Recipe) -> Vec<(&'static str, String)> {
    SETTINGS
        .iter()
        .filter(|s| s.original)
        .map(|s| (s.var, s.recipe_key.and_then(|k| recipe_value(r, k)).unwrap_or_else(|| s.default.to_string())))
        .collect()
}

/// A refusal of the table, at the recipe key that set the value.
fn at_key(l: &LoadedRecipe, e: SettingError) -> RecipeError {
    let key = SETTINGS.iter().find(|s| s.var == e.var).and_then(|s| s.recipe_key).unwrap_or(e.var);
    l.error(key, format!("{:?}: {} (the launcher reads it as {})", e.value, e.why, e.var))
}

/// Every runtime setting of the recipe, through the launcher's parsers and
/// the checks between settings.
pub fn validate(l: &LoadedRecipe) -> Result<(), RecipeError> {
    let defaults = launcher_defaults(&l.recipe);
    for (var, value) in &defaults {
        let s = SETTINGS.iter().find(|s| s.var == *var).expect("from the table");
        s.parse(value).map_err(|e| at_key(l, e))?;
    }
    check_relations(&|k| defaults.iter().find(|(v, _)| *v == k).map(|(_, x)| x.clone())).map_err(|e| at_key(l, e))?;
    // Each architecture's QEMU has its own machines; the image's launcher
    // refuses the others.
    let (machine, arch) = (l.recipe.vm.machine, l.recipe.arch());
    if !machine.runs_on(arch.rust()) {
        let why = match arch {
            Arch::X86_64 => format!("{:?} is the arm64 machine; an x86_64 image boots microvm or q35", machine.as_str()),
            Arch::Aarch64 => format!(
                "{:?} is an x86_64 machine, and sources.{}.arch makes this an arm64 image: set vm.machine = \"virt\"",
                machine.as_str(),
                l.recipe.guest.source
            ),
        };
        return Err(l.error("vm.machine", why));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dinv_contract::settings::by_recipe_key;

    #[test]
    fn every_recipe_key_of_the_table_is_read() {
        let r: Recipe = toml::from_str("[image]\nname = \"x\"\n[sources]\n[guest]\nsource = \"a\"\npackages = []\n").unwrap();
        for s in SETTINGS {
            if let Some(k) = s.recipe_key {
                let v = recipe_value(&r, k).unwrap_or_else(|| panic!("{k} is in the table but not read from the recipe"));
                // The recipe's defaults are the table's defaults.
                assert_eq!(s.parse(&v).unwrap(), s.default_value().unwrap(), "{k}: recipe default {v:?}, table default {:?}", s.default);
            }
        }
        assert_eq!(by_recipe_key("vm.cpus").map(|s| s.var), Some("DINV_CPUS"));
    }
}
