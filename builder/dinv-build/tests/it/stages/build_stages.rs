//! The kernel, initramfs and ext4 stages end to end through the CLI: a
//! generated Alpine-format repository with a fake `linux-virt` (a bzImage
//! header, a config generated from our fragments, modules with real
//! `.modinfo` sections and a shipped `modules.dep`) is built into
//! `vmlinuz`, `initramfs` and `rootfs.ext4`, which are checked with
//! cpio, e2fsck and debugfs.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dinv_apk::testkit::{write_repository, PackageSpec, SpecKind, TestKey};
use dinv_fstree::Meta;

use dinv_test_support as support;
use support::cli::{text, Cli};
use support::fake_kernel::{fake_bzimage, fragment_files, kernel_package, kernel_package_with, module_name, AS_MODULES, KERNEL_VERSION, MODULES, RELEASE};

const EPOCH: i64 = 1_700_000_000;

fn specs(kernel: PackageSpec) -> Vec<PackageSpec> {
    let alice = Meta { uid: 1000, gid: 1000, ..Meta::root(0o640) };
    vec![
        PackageSpec::new("alpine-baselayout", "3.6.5-r0")
            .file("etc/modules", b"af_packet\nipv6\n".to_vec(), 0o644)
            .file("etc/motd", b"Welcome to DinV\n".to_vec(), 0o644)
            .entry("dev/null", SpecKind::CharDevice { major: 1, minor: 3 }, Meta::root(0o666))
            .dir("home/alice", 0o750)
            .entry("home/alice/notes", SpecKind::File(b"private\n".to_vec()), alice),
        kernel,
    ]
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_kernel(kernel_package())
    }

    /// A repository whose `linux-virt` is `kernel`.
    fn with_kernel(kernel: PackageSpec) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let key = TestKey::generate("test-signer@dinv.invalid-5e1f0002.rsa.pub", 1024, 11);
        write_repository(&dir.path().join("mirror"), "main", "x86_64", &specs(kernel), &key).unwrap();
        fs::create_dir_all(dir.path().join("keys")).unwrap();
        fs::write(dir.path().join("keys").join(&key.name), key.public_pem()).unwrap();
        let frag = dir.path().join("kernel-configs");
        fs::create_dir_all(&frag).unwrap();
        for f in fragment_files() {
            fs::copy(&f, frag.join(f.file_name().unwrap())).unwrap();
        }
        Fixture { dir }
    }

    /// A recipe with every fragment plus `extra_fragments` (file names in the recipe directory).
    fn recipe(&self, extra_fragments: &[&str]) -> PathBuf {
        self.recipe_with(extra_fragments, "")
    }

    /// [`Fixture::recipe`] with more lines in its `[kernel]` table.
    fn recipe_with(&self, extra_fragments: &[&str], kernel_lines: &str) -> PathBuf {
        let mut frags: Vec<String> = fragment_files().iter().map(|p| format!("\"kernel-configs/{}\"", p.file_name().unwrap().to_string_lossy())).collect();
        frags.extend(extra_fragments.iter().map(|f| format!("{f:?}")));
        let text = format!(
            r#"[image]
name = "stages-test"

[sources.alpine]
type = "apk"
repositories = [{{ url = "file://{root}/main" }}]
keys = ["keys"]

[guest]
source = "alpine"
packages = ["alpine-baselayout", "linux-virt"]

[kernel]
package = "linux-virt"
fragments = [{frags}]
{kernel_lines}
[build]
source_date_epoch = {EPOCH}
"#,
            root = self.dir.path().join("mirror").display(),
            frags = frags.join(", ")
        );
        let p = self.dir.path().join("recipe.toml");
        fs::write(&p, text).unwrap();
        p
    }

    fn build(&self, recipe: &Path, out: &str) -> Output {
        Cli::new(env!("CARGO_BIN_EXE_dinv-build"), self.dir.path()).run(&["build", "--out", out, recipe.to_str().unwrap()])
    }
}


fn tool(name: &str) -> Command {
    let found = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].iter().map(|d| Path::new(d).join(name)).find(|p| p.is_file());
    let path = found.unwrap_or_else(|| panic!("{name} is needed by this test: apt-get install -y e2fsprogs cpio"));
    Command::new(path)
}

