//! `--out` never destroys what is not ours: a foreign directory, a file,
//! the current directory or an ancestor, the recipe's directory and the
//! cache are refused with exit 2 before any work starts, and left exactly
//! as they were; an empty directory or a previous output is written.

use std::fs;
use std::path::{Path, PathBuf};

use dinv_apk::testkit::{write_repository, PackageSpec, TestKey};
use dinv_test_support::cli::{text, Cli};

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// A one-package Alpine-format mirror and a kernel-less recipe for it
    /// (a rootfs-only build takes a second).
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let key = TestKey::generate("out-test@dinv.invalid-5e1f0003.rsa.pub", 1024, 13);
        let specs = [PackageSpec::new("alpine-baselayout", "3.6.5-r0").file("etc/motd", b"hi\n".to_vec(), 0o644)];
        write_repository(&dir.path().join("mirror"), "main", "x86_64", &specs, &key).unwrap();
        fs::create_dir_all(dir.path().join("recipes/keys")).unwrap();
        fs::write(dir.path().join("recipes/keys").join(&key.name), key.public_pem()).unwrap();
        let recipe = format!(
            "[image]\nname = \"out-test\"\n\n[sources.alpine]\ntype = \"apk\"\nrepositories = [{{ url = \"file://{}/main\" }}]\nkeys = [\"keys\"]\n\n[guest]\nsource = \"alpine\"\npackages = [\"alpine-baselayout\"]\n\n[build]\nsource_date_epoch = 1700000000\n",
            dir.path().join("mirror").display()
        );
        fs::write(dir.path().join("recipes/r.toml"), recipe).unwrap();
        Fixture { dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn cli(&self) -> Cli {
        Cli::new(env!("CARGO_BIN_EXE_dinv-build"), self.root())
    }

    /// `build --offline` of the recipe into `out`, from `cwd`: with an empty
    /// cache an offline build that started any work would fail with exit 4
    /// (no index), so exit 2 shows the refusal came first.
    fn refused(&self, cwd: &Path, out: &str, why: &str) {
        let recipe = self.root().join("recipes/r.toml");
        let o = self.cli().cwd(cwd).run(&["build", "--offline", "--out", out, recipe.to_str().unwrap()]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "--out {out}: {t}");
        assert!(t.contains(&format!("refusing to write the output into {out}: ")) && t.contains(why), "--out {out}: {t}");
        let o = self.cli().cwd(cwd).run(&["--json", "build", "--offline", "--out", out, recipe.to_str().unwrap()]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!((v["error"]["kind"].as_str(), v["error"]["exit_code"].as_u64()), (Some("usage"), Some(2)), "{v}");
    }
}

/// Every entry below `dir` with its bytes (directories as empty), to show
/// nothing changed, appeared or hides.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            if rel.starts_with("cache") {
                continue;
            }
            let t = e.file_type().unwrap();
            if t.is_symlink() {
                out.push((rel, fs::read_link(&p).unwrap().into_os_string().into_encoded_bytes()));
            } else if t.is_dir() {
                stack.push(p);
                out.push((rel, Vec::new()));
            } else {
                out.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn foreign_directories_files_and_places_we_live_in_are_refused_untouched() {
    let f = Fixture::new();
    let root = f.root();
    fs::create_dir_all(root.join("scratch")).unwrap();
    fs::write(root.join("scratch/important.txt"), "keep\n").unwrap();
    fs::write(root.join("precious.txt"), "precious bytes\n").unwrap();
    fs::create_dir_all(root.join("work/sub")).unwrap();
    std::os::unix::fs::symlink(root.join("scratch"), root.join("link")).unwrap();
    let before = snapshot(root);

    f.refused(root, "scratch", "is not empty (it holds \"important.txt\"");
    f.refused(root, "precious.txt", "exists and is not a directory");
    f.refused(root, "link", "symbolic link");
    f.refused(&root.join("work/sub"), ".", "it is the current directory");
    f.refused(&root.join("work/sub"), "..", "it contains the current directory");
    f.refused(root, "/", "it contains the current directory");
    f.refused(root, "recipes", "it holds the recipe");
    f.refused(root, "cache", "it holds the package cache");
    f.refused(root, "cache/out", "it is inside the package cache");
    // A parent that cannot hold a directory: refused up front, naming why.
    f.refused(root, "precious.txt/out", "cannot write next to it");

    assert_eq!(snapshot(root), before, "a refused --out changed something");
}

#[test]
fn empty_directories_and_previous_outputs_are_written() {
    let f = Fixture::new();
    let root = f.root();
    let recipe = root.join("recipes/r.toml");
    let recipe = recipe.to_str().unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    f.cli().ok(&["build", "--out", "empty", recipe]);
    assert!(root.join("empty/rootfs.ext4").is_file());
    assert!(root.join("empty/.dinv-build-output").is_file(), "every output carries the marker");
    // The marker is not an artifact.
    let report: serde_json::Value = serde_json::from_slice(&fs::read(root.join("empty/report.json")).unwrap()).unwrap();
    assert!(report["outputs"].as_array().unwrap().iter().all(|o| o["name"] != ".dinv-build-output"), "{report}");
    // A previous output is replaced whole; what was added to it goes.
    fs::write(root.join("empty/stray"), "x").unwrap();
    f.cli().ok(&["build", "--offline", "--out", "empty", recipe]);
    assert!(!root.join("empty/stray").exists());
    assert!(root.join("empty/rootfs.ext4").is_file());
    // Nothing is left beside it.
    let names: Vec<String> = fs::read_dir(root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with('.')).collect();
    assert!(names.is_empty(), "{names:?}");
    // A missing output with missing parents is made.
    f.cli().ok(&["build", "--offline", "--out", "a/b/c", recipe]);
    assert!(root.join("a/b/c/rootfs.ext4").is_file());
}

#[test]
fn a_read_only_parent_is_refused_before_any_work() {
    // Root ignores permission bits; the unwritable case is covered for root
    // by `precious.txt/out` above.
    if unsafe { libc::geteuid() } == 0 {
        eprintln!("skipped: running as root");
        return;
    }
    let f = Fixture::new();
    let ro = f.root().join("ro");
    fs::create_dir_all(&ro).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    f.refused(f.root(), "ro/out", "cannot write next to it");
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A build output as `snapshot` reads it: the marker, report.json and an
/// OCI layout of a one-file image (no launcher in it, so a save fails).
fn fake_output(dir: &Path, snapshot_enabled: bool) -> PathBuf {
    use dinv_fstree::{Meta, Tree, TreePath};
    let out = dir.join("out/fake");
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join(".dinv-build-output"), "ours\n").unwrap();
    let report = serde_json::json!({"image": {"reference": "fake:1"}, "snapshot": {"enabled": snapshot_enabled, "memory": null, "mounts": 4, "quiesce": ["sync"]}});
    fs::write(out.join("report.json"), report.to_string()).unwrap();
    let mut t = Tree::new();
    t.write_file(&TreePath::new("hello"), "hi", Meta::root(0o644)).unwrap();
    let layer = dinv_image::LayerBuilder::from_tree(&t, &dinv_image::LayerOptions::new(dir.join("blobs"), "x")).unwrap();
    dinv_image::write_oci_layout(&out.join("oci"), &dinv_image::ImageSpec::new("fake", "1", 0), &[layer]).unwrap();
    out
}

/// `snapshot` writes OUT/snapshot through the same guard: never over a
/// directory that is not ours, never into the current directory; a
/// failed save leaves nothing; a recipe that turns snapshots off writes
/// nothing and says so.
#[test]
fn snapshot_output_is_guarded_too() {
    let f = Fixture::new();
    let out = fake_output(f.root(), true);
    let out_s = out.to_str().unwrap();
    let dest = out.join("snapshot");
    fs::create_dir_all(&dest).unwrap();
    fs::write(dest.join("mine.txt"), "keep me").unwrap();
    let before = snapshot(f.root());
    let o = f.cli().run(&["snapshot", out_s]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains(&format!("refusing to write the output into {}: it is not empty", dest.display())), "{}", text(&o));
    let o = f.cli().cwd(f.root()).run(&["snapshot", out_s, "--dest", "."]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("it is the current directory"), "{}", text(&o));
    assert_eq!(snapshot(f.root()), before, "nothing changed");

    // Not an output at all.
    let o = f.cli().run(&["snapshot", f.root().join("recipes").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("is not a dinv-build output with an image"), "{}", text(&o));

    // A save that fails (this image has no launcher) leaves no snapshot directory.
    fs::remove_dir_all(&dest).unwrap();
    let o = f.cli().run(&["snapshot", out_s]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(text(&o).contains("snapshot: "), "{}", text(&o));
    assert!(!dest.exists());
    assert!(fs::read_dir(&out).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with(".snapshot.partial")), "staging left behind");

    let off = fake_output(&f.root().join("off"), false);
    let o = f.cli().run(&["snapshot", off.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("no snapshot: the recipe of fake:1 turns snapshots off ([snapshot] enabled = false); nothing written"), "{}", text(&o));
    assert!(!off.join("snapshot").exists());
}
