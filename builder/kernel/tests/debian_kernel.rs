//! Against the real Debian kernel package (linux-image-amd64's target):
//! config fragments, module closure, depmod files, initramfs.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use dinv_fstree::{Content, TreePath};
use dinv_kernel::*;

fn fragments() -> Vec<Fragment> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kernel-configs");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "config"))
        .collect();
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
    let modules = ModuleSet::load(&k.tree, &pkg.release).unwrap();
    let map = OptionModules::new();
    let report = check(&merged, pkg.require_config().unwrap(), &pkg.id(), &|o| map.lookup(o, &modules))
        .into_result()
        .unwrap();
    let names = report.module_names();
    for want in [
        "virtio_mmio",
        "virtio_blk",
        "virtio_net",
        "ext4",
        "overlay",
        "9pnet_virtio",
        "qemu_fw_cfg",
        "br_netfilter",
        "xt_MASQUERADE",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not reported as a module: {names:?}");
    }
    // Every reported module exists, and the whole set resolves.
    for n in &names {
        assert!(modules.get(n).is_some(), "{n} reported for {} but not shipped", pkg.release);
    }
    let c = modules.closure(&names).unwrap();
    assert!(c.modules.len() > names.len());
}

/// The config lines of `cfg` set to `=m`, by option name.
fn module_options(config_text: &str) -> Vec<String> {
    config_text.lines().filter_map(|l| l.strip_suffix("=m")).map(str::to_string).collect()
}

/// The generated map covers the packaged kernel: every option Debian
/// builds as a module is in it, and for each, the kernel has one of the
/// modules it names (or the option builds no module of its own), so a
/// fragment may require any of them.
#[test]
fn the_option_map_covers_every_module_option_of_the_debian_kernel() {
    let k = common::debian_kernel();
    let pkg = find_kernel(&k.tree).unwrap();
    let modules = ModuleSet::load(&k.tree, &pkg.release).unwrap();
    let text = String::from_utf8(k.tree.read_file(pkg.config_path.as_ref().unwrap()).unwrap()).unwrap();
    let options = module_options(&text);
    assert!(options.len() > 3000, "{} options are =m in {}", options.len(), pkg.release);
    let map = OptionModules::new();
    let (mut unknown, mut unshipped, mut loads) = (Vec::new(), Vec::new(), 0);
    for o in &options {
        match map.lookup(o, &modules) {
            ModuleLookup::Unknown => unknown.push(o.clone()),
            ModuleLookup::NotShipped { modules, .. } => unshipped.push(format!("{o} ({})", modules.join(" "))),
            ModuleLookup::Load(m) => loads += m.len(),
        }
    }
    assert!(unknown.is_empty(), "not in option_modules.tsv (rerun scripts/gen-option-modules): {unknown:?}");
    assert!(unshipped.is_empty(), "{} ships none of their modules: {unshipped:?}", pkg.release);
    // Nearly every shipped module is some =m option's.
    assert!(loads > modules.len() * 9 / 10, "{loads} modules named for {} shipped", modules.len());
}

/// A recipe asking for WireGuard, on the Debian kernel: `=m` there, and
/// found by the generated map, module and dependencies included.
#[test]
fn wireguard_as_a_module_with_the_generated_map() {
    let k = common::debian_kernel();
    let mut frags = fragments();
    frags.push(Fragment::parse("kernel-configs/wireguard.config", "# VPN tunnels.\nCONFIG_WIREGUARD=m\n").unwrap());
    let spec = PlanSpec { fragments: &frags, package_version: None, initramfs_loads_all: false, extra_initramfs_modules: Vec::new(), option_modules: OptionModules::new() };
    let mut plan = plan_guest_kernel(&k.tree, &spec).unwrap();
    let need: Vec<_> = plan.report.modules.iter().filter(|m| m.option == "CONFIG_WIREGUARD").map(|m| m.module.as_str()).collect();
    assert_eq!(need, ["wireguard"]);
    assert!(plan.guest_modules.iter().any(|m| m == "wireguard"), "{:?}", plan.guest_modules);
    plan.trim_modules::<&str>(&[]).unwrap();
    let c = plan.modules.closure(&["wireguard"]).unwrap();
    for dep in ["udp_tunnel", "ip6_udp_tunnel", "libcurve25519_generic"] {
        assert!(c.modules.iter().any(|m| m == dep), "{dep} not kept for wireguard: {:?}", c.modules);
    }
    let dep = String::from_utf8(plan.guest_files.iter().find(|f| f.path.file_name() == "modules.dep").unwrap().bytes.clone()).unwrap();
    assert!(dep.lines().any(|l| l.starts_with("kernel/drivers/net/wireguard/wireguard.ko")), "wireguard missing from modules.dep");
}

