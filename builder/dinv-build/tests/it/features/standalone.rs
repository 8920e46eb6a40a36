//! dinv-build stands alone: the executable copied into an empty directory,
//! with an empty HOME and no repository around, writes, checks, shows,
//! builds and resolves recipes that extend the recipes built into it
//! (`dinv:default`, `dinv:debian`).

use dinv_test_support as support;
use support::cli::{text, Cli};

use std::fs;
use std::path::{Path, PathBuf};

use support::alpine_repo::{repo_root, AlpineMirror};

/// An empty directory holding only a copy of the executable, an empty
/// HOME, and a working directory with nothing in it.
struct Alone {
    dir: tempfile::TempDir,
    cli: Cli,
}

impl Alone {
    fn new() -> Alone {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin/dinv-build");
        fs::create_dir_all(bin.parent().unwrap()).unwrap();
        fs::copy(env!("CARGO_BIN_EXE_dinv-build"), &bin).unwrap();
        let home = dir.path().join("home");
        let work = dir.path().join("work");
        fs::create_dir_all(&home).unwrap();
        fs::create_dir_all(&work).unwrap();
        let cli = Cli::new(bin.to_str().unwrap(), &work).cache(home.join(".cache/dinv-build")).env("HOME", home.display().to_string());
        Alone { dir, cli }
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }
}

/// `file:line` of the `show` line starting with `needle`.
fn origin<'a>(show: &'a str, needle: &str) -> &'a str {
    let line = show.lines().find(|l| l.trim_start().starts_with(needle)).unwrap_or_else(|| panic!("no {needle:?} in:\n{show}"));
    line.rsplit_once("  # ").unwrap_or_else(|| panic!("{line:?} has no origin")).1
}

/// The 1-based line of the first line of `file` (in the repository) starting with `prefix`.
fn line_of(file: &Path, prefix: &str) -> usize {
    let t = fs::read_to_string(file).unwrap();
    1 + t.lines().position(|l| l.trim_start().starts_with(prefix)).unwrap_or_else(|| panic!("no line {prefix:?} in {}", file.display()))
}

