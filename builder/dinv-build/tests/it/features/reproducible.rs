//! Reproducibility: the same recipe built twice under different host
//! conditions (working directory, recipe location, umask, time zone,
//! locale, cache) gives the same bytes in every output file, and
//! `dinv-build verify` agrees.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use dinv_apk::testkit::{write_repository, PackageSpec, TestKey};

use dinv_test_support as support;
use support::cli::{text, Cli};
use support::fake_kernel::{bootable_specs, copy_fragments};
use support::outputs::assert_same_outputs;

/// A signed repository and a recipe (keys and fragments beside it).
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let key = TestKey::generate("test-signer@dinv.invalid-5e1f0003.rsa.pub", 1024, 13);
        let mut specs = bootable_specs();
        // The newest build time is the default SOURCE_DATE_EPOCH.
        let mut late = PackageSpec::new("late", "1.0-r0").file("usr/share/late/stamp", b"late\n".to_vec(), 0o644);
        late.build_date = 1_710_000_000;
        specs.push(late);
        write_repository(&dir.path().join("mirror"), "main", "x86_64", &specs, &key).unwrap();
        let f = Fixture { dir };
        f.write_recipe_dir(&f.dir.path().join("a"), &key);
        f.write_recipe_dir(&f.dir.path().join("b/elsewhere"), &key);
        // Host timestamps differ between the copies (both after the epoch, so clamped).
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(86_400);
        fs::File::options().write(true).open(f.dir.path().join("b/elsewhere/overlay/etc/dinv-test/hello")).unwrap().set_modified(later).unwrap();
        f
    }

    /// A recipe, its key and fragments in `at` (relative paths inside).
    fn write_recipe_dir(&self, at: &Path, key: &TestKey) {
        fs::create_dir_all(at.join("keys")).unwrap();
        fs::write(at.join("keys").join(&key.name), key.public_pem()).unwrap();
        let frags = copy_fragments(at);
        fs::create_dir_all(at.join("overlay/etc/dinv-test")).unwrap();
        fs::write(at.join("overlay/etc/dinv-test/hello"), "from the overlay\n").unwrap();
        // An input outside the recipe's directory: its key (`../shared/…`)
        // must not depend on where dinv-build runs or how the recipe is named.
        let shared = at.join("../shared/etc/dinv-test");
        fs::create_dir_all(&shared).unwrap();
        fs::write(shared.join("shared"), "from a sibling directory\n").unwrap();
        let text = format!(
            r#"[image]
name = "repro-test"
tag = "1.0"

[sources.alpine]
type = "apk"
repositories = [{{ url = "file://{root}/main" }}]
keys = ["keys"]

[guest]
source = "alpine"
packages = ["alpine-baselayout", "linux-virt", "late"]

[runtime]
source = "alpine"
packages = ["qemu-system-x86_64", "docker-cli"]

[kernel]
package = "linux-virt"
fragments = [{frags}]

[[overlays]]
path = "overlay"

[[overlays]]
path = "../shared"
"#,
            root = self.dir.path().join("mirror").display(),
        );
        fs::write(at.join("recipe.toml"), text).unwrap();
    }

    fn recipe(&self, which: &str) -> PathBuf {
        match which {
            "a" => self.dir.path().join("a/recipe.toml"),
            _ => self.dir.path().join("b/elsewhere/recipe.toml"),
        }
    }

    /// Runs dinv-build through `sh -c 'umask …; exec …'` with the given
    /// working directory, cache, time zone and locale.
    fn run(&self, args: &[&str], cwd: &Path, umask: &str, tz: &str, lang: &str, cache: &str) -> Output {
        Cli::new(env!("CARGO_BIN_EXE_dinv-build"), cwd)
            .cache(self.dir.path().join(cache))
            .umask(umask)
            .env("TZ", tz)
            .env("LANG", lang)
            .env("LC_ALL", lang)
            .run(args)
    }
}