/// The recipe's `kernel.option_modules`: the way out for an option the
/// map does not know (here a made-up name for WireGuard's option, as a
/// newer kernel might rename it), and it wins over the generated map.
#[test]
fn the_recipe_names_the_module_of_an_option_the_map_does_not_know() {
    let k = common::debian_kernel();
    let pkg = find_kernel(&k.tree).unwrap();
    let config = pkg.config_path.clone().unwrap();
    let mut tree = k.tree.clone();
    let mut text = tree.read_file(&config).unwrap();
    text.extend_from_slice(b"CONFIG_DINV_WIREGUARD_NEXT=m\n");
    tree.remove(&config);
    tree.write_file(&config, text, dinv_fstree::Meta::root(0o644)).unwrap();

    let mut frags = fragments();
    frags.push(Fragment::parse("kernel-configs/wireguard.config", "# VPN tunnels.\nCONFIG_DINV_WIREGUARD_NEXT=m\n# And by its name.\nCONFIG_WIREGUARD=m\n").unwrap());
    let check_with = |entries: &[(&str, &str)]| {
        let map = OptionModules::with_overrides(entries.iter().map(|(o, m)| (o.to_string(), m.to_string())).collect());
        check_guest_kernel(&tree, &frags, None, &map)
    };
    let err = check_with(&[]).err().expect("an option without a module name is an error");
    let KernelError::ConfigCheck { problems } = &err else { panic!("{err}") };
    assert_eq!(problems.len(), 1, "{err}");
    assert!(
        err.to_string().contains("CONFIG_DINV_WIREGUARD_NEXT (required =m by kernel-configs/wireguard.config:2) is a module in")
            && err.to_string().contains("set kernel.option_modules = { CONFIG_DINV_WIREGUARD_NEXT = \"<module>\" } in the recipe"),
        "{err}"
    );

    let ok = check_with(&[("CONFIG_DINV_WIREGUARD_NEXT", "wireguard")]).unwrap();
    let need = |option: &str| ok.report.modules.iter().filter(|m| m.option == option).map(|m| m.module.clone()).collect::<Vec<_>>();
    assert_eq!(need("CONFIG_DINV_WIREGUARD_NEXT"), ["wireguard"]);
    assert_eq!(need("CONFIG_WIREGUARD"), ["wireguard"]);

    // The recipe wins over the generated map, and a name the kernel does
    // not have is an error naming the recipe key.
    let ok = check_with(&[("CONFIG_DINV_WIREGUARD_NEXT", "wireguard"), ("CONFIG_WIREGUARD", "udp-tunnel")]).unwrap();
    assert_eq!(ok.report.modules.iter().find(|m| m.option == "CONFIG_WIREGUARD").unwrap().module, "udp_tunnel");
    let err = check_with(&[("CONFIG_DINV_WIREGUARD_NEXT", "wireguardd")]).err().expect("a module the kernel lacks");
    assert!(err.to_string().contains("kernel.option_modules names wireguardd for it, which is neither a module of the package nor built in"), "{err}");
}

