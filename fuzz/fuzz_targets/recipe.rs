//! Recipe files through `dinv_build::recipe::load`, the load, `extends`
//! merge and validation that `dinv-build check` runs. Input: one mode byte,
//! then the TOML text, written into a copy of the repository's recipes
//! (and the keys, kernel fragments and overlays they name) in a temporary
//! directory made once per process:
//! - mode 0: `recipes/fuzz.toml`, beside `default.toml` and `debian.toml`;
//! - mode 1: `recipes/examples/fuzz.toml`, beside the examples;
//! - mode 2: `recipes/fuzz-parent.toml`, loaded as the `extends` parent of
//!   a fixed child in `recipes/examples/`.
//!
//! Recipes name host files (keys, fragments, overlays, CA certificates)
//! and loading reads and hashes them; an input that names an existing path
//! outside the temporary tree is skipped, so the target fuzzes the recipe
//! code rather than hashing `/` or reading `/proc/kcore`.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use dinv_build::recipe::normalize;
use libfuzzer_sys::fuzz_target;

/// The fuzzed file in each mode, and the recipe loaded.
const MODES: [(&str, &str); 3] = [
    ("recipes/fuzz.toml", "recipes/fuzz.toml"),
    ("recipes/examples/fuzz.toml", "recipes/examples/fuzz.toml"),
    ("recipes/fuzz-parent.toml", "recipes/examples/fuzz-child.toml"),
];

/// The child recipe of mode 2: an example-style team recipe.
const CHILD: &str = "extends = \"../fuzz-parent.toml\"\n[image]\nname = \"fuzz-child\"\n[guest]\npackages = [\"git\"]\n[vm]\ncpus = 2\n";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// The temporary copy of the repository's recipes and the files they name,
/// made once per process.
fn tree() -> &'static Path {
    static TREE: OnceLock<PathBuf> = OnceLock::new();
    TREE.get_or_init(|| {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let tree = std::env::temp_dir().join(format!("dinv-fuzz-recipe-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tree);
        for d in ["recipes", "keys", "kernel-configs", "rootfs-overlays"] {
            copy_dir(&repo.join(d), &tree.join(d));
        }
        std::fs::write(tree.join(MODES[2].1), CHILD).unwrap();
        tree
    })
}

/// Every string of a recipe (`sources` excepted: its keys, keyrings and
/// mirror are not read at load).
fn strings<'a>(v: &'a toml::Value, under_sources: bool, out: &mut Vec<&'a str>) {
    match v {
        toml::Value::String(s) if !under_sources => out.push(s),
        toml::Value::Array(a) => a.iter().for_each(|e| strings(e, under_sources, out)),
        toml::Value::Table(t) => t.iter().for_each(|(k, e)| strings(e, under_sources || k == "sources", out)),
        _ => {}
    }
}

/// False when the recipe text names an existing path outside `tree`,
/// absolute or relative to the recipe's directory.
fn stays_in(tree: &Path, file: &Path, text: &[u8]) -> bool {
    let Some(doc) = std::str::from_utf8(text).ok().and_then(|t| t.parse::<toml::Table>().ok()) else { return true };
    let doc = toml::Value::Table(doc);
    let mut all = Vec::new();
    strings(&doc, false, &mut all);
    let dir = file.parent().unwrap();
    all.iter().filter(|s| !s.is_empty() && !s.contains("://")).all(|s| {
        let p = normalize(&dir.join(s));
        p.starts_with(tree) || p.symlink_metadata().is_err()
    })
}

fuzz_target!(
    // Copying the recipes: not part of any input's time.
    init: {
        tree();
    },
    |data: &[u8]| {
    let Some((&mode, text)) = data.split_first() else { return };
    let tree = tree();
    let (file, load) = MODES[usize::from(mode % 3)];
    // Only this input's file: what an earlier input wrote must not count.
    for (f, _) in MODES {
        let _ = std::fs::remove_file(tree.join(f));
    }
    let file = tree.join(file);
    if !stays_in(tree, &file, text) {
        return;
    }
    std::fs::write(&file, text).unwrap();
    if let Ok(l) = dinv_build::recipe::load(&tree.join(load)) {
        // Every file that went in is hashed, and the recipe's own file last.
        assert_eq!(l.files.last(), Some(&l.path));
        assert!(l.files.iter().all(|f| l.inputs.keys().any(|k| f.ends_with(k.trim_start_matches("../")))));
    }
});
