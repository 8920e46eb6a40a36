//! ELF files as the dynamic linker sees them, and what a set of paths in a
//! filesystem tree needs at run time.
//!
//! - [`parse`]: class, machine, `PT_INTERP`, `DT_NEEDED`, `DT_SONAME`,
//!   `DT_RPATH`, `DT_RUNPATH`; bytes in, no I/O.
//! - [`Closure`]: paths in a [`dinv_fstree::Tree`] plus every symlink
//!   target, interpreter and library they need, found in the directories
//!   ld.so would search (`DT_RPATH`, `DT_RUNPATH`, `/etc/ld.so.conf` and
//!   its includes, musl's path file, the built-in defaults) inside the tree.
//! - `testkit` (feature `testkit`): synthetic ELF files.
//!
//! `dlopen`ed libraries (plugins, QEMU modules) are not in `DT_NEEDED`:
//! callers name them as paths of their own.

mod closure;
mod dynamic;
mod error;
mod search;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use closure::{Closure, Resolved};
pub use dynamic::{is_elf, parse, Class, DynamicInfo, EM_X86_64};
pub use error::{ClosureError, ParseError};
pub use search::system_dirs;
