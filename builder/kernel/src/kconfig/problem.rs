//! The values a config option can have and the problems a check reports:
//! plain data, shared by the checker and the crate's error type.

use std::fmt;

/// The value an option has (or must have).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigValue {
    /// `=y`: built into the kernel image.
    Yes,
    /// `=m`: built as a loadable module.
    Module,
    /// `# CONFIG_X is not set` (or `=n`).
    NotSet,
    /// Any other value (strings keep their quotes, numbers as written).
    Other(String),
}

impl fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigValue::Yes => f.write_str("=y"),
            ConfigValue::Module => f.write_str("=m"),
            ConfigValue::NotSet => f.write_str("is not set"),
            ConfigValue::Other(v) => write!(f, "={v}"),
        }
    }
}

/// Where an option line came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The fragment's name as given to [`Fragment::parse`] (usually its path).
    pub file: String,
    /// 1-based line number.
    pub line: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// Names a kernel in reports: the package (with its version when the caller
/// knows it) and the kernel release (`uname -r`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelId {
    pub package: String,
    pub release: String,
}

impl fmt::Display for KernelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (kernel {})", self.package, self.release)
    }
}

/// Why a required option is not met.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// The kernel's config does not mention the option at all.
    Missing,
    /// The kernel has another value.
    Mismatch { have: ConfigValue },
    /// Required `=y` (or `=m`), the kernel has `=m`, and no module name is
    /// known for the option, so it cannot be loaded.
    UnknownModule,
    /// Required `=y` (or `=m`), the kernel has `=m`, and it has none of the
    /// modules known for the option (`from_recipe`: the recipe's
    /// `kernel.option_modules` named them).
    ModulesNotShipped { modules: Vec<String>, from_recipe: bool },
}

/// One unmet requirement, with everything needed to act on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    pub option: String,
    pub want: ConfigValue,
    pub source: Source,
    pub kernel: KernelId,
    pub kind: ProblemKind,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (o, w, s, k) = (&self.option, &self.want, &self.source, &self.kernel);
        // The way out of both module problems: the recipe names the module.
        let fix = format!("set kernel.option_modules = {{ {o} = \"<module>\" }} in the recipe");
        match &self.kind {
            ProblemKind::Missing => write!(f, "{o} (required {w} by {s}) is missing from the config of {k}"),
            ProblemKind::Mismatch { have } => write!(f, "{o} (required {w} by {s}) is {have} in {k}"),
            ProblemKind::UnknownModule => {
                write!(f, "{o} (required {w} by {s}) is a module in {k}, but dinv-kernel does not know the module's name; {fix}")
            }
            ProblemKind::ModulesNotShipped { modules, from_recipe: true } => write!(
                f,
                "{o} (required {w} by {s}) is a module in {k}, but kernel.option_modules names {} for it, which is neither a module of the package nor built in",
                modules.join(", ")
            ),
            ProblemKind::ModulesNotShipped { modules, from_recipe: false } => write!(
                f,
                "{o} (required {w} by {s}) is a module in {k}, but the package has none of the modules the kernel's Makefiles build for it ({}); {fix}",
                modules.join(", ")
            ),
        }
    }
}

