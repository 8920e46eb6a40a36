//! A recipe of several platforms (`image.platforms`) resolved, locked and
//! fetched: one lock holds every platform's packages, each with its
//! platform and architecture; `--locked` commands take each platform's own,
//! and a lock that misses one platform is refused, naming it. (Building
//! both platforms from the real archive is `e2e_arm64`'s.)

use std::fs;
use std::path::PathBuf;

use dinv_apk::testkit::{write_repository, PackageSpec, TestKey};

use dinv_test_support as support;
use support::cli::{text, Cli};

fn package(name: &str, version: &str, arch: &str) -> PackageSpec {
    let mut p = PackageSpec::new(name, version).file(&format!("usr/share/{name}/version"), format!("{version}\n").into_bytes(), 0o644);
    p.arch = arch.to_string();
    p
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// x86_64 has hello; aarch64 has hello and hello-arm, which only the
    /// arm64 platform's table asks for.
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let key = TestKey::generate("test-signer@dinv.invalid-5e1f0007.rsa.pub", 1024, 19);
        let mirror = dir.path().join("mirror");
        write_repository(&mirror, "main", "x86_64", &[package("hello", "1.0-r0", "x86_64")], &key).unwrap();
        write_repository(&mirror, "main", "aarch64", &[package("hello", "1.0-r0", "aarch64"), package("hello-arm", "2.0-r0", "aarch64")], &key).unwrap();
        fs::create_dir_all(dir.path().join("keys")).unwrap();
        fs::write(dir.path().join("keys").join(&key.name), key.public_pem()).unwrap();
        let recipe = format!(
            r#"[image]
name = "multi"
platforms = ["linux/amd64", "linux/arm64"]

[sources.alpine]
type = "apk"
repositories = [{{ url = "file://{mirror}/main" }}]
keys = ["keys"]

[guest]
source = "alpine"
packages = ["hello"]

[platform."linux/arm64".guest]
packages = {{ add = ["hello-arm"] }}
"#,
            mirror = mirror.display()
        );
        fs::write(dir.path().join("recipe.toml"), recipe).unwrap();
        Fixture { dir }
    }

    fn cli(&self) -> Cli {
        Cli::new(env!("CARGO_BIN_EXE_dinv-build"), self.dir.path()).cwd(self.dir.path()).cache(self.dir.path().join("cache"))
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let o = self.cli().run(args);
        assert!(o.status.success(), "dinv-build {args:?}: {}", text(&o));
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&o)))
    }

    fn lock(&self) -> PathBuf {
        self.dir.path().join("recipe.toml.lock")
    }
}

/// (platform, name, arch) of every locked package.
fn locked(lock: &toml::Value) -> Vec<(String, String, String)> {
    lock["packages"].as_array().unwrap().iter().map(|p| (p["platform"].as_str().unwrap_or("-").to_string(), p["name"].as_str().unwrap().to_string(), p["arch"].as_str().unwrap().to_string())).collect()
}

#[test]
fn one_lock_holds_every_platform_and_locked_commands_take_their_own() {
    let f = Fixture::new();
    let resolved = f.json(&["resolve", "--json", "recipe.toml"]);
    let names = |v: &serde_json::Value, p: &str| -> Vec<String> {
        v["platforms"][p]["sets"][0]["packages"].as_array().unwrap_or_else(|| panic!("no {p}: {v}")).iter().map(|p| p["name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(names(&resolved, "linux/amd64"), ["hello"]);
    assert_eq!(names(&resolved, "linux/arm64"), ["hello", "hello-arm"]);

    f.cli().ok(&["lock", "recipe.toml"]);
    let lock: toml::Value = toml::from_str(&fs::read_to_string(f.lock()).unwrap()).unwrap();
    let mut got = locked(&lock);
    got.sort();
    let want = [("linux/amd64", "hello", "x86_64"), ("linux/arm64", "hello", "aarch64"), ("linux/arm64", "hello-arm", "aarch64")].map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
    assert_eq!(got, want);
    // One key entry per key, not one per platform.
    assert_eq!(lock["keys"].as_array().unwrap().len(), 1, "{lock}");

    let from_lock = f.json(&["resolve", "--locked", "--json", "recipe.toml"]);
    assert_eq!(names(&from_lock, "linux/arm64"), ["hello", "hello-arm"]);
    assert_eq!(names(&from_lock, "linux/amd64"), ["hello"]);
    let fetched = f.json(&["fetch", "--locked", "--json", "recipe.toml"]);
    assert_eq!(fetched["packages"], 3, "{fetched}");

    // A lock without the arm64 packages (as a single-platform recipe's
    // would be) is refused for that platform.
    let text_lock = fs::read_to_string(f.lock()).unwrap();
    let kept: Vec<&str> = text_lock.split("\n[[packages]]").filter(|entry| !entry.contains("platform = \"linux/arm64\"")).collect();
    fs::write(f.lock(), kept.join("\n[[packages]]")).unwrap();
    let o = f.cli().run(&["resolve", "--locked", "recipe.toml"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("locks no guest packages for linux/arm64"), "{}", text(&o));
}
