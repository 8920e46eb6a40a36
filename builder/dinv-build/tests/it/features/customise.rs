//! Customising the default recipe per team, through the CLI: `extends`
//! edits (override, append, remove, multi-level), their errors, `show`
//! and `new`, and every recipe in recipes/examples/ built end to end.
//!
//! The real Alpine mirror is replaced by a generated one
//! (`support::alpine_repo`): each build uses a child recipe in a temp dir
//! that extends the recipe under test, points `sources.alpine.mirror` at
//! `file://<generated mirror>` and trusts the test key in
//! `sources.alpine.keys`. Everything else comes from the recipe as committed.

use dinv_test_support as support;
use support::cli::{text, Cli};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dinv_apk::testkit::{write_repository, PackageSpec};
use serde_json::Value;
use support::alpine_repo::{repo_root, AlpineMirror, ALPINE_BUNDLE, KERNEL_RELEASE, KERNEL_VERSION};
use support::ext4::{assert_fsck_clean, ext4_dump, ext4_read, ext4_stat};

/// A temp dir with a generated mirror; recipes are written into it.
struct Fixture {
    dir: tempfile::TempDir,
    mirror: AlpineMirror,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mirror = AlpineMirror::write(dir.path());
        Fixture { dir, mirror }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `<name>.toml` extending `parent` through the mirror override.
    fn child(&self, name: &str, parent: &Path, extra: &str) -> PathBuf {
        let p = self.path(&format!("{name}.toml"));
        fs::write(&p, self.mirror.child_recipe(parent, extra)).unwrap();
        p
    }

    /// Runs `dinv-build ARGS` in the temp dir with its own cache.
    fn run(&self, args: &[&str]) -> Output {
        Cli::new(env!("CARGO_BIN_EXE_dinv-build"), self.dir.path()).run(args)
    }

    /// Builds `recipe` into `out/<out>`; panics with the output on failure.
    fn build(&self, recipe: &Path, out: &str) -> Built {
        let o = self.run(&["build", "--quiet", "--out", &format!("out/{out}"), &recipe.display().to_string()]);
        assert!(o.status.success(), "building {}: {}", recipe.display(), text(&o));
        let dir = self.path(&format!("out/{out}"));
        let report = json(&dir.join("report.json"));
        Built { dir, report }
    }
}

/// A finished build's output directory and report.
struct Built {
    dir: PathBuf,
    report: Value,
}

