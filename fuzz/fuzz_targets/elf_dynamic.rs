//! ELF files as the dynamic linker reads them (`dinv_elf::parse`), and the
//! closure of one in a tree that holds it at every path it names (its
//! interpreter, each `DT_NEEDED` in `/usr/lib`), so the closure follows it
//! into itself.
#![no_main]

use dinv_elf::{parse, Closure};
use dinv_fstree::{Meta, Tree, TreePath};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(info) = parse(data) else { return };
    let mut tree = Tree::new();
    let bin = TreePath::new("usr/bin/fuzz");
    tree.write_file(&bin, data.to_vec(), Meta::root(0o755)).expect("a fresh tree");
    let libs = info.needed.iter().map(|n| format!("/usr/lib/{n}"));
    for path in libs.chain(info.interpreter.clone()) {
        if let Ok(p) = TreePath::parse(&path, true) {
            let _ = tree.write_file(&p, data.to_vec(), Meta::root(0o755));
        }
    }
    let _ = Closure::new(&tree).add(&bin);
});