#[test]
fn new_check_and_show_work_with_no_repository_around() {
    let a = Alone::new();
    let o = a.cli.run(&["new", "team-a"]);
    assert!(o.status.success(), "{}", text(&o));
    let body = fs::read_to_string(a.work().join("team-a.toml")).unwrap();
    assert!(body.lines().any(|l| l == "extends = \"dinv:default\""), "{body}");

    let o = a.cli.run(&["check", "team-a.toml"]);
    assert!(o.status.success(), "{}", text(&o));

    let o = a.cli.run(&["show", "team-a.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let show = String::from_utf8(o.stdout).unwrap();
    let default = repo_root().join("recipes/default.toml");
    assert_eq!(origin(&show, "package = \"linux-virt\""), format!("dinv:default:{}", line_of(&default, "package = ")));
    assert_eq!(origin(&show, "name = \"team-a\""), format!("team-a.toml:{}", line_of(&a.work().join("team-a.toml"), "name = ")));
    // Paths inside the embedded recipe name embedded files.
    assert!(show.contains("\"dinv:kernel-configs/docker.config\""), "{show}");
    assert!(show.contains("\"dinv:rootfs-overlays/dinv\""), "{show}");

    // --json: origins as dinv:...
    let o = a.cli.run(&["show", "--json", "team-a.toml"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["origins"]["kernel.package"], format!("dinv:default:{}", line_of(&default, "package = ")));

    // A built-in recipe can be shown by its name.
    let o = a.cli.run(&["show", "dinv:debian"]);
    assert!(o.status.success(), "{}", text(&o));
    let debian = repo_root().join("recipes/debian.toml");
    assert_eq!(origin(&String::from_utf8_lossy(&o.stdout), "name = \"dinv-debian\""), format!("dinv:debian:{}", line_of(&debian, "name = ")));

    // An error inside the chain names the embedded file, and an unknown
    // embedded recipe lists the known ones.
    fs::write(a.work().join("bad.toml"), "extends = \"dinv:nope\"\n").unwrap();
    let o = a.cli.run(&["check", "bad.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("bad.toml:1: extends: dinv:nope is not a recipe embedded in dinv-build (those are dinv:default, dinv:debian)"), "{}", text(&o));
    fs::write(a.work().join("bad2.toml"), "extends = \"dinv:default\"\n[guest]\npackages = { remove = [\"no-such\"] }\n").unwrap();
    let o = a.cli.run(&["check", "bad2.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // A team recipe outside the repository is refused nothing the repository
    // would allow: a relative --extends is still possible.
    let o = a.cli.run(&["new", "team-b", "--extends", "team-a.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(fs::read_to_string(a.work().join("team-b.toml")).unwrap().contains("extends = \"team-a.toml\""));
}

/// A recipe extending `dinv:default`, pointed at the generated mirror,
/// builds; its lock names the embedded inputs as `dinv:...`, and a
/// `--locked` build from it works.
#[test]
fn a_recipe_extending_dinv_default_builds_and_locks_with_no_repository_around() {
    let a = Alone::new();
    let mirror = AlpineMirror::write(&a.dir.path().join("fixtures"));
    let recipe = a.work().join("team.toml");
    fs::write(&recipe, mirror.child_recipe(Path::new("dinv:default"), "[image]\nname = \"team\"\n")).unwrap();
    let o = a.cli.run(&["build", "--quiet", "--out", "out/team", "team.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = a.work().join("out/team");
    // The embedded overlay's template was rendered into the guest.
    let motd = support::ext4::ext4_read(&out.join("rootfs.ext4"), "/etc/motd").expect("/etc/motd in the guest");
    assert!(!motd.is_empty());
    assert!(support::ext4::ext4_read(&out.join("rootfs.ext4"), "/etc/sysctl.d/dinv.conf").is_some());

    let o = a.cli.run(&["lock", "team.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let lock = fs::read_to_string(a.work().join("team.toml.lock")).unwrap();
    for key in ["dinv:default", "dinv:kernel-configs/docker.config", "dinv:rootfs-overlays/dinv/etc/motd.j2"] {
        assert!(lock.contains(&format!("\"{key}\"")), "{key} not in the lock:\n{lock}");
    }
    let o = a.cli.run(&["build", "--locked", "--quiet", "--out", "out/team-locked", "team.toml"]);
    assert!(o.status.success(), "{}", text(&o));

    // An error about an inherited value points into the built-in recipe:
    // without the community repository, a package dinv:default asks for
    // cannot be found, and the error names its line there.
    let text_of = mirror.child_recipe(Path::new("dinv:default"), "[image]\nname = \"team\"\n").replacen("[sources.alpine]\n", "[sources.alpine]\nrepositories = { replace = [\"main\"] }\n", 1);
    fs::write(a.work().join("no-community.toml"), text_of).unwrap();
    let o = a.cli.run(&["resolve", "no-community.toml"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let default = repo_root().join("recipes/default.toml");
    let message = text(&o);
    let missing = message.split("\"alpine\": ").nth(1).and_then(|r| r.split(':').next()).unwrap_or_else(|| panic!("no package named in: {message}"));
    let at = format!("dinv:default:{}: guest.packages[", line_of(&default, &format!("\"{missing}\",")));
    assert!(message.contains(&at), "no {at:?} in: {message}");
}

/// A recipe extending `dinv:debian` builds from the real archive (a local
/// mirror of trixie's three suites, the one tests/it/sources/debian_suites
/// keeps), with nothing but the binary around.
#[test]
fn a_recipe_extending_dinv_debian_builds_from_the_real_archive() {
    let a = Alone::new();
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let m = support::debian_mirror::Mirror::of_suites(&tmp.join("debian-suites/trixie-mirror"), &tmp.join("apt-trixie"), &support::debian_mirror::release_suites("trixie"));
    fs::write(a.work().join("deb.toml"), "extends = \"dinv:debian\"\n\n[image]\nname = \"team-deb\"\n").unwrap();
    let cli = a.cli.clone().env("DINV_DEBIAN_MIRROR", m.url());
    let o = cli.run(&["resolve", "--json", "deb.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut wanted: Vec<(String, String)> = v["sets"].as_array().unwrap().iter().flat_map(|s| s["packages"].as_array().unwrap().iter()).map(|p| (p["name"].as_str().unwrap().to_string(), p["version"].as_str().unwrap().to_string())).collect();
    let names: Vec<&str> = wanted.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"docker.io") && names.contains(&"qemu-guest-agent"), "{names:?}");
    wanted.sort();
    wanted.dedup();
    m.ensure_packages(&wanted);
    let o = cli.run(&["build", "--json", "--out", "out/team-deb", "deb.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = a.work().join("out/team-deb");
    for f in ["image.tar", "rootfs.ext4", "vmlinuz", "initramfs", "packages.json", "sbom.spdx.json"] {
        assert!(out.join(f).is_file(), "{f} missing in {}", out.display());
    }
    let report: serde_json::Value = serde_json::from_slice(&fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["image"]["reference"].as_str().map(|r| r.starts_with("team-deb:")), Some(true), "{report:#}");
}
