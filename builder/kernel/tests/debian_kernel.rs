//! Against the real Debian kernel package (linux-image-amd64's target):
//! config fragments, module closure, depmod files, initramfs.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use dinv_fstree::{Content, TreePath};
use dinv_kernel::*;

fn fragments() -> Vec<Fragment> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kernel-configs");
    let mut paths: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "config")).collect();
    paths.sort();
    assert!(paths.len() >= 5, "expected the fragments in {dir:?}");
    paths
        .iter()
        .map(|p| {
            let name = format!("kernel-configs/{}", p.file_name().unwrap().to_string_lossy());
            let f = Fragment::parse(&name, &std::fs::read_to_string(p).unwrap()).unwrap();
            f.require_reasons().unwrap();
            f
        })
        .collect()
}

#[test]
fn our_fragments_hold_for_the_debian_kernel() {
    let k = common::debian_kernel();
    let pkg = find_kernel(&k.tree).unwrap();
    assert_eq!(pkg.id().package, format!("{} {}", k.package, k.version));
    let merged = merge(&fragments());
    assert!(merged.overrides.is_empty(), "fragments disagree: {:?}", merged.overrides);
    let report = check(&merged, pkg.require_config().unwrap(), &pkg.id(), &option_modules::module_for_option).into_result().unwrap();
    let modules = ModuleSet::load(&k.tree, &pkg.release).unwrap();
    let names = report.module_names();
    for want in ["virtio_mmio", "virtio_blk", "virtio_net", "ext4", "overlay", "9pnet_virtio", "qemu_fw_cfg", "br_netfilter", "xt_MASQUERADE"] {
        assert!(names.iter().any(|n| n == want), "{want} not reported as a module: {names:?}");
    }
    // Every reported module exists, and the whole set resolves.
    for n in &names {
        assert!(modules.get(n).is_some(), "{n} reported for {} but not shipped", pkg.release);
    }
    let c = modules.closure(&names).unwrap();
    assert!(c.modules.len() > names.len());
    // Every table entry whose option Debian builds as a module names a real module.
    let cfg = pkg.require_config().unwrap();
    for (opt, m) in option_modules::known_options() {
        if cfg.get(opt) == Some(&ConfigValue::Module) {
            assert!(modules.get(m).is_some(), "option_modules: {opt} -> {m}, but {} has no such module", pkg.release);
        }
    }
}

#[test]
fn a_missing_option_names_option_fragment_line_and_kernel() {
    let k = common::debian_kernel();
    let pkg = find_kernel(&k.tree).unwrap();
    let mut all = fragments();
    all.push(Fragment::parse("kernel-configs/extra.config", "# A real option.\nCONFIG_EXT4_FS=m\n\n# Does not exist.\nCONFIG_DINV_NO_SUCH_OPTION=y\n").unwrap());
    let err = check(&merge(&all), pkg.require_config().unwrap(), &pkg.id(), &option_modules::module_for_option).into_result().unwrap_err();
    let KernelError::ConfigCheck { problems } = &err else { panic!("{err}") };
    assert_eq!(problems.len(), 1, "{err}");
    let msg = err.to_string();
    let want = format!(
        "CONFIG_DINV_NO_SUCH_OPTION (required =y by kernel-configs/extra.config:5) is missing from the config of {} {} (kernel {})",
        k.package, k.version, pkg.release
    );
    assert!(msg.contains(&want), "{msg}\nwanted: {want}");
}

fn modinfo_depends(file: &Path) -> Vec<String> {
    let out = Command::new("modinfo").args(["-F", "depends"]).arg(file).output().expect("modinfo (kmod) is needed: apt-get install -y kmod");
    assert!(out.status.success(), "modinfo {file:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().split(',').filter(|s| !s.is_empty()).map(normalize_name).collect()
}

#[test]
fn closure_matches_modinfo_and_orders_dependencies_first() {
    let k = common::debian_kernel();
    let pkg = find_kernel(&k.tree).unwrap();
    let set = ModuleSet::load(&k.tree, &pkg.release).unwrap();
    assert!(!set.has_modules_dep(), "Debian's package ships no modules.dep; this test is about computing it");
    assert!(set.len() > 1000, "{} modules", set.len());
    let want = ["virtio_mmio", "virtio_blk", "virtio_net", "virtio_console", "9pnet_virtio", "9p", "ext4", "overlay"];
    let c = set.closure(&want).unwrap();
    let pos = |n: &str| c.modules.iter().position(|m| m == n).unwrap_or_else(|| panic!("{n} missing from {:?}", c.modules));
    for w in want {
        pos(w);
    }
    assert!(pos("virtio_ring") < pos("virtio") && pos("virtio") < pos("virtio_mmio"), "{:?}", c.modules);
    for d in ["jbd2", "mbcache", "crc16"] {
        assert!(pos(d) < pos("ext4"), "{d} after ext4: {:?}", c.modules);
    }
    // ext4's softdep pre: crypto-crc32c resolves through aliases.
    assert!(pos("crc32c_generic") < pos("ext4"), "{:?}", c.modules);

    // Cross-check every module's dependencies with kmod's modinfo.
    let tmp = tempfile::tempdir().unwrap();
    for name in &c.modules {
        let m = set.get(name).unwrap();
        let file = tmp.path().join(m.rel.rsplit('/').next().unwrap());
        std::fs::write(&file, m.content().to_vec().unwrap()).unwrap();
        let theirs = modinfo_depends(&file);
        let ours = set.depends(m).unwrap();
        assert_eq!(ours, theirs, "depends of {name}");
        for d in &ours {
            assert!(pos(d) < pos(name), "{d} must load before {name}: {:?}", c.modules);
        }
    }
    // Deterministic.
    assert_eq!(set.closure(&want).unwrap(), c);
}

fn dep_map(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(m, d)| (m.trim().to_string(), d.split_whitespace().map(str::to_string).collect()))
        .collect()
}

