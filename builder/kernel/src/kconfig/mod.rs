//! Kernel config fragments and full `.config` files: parsing, merging, and
//! checking a shipped kernel's config against what the fragments require.

use std::collections::BTreeMap;
use std::fmt;

use crate::KernelError;

mod problem;

pub use problem::{ConfigProblem, ConfigValue, KernelId, ProblemKind, Source};

/// One option line, with its origin and the comment that justifies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigOption {
    /// Full name including the `CONFIG_` prefix.
    pub name: String,
    pub value: ConfigValue,
    pub source: Source,
    /// The comment lines directly above the option, joined with spaces.
    pub reason: Option<String>,
}

/// A parsed config fragment (or a full `.config`, which has the same syntax).
#[derive(Clone, Debug)]
pub struct Fragment {
    pub file: String,
    /// Options in file order.
    pub options: Vec<ConfigOption>,
}

impl Fragment {
    /// Parses fragment text; `file` names it in errors and reports. An
    /// option set twice in one fragment is an error (it is always a slip).
    pub fn parse(file: &str, text: &str) -> Result<Fragment, KernelError> {
        let mut options: Vec<ConfigOption> = Vec::new();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut comment: Vec<&str> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let source = Source { file: file.to_string(), line: i + 1 };
            let syntax = |why: String| KernelError::ConfigSyntax { file: file.to_string(), line: i + 1, why };
            if line.is_empty() {
                comment.clear();
                continue;
            }
            let (name, value) = if let Some(rest) = line.strip_prefix('#') {
                let rest = rest.trim();
                match rest.strip_suffix(" is not set") {
                    Some(name) if is_option_name(name) => (name.to_string(), ConfigValue::NotSet),
                    _ => {
                        comment.push(rest);
                        continue;
                    }
                }
            } else {
                let (name, value) = line.split_once('=').ok_or_else(|| syntax(format!("expected CONFIG_X=value or a comment, got {line:?}")))?;
                if !is_option_name(name) {
                    return Err(syntax(format!("{name:?} is not a CONFIG_ option name")));
                }
                let value = match value {
                    "y" => ConfigValue::Yes,
                    "m" => ConfigValue::Module,
                    "n" => ConfigValue::NotSet,
                    "" => return Err(syntax(format!("{name} has an empty value"))),
                    v => ConfigValue::Other(v.to_string()),
                };
                (name.to_string(), value)
            };
            if let Some(first) = seen.insert(name.clone(), i + 1) {
                return Err(syntax(format!("{name} is already set on line {first}")));
            }
            let reason = (!comment.is_empty()).then(|| comment.join(" "));
            comment.clear();
            options.push(ConfigOption { name, value, source, reason });
        }
        Ok(Fragment { file: file.to_string(), options })
    }

    /// Fails on the first option without a comment above it: every option
    /// in our fragments must say why it is there.
    pub fn require_reasons(&self) -> Result<(), KernelError> {
        match self.options.iter().find(|o| o.reason.is_none()) {
            None => Ok(()),
            Some(o) => Err(KernelError::ConfigSyntax {
                file: o.source.file.clone(),
                line: o.source.line,
                why: format!("{} has no comment above it saying why it is needed", o.name),
            }),
        }
    }
}

fn is_option_name(s: &str) -> bool {
    s.len() > "CONFIG_".len()
        && s.starts_with("CONFIG_")
        && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b.is_ascii_lowercase())
}

/// A kernel's full `.config` (e.g. `/boot/config-<release>`).
#[derive(Clone, Debug, Default)]
pub struct KernelConfig {
    values: BTreeMap<String, ConfigValue>,
}

impl KernelConfig {
    /// Parses a full `.config`; `file` names it in syntax errors.
    pub fn parse(file: &str, text: &str) -> Result<KernelConfig, KernelError> {
        let f = Fragment::parse(file, text)?;
        Ok(KernelConfig { values: f.options.into_iter().map(|o| (o.name, o.value)).collect() })
    }

    /// The option's value; `None` when the option does not appear at all
    /// (its dependencies are off, or it does not exist in this kernel).
    pub fn get(&self, name: &str) -> Option<&ConfigValue> {
        self.values.get(name)
    }

    /// True when the option is `=y`.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.get(name) == Some(&ConfigValue::Yes)
    }

    /// Number of options listed.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when nothing was listed.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// A later fragment changing an option an earlier one set.
