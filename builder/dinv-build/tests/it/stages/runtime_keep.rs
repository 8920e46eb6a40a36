//! `runtime.keep` through the CLI, on the generated v3.22-shaped Alpine
//! mirror (where QEMU, its TCG module, glib and musl are ELF files that
//! link to each other): the default recipe's runtime layer holds exactly
//! the kept paths and their closure, the report counts what was left out,
//! the SBOM still lists every runtime package, and a missing path or
//! library fails naming the recipe line, the file and the library.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Output;

use dinv_fstree::tar::TarReader;
use dinv_test_support as support;
use serde_json::Value;
use support::alpine_repo::{repo_root, AlpineMirror};
use support::cli::{text, Cli};

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

    /// `<name>.toml` extending the default recipe, with `extra` appended.
    fn recipe(&self, name: &str, extra: &str) -> PathBuf {
        let parent = repo_root().join("recipes/default.toml").canonicalize().unwrap();
        let p = self.dir.path().join(format!("{name}.toml"));
        fs::write(&p, self.mirror.child_recipe(&parent, extra)).unwrap();
        p
    }

    fn build(&self, recipe: &Path, out: &str) -> Output {
        Cli::new(env!("CARGO_BIN_EXE_dinv-build"), self.dir.path()).run(&["build", "--quiet", "--out", &format!("out/{out}"), &recipe.display().to_string()])
    }

    fn built(&self, recipe: &Path, out: &str) -> (PathBuf, Value) {
        let o = self.build(recipe, out);
        assert!(o.status.success(), "{}", text(&o));
        let dir = self.dir.path().join("out").join(out);
        let report = json(&dir.join("report.json"));
        (dir, report)
    }
}

fn json(p: &Path) -> Value {
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
}

/// The paths in the image's runtime layer (directories with a trailing `/`).
fn runtime_layer(out: &Path, report: &Value) -> BTreeSet<String> {
    let layer = &report["image"]["layers"][0];
    assert_eq!(layer["name"], "runtime");
    let digest = layer["digest"].as_str().unwrap().trim_start_matches("sha256:");
    let gz = fs::read(out.join("oci/blobs/sha256").join(digest)).unwrap();
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut tar).unwrap();
    let mut r = TarReader::new(&tar[..]);
    let mut paths = BTreeSet::new();
    while let Some(e) = r.next_entry().unwrap() {
        paths.insert(e.path.clone());
    }
    paths
}

#[test]
fn the_runtime_layer_holds_the_kept_paths_and_their_closure() {
    let fx = Fixture::new();
    let (out, report) = fx.built(&fx.recipe("plain", ""), "plain");
    let layer = runtime_layer(&out, &report);
    let files: BTreeSet<&str> = layer.iter().filter(|p| !p.ends_with('/')).map(String::as_str).collect();
    let expected: BTreeSet<&str> = [
        // runtime.keep
        "usr/bin/qemu-system-x86_64",
        "usr/lib/qemu/accel-tcg-x86_64.so",
        "usr/share/qemu/bios-microvm.bin",
        "usr/bin/qemu-img",
        "usr/bin/docker",
        "etc/ssl/certs/ca-certificates.crt",
        // what QEMU and its module link to: glib through its SONAME link,
        // musl's libc link and the interpreter it names
        "usr/lib/libglib-2.0.so.0",
        "usr/lib/libglib-2.0.so.0.8400.4",
        "lib/libc.musl-x86_64.so.1",
        "lib/ld-musl-x86_64.so.1",
        // what the image adds for a container
        "etc/passwd",
        "etc/group",
        "etc/nsswitch.conf",
    ]
    .into();
    assert_eq!(files, expected);

    let rt = &report["runtime_layer"];
    assert_eq!(rt["keep"], true);
    assert_eq!(rt["elf_files"], 4, "qemu, its TCG module, glib, musl: {rt}");
    assert!(rt["dropped_files"].as_u64().unwrap() >= 1, "{rt}");
    // ca-certificates ships only update-ca-certificates; its bundle comes from ca-certificates-bundle.
    assert_eq!(rt["dropped_packages"], serde_json::json!(["ca-certificates"]));
    // The SBOM still names every runtime package.
    let sbom = fs::read_to_string(out.join("sbom.spdx.json")).unwrap();
    for p in ["ca-certificates", "glib", "musl", "qemu-img", "docker-cli"] {
        assert!(sbom.contains(&format!("\"name\": \"{p}\"")), "{p} missing from the SBOM");
    }

    // Keeping `/` keeps everything.
    let (out, report) = fx.built(&fx.recipe("all", "[runtime]\nkeep = { replace = [\"/\"] }\n"), "all");
    assert!(runtime_layer(&out, &report).contains("usr/bin/update-ca-certificates"));
    assert_eq!(report["runtime_layer"]["dropped_files"], 0);
}

#[test]
fn a_missing_path_or_library_names_the_recipe_line() {
    let fx = Fixture::new();
    let r = fx.recipe("nope", "[runtime]\nkeep = { add = [\"/usr/bin/git\"] }\n");
    let o = fx.build(&r, "nope");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let line = 1 + fs::read_to_string(&r).unwrap().lines().position(|l| l.starts_with("keep = ")).unwrap();
    let msg = text(&o);
    assert!(msg.contains(&format!("{}:{line}: runtime.keep[6]: /usr/bin/git is not in the runtime tree", r.display())), "{msg}");

    // glib's library removed: QEMU's DT_NEEDED cannot be met. (`source`
    // is there because a table whose only key is `remove` reads as a
    // list edit of `runtime` itself.)
    let r = fx.recipe("noglib", "[runtime]\nsource = \"alpine\"\nremove = [\"/usr/lib/libglib-2.0.so.0.8400.4\"]\n");
    let o = fx.build(&r, "noglib");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let msg = text(&o);
    let default = repo_root().join("recipes/default.toml").canonicalize().unwrap();
    let line = 1 + fs::read_to_string(&default).unwrap().lines().position(|l| l.contains("\"/usr/bin/qemu-system-x86_64\"")).unwrap();
    assert!(
        msg.contains(&format!("{}:{line}: runtime.keep[0]: keeping /usr/bin/qemu-system-x86_64: /usr/bin/qemu-system-x86_64 needs libglib-2.0.so.0, which is in none of /lib", default.display())),
        "{msg}"
    );
}
