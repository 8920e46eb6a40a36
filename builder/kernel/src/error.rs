//! Typed errors of the kernel crate; callers match on them, the CLI renders them.

use crate::kconfig::ConfigProblem;

/// Everything that can go wrong while checking a kernel, resolving its
/// modules or building an initramfs.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// A config fragment or `.config` line could not be parsed.
    #[error("{file}:{line}: {why}")]
    ConfigSyntax { file: String, line: usize, why: String },

    /// The kernel does not satisfy the fragments (every problem is listed).
    #[error("kernel config check failed:\n{}", render_problems(.problems))]
    ConfigCheck { problems: Vec<ConfigProblem> },

    /// No kernel, or more than one, where exactly one was expected.
    #[error("{0}")]
    KernelNotFound(String),

    /// The modules directory of a kernel release is missing from the tree.
    #[error("kernel {release}: no modules directory (looked for /lib/modules/{release} and /usr/lib/modules/{release})")]
    NoModulesDir { release: String },

    /// A requested module (or a dependency of one) does not exist.
    #[error("kernel {release}: module {module:?} {why}")]
    ModuleNotFound { release: String, module: String, why: String },

    /// Modules depend on each other in a loop.
    #[error("kernel {release}: module dependency cycle: {}", .cycle.join(" -> "))]
    ModuleCycle { release: String, cycle: Vec<String> },

    /// A module file could not be read, decompressed or parsed.
    #[error("{path}: {why}")]
    ModuleFile { path: String, why: String },

    /// A tree operation failed while assembling output.
    #[error("{context}: {source}")]
    Tree { context: String, source: Box<dinv_fstree::TreeError> },

    /// Reading content or writing output failed.
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

fn render_problems(problems: &[ConfigProblem]) -> String {
    problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
}

impl KernelError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> KernelError {
        let context = context.into();
        move |source| KernelError::Io { context, source }
    }

    pub(crate) fn tree(context: impl Into<String>) -> impl FnOnce(dinv_fstree::TreeError) -> KernelError {
        let context = context.into();
        move |source| KernelError::Tree { context, source: Box::new(source) }
    }
}