#[derive(Clone, Debug)]
pub struct Override {
    pub name: String,
    pub previous: ConfigOption,
    pub by: ConfigOption,
}

impl fmt::Display for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({}) overridden by {} ({})", self.name, self.previous.value, self.previous.source, self.by.value, self.by.source)
    }
}

/// Fragments merged in order: later ones win.
#[derive(Clone, Debug, Default)]
pub struct MergedConfig {
    /// The winning line for each option, by name.
    pub options: BTreeMap<String, ConfigOption>,
    /// Every change of value (same value again is not an override).
    pub overrides: Vec<Override>,
}

/// Merges fragments in the order given; later fragments win, and each
/// change of value is recorded.
pub fn merge(fragments: &[Fragment]) -> MergedConfig {
    let mut out = MergedConfig::default();
    for f in fragments {
        for o in &f.options {
            if let Some(prev) = out.options.insert(o.name.clone(), o.clone()) {
                if prev.value != o.value {
                    out.overrides.push(Override { name: o.name.clone(), previous: prev, by: o.clone() });
                }
            }
        }
    }
    out
}

/// How a required option is met.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Satisfaction {
    /// Built in (or, for `is not set`, absent as required).
    Builtin,
    /// `=m`, but there is no module to load: the option builds none of its
    /// own (a menu, a helper option), or only modules built into the kernel.
    NothingToLoad,
    /// Present as a module, which the caller must ship and load.
    Module(String),
    /// A non-tristate value that matches exactly, or a required
    /// `is not set` that is indeed off.
    Matches,
}

/// A module the kernel needs loaded to meet a requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleNeed {
    pub option: String,
    pub module: String,
    pub source: Source,
}

/// What the caller of [`check`] knows about the modules of an option the
/// kernel has as `=m` (see [`crate::option_modules::OptionModules::lookup`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModuleLookup {
    /// Load these; none when the option builds no module of its own or
    /// only modules built into the kernel.
    Load(Vec<String>),
    /// No module name is known for the option.
    Unknown,
    /// The names known for it, none of which the kernel has;
    /// `from_recipe` when the recipe gave them.
    NotShipped { modules: Vec<String>, from_recipe: bool },
}

/// The outcome of [`check`].
#[derive(Clone, Debug)]
pub struct CheckReport {
    pub kernel: KernelId,
    /// Requirements met without further action.
    pub satisfied: Vec<(String, Satisfaction)>,
    /// Requirements met by modules; load these (initramfs or modprobe).
    pub modules: Vec<ModuleNeed>,
    pub problems: Vec<ConfigProblem>,
}

impl CheckReport {
    /// Module names to load, deduplicated, in option-name order.
    pub fn module_names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in &self.modules {
            if !out.contains(&m.module) {
                out.push(m.module.clone());
            }
        }
        out
    }

    /// `Ok(self)` when nothing is wrong, else every problem in one error.
    pub fn into_result(self) -> Result<CheckReport, KernelError> {
        if self.problems.is_empty() {
            Ok(self)
        } else {
            Err(KernelError::ConfigCheck { problems: self.problems })
        }
    }
}

