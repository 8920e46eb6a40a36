//! The tar reader (`dinv_fstree::tar::TarReader`): ustar, PAX (`x`, `g`)
//! and GNU (`L`, `K`, base-256) members, data read or skipped; then the
//! same stream unpacked into a tree. Each input runs as given and with its
//! header checksums repaired (so mutations reach the header parser).
#![no_main]

use std::io::Cursor;
use std::sync::Arc;

use dinv_fstree::tar::{unpack_in_memory, TarReader, UnpackOptions};
use dinv_fstree::{Replace, Tree};
use dinv_fuzz::fix_tar_checksums;
use libfuzzer_sys::fuzz_target;

fn run(data: &[u8]) {
    // Every member with its data read.
    let mut tar = TarReader::new(Cursor::new(data));
    while let Ok(Some(e)) = tar.next_entry() {
        let _ = (tar.position(), e.data_offset, e.xattrs.len());
        if tar.read_data(&e).is_err() {
            break;
        }
    }
    // Every member with its data skipped.
    let mut tar = TarReader::new(Cursor::new(data));
    while let Ok(Some(_)) = tar.next_entry() {}
    // Into a tree, as control members and overlays are.
    let mut tree = Tree::new();
    let opts = UnpackOptions { origin: Arc::from("fuzz"), replace: Replace::Allow, rewrite: None };
    let _ = unpack_in_memory(Cursor::new(data), &mut tree, &opts);
}

fuzz_target!(|data: &[u8]| {
    run(data);
    run(&fix_tar_checksums(data));
});
