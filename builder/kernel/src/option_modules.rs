//! Which modules a config option builds when a kernel has it as `=m`.
//!
//! Kernels ship no option→module map: it lives in their Makefiles. So
//! `option_modules.tsv` is generated from the Makefiles and Kconfig files
//! of Debian's kernel sources (`scripts/gen-option-modules`; rerun it when
//! a new kernel series is packaged, never edit the file), [`HAND`] adds the
//! few names the generator cannot see, and a recipe's
//! `kernel.option_modules` wins over both ([`OptionModules`]).
//!
//! The generated names are the union over the kernels it read (a module
//! renamed between 6.1 and 6.12 is listed under both names), so a lookup
//! keeps only the names the kernel at hand ships ([`OptionModules::lookup`]).
//! A missing entry surfaces as [`crate::kconfig::ProblemKind::UnknownModule`],
//! never as a silent skip.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::kconfig::ModuleLookup;
use crate::modules::{normalize_name, ModuleSet};

/// `option<TAB>modules[<TAB>how]` lines, `#` comments first.
const GENERATED: &str = include_str!("option_modules.tsv");

/// Names the generator cannot see, added to its: (option, modules, why).
const HAND: &[(&str, &[&str], &str)] = &[(
    "CONFIG_MDIO_DEVICE",
    &["libphy"],
    "with CONFIG_PHYLIB on, drivers/net/phy/Makefile links mdio-bus into libphy.ko \
     (`libphy-y += $(mdio-bus-y)` inside `ifdef CONFIG_PHYLIB`: a variable the generator does not expand); \
     Debian's kernel ships no mdio_bus.ko",
)];

/// Option → module names (generated and hand entries, merged). An empty
/// list: the option builds no module of its own (a menu that only gates
/// directories, or a helper option without objects).
fn table() -> &'static BTreeMap<&'static str, Vec<&'static str>> {
    static T: OnceLock<BTreeMap<&'static str, Vec<&'static str>>> = OnceLock::new();
    T.get_or_init(|| {
        let mut t: BTreeMap<&'static str, Vec<&'static str>> = BTreeMap::new();
        for line in GENERATED.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let mut fields = line.split('\t');
            let option = fields.next().unwrap_or_default();
            let modules = fields.next().unwrap_or_default().split(' ').filter(|m| !m.is_empty());
            t.entry(option).or_default().extend(modules);
        }
        for (option, modules, _) in HAND {
            let have = t.entry(option).or_default();
            have.extend(modules.iter().filter(|m| !have.contains(m)).collect::<Vec<_>>());
        }
        t
    })
}

/// Every module name known for `option` (full `CONFIG_` name), whether or
/// not a given kernel ships it; `None` when the option is not in the map,
/// `Some(&[])` when it builds no module of its own.
pub fn modules_for_option(option: &str) -> Option<&'static [&'static str]> {
    table().get(option).map(Vec::as_slice)
}

/// Every option the map knows, with its module names, in option order.
pub fn known_options() -> impl Iterator<Item = (&'static str, &'static [&'static str])> {
    table().iter().map(|(o, m)| (*o, m.as_slice()))
}

/// The map a check uses: the recipe's entries over the built-in ones.
#[derive(Clone, Debug, Default)]
pub struct OptionModules {
    /// Option → module name, from the recipe (`kernel.option_modules`).
    overrides: BTreeMap<String, String>,
}

impl OptionModules {
    /// The built-in map only.
    pub fn new() -> OptionModules {
        OptionModules::default()
    }

    /// The built-in map with the recipe's entries winning over it.
    pub fn with_overrides(overrides: BTreeMap<String, String>) -> OptionModules {
        OptionModules { overrides }
    }

    /// What to load for `option`, which `modules`' kernel has as `=m`.
    /// A recipe entry is taken as given, and must be a module of the
    /// kernel or built into it. Of the built-in names, those the kernel
    /// ships as modules are loaded; when it ships none of them but builds
    /// some in, there is nothing to load.
    pub fn lookup(&self, option: &str, modules: &ModuleSet) -> ModuleLookup {
        let shipped = |m: &str| modules.get(m).is_some() || modules.is_builtin(m);
        if let Some(m) = self.overrides.get(option) {
            let m = normalize_name(m);
            return match (modules.get(&m).is_some(), modules.is_builtin(&m)) {
                (true, _) => ModuleLookup::Load(vec![m]),
                (false, true) => ModuleLookup::Load(Vec::new()),
                (false, false) => ModuleLookup::NotShipped { modules: vec![m], from_recipe: true },
            };
        }
        let Some(names) = modules_for_option(option) else { return ModuleLookup::Unknown };
        let names: Vec<String> = names.iter().map(|m| normalize_name(m)).collect();
        if !names.is_empty() && !names.iter().any(|m| shipped(m)) {
            return ModuleLookup::NotShipped { modules: names, from_recipe: false };
        }
        ModuleLookup::Load(names.into_iter().filter(|m| modules.get(m).is_some()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_table_parses_and_names_modules_as_the_kernel_does() {
        assert!(GENERATED.starts_with("# Generated by scripts/gen-option-modules"));
        assert_eq!(modules_for_option("CONFIG_EXT4_FS"), Some(&["ext4"][..]));
        assert_eq!(modules_for_option("CONFIG_WIREGUARD"), Some(&["wireguard"][..]));
        // One option, two modules.
        assert_eq!(modules_for_option("CONFIG_VIRTIO"), Some(&["virtio", "virtio_ring"][..]));
        // A compatibility option whose selected option builds the module.
        assert_eq!(modules_for_option("CONFIG_IP_NF_TARGET_MASQUERADE"), Some(&["xt_MASQUERADE"][..]));
        // KBUILD_MODNAME: dashes become underscores.
        assert_eq!(modules_for_option("CONFIG_FW_CFG_SYSFS"), Some(&["qemu_fw_cfg"][..]));
        // A menu that only gates directories builds nothing itself.
        assert_eq!(modules_for_option("CONFIG_RTW88"), Some(&[][..]));
        assert_eq!(modules_for_option("CONFIG_DINV_NOPE"), None);
        // Hand entries add to the generated ones.
        assert_eq!(modules_for_option("CONFIG_MDIO_DEVICE"), Some(&["mdio_bus", "libphy"][..]));
        let mut n = 0;
        for (option, modules) in known_options() {
            n += 1;
            assert!(option.starts_with("CONFIG_") && option.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{option:?}");
            for m in modules {
                assert!(!m.is_empty() && !m.contains('-') && !m.contains('.'), "{option}: {m:?}");
            }
        }
        assert!(n > 10_000, "{n} options");
    }
}
