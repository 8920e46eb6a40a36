//! Locked builds: `lock`, then `build --locked` installs exactly the locked
//! packages (even when the repository has newer ones) with outputs
//! bit-identical to the build that was locked; a changed recipe or input
//! is refused; `fetch --locked --vendor` and `build --locked --offline
//! --vendor` build with the repository gone.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use dinv_apk::testkit::{write_repository, PackageSpec, TestKey};

use dinv_test_support as support;
use support::cli::{text, Cli};
use support::ext4::ext4_read;
use support::fake_kernel::{bootable_specs, copy_fragments};
use support::outputs::assert_same_outputs;

struct Fixture {
    dir: tempfile::TempDir,
    key: TestKey,
}

fn hello(version: &str, build_date: u64) -> PackageSpec {
    let mut p = PackageSpec::new("hello", version).file("usr/share/hello/version", format!("{version}\n").into_bytes(), 0o644);
    p.build_date = build_date;
    p
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let key = TestKey::generate("test-signer@dinv.invalid-5e1f0004.rsa.pub", 1024, 17);
        let f = Fixture { dir, key };
        f.write_repo(&[hello("1.0-r0", 1_705_000_000)]);
        let root = f.dir.path();
        fs::create_dir_all(root.join("keys")).unwrap();
        fs::write(root.join("keys").join(&f.key.name), f.key.public_pem()).unwrap();
        let frags = copy_fragments(root);
        let text = format!(
            r#"[image]
name = "locked-test"

[sources.alpine]
type = "apk"
repositories = [{{ url = "file://{mirror}/main" }}]
keys = ["keys"]

[guest]
source = "alpine"
packages = ["alpine-baselayout", "linux-virt", "hello"]

[runtime]
source = "alpine"
packages = ["qemu-system-x86_64", "docker-cli"]

[kernel]
package = "linux-virt"
fragments = [{frags}]
"#,
            mirror = f.mirror().display()
        );
        fs::write(f.recipe(), text).unwrap();
        f
    }

    fn mirror(&self) -> PathBuf {
        self.dir.path().join("mirror")
    }

    fn recipe(&self) -> PathBuf {
        self.dir.path().join("recipe.toml")
    }

    fn lock(&self) -> PathBuf {
        self.dir.path().join("recipe.toml.lock")
    }

    /// (Re)writes the repository: the bootable set plus `extra`.
    fn write_repo(&self, extra: &[PackageSpec]) {
        let mut specs = bootable_specs();
        specs.extend(extra.iter().cloned());
        write_repository(&self.mirror(), "main", "x86_64", &specs, &self.key).unwrap();
    }

    fn run(&self, args: &[&str], cache: &str) -> Output {
        self.run_in(self.dir.path(), args, cache)
    }

    fn run_in(&self, cwd: &Path, args: &[&str], cache: &str) -> Output {
        Cli::new(env!("CARGO_BIN_EXE_dinv-build"), self.dir.path()).cwd(cwd).cache(self.dir.path().join(cache)).run(args)
    }

    fn ok(&self, args: &[&str], cache: &str) -> String {
        let o = self.run(args, cache);
        assert!(o.status.success(), "dinv-build {args:?}: {}", text(&o));
        text(&o)
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join("out").join(name)
    }
}