/// Runs one debugfs request against an image (read-only).
fn debugfs(image: &Path, request: &str) -> (Vec<u8>, String) {
    let out = tool("debugfs").arg("-R").arg(request).arg(image).output().unwrap();
    assert!(out.status.success(), "debugfs -R {request:?}: {}", String::from_utf8_lossy(&out.stderr));
    (out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A file's bytes in the image, `None` when it does not exist.
fn ext4_read(image: &Path, path: &str) -> Option<Vec<u8>> {
    let (out, err) = debugfs(image, &format!("cat {path}"));
    (!err.contains("not found")).then_some(out)
}

/// debugfs's `stat` of a path.
fn ext4_stat(image: &Path, path: &str) -> String {
    let (out, err) = debugfs(image, &format!("stat {path}"));
    assert!(!err.contains("not found"), "{path} is not in {}: {err}", image.display());
    String::from_utf8_lossy(&out).into_owned()
}

fn sha256(p: &Path) -> String {
    support::sha256_hex(&fs::read(p).unwrap())
}

/// `cpio -t` of a gzip'd archive, and one member's content.
fn cpio_list(gz: &Path) -> (Vec<String>, String) {
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(gz).unwrap()).read_to_end(&mut plain).expect("initramfs is gzip");
    let cpio = gz.with_extension("cpio");
    fs::write(&cpio, &plain).unwrap();
    let out = tool("cpio").args(["-t", "--quiet", "-F"]).arg(&cpio).output().unwrap();
    assert!(out.status.success(), "cpio -t: {}", String::from_utf8_lossy(&out.stderr));
    let list = String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect();
    let out = tool("cpio").args(["-i", "--quiet", "--to-stdout", "-F"]).arg(&cpio).arg("etc/dinv/modules").output().unwrap();
    assert!(out.status.success(), "cpio -i: {}", String::from_utf8_lossy(&out.stderr));
    (list, String::from_utf8(out.stdout).unwrap())
}

#[test]
fn builds_kernel_initramfs_and_a_clean_deterministic_ext4() {
    let f = Fixture::new();
    let recipe = f.recipe(&[]);
    let out = f.build(&recipe, "out/a");
    assert!(out.status.success(), "{}", text(&out));
    let a = f.dir.path().join("out/a");

    // vmlinuz: the package's image, byte for byte.
    assert_eq!(fs::read(a.join("vmlinuz")).unwrap(), fake_bzimage(RELEASE));

    // initramfs: init, the boot modules (uncompressed) and their load order.
    let (list, order) = cpio_list(&a.join("initramfs"));
    assert!(list.iter().any(|e| e == "init"), "{list:?}");
    assert!(list.iter().any(|e| e == "etc/dinv/modules"), "{list:?}");
    let loaded: Vec<String> = order.lines().filter(|l| !l.starts_with('#')).map(str::to_string).collect();
    let names: Vec<String> = loaded.iter().map(|p| module_name(p)).collect();
    for want in ["virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "mbcache", "jbd2", "crc16", "crc32c_generic", "ext4"] {
        assert!(names.iter().any(|n| n == want), "{want} not loaded by the initramfs: {names:?}");
    }
    for not in ["overlay", "veth", "bridge"] {
        assert!(!names.iter().any(|n| n == not), "{not} is for the guest to load, not the initramfs: {names:?}");
    }
    for path in &loaded {
        let rel = path.trim_start_matches('/');
        assert!(rel.starts_with(&format!("lib/modules/{RELEASE}/kernel/")) && rel.ends_with(".ko"), "{path}");
        assert!(list.iter().any(|e| e == rel), "{rel} listed but not in the archive: {list:?}");
    }
    // Every module comes after its dependencies (and ext4 after its softdep).
    let pos = |n: &str| names.iter().position(|x| x == n).unwrap_or_else(|| panic!("{n} not in {names:?}"));
    for (rel, deps, _) in MODULES {
        let n = module_name(rel);
        if names.contains(&n) {
            for d in *deps {
                assert!(pos(&module_name(d)) < pos(&n), "{} must load before {n}: {names:?}", module_name(d));
            }
        }
    }
    assert!(pos("crc32c_generic") < pos("ext4"), "{names:?}");

    // rootfs.ext4: clean, and holds what the stages put there.
    let img = a.join("rootfs.ext4");
    let fsck = tool("e2fsck").args(["-fn"]).arg(&img).output().unwrap();
    assert_eq!(fsck.status.code(), Some(0), "e2fsck -fn: {}", text(&fsck));
    let modules = String::from_utf8(ext4_read(&img, "/etc/modules").expect("/etc/modules")).unwrap();
    let listed: Vec<&str> = modules.lines().collect();
    assert_eq!(&listed[..2], ["af_packet", "ipv6"], "the package's lines stay first: {modules}");
    for want in ["bridge", "overlay", "veth"] {
        assert!(listed.contains(&want), "{want} missing from /etc/modules:\n{modules}");
    }
    let dep = String::from_utf8(ext4_read(&img, &format!("/lib/modules/{RELEASE}/modules.dep")).expect("modules.dep")).unwrap();
    assert!(dep.contains("kernel/net/bridge/bridge.ko: "), "{dep}");
    assert!(ext4_read(&img, &format!("/lib/modules/{RELEASE}/modules.alias")).unwrap().starts_with(b"# Aliases"));
    assert_eq!(ext4_read(&img, "/etc/motd").unwrap(), b"Welcome to DinV\n");
    // The launcher boots the emitted kernel: the guest's copy in /boot is left out.
    assert!(ext4_read(&img, "/boot/vmlinuz-virt").is_none());
    assert_eq!(fs::read(a.join("vmlinuz")).unwrap(), fake_bzimage(RELEASE));
    assert_eq!(ext4_read(&img, "/home/alice/notes").unwrap(), b"private\n");
    assert!(ext4_read(&img, "/no/such/file").is_none());
    let notes = ext4_stat(&img, "/home/alice/notes");
    assert!(notes.contains("Mode:  0640"), "{notes}");
    assert!(notes.contains("User:  1000") && notes.contains("Group:  1000"), "{notes}");
    let null = ext4_stat(&img, "/dev/null");
    assert!(null.contains("Type: character special") && null.contains("Mode:  0666"), "{null}");
    assert!(null.contains("Device major/minor number: 01:03"), "{null}");
    let (stats, _) = debugfs(&img, "stats");
    let stats = String::from_utf8_lossy(&stats);
    assert!(stats.contains("Filesystem volume name:   dinv-root"), "{stats}");

    // The report names the outputs and what the stages did.
    let report: serde_json::Value = serde_json::from_slice(&fs::read(a.join("report.json")).unwrap()).unwrap();
    let outputs: Vec<&str> = report["outputs"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    for want in ["initramfs", "packages.json", "rootfs.ext4", "vmlinuz"] {
        assert!(outputs.contains(&want), "{want} not in {outputs:?}");
    }
    assert!(!outputs.contains(&"rootfs.tar"), "{outputs:?}");
    assert_eq!(report["kernel"]["release"], RELEASE);
    assert_eq!(report["kernel"]["package"], format!("linux-virt {KERNEL_VERSION}"));
    assert_eq!(report["kernel"]["guest_modules"], serde_json::json!(["bridge", "overlay", "veth"]));
    assert!(report["rootfs"]["inodes_used"].as_u64().unwrap() > 30, "{}", report["rootfs"]);
    eprintln!("rootfs: {} ; stage seconds: {}", report["rootfs"], report["stages"]);

    // Same inputs, another output directory: the same bytes.
    let out = f.build(&recipe, "out/b");
    assert!(out.status.success(), "{}", text(&out));
    let b = f.dir.path().join("out/b");
    for name in ["rootfs.ext4", "initramfs", "vmlinuz"] {
        assert_eq!(sha256(&a.join(name)), sha256(&b.join(name)), "{name} differs between two builds");
    }
}

#[test]
fn a_fragment_the_kernel_does_not_meet_fails_with_option_file_line_and_package() {
    let f = Fixture::new();
    fs::write(f.dir.path().join("extra.config"), "# Extra requirement of this test.\n\n# Not in the fake kernel.\nCONFIG_DINV_TEST_ABSENT=y\n").unwrap();
    let recipe = f.recipe(&["extra.config"]);
    let out = f.build(&recipe, "out/x");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(5), "{t}");
    assert!(t.contains("CONFIG_DINV_TEST_ABSENT"), "{t}");
    // Named relative to the recipe, with the line of the option.
    assert!(t.contains("required =y by extra.config:4"), "{t}");
    assert!(t.contains(&format!("linux-virt {KERNEL_VERSION}")), "{t}");
    assert!(!f.dir.path().join("out/x").exists(), "a failed build publishes nothing");
}

/// The options the fake kernel builds as modules are in dinv-kernel's
/// generated map, and the map names modules the fake kernel ships.
#[test]
fn the_option_map_covers_the_fake_kernels_module_options() {
    let shipped: Vec<String> = MODULES.iter().map(|(rel, _, _)| module_name(rel)).collect();
    for option in AS_MODULES {
        let names = dinv_kernel::option_modules::modules_for_option(option).unwrap_or_else(|| panic!("{option} is not in option_modules.tsv"));
        assert!(names.iter().any(|n| shipped.contains(&n.to_string())), "{option}: {names:?}, the fake kernel ships {shipped:?}");
    }
}

/// WireGuard as a module (issue 26): the generated map knows its module,
/// the build loads it in the guest.
#[test]
fn a_module_option_builds_through_the_generated_map() {
    let f = Fixture::with_kernel(kernel_package_with(&[("CONFIG_WIREGUARD", "kernel/drivers/net/wireguard/wireguard.ko")]));
    fs::write(f.dir.path().join("wireguard.config"), "# VPN tunnels.\nCONFIG_WIREGUARD=m\n").unwrap();
    let out = f.build(&f.recipe(&["wireguard.config"]), "out/wg");
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&fs::read(f.dir.path().join("out/wg/report.json")).unwrap()).unwrap();
    assert_eq!(report["kernel"]["guest_modules"], serde_json::json!(["bridge", "overlay", "veth", "wireguard"]));
    let img = f.dir.path().join("out/wg/rootfs.ext4");
    assert!(ext4_read(&img, &format!("/lib/modules/{RELEASE}/kernel/drivers/net/wireguard/wireguard.ko")).is_some());
    let modules = String::from_utf8(ext4_read(&img, "/etc/modules").unwrap()).unwrap();
    assert!(modules.lines().any(|l| l == "wireguard"), "{modules}");
}