#[test]
fn a_missing_option_names_option_fragment_line_and_kernel() {
    let k = common::debian_kernel();
    let pkg = find_kernel(&k.tree).unwrap();
    let mut all = fragments();
    all.push(
        Fragment::parse(
            "kernel-configs/extra.config",
            "# A real option.\nCONFIG_EXT4_FS=m\n\n# Does not exist.\nCONFIG_DINV_NO_SUCH_OPTION=y\n",
        )
        .unwrap(),
    );
    let modules = ModuleSet::load(&k.tree, &pkg.release).unwrap();
    let map = OptionModules::new();
    let err = check(&merge(&all), pkg.require_config().unwrap(), &pkg.id(), &|o| map.lookup(o, &modules))
        .into_result()
        .unwrap_err();
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
    let out = Command::new("modinfo")
        .args(["-F", "depends"])
        .arg(file)
        .output()
        .expect("modinfo (kmod) is needed: apt-get install -y kmod");
    assert!(out.status.success(), "modinfo {file:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(normalize_name)
        .collect()
}

#[test]
fn closure_matches_modinfo_and_orders_dependencies_first() {
    let k = common::debian_kernel();
    let pkg = find_kernel(&k.tree).unwrap();
    let set = ModuleSet::load(&k.tree, &pkg.release).unwrap();
    assert!(!set.has_modules_dep(), "Debian's package ships no modules.dep; this test is about computing it");
    assert!(set.len() > 1000, "{} modules", set.len());
    let want = [
        "virtio_mmio",
        "virtio_blk",
        "virtio_net",
        "virtio_console",
        "9pnet_virtio",
        "9p",
        "ext4",
        "overlay",
    ];
    let c = set.closure(&want).unwrap();
    let pos = |n: &str| {
        c.modules
            .iter()
            .position(|m| m == n)
            .unwrap_or_else(|| panic!("{n} missing from {:?}", c.modules))
    };
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

const INPUTS: [&str; 3] = ["modules.order", "modules.builtin", "modules.builtin.modinfo"];

/// The Debian kernel's modules directory written to disk from the tree
/// (module files, `modules.order`, `modules.builtin`,
/// `modules.builtin.modinfo`; nothing else), once, and cached with the
/// download.
fn modules_on_disk() -> &'static Path {
    static D: OnceLock<std::path::PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let k = common::debian_kernel();
        let pkg = find_kernel(&k.tree).unwrap();
        let set = ModuleSet::load(&k.tree, &pkg.release).unwrap();
        let dest = common::cache_dir().join(format!("{}.modules", k.package));
        if !dest.join(".done").exists() {
            let tmp = common::cache_dir().join(format!("{}.modules.{}", k.package, std::process::id()));
            for m in set.iter() {
                let file = tmp.join(&m.rel);
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(&file, m.content().to_vec().unwrap()).unwrap();
            }
            for name in INPUTS {
                let bytes = k
                    .tree
                    .read_file(&set.dir().join(name).unwrap())
                    .unwrap_or_else(|| panic!("the Debian package ships {name}"));
                std::fs::write(tmp.join(name), bytes).unwrap();
            }
            std::fs::write(tmp.join(".done"), "").unwrap();
            let _ = std::fs::rename(&tmp, &dest);
            let _ = std::fs::remove_dir_all(&tmp);
        }
        dest
    })
}

/// A fresh root (removed when dropped) whose `lib/modules/RELEASE` holds
/// the kernel's module files (hard links into the cache) and its inputs.
fn fresh_root(release: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir_in(common::cache_dir()).unwrap();
    let dest = root.path().join("lib/modules").join(release);
    let src = modules_on_disk();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let to = dest.join(p.strip_prefix(src).unwrap());
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap() != ".done" {
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                if INPUTS.iter().any(|i| p.file_name().unwrap() == *i) {
                    std::fs::copy(&p, &to).unwrap();
                } else {
                    std::fs::hard_link(&p, &to).or_else(|_| std::fs::copy(&p, &to).map(|_| ())).unwrap();
                }
            }
        }
    }
    root
}

/// A fresh root indexed by the host's kmod `depmod -b ROOT RELEASE`.
fn depmod_reference(release: &str) -> tempfile::TempDir {
    let root = fresh_root(release);
    let out = Command::new("depmod")
        .arg("-b")
        .arg(root.path())
        .arg(release)
        .output()
        .expect("depmod (kmod) is needed: apt-get install -y kmod");
    assert!(out.status.success(), "depmod: {}", String::from_utf8_lossy(&out.stderr));
    root
}

