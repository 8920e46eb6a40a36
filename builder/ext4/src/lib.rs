//! Deterministic ext4 image writer.
//!
//! [`write_image`] lays a [`dinv_fstree::Tree`] out as an ext4 filesystem
//! in a sparse image file, with no root, loop device or host tool. It is a
//! write-once writer: metadata (bitmaps, inode tables, journal) is packed at
//! the front (flex_bg), file data follows contiguously in inode order, and
//! all-zero blocks become holes. Same tree and options give the same bytes.
//!
//! Features: has_journal (optional), ext_attr, dir_index (linear
//! directories; the kernel indexes them as they grow), filetype, extent,
//! 64bit, flex_bg, sparse_super, large_file, huge_file, dir_nlink,
//! extra_isize, metadata_csum (optional).
//!
//! ```no_run
//! use dinv_ext4::{write_image, Ext4Options};
//! # fn main() -> Result<(), dinv_ext4::Ext4Error> {
//! let tree = dinv_fstree::Tree::new();
//! let opts = Ext4Options { label: "dinv-root".into(), ..Ext4Options::from_seed("recipe-hash", 1_700_000_000) };
//! let report = write_image(&tree, std::path::Path::new("rootfs.ext4"), &opts)?;
//! println!("{} bytes, {} inodes used", report.size, report.inodes_used);
//! # Ok(()) }
//! ```

mod alloc;
mod csum;
mod dir;
mod error;
mod extent;
mod group;
mod inode;
mod journal;
mod layout;
mod le;
mod options;
mod out;
mod plan;
mod superblock;
mod report;
mod writer;
mod xattr;

pub use error::Ext4Error;
pub use options::{ids_from_seed, Ext4Options};
pub use report::Ext4Report;
pub use writer::write_image;

