//! Kernel module ELF files: `.modinfo` (`dinv_kernel::ModInfo::from_elf`),
//! and, through a module tree (`ModuleSet::load`), the exported and needed
//! symbols depmod reads (`ModuleFile::exported_symbols`/`needed_symbols`,
//! kernel/src/elf.rs) and depmod's generated files. The input is the
//! uncompressed `.ko`.
#![no_main]

use dinv_fstree::{Meta, Tree, TreePath};
use dinv_fuzz::KERNEL_RELEASE;
use dinv_kernel::{depmod_files, parse_builtin_modinfo, ModInfo, ModuleSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ModInfo::from_elf(data);
    let _ = ModInfo::parse_section(data);
    let _ = parse_builtin_modinfo(data);
    let mut tree = Tree::new();
    let path = TreePath::new(&format!("lib/modules/{KERNEL_RELEASE}/kernel/fuzz.ko"));
    tree.write_file(&path, data.to_vec(), Meta::root(0o644)).expect("a fresh tree");
    let Ok(set) = ModuleSet::load(&tree, KERNEL_RELEASE) else { return };
    for m in set.iter() {
        let _ = m.info();
        let _ = m.exported_symbols();
        let _ = m.needed_symbols();
    }
    let _ = depmod_files(&set);
    let _ = set.closure(&["fuzz"]);
});