/// Checks a kernel's config against merged requirements. `module_of` says
/// which modules provide an option the kernel has as `=m` (see
/// [`crate::option_modules::OptionModules::lookup`]); an option that
/// builds several needs them all.
pub fn check(required: &MergedConfig, kernel: &KernelConfig, id: &KernelId, module_of: &dyn Fn(&str) -> ModuleLookup) -> CheckReport {
    let mut report = CheckReport { kernel: id.clone(), satisfied: Vec::new(), modules: Vec::new(), problems: Vec::new() };
    for (name, opt) in &required.options {
        let have = kernel.get(name);
        let problem = |kind| ConfigProblem { option: name.clone(), want: opt.value.clone(), source: opt.source.clone(), kernel: id.clone(), kind };
        match (&opt.value, have) {
            (ConfigValue::NotSet, None | Some(ConfigValue::NotSet)) => report.satisfied.push((name.clone(), Satisfaction::Matches)),
            (ConfigValue::NotSet, Some(h)) => report.problems.push(problem(ProblemKind::Mismatch { have: h.clone() })),
            (_, None) => report.problems.push(problem(ProblemKind::Missing)),
            (ConfigValue::Yes | ConfigValue::Module, Some(ConfigValue::Yes)) => report.satisfied.push((name.clone(), Satisfaction::Builtin)),
            (ConfigValue::Yes | ConfigValue::Module, Some(ConfigValue::Module)) => match module_of(name) {
                ModuleLookup::Load(modules) if modules.is_empty() => report.satisfied.push((name.clone(), Satisfaction::NothingToLoad)),
                ModuleLookup::Load(modules) => {
                    report.modules.extend(modules.into_iter().map(|module| ModuleNeed { option: name.clone(), module, source: opt.source.clone() }))
                }
                ModuleLookup::Unknown => report.problems.push(problem(ProblemKind::UnknownModule)),
                ModuleLookup::NotShipped { modules, from_recipe } => report.problems.push(problem(ProblemKind::ModulesNotShipped { modules, from_recipe })),
            },
            (want, Some(h)) if want == h => report.satisfied.push((name.clone(), Satisfaction::Matches)),
            (_, Some(h)) => report.problems.push(problem(ProblemKind::Mismatch { have: h.clone() })),
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "\
# Root disk.
# (two comment lines)
CONFIG_VIRTIO_BLK=y

# Never.
# CONFIG_MODULE_SIG_FORCE is not set
# Loadable.
CONFIG_OVERLAY_FS=m
# A string.
CONFIG_DEFAULT_HOSTNAME=\"dinv\"
";

    fn id() -> KernelId {
        KernelId { package: "linux-image-test 1.0".into(), release: "6.1.0-test".into() }
    }

    #[test]
    fn parses_values_reasons_and_lines() {
        let f = Fragment::parse("a.config", A).unwrap();
        let names: Vec<_> = f.options.iter().map(|o| (o.name.as_str(), o.value.clone(), o.source.line)).collect();
        assert_eq!(
            names,
            [
                ("CONFIG_VIRTIO_BLK", ConfigValue::Yes, 3),
                ("CONFIG_MODULE_SIG_FORCE", ConfigValue::NotSet, 6),
                ("CONFIG_OVERLAY_FS", ConfigValue::Module, 8),
                ("CONFIG_DEFAULT_HOSTNAME", ConfigValue::Other("\"dinv\"".into()), 10),
            ]
        );
        assert_eq!(f.options[0].reason.as_deref(), Some("Root disk. (two comment lines)"));
        assert_eq!(f.options[1].reason.as_deref(), Some("Never."));
        f.require_reasons().unwrap();
    }

    #[test]
    fn rejects_bad_lines_and_missing_reasons() {
        let e = Fragment::parse("x.config", "# ok\nCONFIG_A=y\nVIRTIO=y\n").unwrap_err();
        assert_eq!(e.to_string(), "x.config:3: \"VIRTIO\" is not a CONFIG_ option name");
        let e = Fragment::parse("x.config", "CONFIG_A=y\nCONFIG_A=m\n").unwrap_err();
        assert!(e.to_string().contains("x.config:2") && e.to_string().contains("line 1"), "{e}");
        let f = Fragment::parse("x.config", "# why\nCONFIG_A=y\n\nCONFIG_B=y\n").unwrap();
        let e = f.require_reasons().unwrap_err();
        assert!(e.to_string().starts_with("x.config:4: CONFIG_B has no comment"), "{e}");
    }

    #[test]
    fn merge_later_wins_and_reports_overrides() {
        let a = Fragment::parse("a.config", "# a\nCONFIG_X=y\n# a\nCONFIG_Y=m\n").unwrap();
        let b = Fragment::parse("b.config", "# b\nCONFIG_X=m\n# b\nCONFIG_Y=m\n").unwrap();
        let m = merge(&[a, b]);
        assert_eq!(m.options["CONFIG_X"].value, ConfigValue::Module);
        assert_eq!(m.options["CONFIG_X"].source.file, "b.config");
        assert_eq!(m.overrides.len(), 1, "same value again is not an override");
        assert_eq!(m.overrides[0].to_string(), "CONFIG_X: =y (a.config:2) overridden by =m (b.config:2)");
    }

    #[test]
    fn check_classifies_every_case() {
        let req = Fragment::parse(
            "req.config",
            "# 1\nCONFIG_BUILTIN=y\n# 2\nCONFIG_AS_MOD=y\n# 3\nCONFIG_WANT_M=m\n# 4\nCONFIG_GONE=y\n# 5\n# CONFIG_OFF is not set\n# 6\n# CONFIG_BAD_ON is not set\n# 7\nCONFIG_NOMAP=y\n# 8\nCONFIG_DISABLED=y\n# 9\nCONFIG_HZ=250\n# 10\nCONFIG_TWO=m\n# 11\nCONFIG_MENU=m\n# 12\nCONFIG_ELSEWHERE=m\n",
        )
        .unwrap();
        let kernel = KernelConfig::parse(
            "config-6.1.0-test",
            "CONFIG_BUILTIN=y\nCONFIG_AS_MOD=m\nCONFIG_WANT_M=y\nCONFIG_BAD_ON=m\nCONFIG_NOMAP=m\n# CONFIG_DISABLED is not set\nCONFIG_HZ=250\nCONFIG_TWO=m\nCONFIG_MENU=m\nCONFIG_ELSEWHERE=m\n",
        )
        .unwrap();
        let map = |o: &str| match o {
            "CONFIG_AS_MOD" => ModuleLookup::Load(vec!["as_mod".into()]),
            "CONFIG_TWO" => ModuleLookup::Load(vec!["two_a".into(), "two_b".into()]),
            "CONFIG_MENU" => ModuleLookup::Load(vec![]),
            "CONFIG_ELSEWHERE" => ModuleLookup::NotShipped { modules: vec!["old_name".into()], from_recipe: false },
            _ => ModuleLookup::Unknown,
        };
        let r = check(&merge(&[req]), &kernel, &id(), &map);
        let need = |option: &str, module: &str, line| ModuleNeed { option: option.into(), module: module.into(), source: Source { file: "req.config".into(), line } };
        assert_eq!(r.modules, [need("CONFIG_AS_MOD", "as_mod", 4), need("CONFIG_TWO", "two_a", 20), need("CONFIG_TWO", "two_b", 20)]);
        assert_eq!(r.module_names(), ["as_mod", "two_a", "two_b"]);
        let sat: BTreeMap<_, _> = r.satisfied.iter().cloned().collect();
        assert_eq!(sat["CONFIG_BUILTIN"], Satisfaction::Builtin);
        assert_eq!(sat["CONFIG_WANT_M"], Satisfaction::Builtin);
        assert_eq!(sat["CONFIG_OFF"], Satisfaction::Matches);
        assert_eq!(sat["CONFIG_HZ"], Satisfaction::Matches);
        assert_eq!(sat["CONFIG_MENU"], Satisfaction::NothingToLoad);
        let probs: BTreeMap<_, _> = r.problems.iter().map(|p| (p.option.as_str(), p.kind.clone())).collect();
        assert_eq!(probs.len(), 5);
        assert_eq!(probs["CONFIG_GONE"], ProblemKind::Missing);
        assert_eq!(probs["CONFIG_BAD_ON"], ProblemKind::Mismatch { have: ConfigValue::Module });
        assert_eq!(probs["CONFIG_NOMAP"], ProblemKind::UnknownModule);
        assert_eq!(probs["CONFIG_DISABLED"], ProblemKind::Mismatch { have: ConfigValue::NotSet });
        assert_eq!(probs["CONFIG_ELSEWHERE"], ProblemKind::ModulesNotShipped { modules: vec!["old_name".into()], from_recipe: false });
        let msg = r.into_result().unwrap_err().to_string();
        assert!(
            msg.contains("CONFIG_GONE (required =y by req.config:8) is missing from the config of linux-image-test 1.0 (kernel 6.1.0-test)"),
            "{msg}"
        );
        // Both module problems say how the recipe gets out of them.
        assert!(
            msg.contains("CONFIG_NOMAP (required =y by req.config:14) is a module in linux-image-test 1.0 (kernel 6.1.0-test), but dinv-kernel does not know the module's name; set kernel.option_modules = { CONFIG_NOMAP = \"<module>\" } in the recipe"),
            "{msg}"
        );
        assert!(
            msg.contains("none of the modules the kernel's Makefiles build for it (old_name); set kernel.option_modules = { CONFIG_ELSEWHERE = \"<module>\" } in the recipe"),
            "{msg}"
        );
    }
}