/// An `=m` option the map does not know: the build says which recipe key
/// names its module (kernel.modules.keep does not), and with that key it
/// builds.
#[test]
fn an_option_the_map_does_not_know_builds_with_kernel_option_modules() {
    let f = Fixture::with_kernel(kernel_package_with(&[("CONFIG_DINV_TEST_TUNNEL", "kernel/drivers/net/dinv-tunnel.ko")]));
    fs::write(f.dir.path().join("tunnel.config"), "# The team's tunnels.\nCONFIG_DINV_TEST_TUNNEL=m\n").unwrap();
    for kernel_lines in ["", "modules = { keep = [\"dinv-tunnel\"] }\n"] {
        let out = f.build(&f.recipe_with(&["tunnel.config"], kernel_lines), "out/t");
        let t = text(&out);
        assert_eq!(out.status.code(), Some(5), "{t}");
        assert!(
            t.contains(&format!("CONFIG_DINV_TEST_TUNNEL (required =m by tunnel.config:2) is a module in linux-virt {KERNEL_VERSION} (kernel {RELEASE}), but dinv-kernel does not know the module's name; set kernel.option_modules = {{ CONFIG_DINV_TEST_TUNNEL = \"<module>\" }} in the recipe")),
            "{t}"
        );
    }
    let out = f.build(&f.recipe_with(&["tunnel.config"], "option_modules = { CONFIG_DINV_TEST_TUNNEL = \"dinv-tunnel\" }\n"), "out/t");
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&fs::read(f.dir.path().join("out/t/report.json")).unwrap()).unwrap();
    assert_eq!(report["kernel"]["guest_modules"], serde_json::json!(["bridge", "dinv_tunnel", "overlay", "veth"]));

    // A module the kernel does not have is an error naming the key.
    let out = f.build(&f.recipe_with(&["tunnel.config"], "option_modules = { CONFIG_DINV_TEST_TUNNEL = \"tunnel\" }\n"), "out/t2");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(5), "{t}");
    assert!(t.contains("kernel.option_modules names tunnel for it, which is neither a module of the package nor built in"), "{t}");
}