#[test]
fn two_builds_under_different_host_conditions_are_bit_identical() {
    let f = Fixture::new();
    let out_a = f.dir.path().join("out-a");
    let out_b = f.dir.path().join("out-b");
    let ra = f.recipe("a");
    let rb = f.recipe("b");
    let a = f.run(&["build", "--out", out_a.to_str().unwrap(), ra.to_str().unwrap()], &f.dir.path().join("cwd-a"), "022", "UTC", "C", "cache-a");
    assert!(a.status.success(), "{}", text(&a));
    // Relative recipe path from another directory, another umask, zone, locale and cache.
    let b = f.run(&["build", "--out", out_b.to_str().unwrap(), "../b/elsewhere/recipe.toml"], &f.dir.path().join("cwd-b"), "077", "Asia/Seoul", "ko_KR.UTF-8", "cache-b");
    assert!(b.status.success(), "{}", text(&b));
    assert!(rb.is_file());

    // Every artifact is there: kernel, initramfs, rootfs, both image formats, SBOM.
    for want in ["vmlinuz", "initramfs", "rootfs.ext4", "image.tar", "oci/index.json", "oci/oci-layout", "sbom.spdx.json", "packages.json", "report.json"] {
        assert!(out_a.join(want).is_file(), "{want} missing: {:?}", support::outputs::files(&out_a).keys().collect::<Vec<_>>());
    }
    assert!(fs::read_dir(out_a.join("oci/blobs/sha256")).unwrap().count() >= 4, "manifest, config and layers");
    let n = assert_same_outputs(&out_a, &out_b, dinv_build::REPORT_RUN_FIELDS);
    eprintln!("{n} files identical");
    // The umasks did apply: they show in the files' modes, not their bytes.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode(&out_a.join("packages.json")), mode(&out_b.join("packages.json"))), (0o644, 0o600));

    // The date came from the newest package, not the clock.
    let sbom = fs::read_to_string(out_a.join("sbom.spdx.json")).unwrap();
    assert!(sbom.contains("2024-03-09T16:00:00Z"), "created date is the newest build time (1710000000): {}", &sbom[..sbom.len().min(600)]);
}

#[test]
fn verify_builds_twice_and_reports_every_file_ok() {
    let f = Fixture::new();
    let recipe = f.recipe("a");
    let cwd = f.dir.path().join("cwd");
    let o = f.run(&["verify", recipe.to_str().unwrap()], &cwd, "022", "UTC", "C", "cache");
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    eprintln!("{t}");
    for name in ["rootfs.ext4", "image.tar", "oci/index.json", "sbom.spdx.json", "vmlinuz", "initramfs"] {
        let line = t.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap_or_else(|| panic!("{name} not listed: {t}"));
        assert!(line.contains("OK"), "{line}");
    }
    assert!(t.contains("reproducible") && !t.contains("NOT reproducible"), "{t}");

    let o = f.run(&["verify", "--json", recipe.to_str().unwrap()], &cwd, "022", "UTC", "C", "cache");
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    let files = v["verify"]["files"].as_array().unwrap();
    assert!(files.len() >= 10, "{v}");
    assert!(files.iter().all(|f| f["ok"] == true && f["first"] == f["second"] || f["name"] == "report.json"), "{v}");
    // The temporary builds are gone.
    let left: Vec<_> = fs::read_dir(cwd.join("out")).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "verify left {left:?} behind");
}

/// A tiny Debian guest (`netbase`, no essential set, no kernel) from the
/// local mirror, built under the same differing host conditions.
#[test]
fn debian_builds_are_bit_identical_too() {
    let m = support::debian_mirror::Mirror::new();
    let version = m.filenames["netbase"].keys().next_back().unwrap().clone();
    m.ensure_packages(&[("netbase".to_string(), version)]);
    let f = Fixture { dir: tempfile::tempdir().unwrap() };
    let recipe = f.dir.path().join("deb.toml");
    fs::write(
        &recipe,
        format!(
            "[image]\nname = \"deb-repro\"\n\n[sources.debian]\ntype = \"deb\"\nmirror = \"{}\"\nsuite = \"bookworm\"\nkeyrings = [\"/usr/share/keyrings/debian-archive-keyring.gpg\"]\nessential = false\n\n[guest]\nsource = \"debian\"\npackages = [\"netbase\"]\n",
            m.url()
        ),
    )
    .unwrap();
    let r = recipe.to_str().unwrap();
    let (out_a, out_b) = (f.dir.path().join("out-a"), f.dir.path().join("out-b"));
    let a = f.run(&["build", "--out", out_a.to_str().unwrap(), r], &f.dir.path().join("cwd-a"), "022", "UTC", "C", "cache-a");
    assert!(a.status.success(), "{}", text(&a));
    let b = f.run(&["build", "--out", out_b.to_str().unwrap(), r], &f.dir.path().join("cwd-b"), "077", "Asia/Seoul", "ko_KR.UTF-8", "cache-b");
    assert!(b.status.success(), "{}", text(&b));
    assert!(out_a.join("rootfs.ext4").is_file() && out_a.join("sbom.spdx.json").is_file());
    let n = assert_same_outputs(&out_a, &out_b, dinv_build::REPORT_RUN_FIELDS);
    eprintln!("{n} files identical");
}