fn line_set(text: &str) -> BTreeSet<String> {
    text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).map(str::to_string).collect()
}

#[test]
fn depmod_files_agree_with_kmod_depmod() {
    let k = common::debian_kernel();
    let pkg = find_kernel(&k.tree).unwrap();
    let set = ModuleSet::load(&k.tree, &pkg.release).unwrap();
    let t = Instant::now();
    let files = depmod_files(&set).unwrap();
    eprintln!("depmod_files over {} modules: {:?}", set.len(), t.elapsed());
    let ours = |n: &str| String::from_utf8(files.iter().find(|f| f.path.file_name() == n).unwrap().bytes.clone()).unwrap();

    // depmod writes into the unpacked copy (kmod 30 has no --outdir).
    let root = common::debian_kernel_on_disk();
    let st = Command::new("depmod")
        .arg("-b")
        .arg(&root)
        .arg(&pkg.release)
        .status()
        .expect("depmod (kmod) is needed: apt-get install -y kmod");
    assert!(st.success());
    let theirs = |n: &str| std::fs::read_to_string(root.join("lib/modules").join(&pkg.release).join(n)).unwrap();
    let (a, b) = (dep_map(&ours("modules.dep")), dep_map(&theirs("modules.dep")));
    assert_eq!(a.len(), b.len());
    for (m, deps) in &b {
        assert_eq!(a.get(m), Some(deps), "modules.dep line of {m}");
    }
    assert_eq!(line_set(&ours("modules.alias")), line_set(&theirs("modules.alias")));
    assert_eq!(line_set(&ours("modules.softdep")), line_set(&theirs("modules.softdep")));
    // kmod 30 writes modules.builtin.alias only as .bin; check ours is sane.
    let builtin_alias = ours("modules.builtin.alias");
    assert!(builtin_alias.lines().count() > 10);
    assert!(builtin_alias.lines().all(|l| l.starts_with("alias ") && l.split(' ').count() == 3), "{builtin_alias}");
    // Debian ships modules.builtin; we leave it alone.
    assert!(files.iter().all(|f| f.path.file_name() != "modules.builtin"));
}

#[test]
fn initramfs_for_the_debian_kernel() {
    let k = common::debian_kernel();
    let pkg = find_kernel(&k.tree).unwrap();
    let set = ModuleSet::load(&k.tree, &pkg.release).unwrap();
    let spec = InitramfsSpec {
        init_binary: Content::from_bytes(b"\x7fELF not really".to_vec()),
        modules: &set,
        load: BOOT_MODULES.iter().map(|s| s.to_string()).collect(),
        config: InitramfsConfig::default(),
        mtime: 1_700_000_000,
    };
    let ir = build_initramfs(&spec).unwrap();
    let list = String::from_utf8(ir.tree.read_file(&TreePath::new(initramfs::MODULES_PATH)).unwrap()).unwrap();
    let names: Vec<String> = list
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| normalize_name(l.rsplit('/').next().unwrap().trim_end_matches(".ko")))
        .collect();
    assert_eq!(names, ir.closure.modules);
    assert_eq!(&names[..3], ["virtio_ring", "virtio", "virtio_mmio"]);
    assert_eq!(names.last().unwrap(), "ext4");
    let a = ir.to_cpio().unwrap();
    assert_eq!(a, build_initramfs(&spec).unwrap().to_cpio().unwrap());
    eprintln!("initramfs: {} modules, {} bytes gzipped", names.len(), a.len());
}

#[test]
fn prepare_guest_kernel_in_one_call() {
    let k = common::debian_kernel();
    let frags = fragments();
    let mut spec = GuestKernelSpec {
        fragments: &frags,
        init_binary: Content::from_bytes(b"\x7fELF init".to_vec()),
        package_version: None,
        initramfs_loads_all: false,
        extra_initramfs_modules: Vec::new(),
        config: InitramfsConfig::default(),
        mtime: 0,
    };
    let g = prepare_guest_kernel(&k.tree, &spec).unwrap();
    assert!(bzimage_release(&g.vmlinuz.to_vec().unwrap()[..0x10000]).as_deref() == Some(g.release.as_str()));
    assert_eq!(g.initramfs_modules.last().map(String::as_str), Some("ext4"));
    assert!(g.guest_modules.iter().any(|m| m == "overlay") && !g.guest_modules.iter().any(|m| m == "virtio_blk"), "{:?}", g.guest_modules);
    assert!(g.guest_files.iter().any(|f| f.path.as_str() == format!("lib/modules/{}/modules.dep", g.release)));
    spec.initramfs_loads_all = true;
    let all = prepare_guest_kernel(&k.tree, &spec).unwrap();
    assert!(all.guest_modules.is_empty(), "{:?}", all.guest_modules);
    assert!(all.initramfs_modules.iter().any(|m| m == "br_netfilter") && all.initramfs.len() > g.initramfs.len());
}