/// Where two byte strings first differ, with a little context of each, or
/// `None` when they are equal.
fn first_difference(ours: &[u8], theirs: &[u8]) -> Option<String> {
    if ours == theirs {
        return None;
    }
    let at = ours.iter().zip(theirs).position(|(a, b)| a != b).unwrap_or(ours.len().min(theirs.len()));
    let binary = ours.iter().chain(theirs).any(|b| *b == 0 || *b > 0x7e || (*b < 0x20 && *b != b'\n'));
    let show = |b: &[u8]| {
        if binary {
            let from = at.saturating_sub(16);
            let to = (at + 32).min(b.len());
            format!(
                "bytes {from}..{to}: {}",
                b.get(from..to)
                    .unwrap_or_default()
                    .iter()
                    .map(|x| format!("{x:02x}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        } else {
            // The lines around the difference.
            let start = b[..at.min(b.len())].iter().rposition(|c| *c == b'\n').map_or(0, |i| i + 1);
            let start = b[..start.saturating_sub(1)].iter().rposition(|c| *c == b'\n').map_or(0, |i| i + 1);
            let end = b[at.min(b.len())..]
                .iter()
                .enumerate()
                .filter(|(_, c)| **c == b'\n')
                .nth(1)
                .map_or(b.len(), |(i, _)| at + i + 1);
            format!("{:?}", String::from_utf8_lossy(&b[start..end]))
        }
    };
    Some(format!(
        "first difference at byte {at} (ours {} bytes, depmod's {} bytes)\n    ours:    {}\n    depmod:  {}",
        ours.len(),
        theirs.len(),
        show(ours),
        show(theirs)
    ))
}

#[test]
fn depmod_files_are_byte_identical_to_kmod_depmod() {
    let k = common::debian_kernel();
    let pkg = find_kernel(&k.tree).unwrap();
    let set = ModuleSet::load(&k.tree, &pkg.release).unwrap();
    assert!(
        set.modules_order().is_some() && set.has_modules_builtin(),
        "Debian ships modules.order and modules.builtin"
    );
    let t = Instant::now();
    let files = depmod_files(&set).unwrap();
    eprintln!("depmod_files over {} modules: {:?}", set.len(), t.elapsed());
    let ours = |n: &str| {
        &files
            .iter()
            .find(|f| f.path.file_name() == n)
            .unwrap_or_else(|| panic!("we wrote no {n}"))
            .bytes
    };

    let reference = depmod_reference(&pkg.release);
    let theirs_dir = reference.path().join("lib/modules").join(&pkg.release);
    let mut problems = Vec::new();
    for name in KMOD_DEPMOD_FILES {
        let theirs = std::fs::read(theirs_dir.join(name)).unwrap_or_else(|e| panic!("depmod wrote no {name}: {e}"));
        match first_difference(ours(name), &theirs) {
            None => eprintln!("{name}: identical ({} bytes)", theirs.len()),
            Some(d) => problems.push(format!("{name}: {d}")),
        }
    }
    // Files kmod 34 writes or we add for other readers: compared when this
    // depmod writes them too (kmod 30 writes neither).
    for name in ["modules.weakdep", "modules.builtin.alias"] {
        if let Ok(theirs) = std::fs::read(theirs_dir.join(name)) {
            if let Some(d) = first_difference(ours(name), &theirs) {
                problems.push(format!("{name}: {d}"));
            }
        }
    }
    assert!(problems.is_empty(), "differences from kmod's depmod:\n{}", problems.join("\n"));

    // Not trivially equal: real content in every index.
    let text = |n: &str| String::from_utf8(ours(n).clone()).unwrap();
    assert_eq!(text("modules.dep").lines().count(), set.len());
    assert!(text("modules.alias").lines().count() > 10_000);
    assert!(text("modules.symbols").lines().count() > 10_000);
    assert!(
        text("modules.devname").starts_with("# Device nodes to trigger on-demand module loading.\n"),
        "{}",
        text("modules.devname")
    );
    assert!(ours("modules.builtin.alias.bin").len() > 1000 && ours("modules.builtin.bin").len() > 1000);
    // Debian ships modules.builtin; we leave it alone.
    assert!(files.iter().all(|f| f.path.file_name() != "modules.builtin"));
}

/// Lines of `modprobe -d ROOT -S RELEASE --show-depends WHAT`, with the
/// host's configuration replaced by an empty one.
fn show_depends(root: &Path, release: &str, what: &str) -> Vec<String> {
    let empty = root.join("empty.conf");
    std::fs::write(&empty, "").unwrap();
    let out = Command::new("modprobe")
        .arg("-C")
        .arg(&empty)
        .arg("-d")
        .arg(root)
        .args(["-S", release, "--show-depends", what])
        .output()
        .expect("modprobe (kmod) is needed: apt-get install -y kmod");
    assert!(out.status.success(), "modprobe --show-depends {what}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim_end().replace(&root.display().to_string(), "ROOT"))
        .collect()
}

#[test]
fn kmod_modprobe_reads_our_indexes() {
    let k = common::debian_kernel();
    let pkg = find_kernel(&k.tree).unwrap();
    let set = ModuleSet::load(&k.tree, &pkg.release).unwrap();
    let files = depmod_files(&set).unwrap();
    let reference = depmod_reference(&pkg.release);

    // A fresh directory: the module files, the kernel's inputs, and our
    // files; nothing of depmod's.
    let root = fresh_root(&pkg.release);
    let mods = root.path().join("lib/modules").join(&pkg.release);
    assert!(!mods.join("modules.dep").exists());
    for f in &files {
        std::fs::write(mods.join(f.path.file_name()), &f.bytes).unwrap();
    }

    let dep_line = |name: &str| -> Vec<String> {
        let m = set.get(name).unwrap();
        let text = String::from_utf8(files.iter().find(|f| f.path.file_name() == "modules.dep").unwrap().bytes.clone()).unwrap();
        let line = text.lines().find(|l| l.starts_with(&format!("{}:", m.rel))).unwrap().to_string();
        line.split_whitespace().skip(1).map(str::to_string).collect()
    };
    let insmod = |rel: &str| format!("insmod ROOT/lib/modules/{}/{rel}", pkg.release);

    for module in ["overlay", "nf_nat", "ext4"] {
        let got = show_depends(root.path(), &pkg.release, module);
        eprintln!("modprobe --show-depends {module}:\n  {}", got.join("\n  "));
        // modprobe loads the modules.dep line back to front, then the module.
        let deps = dep_line(module);
        let want: Vec<String> = deps.iter().rev().map(|d| insmod(d)).chain([insmod(&set.get(module).unwrap().rel)]).collect();
        let hard: Vec<&String> = got.iter().filter(|l| want.contains(l)).collect();
        assert_eq!(hard, want.iter().collect::<Vec<_>>(), "modprobe --show-depends {module}:\n{}", got.join("\n"));
        assert_eq!(
            got,
            show_depends(reference.path(), &pkg.release, module),
            "same answer as with depmod's own files"
        );
    }
    assert!(dep_line("nf_nat").len() >= 2, "nf_nat has dependencies: {:?}", dep_line("nf_nat"));

    // Aliases: a plain one, a wildcard one and a symbol, through the .bin indexes.
    for (alias, module) in [
        ("fs-overlay", "overlay"),
        ("virtio:d00000001v00001AF4", "virtio_net"),
        ("symbol:jbd2_journal_start", "jbd2"),
    ] {
        let got = show_depends(root.path(), &pkg.release, alias);
        eprintln!("modprobe --show-depends {alias}:\n  {}", got.join("\n  "));
        let rel = &set.get(module).unwrap().rel;
        assert_eq!(got.last(), Some(&insmod(rel)), "modprobe --show-depends {alias}:\n{}", got.join("\n"));
    }
    // A built-in module, through modules.builtin.bin.
    let builtin = set.builtin().keys().next().unwrap().clone();
    assert_eq!(show_depends(root.path(), &pkg.release, &builtin), [format!("builtin {builtin}")]);
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
        option_modules: OptionModules::new(),
        config: InitramfsConfig::default(),
        mtime: 0,
    };
    let g = prepare_guest_kernel(&k.tree, &spec).unwrap();
    assert!(bzimage_release(&g.vmlinuz.to_vec().unwrap()[..0x10000]).as_deref() == Some(g.release.as_str()));
    assert_eq!(g.initramfs_modules.last().map(String::as_str), Some("ext4"));
    assert!(
        g.guest_modules.iter().any(|m| m == "overlay") && !g.guest_modules.iter().any(|m| m == "virtio_blk"),
        "{:?}",
        g.guest_modules
    );
    assert!(g
        .guest_files
        .iter()
        .any(|f| f.path.as_str() == format!("lib/modules/{}/modules.dep", g.release)));
    spec.initramfs_loads_all = true;
    let all = prepare_guest_kernel(&k.tree, &spec).unwrap();
    assert!(all.guest_modules.is_empty(), "{:?}", all.guest_modules);
    assert!(all.initramfs_modules.iter().any(|m| m == "br_netfilter") && all.initramfs.len() > g.initramfs.len());
}

/// Trimming keeps the closure of what was asked for, and the indexes we
/// write describe exactly the kept files: byte for byte what kmod's depmod
/// writes over a modules directory holding only those files.
#[test]
fn trimmed_module_indexes_match_depmod_over_the_kept_files() {
    let k = common::debian_kernel();
    let frags = fragments();
    let spec = PlanSpec { fragments: &frags, package_version: None, initramfs_loads_all: false, extra_initramfs_modules: Vec::new(), option_modules: OptionModules::new() };
    let mut plan = plan_guest_kernel(&k.tree, &spec).unwrap();
    let all = plan.modules.len();
    let mut keep = plan.modules.under("kernel/net/netfilter/");
    keep.push("veth".to_string());
    let trimmed = plan.trim_modules(&keep).unwrap();
    assert_eq!(trimmed.kept + trimmed.removed.len(), all);
    assert!(trimmed.kept < all / 4, "kept {} of {all}", trimmed.kept);
    // The fragments' modules, the initramfs's and the requested ones stay,
    // with their dependencies (bridge needs stp and llc).
    for m in ["overlay", "9p", "ext4", "virtio_blk", "bridge", "stp", "llc", "veth", "nf_tables", "xt_MASQUERADE"] {
        assert!(plan.modules.get(m).is_some(), "{m} was trimmed");
    }
    assert!(plan.modules.get("snd_hda_intel").is_none() && plan.modules.get("e1000e").is_none());
    // Whatever is kept has all of its dependencies kept.
    for m in plan.modules.iter() {
        for d in plan.modules.depends(m).unwrap() {
            assert!(plan.modules.get(&d).is_some(), "{} needs {d}, which was trimmed", m.name);
        }
    }

    let root = fresh_root(&plan.release);
    let dir = root.path().join("lib/modules").join(&plan.release);
    for (path, _) in &trimmed.removed {
        let rel = path.as_str().split_once(&format!("modules/{}/", plan.release)).unwrap().1;
        std::fs::remove_file(dir.join(rel)).unwrap();
    }
    let out = Command::new("depmod").arg("-b").arg(root.path()).arg(&plan.release).output().expect("depmod (kmod)");
    assert!(out.status.success(), "depmod: {}", String::from_utf8_lossy(&out.stderr));
    let mut problems = Vec::new();
    for name in KMOD_DEPMOD_FILES {
        let ours = &plan.guest_files.iter().find(|f| f.path.file_name() == name).unwrap_or_else(|| panic!("we wrote no {name}")).bytes;
        let theirs = std::fs::read(dir.join(name)).unwrap();
        if let Some(d) = first_difference(ours, &theirs) {
            problems.push(format!("{name}: {d}"));
        }
    }
    assert!(problems.is_empty(), "differences from kmod's depmod over the kept files:\n{}", problems.join("\n"));
    let dep = &plan.guest_files.iter().find(|f| f.path.file_name() == "modules.dep").unwrap().bytes;
    assert_eq!(String::from_utf8_lossy(dep).lines().count(), trimmed.kept);
}