/// An input that changes on every read (the kernel's random UUID file)
/// makes the builds differ: `verify` names the files and the first
/// differing byte and exits 6.
#[test]
fn verify_names_the_first_difference_and_exits_6() {
    let f = Fixture::new();
    let recipe = f.dir.path().join("a/nondeterministic.toml");
    let mut text_ = fs::read_to_string(f.recipe("a")).unwrap();
    text_.push_str("\n[[files]]\npath = \"/etc/build-uuid\"\nsource = \"/proc/sys/kernel/random/uuid\"\n");
    fs::write(&recipe, text_).unwrap();
    let cwd = f.dir.path().join("cwd");
    let o = f.run(&["verify", recipe.to_str().unwrap()], &cwd, "022", "UTC", "C", "cache");
    let t = text(&o);
    eprintln!("{t}");
    assert_eq!(o.status.code(), Some(6), "{t}");
    let line = t.lines().find(|l| l.split_whitespace().next() == Some("rootfs.ext4")).unwrap_or_else(|| panic!("{t}"));
    assert!(line.contains("DIFFERS") && line.contains("first difference at byte "), "{line}");
    let line = t.lines().find(|l| l.split_whitespace().next() == Some("vmlinuz")).unwrap_or_else(|| panic!("{t}"));
    assert!(line.contains("OK"), "{line}");
    assert!(t.contains("NOT reproducible") && t.contains("error: outputs differ: "), "{t}");

    let o = f.run(&["verify", "--json", recipe.to_str().unwrap()], &cwd, "022", "UTC", "C", "cache");
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("one JSON document: {e}: {}", text(&o)));
    assert_eq!(v["error"]["kind"], "not-reproducible");
    assert!(v["error"]["message"].as_str().unwrap().contains("rootfs.ext4 (first difference at byte "), "{v}");
}

/// Layer pieces from the cache and freshly compressed ones are the same
/// bytes: a cold build, a warm one (every piece from the cache) and a mixed
/// one (the cache holds the pieces of a build whose overlay file differed,
/// so only the pieces around the change are compressed) are identical.
#[test]
fn cold_warm_and_mixed_cache_builds_are_bit_identical() {
    let f = Fixture::new();
    let recipe = f.recipe("a");
    let build = |out: &str, cache: &str| -> (PathBuf, serde_json::Value) {
        let dir = f.dir.path().join(out);
        let o = f.run(&["build", "--json", "--out", dir.to_str().unwrap(), recipe.to_str().unwrap()], f.dir.path(), "022", "UTC", "C", cache);
        assert!(o.status.success(), "{}", text(&o));
        let report: serde_json::Value = serde_json::from_slice(&fs::read(dir.join("report.json")).unwrap()).unwrap();
        (dir, report)
    };
    let (cold, r) = build("out-cold", "cache-1");
    assert_eq!(r["cached_layers"], serde_json::json!([]));
    let (warm, r) = build("out-warm", "cache-1");
    assert_eq!(r["cached_layers"], serde_json::json!(["runtime", "dinv"]));
    assert_same_outputs(&cold, &warm, dinv_build::REPORT_RUN_FIELDS);

    let hello = f.dir.path().join("a/overlay/etc/dinv-test/hello");
    let original = fs::read(&hello).unwrap();
    fs::write(&hello, "another greeting\n").unwrap();
    let (other, _) = build("out-other", "cache-2");
    fs::write(&hello, original).unwrap();
    let (mixed, r) = build("out-mixed", "cache-2");
    assert_eq!(r["cached_layers"], serde_json::json!(["runtime"]), "the dinv layer is part cached, part compressed");
    assert_same_outputs(&cold, &mixed, dinv_build::REPORT_RUN_FIELDS);
    assert_ne!(fs::read(other.join("rootfs.ext4")).unwrap(), fs::read(cold.join("rootfs.ext4")).unwrap());
}