#[test]
fn kernel_option_modules_keys_and_values_are_checked_at_their_line() {
    let f = Fixture::new();
    for (entry, key, why) in [
        ("WIREGUARD = \"wireguard\"", "kernel.option_modules.WIREGUARD", "is not a kernel config option"),
        ("CONFIG_WIREGUARD = \"wireguard.ko\"", "kernel.option_modules.CONFIG_WIREGUARD", "is not a module name"),
    ] {
        let recipe = f.recipe_with(&[], &format!("option_modules = {{ {entry} }}\n"));
        let line = fs::read_to_string(&recipe).unwrap().lines().position(|l| l.starts_with("option_modules")).unwrap() + 1;
        let out = Cli::new(env!("CARGO_BIN_EXE_dinv-build"), f.dir.path()).run(&["check", recipe.to_str().unwrap()]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{t}");
        assert!(t.contains(&format!("recipe.toml:{line}: {key}: ")) && t.contains(why), "{t}");
    }
}

/// `check` runs the build's kernel check without a network when the kernel
/// package is in the cache, and says in a note when it cannot.
#[test]
fn check_checks_the_kernel_when_its_package_is_cached() {
    let f = Fixture::with_kernel(kernel_package_with(&[("CONFIG_DINV_TEST_TUNNEL", "kernel/drivers/net/dinv-tunnel.ko")]));
    fs::write(f.dir.path().join("tunnel.config"), "# The team's tunnels.\nCONFIG_DINV_TEST_TUNNEL=m\n").unwrap();
    let cli = Cli::new(env!("CARGO_BIN_EXE_dinv-build"), f.dir.path());
    let recipe = f.recipe(&["tunnel.config"]);
    let r = recipe.to_str().unwrap();

    // Nothing cached: the recipe is fine, the kernel unchecked, no cache made.
    let out = cli.run(&["check", r]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("note: kernel not checked: nothing is cached yet"), "{}", text(&out));
    assert!(!f.dir.path().join("cache").exists());

    // Fetched: the check fails as the build would, naming the way out.
    let out = cli.run(&["fetch", r]);
    assert!(out.status.success(), "{}", text(&out));
    let out = cli.run(&["check", r]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(5), "{t}");
    assert!(t.contains("CONFIG_DINV_TEST_TUNNEL (required =m by tunnel.config:2)") && t.contains("set kernel.option_modules = { CONFIG_DINV_TEST_TUNNEL = \"<module>\" } in the recipe"), "{t}");

    // With the recipe key: checked, and said so.
    let recipe = f.recipe_with(&["tunnel.config"], "option_modules = { CONFIG_DINV_TEST_TUNNEL = \"dinv-tunnel\" }\n");
    let r = recipe.to_str().unwrap();
    let out = cli.run(&["check", r]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains(&format!("kernel: linux-virt {KERNEL_VERSION} (kernel {RELEASE}) meets the fragments (10 modules to load)")), "{t}");
    assert!(!t.contains("note:"), "{t}");
    let out = cli.run(&["--json", "check", r]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["kernel"]["checked"].as_bool(), v["kernel"]["release"].as_str()), (Some(true), Some(RELEASE)), "{v}");

    // The package gone from the cache: a note again, not an error.
    fs::remove_dir_all(f.dir.path().join("cache/blobs")).unwrap();
    let out = cli.run(&["check", r]);
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("note: kernel not checked: linux-virt-{KERNEL_VERSION} is not in the cache")), "{err}");
}