impl Built {
    fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs.ext4")
    }

    /// A guest file's text, panicking when absent.
    fn guest_text(&self, path: &str) -> String {
        String::from_utf8(ext4_read(&self.rootfs(), path).unwrap_or_else(|| panic!("{path} is not in the guest"))).unwrap()
    }

    /// A guest file's bytes, panicking when absent.
    fn guest_bytes(&self, path: &str) -> Vec<u8> {
        ext4_read(&self.rootfs(), path).unwrap_or_else(|| panic!("{path} is not in the guest"))
    }

    fn has(&self, path: &str) -> bool {
        ext4_read(&self.rootfs(), path).is_some()
    }

    /// The OCI image config (labels, env) of the emitted image.
    fn image_config(&self) -> Value {
        let digest = self.report["image"]["config_digest"].as_str().expect("the build emitted an image");
        json(&self.dir.join("oci/blobs/sha256").join(digest.trim_start_matches("sha256:")))
    }

    fn guest_packages(&self) -> Vec<String> {
        let sets = json(&self.dir.join("packages.json"));
        let guest = sets.as_array().unwrap().iter().find(|s| s["set"] == "guest").unwrap();
        guest["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    }
}

fn json(p: &Path) -> Value {
    serde_json::from_slice(&fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}


fn default_recipe() -> PathBuf {
    repo_root().join("recipes/default.toml").canonicalize().unwrap()
}

fn example(name: &str) -> PathBuf {
    repo_root().join("recipes/examples").join(name).canonicalize().unwrap()
}

fn example_pem() -> String {
    fs::read_to_string(example("certs/example-corp-ca.pem")).unwrap()
}

/// The 1-based line of `file` whose text starts with `prefix` (after indentation).
fn line_of(file: &Path, prefix: &str) -> usize {
    let t = fs::read_to_string(file).unwrap();
    1 + t
        .lines()
        .position(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in {}", file.display()))
}

/// The `show` line for `needle`, and the `file:line` it is annotated with.
fn annotation<'a>(show: &'a str, needle: &str) -> &'a str {
    let line = show
        .lines()
        .find(|l| l.trim_start().starts_with(needle))
        .unwrap_or_else(|| panic!("no {needle:?} in:\n{show}"));
    line.rsplit_once("  # ").unwrap_or_else(|| panic!("{line:?} has no origin")).1
}

/// `needle`'s line in `show` (run in `cwd`) names `file:line`; `show`
/// prints paths relative to its working directory when it can.
fn assert_origin(show: &str, cwd: &Path, needle: &str, file: &Path, line: usize) {
    let got = annotation(show, needle);
    let (got_file, got_line) = got.rsplit_once(':').unwrap_or_else(|| panic!("{needle}: {got:?} is not file:line"));
    let resolved = cwd
        .join(got_file)
        .canonicalize()
        .unwrap_or_else(|e| panic!("{needle}: {got_file}: {e}\n{show}"));
    assert_eq!(
        (resolved, got_line),
        (file.canonicalize().unwrap(), line.to_string().as_str()),
        "{needle}: annotated {got}\n{show}"
    );
}

/// The default recipe, only its mirror (and the key that signs it)
/// overridden, built end to end from the v3.22-shaped mirror: PAX-headed
/// signatures, `linux-virt` in the installkernel 4.0 layout with `.ko.gz`
/// modules and no depmod output, `mkinitfs` → `kmod`, the `-openrc`
/// packages through install_if, `log_proxy`.
#[test]
fn the_default_recipe_builds_on_a_v3_22_shaped_mirror() {
    let f = Fixture::new();
    let b = f.build(&f.child("default", &default_recipe(), ""), "default");
    assert_fsck_clean(&b.rootfs());
    // Resolution followed the real dependency shapes.
    let pkgs = b.guest_packages();
    for p in [
        "alpine-base",
        "busybox-openrc",
        "busybox-mdev-openrc",
        "openrc-user",
        "ifupdown-ng",
        "mkinitfs",
        "kmod",
        "docker-openrc",
        "log_proxy",
        "qemu-guest-agent-openrc",
        "iptables",
    ] {
        assert!(pkgs.contains(&p.to_string()), "{p} not resolved: {pkgs:?}");
    }
    // The kernel stage passed on the current layout, and the image was emitted.
    assert_eq!(b.report["kernel"]["package"], format!("linux-virt {KERNEL_VERSION}"));
    assert_eq!(b.report["kernel"]["release"], KERNEL_RELEASE);
    for out in ["vmlinuz", "initramfs", "rootfs.ext4", "image.tar"] {
        assert!(b.dir.join(out).is_file(), "{out} missing");
    }
    // kmod is the guest's modprobe, and its binary indexes are there,
    // readable by the host's kmod.
    assert!(
        ext4_stat(&b.rootfs(), "/sbin/modprobe").contains("Fast link dest: \"../bin/kmod\""),
        "{}",
        ext4_stat(&b.rootfs(), "/sbin/modprobe")
    );
    let root = f.path("guest-modules");
    ext4_dump(&b.rootfs(), &format!("/lib/modules/{KERNEL_RELEASE}"), &root.join("lib/modules"));
    let dir = root.join("lib/modules").join(KERNEL_RELEASE);
    for index in [
        "modules.dep.bin",
        "modules.alias.bin",
        "modules.symbols.bin",
        "modules.builtin.bin",
        "modules.builtin.alias.bin",
        "modules.dep",
        "modules.alias",
        "modules.softdep",
        "modules.devname",
    ] {
        assert!(dir.join(index).is_file(), "{index} missing from the guest's /lib/modules/{KERNEL_RELEASE}");
    }
    let show = |name: &str| {
        let o = Command::new(modprobe())
            .arg("-d")
            .arg(&root)
            .args(["-S", KERNEL_RELEASE, "--show-depends", name])
            .output()
            .unwrap();
        assert!(o.status.success(), "modprobe --show-depends {name}: {}", text(&o));
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(|l| l.trim().rsplit('/').next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    // Dependencies first, from the index, and libcrc32c's `softdep pre:
    // crc32c` from modules.softdep. The package's .ko.gz are stored as
    // plain .ko (kernel.modules.decompress).
    let masq = show("nft_masq");
    let mut sorted = masq.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "crc32c_generic.ko",
            "libcrc32c.ko",
            "nf_conntrack.ko",
            "nf_defrag_ipv4.ko",
            "nf_defrag_ipv6.ko",
            "nf_nat.ko",
            "nf_tables.ko",
            "nfnetlink.ko",
            "nft_masq.ko"
        ]
    );
    let at = |m: &str| masq.iter().position(|x| x == m).unwrap();
    for (before, after) in [
        ("crc32c_generic.ko", "libcrc32c.ko"),
        ("nfnetlink.ko", "nf_tables.ko"),
        ("libcrc32c.ko", "nf_conntrack.ko"),
        ("nf_defrag_ipv4.ko", "nf_conntrack.ko"),
        ("nf_conntrack.ko", "nf_nat.ko"),
        ("nf_nat.ko", "nft_masq.ko"),
        ("nf_tables.ko", "nft_masq.ko"),
    ] {
        assert!(at(before) < at(after), "{before} must load before {after}: {masq:?}");
    }
    // Aliases, `-`/`_`, and a module only loaded on demand.
    assert_eq!(show("nft-chain-2-nat").last().unwrap(), "nft_nat.ko");
    assert_eq!(show("virtio-rng"), ["virtio-rng.ko"]);
    assert_eq!(show("nfct-helper-ftp"), ["nf_conntrack_ftp.ko"]);
    // OpenRC: docker, the guest agent and the power button's acpid run.
    for (level, service) in [
        ("default", "docker"),
        ("default", "qemu-guest-agent"),
        ("default", "acpid"),
        ("sysinit", "mdev"),
        ("boot", "syslog"),
    ] {
        let stat = ext4_stat(&b.rootfs(), &format!("/etc/runlevels/{level}/{service}"));
        assert!(stat.contains(&format!("/etc/init.d/{service}")), "{level}/{service}: {stat}");
    }
    assert_eq!(b.guest_text("/etc/acpi/PWRF/00000080"), "#!/bin/sh\npoweroff\n");
    // The modules the power button needs are loaded at boot.
    let modules = b.guest_text("/etc/modules");
    assert!(modules.contains("\nbutton\n") && modules.contains("\nevdev\n"), "{modules}");
    assert!(b
        .guest_text("/etc/conf.d/qemu-guest-agent")
        .contains("GA_PATH=\"/dev/virtio-ports/org.qemu.guest_agent.0\""));
}

fn modprobe() -> &'static str {
    ["/usr/sbin/modprobe", "/sbin/modprobe"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("modprobe (kmod) is needed: apt-get install -y kmod")
}

#[test]
fn the_default_recipe_builds_from_the_generated_mirror_with_override_append_and_remove() {
    let f = Fixture::new();
    let r = f.child(
        "team",
        &default_recipe(),
        "[image]\ntag = \"team-1\"\n\n[guest]\npackages = { add = [\"make\"], remove = [\"qemu-guest-agent\"] }\nhostname = \"teambox\"\n",
    );
    let b = f.build(&r, "team");
    assert_fsck_clean(&b.rootfs());
    // Scalar override: the tag; the name comes from default.toml.
    assert_eq!(b.report["image"]["reference"], "dinv:team-1");
    assert_eq!(b.guest_text("/etc/hostname"), "teambox\n");
    // Append and remove.
    let pkgs = b.guest_packages();
    assert!(pkgs.contains(&"make".to_string()) && pkgs.contains(&"docker-engine".to_string()), "{pkgs:?}");
    assert!(!pkgs.contains(&"qemu-guest-agent".to_string()), "{pkgs:?}");
    assert!(b.has("/usr/bin/make") && b.has("/usr/bin/dockerd"));
    assert!(!b.has("/usr/bin/qemu-ga"), "qemu-guest-agent was removed from the list");
    assert!(!b.has("/etc/runlevels/default/qemu-guest-agent"));
    // The default recipe's own pieces still apply.
    assert_eq!(b.report["kernel"]["package"], format!("linux-virt {KERNEL_VERSION}"));
    assert!(b.guest_text("/etc/modules").contains("br_netfilter"));
    // default.toml's overlay, its template rendered with the child's values.
    assert!(b.has("/etc/sysctl.d/dinv.conf"));
    assert!(
        b.guest_text("/etc/motd").starts_with("dinv:team-1: Docker-in-VM guest teambox.\n"),
        "{}",
        b.guest_text("/etc/motd")
    );
}

#[test]
fn private_registry_example_puts_ca_mirror_and_proxy_into_the_rootfs() {
    let f = Fixture::new();
    let b = f.build(&f.child("corp", &example("private-registry.toml"), ""), "corp");
    let pem = example_pem();
    // The CA: after Alpine's bundle, in the local store, and for dockerd's registry.
    let bundle = b.guest_text("/etc/ssl/certs/ca-certificates.crt");
    assert!(bundle.starts_with(ALPINE_BUNDLE) && bundle.ends_with(&pem), "{bundle}");
    assert_eq!(b.guest_text("/etc/docker/certs.d/registry.example.internal:5443/ca.crt"), pem);
    assert_eq!(b.guest_text("/usr/local/share/ca-certificates/example-corp-ca.crt"), pem);
    // daemon.json: mirror and insecure registry.
    let daemon: Value = serde_json::from_str(&b.guest_text("/etc/docker/daemon.json")).unwrap();
    assert_eq!(daemon["registry-mirrors"], serde_json::json!(["https://mirror.example.internal"]));
    assert_eq!(daemon["insecure-registries"], serde_json::json!(["build-cache.example.internal:5000"]));
    assert_eq!(daemon["bip"], "172.19.0.1/16", "inherited from default.toml");
    // Proxy: OpenRC's conf.d for the docker service.
    let conf = b.guest_text("/etc/conf.d/docker");
    assert!(conf.contains("export HTTPS_PROXY='http://proxy.example.internal:3128'"), "{conf}");
    assert!(conf.contains("export NO_PROXY='localhost,127.0.0.1,.example.internal'"), "{conf}");
    assert_eq!(b.report["image"]["reference"], "dinv-corp:1.0");
}

#[test]
fn extra_packages_example_builds_with_its_packages_kernel_option_vm_labels_and_template() {
    let f = Fixture::new();
    let b = f.build(&f.child("builder", &example("extra-packages.toml"), ""), "builder");
    for p in ["/usr/bin/git", "/usr/bin/make", "/bin/bash", "/usr/bin/qemu-ga", "/usr/bin/dockerd"] {
        assert!(b.has(p), "{p} missing from the guest");
    }
    assert_eq!(b.guest_text("/etc/hostname"), "builder\n");
    assert_eq!(b.report["image"]["reference"], "dinv-builder:2025.1");
    let cfg = b.image_config();
    let labels = &cfg["config"]["Labels"];
    assert_eq!(labels["org.example.team"], "build-tools", "{labels}");
    assert_eq!(labels["org.opencontainers.image.title"], "dinv-builder");
    let env: Vec<&str> = cfg["config"]["Env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for want in ["DINV_CPUS=2", "DINV_MEMORY=2G", "DINV_DOCKER_SIZE=128G"] {
        assert!(env.contains(&want), "{want} not in {env:?}");
    }
    // The overlay's template, rendered with the merged recipe's values.
    assert_eq!(
        b.guest_text("/etc/profile.d/team.sh"),
        "# Rendered by dinv-build from the recipe (dinv-builder:2025.1).\nexport DINV_IMAGE=\"dinv-builder:2025.1\"\nexport DINV_VM_MEMORY=\"2G\"\nexport PS1=\"builder:\\w\\$ \"\n"
    );
    assert!(!b.has("/etc/profile.d/team.sh.j2"));
}

#[test]
fn team_ci_example_layers_on_private_registry() {
    let f = Fixture::new();
    let b = f.build(&f.child("ci", &example("team-ci.toml"), ""), "ci");
    assert_eq!(b.report["image"]["reference"], "dinv-ci:ci", "team-ci overrides private-registry's tag");
    let daemon: Value = serde_json::from_str(&b.guest_text("/etc/docker/daemon.json")).unwrap();
    assert_eq!(
        daemon["registry-mirrors"],
        serde_json::json!(["https://mirror.example.internal", "https://mirror2.example.internal"])
    );
    assert_eq!(daemon["log-driver"], "local");
    // Two levels up: the CA from private-registry.toml.
    assert_eq!(b.guest_text("/etc/docker/certs.d/registry.example.internal:5443/ca.crt"), example_pem());
    assert!(b.has("/usr/bin/git") && !b.has("/usr/bin/qemu-ga"));
    let env: Vec<String> = b.image_config()["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(env.contains(&"DINV_MEMORY=1G".to_string()), "{env:?}");
}

#[test]
fn every_example_is_built_by_a_test_here_and_passes_check() {
    // Adding an example means adding a build test above. The Debian 12
    // appliance is built from the real archive by
    // sources/debian_suites.rs, the multi-platform one by
    // tests/e2e_arm64.rs (debian-arm64.toml is its arm64 platform alone,
    // which bench_arm64 builds); here they are checked.
    let tested = ["extra-packages.toml", "private-registry.toml", "team-ci.toml"];
    let elsewhere = ["debian-arm64.toml", "debian-bookworm.toml", "debian-multiplatform.toml"];
    let dir = repo_root().join("recipes/examples");
    let mut found: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    found.sort();
    let mut all: Vec<&str> = tested.iter().chain(&elsewhere).copied().collect();
    all.sort();
    assert_eq!(found, all, "recipes/examples/ and the build tests disagree");
    let f = Fixture::new();
    for name in elsewhere {
        let o = f.run(&["check", &example(name).display().to_string()]);
        assert!(o.status.success(), "check {name}: {}", text(&o));
    }
    for name in tested {
        let o = f.run(&["check", &example(name).display().to_string()]);
        assert!(o.status.success(), "check {name}: {}", text(&o));
        // Each reaches default.toml, directly or not.
        let o = f.run(&["check", "--json", &example(name).display().to_string()]);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        let files: Vec<&str> = v["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
        assert!(
            files[0].ends_with("recipes/default.toml") || files[0].ends_with("recipes/examples/../default.toml"),
            "{name}: {files:?}"
        );
    }
}

#[test]
fn a_kernel_fragment_the_package_kernel_does_not_meet_fails_with_exit_5() {
    let f = Fixture::new();
    fs::create_dir_all(f.path("kernel-configs")).unwrap();
    fs::write(
        f.path("kernel-configs/team.config"),
        "# The team's scanner needs this.\n\nCONFIG_DINV_TEAM_ABSENT=y\n",
    )
    .unwrap();
    let r = f.child(
        "strict",
        &example("extra-packages.toml"),
        "[kernel]\nfragments = [\"kernel-configs/team.config\"]\n",
    );
    let o = f.run(&["build", "--out", "out/strict", &r.display().to_string()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(5), "{t}");
    assert!(t.contains("CONFIG_DINV_TEAM_ABSENT"), "{t}");
    assert!(t.contains("kernel-configs/team.config:3"), "names fragment and line: {t}");
    assert!(
        t.contains(&format!(
            "CONFIG_DINV_TEAM_ABSENT (required =y by kernel-configs/team.config:3) is missing from the config of linux-virt {KERNEL_VERSION}"
        )),
        "option, fragment:line and kernel in one line: {t}"
    );
    // The example's own extra option (FUSE) is met, so it is not named.
    assert!(!t.contains("CONFIG_FUSE_FS"), "{t}");
    assert!(!f.path("out/strict").exists(), "a failed build publishes nothing");
}

#[test]
fn show_annotates_every_value_with_its_file_and_line() {
    let f = Fixture::new();
    let parent = default_recipe();
    let child = f.path("team.toml");
    fs::write(
        &child,
        format!(
            "extends = {:?}\n\n[image]\nname = \"team\"\nlabels = {{ \"org.example.team\" = \"a\" }}\n\n[guest]\npackages = {{ remove = [\"util-linux\"], add = [\n    \"git\",\n] }}\n\n[vm]\nmemory = \"4G\"\n",
            parent.display().to_string()
        ),
    )
    .unwrap();
    let o = f.run(&["show", &child.display().to_string()]);
    assert!(o.status.success(), "{}", text(&o));
    let show = String::from_utf8(o.stdout).unwrap();
    // From the child.
    assert_origin(&show, f.dir.path(), "name = \"team\"", &child, 4);
    assert_origin(&show, f.dir.path(), "\"org.example.team\" = \"a\"", &child, 5);
    assert_origin(&show, f.dir.path(), "\"git\",", &child, 9);
    assert_origin(&show, f.dir.path(), "memory = \"4G\"", &child, 13);
    // From the parent, including inherited list elements that survived the edit.
    assert_origin(&show, f.dir.path(), "tag = \"latest\"", &parent, line_of(&parent, "tag = "));
    assert_origin(&show, f.dir.path(), "\"alpine-base\",", &parent, line_of(&parent, "\"alpine-base\""));
    assert_origin(&show, f.dir.path(), "\"e2fsprogs\",", &parent, line_of(&parent, "\"e2fsprogs\""));
    assert_origin(&show, f.dir.path(), "cpus = 1", &parent, line_of(&parent, "cpus = "));
    assert_origin(&show, f.dir.path(), "bip = ", &parent, line_of(&parent, "bip = "));
    assert!(!show.contains("\"util-linux\""), "removed: {show}");
    // What show prints is the merged recipe, as TOML.
    let plain: String = show.lines().map(|l| format!("{}\n", l.split("  # ").next().unwrap())).collect();
    let merged: toml::Table = toml::from_str(&plain).unwrap_or_else(|e| panic!("{e}\n{plain}"));
    assert_eq!(merged["image"]["labels"]["org.example.team"].as_str(), Some("a"));
    assert_eq!(merged["vm"]["memory"].as_str(), Some("4G"));

    // --json: the same origins by key.
    let o = f.run(&["show", "--json", &child.display().to_string()]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["origins"]["image.name"].as_str().unwrap().ends_with("team.toml:4"), "{}", v["origins"]);
    assert!(v["origins"]["guest.packages[0]"]
        .as_str()
        .unwrap()
        .ends_with(&format!("default.toml:{}", line_of(&parent, "\"alpine-base\""))));
}

#[test]
fn extends_cycles_and_missing_parents_are_clear_errors() {
    let f = Fixture::new();
    let a = f.path("a.toml");
    let b = f.path("b.toml");
    fs::write(&a, "# a\nextends = \"b.toml\"\n[image]\nname = \"a\"\n").unwrap();
    fs::write(&b, "# b\n\nextends = \"a.toml\"\n").unwrap();
    let o = f.run(&["check", "a.toml"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("cycle"), "{t}");
    assert!(t.contains("b.toml:3: extends: cycle"), "points at b's extends line: {t}");
    assert!(
        t.contains(&format!("{} → {} → {}", a.display(), b.display(), a.display())),
        "names the files in order: {t}"
    );

    let c = f.path("c.toml");
    fs::write(&c, format!("# c\n\n\nextends = \"teams/missing.toml\"\n{}", "[image]\nname = \"c\"\n")).unwrap();
    let o = f.run(&["check", "c.toml"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("c.toml:4: extends: parent recipe"), "file:line of the extends: {t}");
    assert!(t.contains("teams/missing.toml") && t.contains("does not exist"), "{t}");

    // Removing what the parent does not have is an error, not a silent no-op.
    let d = f.path("d.toml");
    fs::write(
        &d,
        format!(
            "extends = {:?}\n[guest]\npackages = {{ remove = [\"qemu-guest-agnet\"] }}\n",
            default_recipe().display().to_string()
        ),
    )
    .unwrap();
    let o = f.run(&["check", "d.toml"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("d.toml:3: guest.packages.remove: \"qemu-guest-agnet\" is not in the inherited list"),
        "{t}"
    );
}

#[test]
fn new_writes_a_starter_that_checks_and_extends_the_default() {
    let f = Fixture::new();
    let o = f.run(&["new", "team-x", "--dir", "teams", "--extends", &default_recipe().display().to_string()]);
    assert!(!o.status.success(), "--dir must exist: {}", text(&o));
    fs::create_dir_all(f.path("teams")).unwrap();
    let o = f.run(&["new", "team-x", "--dir", "teams", "--extends", &default_recipe().display().to_string()]);
    assert!(o.status.success(), "{}", text(&o));
    let starter = f.path("teams/team-x.toml");
    let body = fs::read_to_string(&starter).unwrap();
    // An absolute --extends is written as given (a relative one is made
    // relative to the new file: see starter.rs).
    assert!(body.lines().any(|l| l == format!("extends = {:?}", default_recipe().display().to_string())), "{body}");
    let o = f.run(&["check", "teams/team-x.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("ok (2 files)"), "{}", text(&o));
    let o = f.run(&["show", "teams/team-x.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let show = String::from_utf8(o.stdout).unwrap();
    assert_origin(&show, f.dir.path(), "name = \"team-x\"", &starter, line_of(&starter, "name = "));
    let parent = default_recipe();
    assert_origin(&show, f.dir.path(), "package = \"linux-virt\"", &parent, line_of(&parent, "package = "));
    assert_origin(&show, f.dir.path(), "\"e2fsprogs\",", &parent, line_of(&parent, "\"e2fsprogs\""));
    // No overwrite.
    let o = f.run(&["new", "team-x", "--dir", "teams", "--extends", &default_recipe().display().to_string()]);
    assert!(!o.status.success() && text(&o).contains("already exists"), "{}", text(&o));

    // The starter builds once pointed at the generated mirror.
    let b = f.build(&f.child("team-x-local", &starter, ""), "team-x");
    assert_eq!(b.report["image"]["reference"], "team-x:latest");
}

/// Kernel modules: by default only what the guest can need stays in
/// rootfs.ext4, and the indexes describe exactly that; `"all"` and `keep`
/// bring the rest back; every module the recipe names must exist, and every
/// `guest.remove` path, each error naming the recipe line.
#[test]
fn kernel_modules_are_trimmed_to_what_the_guest_can_need() {
    let f = Fixture::new();
    let dir = format!("/lib/modules/{KERNEL_RELEASE}");
    let b = f.build(&f.child("trim", &default_recipe(), ""), "trim");
    for gone in ["kernel/sound/core/snd", "kernel/sound/core/snd-timer", "kernel/drivers/net/ethernet/intel/e1000/e1000"] {
        assert!(!b.has(&format!("{dir}/{gone}.ko.gz")) && !b.has(&format!("{dir}/{gone}.ko")), "{gone} was kept");
    }
    // On-demand modules of dockerd's networking stay (the whole netfilter
    // tree), stored uncompressed: the same ELF as the package's .ko.gz.
    let ftp = format!("{dir}/kernel/net/netfilter/nf_conntrack_ftp");
    assert!(b.has(&format!("{ftp}.ko")) && !b.has(&format!("{ftp}.ko.gz")));
    assert_eq!(&b.guest_bytes(&format!("{ftp}.ko"))[..4], b"\x7fELF");
    let dep = b.guest_text(&format!("{dir}/modules.dep"));
    assert!(!dep.contains("snd") && !dep.contains("e1000") && dep.contains("kernel/net/netfilter/nf_conntrack_ftp.ko:") && !dep.contains(".ko.gz"), "{dep}");
    // decompress = false keeps them as the package ships them.
    let shipped = f.build(&f.child("shipped", &default_recipe(), "[kernel]\nmodules = { decompress = false }\n"), "shipped");
    assert!(shipped.has(&format!("{ftp}.ko.gz")) && !shipped.has(&format!("{ftp}.ko")));
    assert!(shipped.guest_text(&format!("{dir}/modules.dep")).contains("kernel/net/netfilter/nf_conntrack_ftp.ko.gz:"));
    assert!(!b.guest_text(&format!("{dir}/modules.alias")).contains("char_major_116") && !b.guest_text(&format!("{dir}/modules.alias")).contains("pci:v00008086d00001000"));
    let removed = b.report["removed"].as_array().unwrap();
    let modules = removed.iter().find(|r| r["why"].as_str().unwrap().starts_with("kernel.modules")).expect("a kernel.modules entry in report.removed");
    assert_eq!(modules["files"], 3, "{removed:?}");
    assert!(modules["bytes"].as_u64().unwrap() > 0);

    let all = f.build(&f.child("all", &default_recipe(), "[kernel]\nmodules = \"all\"\n"), "all");
    assert!(all.has(&format!("{dir}/kernel/sound/core/snd.ko.gz")) && all.has(&format!("{dir}/kernel/drivers/net/ethernet/intel/e1000/e1000.ko.gz")));
    assert!(!all.report["removed"].as_array().unwrap().iter().any(|r| r["why"].as_str().unwrap().starts_with("kernel.modules")));

    // A name keeps its dependencies; a directory keeps what is below it.
    let keep = f.build(&f.child("keep", &default_recipe(), "[kernel]\nmodules = { keep = [\"snd_timer\", \"kernel/drivers/net/ethernet/\"] }\n"), "keep");
    for kept in ["kernel/sound/core/snd.ko", "kernel/sound/core/snd-timer.ko", "kernel/drivers/net/ethernet/intel/e1000/e1000.ko"] {
        assert!(keep.has(&format!("{dir}/{kept}")), "{kept} was trimmed");
    }

    for (name, extra, key, needle) in [
        ("nokeep", "[kernel]\nmodules = { keep = [\"no_such_module\"] }\n", "modules = ", "\"no_such_module\" is not in linux-virt"),
        ("nodir", "[kernel]\nmodules = { keep = [\"kernel/sound/usb/\"] }\n", "modules = ", "no module below"),
        ("noguest", "[guest]\nmodules = [\"no_such_module\"]\n", "modules = ", "\"no_such_module\" is not in linux-virt"),
        ("noremove", "[guest]\nremove = [\"/usr/bin/no-such-tool\"]\n", "remove = ", "\"/usr/bin/no-such-tool\" is not in the tree"),
        ("badword", "[kernel]\nmodules = \"some\"\n", "modules = ", "\"all\" or { keep"),
    ] {
        let r = f.child(name, &default_recipe(), extra);
        let o = f.run(&["build", "--out", &format!("out/{name}"), &r.display().to_string()]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {t}");
        assert!(t.contains(needle), "{name}: {t}");
        assert!(t.contains(&format!("{}:{}", r.file_name().unwrap().to_string_lossy(), line_of(&r, key))), "{name}: names file:line: {t}");
        assert!(!f.path(&format!("out/{name}")).exists(), "{name}: a failed build publishes nothing");
    }
}

/// A tagged repository (edge's testing next to v3.22's main and community,
/// as `/etc/apk/repositories` would list `@edge …/edge/testing`) serves a
/// request for `name@edge`, whose dependencies still come from main; an
/// untagged request for the same package is refused with the tag to use,
/// and a tag no repository has is a recipe error at its line.
#[test]
fn a_tagged_repository_serves_tagged_requests_only() {
    let f = Fixture::new();
    let tool = PackageSpec::new("dinv-edge-tool", "0.1.0-r0").depend("so:libc.musl-x86_64.so.1").file("usr/bin/dinv-edge-tool", b"tool".to_vec(), 0o755);
    write_repository(&f.mirror.root.join("edge"), "testing", "x86_64", &[tool], &f.mirror.key).unwrap();
    let recipe = |name: &str, package: &str| -> PathBuf {
        let text = f.mirror.child_recipe(&default_recipe(), &format!("[guest]\npackages = {{ add = [{package:?}] }}\n")).replacen(
            "[build]",
            "repositories = [\"main\", \"community\", { name = \"testing\", branch = \"edge\", tag = \"edge\" }]\n\n[build]",
            1,
        );
        let p = f.path(&format!("{name}.toml"));
        fs::write(&p, text).unwrap();
        p
    };

    let tagged = recipe("tagged", "dinv-edge-tool@edge");
    let out = f.run(&["resolve", "--json", &tagged.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let guest = v["sets"][0]["packages"].as_array().unwrap();
    let find = |name: &str| guest.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{name} not in the guest set"));
    let tool = find("dinv-edge-tool");
    assert!(tool["url"].as_str().unwrap().ends_with("/edge/testing/x86_64/dinv-edge-tool-0.1.0-r0.apk"), "{tool}");
    assert!(tool["reasons"].as_array().unwrap().iter().any(|r| r == "requested (guest.packages)"), "{tool}");
    assert!(find("musl")["url"].as_str().unwrap().contains("/v3.22/main/"), "the dependency comes from main");

    let untagged = recipe("untagged", "dinv-edge-tool");
    let out = f.run(&["resolve", &untagged.display().to_string()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(t.contains("dinv-edge-tool: only in repositories tagged @edge (ask for dinv-edge-tool@edge)"), "{t}");

    let unknown = recipe("unknown", "dinv-edge-tool@testing");
    let out = f.run(&["check", &unknown.display().to_string()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    let line = line_of(&unknown, "packages");
    assert!(t.contains(&format!("unknown.toml:{line}: guest.packages")), "{t}");
    assert!(t.contains("asks for repository tag @testing, but no repository of the source has it (tags: @edge)"), "{t}");
}
