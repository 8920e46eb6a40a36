//! The in-memory filesystem tree of dinv-build.
//!
//! Every package, overlay and generated file lands in one [`Tree`]; every
//! emitter (ext4, cpio, tar layers) reads it. Nodes carry kind, mode,
//! owner, mtime and xattrs; file bytes stay where they already are (the
//! cache's unpacked archives) and are referenced by [`Content`]. Nothing is
//! written to the host filesystem and no root is needed: ownership and
//! device nodes are plain data here.

mod content;
mod error;
mod path;
pub mod tar;
mod tree;

pub use content::{BackingFile, Content, ContentReader};
pub use error::TreeError;
pub use path::{PathError, TreePath};
pub use tree::{Meta, Node, NodeKind, Replace, Tree};