/// name → version in a build's packages.json.
fn installed(out: &Path, name: &str) -> Vec<String> {
    let sets: serde_json::Value = serde_json::from_slice(&fs::read(out.join("packages.json")).unwrap()).unwrap();
    sets.as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["packages"].as_array().unwrap().iter())
        .filter(|p| p["name"] == name)
        .map(|p| p["version"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn locked_builds_use_the_locked_versions_and_match_the_locked_build() {
    let f = Fixture::new();
    let recipe = f.recipe();
    let r = recipe.to_str().unwrap();
    f.ok(&["lock", r], "cache");
    let lock = fs::read_to_string(f.lock()).unwrap();
    assert!(lock.contains("name = \"hello\"") && lock.contains("version = \"1.0-r0\""), "{lock}");
    assert!(lock.contains("build_time = 1705000000"), "build times are locked (default SOURCE_DATE_EPOCH): {lock}");
    f.ok(&["build", "--out", "out/unlocked-1", r], "cache");
    assert_eq!(installed(&f.out("unlocked-1"), "hello"), ["1.0-r0"]);

    // A newer hello appears upstream.
    f.write_repo(&[hello("1.0-r0", 1_705_000_000), hello("2.0-r0", 1_706_000_000)]);
    f.ok(&["build", "--out", "out/unlocked-2", r], "cache");
    assert_eq!(installed(&f.out("unlocked-2"), "hello"), ["2.0-r0"], "an unlocked build takes the newest");
    assert_eq!(ext4_read(&f.out("unlocked-2").join("rootfs.ext4"), "/usr/share/hello/version").unwrap(), b"2.0-r0\n");

    // The locked build still installs 1.0, and is the locked build bit for bit.
    f.ok(&["build", "--locked", "--out", "out/locked", r], "cache");
    assert_eq!(installed(&f.out("locked"), "hello"), ["1.0-r0"]);
    assert_eq!(ext4_read(&f.out("locked").join("rootfs.ext4"), "/usr/share/hello/version").unwrap(), b"1.0-r0\n");
    let n = assert_same_outputs(&f.out("unlocked-1"), &f.out("locked"), dinv_build::REPORT_RUN_FIELDS);
    assert!(n >= 10, "{n} files");

    let t = f.ok(&["resolve", "--locked", r], "cache");
    assert!(t.lines().any(|l| l.split_whitespace().take(2).eq(["hello", "1.0-r0"])), "{t}");
    let t = f.ok(&["resolve", r], "cache");
    assert!(t.lines().any(|l| l.split_whitespace().take(2).eq(["hello", "2.0-r0"])), "{t}");
}

/// Copies `from` into `to`, recursively.
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn a_lock_travels_with_its_tree() {
    let f = Fixture::new();
    let root = f.dir.path();
    // Locked and built where it was written, the recipe named by its bare
    // file name (its directory is then the empty path).
    let o = f.run_in(root, &["lock", "recipe.toml"], "cache");
    assert!(o.status.success(), "{}", text(&o));
    let lock = fs::read_to_string(f.lock()).unwrap();
    let inputs = lock.split("[inputs]").nth(1).unwrap().split("\n[").next().unwrap();
    assert!(!inputs.contains(&root.display().to_string()), "no absolute input paths in the lock:\n{inputs}");
    assert!(lock.contains("\"recipe.toml\" = ") && lock.contains("\"kernel-configs/"), "inputs keyed relative to the recipe:\n{lock}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(f.lock()).unwrap().permissions().mode() & 0o777, 0o644, "a lock is an output like any other");
    let o = f.run_in(root, &["build", "--locked", "--out", "out/here", "recipe.toml"], "cache");
    assert!(o.status.success(), "{}", text(&o));

    // The same tree copied elsewhere: recipe, lock, keys and fragments.
    let moved = root.join("elsewhere/checkout");
    for name in ["recipe.toml", "recipe.toml.lock"] {
        fs::create_dir_all(&moved).unwrap();
        fs::copy(root.join(name), moved.join(name)).unwrap();
    }
    for dir in ["keys", "kernel-configs"] {
        copy_tree(&root.join(dir), &moved.join(dir));
    }
    // From inside the copy by bare name, and from elsewhere by absolute path.
    let o = f.run_in(&moved, &["build", "--locked", "--out", "out/moved", "recipe.toml"], "cache");
    assert!(o.status.success(), "{}", text(&o));
    let abs = moved.join("recipe.toml");
    let o = f.run_in(root, &["build", "--locked", "--out", "out/moved-abs", abs.to_str().unwrap()], "cache-2");
    assert!(o.status.success(), "{}", text(&o));
    let n = assert_same_outputs(&f.out("here"), &moved.join("out/moved"), dinv_build::REPORT_RUN_FIELDS);
    assert!(n >= 10, "{n} files");
    assert_same_outputs(&f.out("here"), &f.out("moved-abs"), dinv_build::REPORT_RUN_FIELDS);
}

#[test]
fn a_changed_recipe_or_input_refuses_the_lock() {
    let f = Fixture::new();
    let r = f.recipe();
    let r = r.to_str().unwrap();
    let o = f.run(&["build", "--locked", r], "cache");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("recipe.toml.lock does not exist"), "{}", text(&o));

    f.ok(&["lock", r], "cache");
    let original = fs::read_to_string(f.recipe()).unwrap();
    fs::write(f.recipe(), original.replace("\"hello\"]", "\"hello\", \"docker-cli\"]")).unwrap();
    for args in [vec!["build", "--locked", r], vec!["resolve", "--locked", r], vec!["fetch", "--locked", r]] {
        let o = f.run(&args, "cache");
        let t = text(&o);
        eprintln!("{t}");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
        assert!(t.contains("recipe.toml.lock") && t.contains("recipe changed since the lock (recipe.toml)"), "{t}");
    }
    // A stale lock is its own kind in JSON.
    let o = f.run(&["--json", "build", "--locked", r], "cache");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((v["error"]["kind"].as_str(), v["error"]["exit_code"].as_u64()), (Some("lock"), Some(2)), "{v}");
    assert!(!f.out("locked-test").exists(), "nothing built");

    // An input the recipe names (a kernel fragment) changed.
    fs::write(f.recipe(), &original).unwrap();
    let frag = fs::read_dir(f.dir.path().join("kernel-configs")).unwrap().next().unwrap().unwrap().path();
    let mut text_ = fs::read_to_string(&frag).unwrap();
    text_.push_str("# changed\n");
    fs::write(&frag, text_).unwrap();
    let o = f.run(&["build", "--locked", r], "cache");
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    let name = format!("kernel-configs/{} changed", frag.file_name().unwrap().to_string_lossy());
    assert!(t.contains(&name), "names the changed file ({name}): {t}");

    // A different trusted key.
    fs::write(&frag, fs::read_to_string(&frag).unwrap().replace("# changed\n", "")).unwrap();
    let other = TestKey::generate("other@dinv.invalid-00000001.rsa.pub", 1024, 99);
    fs::write(f.dir.path().join("keys").join(&other.name), other.public_pem()).unwrap();
    let o = f.run(&["build", "--locked", r], "cache");
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("trusted keys of source \"alpine\" changed") && t.contains(&other.name), "{t}");
}

#[test]
fn vendored_offline_build_needs_neither_mirror_nor_cache() {
    let f = Fixture::new();
    let r = f.recipe();
    let r = r.to_str().unwrap();
    f.ok(&["lock", r], "cache");
    f.ok(&["build", "--locked", "--out", "out/online", r], "cache");
    let vendor = f.dir.path().join("vendor");
    let t = f.ok(&["fetch", "--locked", "--vendor", vendor.to_str().unwrap(), r], "cache-fetch");
    assert!(t.contains("vendored"), "{t}");
    let blobs: Vec<_> = fs::read_dir(vendor.join("apk-q1")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let locked = fs::read_to_string(f.lock()).unwrap().matches("[[packages]]").count();
    assert_eq!(blobs.len(), locked, "{blobs:?}");
    assert!(blobs.iter().all(|b| b.len() == 40 && b.bytes().all(|c| c.is_ascii_hexdigit())), "{blobs:?}");

    // No mirror, a fresh cache.
    fs::remove_dir_all(f.mirror()).unwrap();
    let v = vendor.to_str().unwrap();
    f.ok(&["build", "--locked", "--offline", "--vendor", v, "--out", "out/vendored", r], "cache-offline");
    assert_same_outputs(&f.out("online"), &f.out("vendored"), dinv_build::REPORT_RUN_FIELDS);

    // Without the vendor directory there is nothing to build from.
    let o = f.run(&["build", "--locked", "--offline", "--out", "out/nothing", r], "cache-empty");
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(!f.out("nothing").exists());

    // A damaged vendored blob is caught before it enters the cache.
    let victim = vendor.join("apk-q1").join(&blobs[0]);
    let mut bytes = fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&victim, bytes).unwrap();
    let o = f.run(&["build", "--locked", "--offline", "--vendor", v, "--out", "out/damaged", r], "cache-damaged");
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let cached = walk_count(&f.dir.path().join("cache-damaged/blobs"));
    assert!(cached < locked, "the damaged blob is not cached ({cached} of {locked})");
}

fn walk_count(dir: &Path) -> usize {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    rd.map(|e| e.unwrap().path()).map(|p| if p.is_dir() { walk_count(&p) } else { 1 }).sum()
}

/// The Debian path: lock, vendor (`sha256/` names), then an offline
/// locked build with the mirror gone matches the online locked build.
#[test]
fn debian_vendored_offline_build_matches_the_online_one() {
    let m = support::debian_mirror::Mirror::new();
    let version = m.filenames["netbase"].keys().next_back().unwrap().clone();
    m.ensure_packages(&[("netbase".to_string(), version.clone())]);
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("deb.toml");
    fs::write(
        &recipe,
        format!(
            "[image]\nname = \"deb-locked\"\n\n[sources.debian]\ntype = \"deb\"\nmirror = \"{}\"\nsuite = \"bookworm\"\nkeyrings = [\"/usr/share/keyrings/debian-archive-keyring.gpg\"]\nessential = false\n\n[guest]\nsource = \"debian\"\npackages = [\"netbase\"]\n",
            m.url()
        ),
    )
    .unwrap();
    let run = |args: &[&str], cache: &str| Cli::new(env!("CARGO_BIN_EXE_dinv-build"), dir.path()).cache(dir.path().join(cache)).ok(args);
    let r = recipe.to_str().unwrap();
    run(&["lock", r], "cache");
    let lock = fs::read_to_string(dir.path().join("deb.toml.lock")).unwrap();
    assert!(lock.contains("name = \"netbase\"") && lock.contains(&format!("version = \"{version}\"")), "{lock}");
    run(&["build", "--locked", "--out", "out/online", r], "cache");
    run(&["build", "--out", "out/unlocked", r], "cache");
    assert_same_outputs(&dir.path().join("out/unlocked"), &dir.path().join("out/online"), dinv_build::REPORT_RUN_FIELDS);
    let vendor = dir.path().join("vendor");
    run(&["fetch", "--locked", "--vendor", vendor.to_str().unwrap(), r], "cache");
    let blobs: Vec<String> = fs::read_dir(vendor.join("sha256")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    assert!(lock.contains(&format!("checksum = \"{}\"", blobs[0])), "named by the locked SHA-256: {blobs:?}\n{lock}");

    fs::remove_dir_all(&m.root).unwrap();
    run(&["build", "--locked", "--offline", "--vendor", vendor.to_str().unwrap(), "--out", "out/vendored", r], "cache-offline");
    assert_same_outputs(&dir.path().join("out/online"), &dir.path().join("out/vendored"), dinv_build::REPORT_RUN_FIELDS);
}
