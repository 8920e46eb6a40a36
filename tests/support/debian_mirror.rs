//! A local Debian mirror for tests.
//!
//! `dists/bookworm/InRelease` and `main/binary-amd64/Packages` are the real
//! files from `/var/lib/apt/lists` (found by name pattern; the Packages
//! file is stored lz4-compressed there, and once decompressed its SHA256
//! matches the InRelease entry). Package files are fetched with
//! `apt-get download NAME=VERSION` into `pool/` at their `Filename`, kept in
//! a cache directory across runs, and the tree is served over HTTP on
//! 127.0.0.1.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A file in /var/lib/apt/lists whose name ends with `suffix`.
pub fn apt_list(suffix: &str) -> PathBuf {
    let dir = Path::new("/var/lib/apt/lists");
    let found = fs::read_dir(dir)
        .ok()
        .and_then(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| p.file_name().unwrap().to_string_lossy().ends_with(suffix)));
    found.unwrap_or_else(|| panic!("no *{suffix} in {}: run `apt-get update` (with bookworm main in the apt sources) first", dir.display()))
}

/// Decompresses a file of concatenated LZ4 frames (apt's `.lz4` lists).
pub fn lz4_frames(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    lz4_flex::frame::FrameDecoder::new(fs::File::open(path).unwrap()).read_to_end(&mut out).unwrap();
    out
}

pub use crate::http::{percent_decode, serve};

/// The served mirror.
pub struct Mirror {
    pub root: PathBuf,
    pub port: u16,
    /// Package → (version → Filename) from the Packages index.
    pub filenames: BTreeMap<String, BTreeMap<String, String>>,
    _dir: Option<tempfile::TempDir>,
}

impl Mirror {
    /// A mirror with the real metadata in a fresh temporary directory.
    pub fn new() -> Mirror {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("mirror");
        let mut m = Mirror::at(&root);
        m._dir = Some(dir);
        m
    }

    /// A mirror in `root` (kept between runs, so downloaded packages are reused).
    pub fn at(root: &Path) -> Mirror {
        let dists = root.join("dists/bookworm");
        fs::create_dir_all(dists.join("main/binary-amd64")).unwrap();
        fs::copy(apt_list("_dists_bookworm_InRelease"), dists.join("InRelease")).unwrap();
        let packages = lz4_frames(&apt_list("_dists_bookworm_main_binary-amd64_Packages.lz4"));
        fs::write(dists.join("main/binary-amd64/Packages"), &packages).unwrap();
        let mut filenames: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for para in String::from_utf8_lossy(&packages).split("\n\n") {
            let get = |f: &str| para.lines().find_map(|l| l.strip_prefix(&format!("{f}: ")[..]).map(str::to_string));
            if let (Some(n), Some(v), Some(f)) = (get("Package"), get("Version"), get("Filename")) {
                filenames.entry(n).or_default().insert(v, f);
            }
        }
        let port = serve(root.to_path_buf());
        Mirror { root: root.to_path_buf(), port, filenames, _dir: None }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Makes sure every `(name, version)` is in the pool, fetching missing
    /// ones with `apt-get download` (several per call). Panics with apt's
    /// message when a download fails.
    pub fn ensure_packages(&self, pkgs: &[(String, String)]) {
        let mut missing = Vec::new();
        for (n, v) in pkgs {
            let f = self.filenames.get(n).and_then(|m| m.get(v)).unwrap_or_else(|| panic!("{n}={v} is not in the bookworm index"));
            if !self.root.join(f).is_file() {
                missing.push((n.clone(), v.clone(), f.clone()));
            }
        }
        if missing.is_empty() {
            return;
        }
        let dl = self.root.join(".download");
        fs::create_dir_all(&dl).unwrap();
        for chunk in missing.chunks(40) {
            let args: Vec<String> = chunk.iter().map(|(n, v, _)| format!("{n}={v}")).collect();
            let out = Command::new("apt-get")
                .args(["download", "-q", "-o", "Debug::NoLocking=1"])
                .args(&args)
                .current_dir(&dl)
                .output()
                .expect("apt-get");
            assert!(out.status.success(), "apt-get download failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            for (n, _, f) in chunk {
                // apt names a download NAME_VERSION_ARCH.deb with the epoch as
                // `%3a`, while pool names drop the epoch: match by name.
                let got = fs::read_dir(&dl)
                    .unwrap()
                    .filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("{n}_")))
                    .unwrap_or_else(|| panic!("apt-get download did not produce {n}"));
                let dest = self.root.join(f);
                fs::create_dir_all(dest.parent().unwrap()).unwrap();
                fs::rename(&got, &dest).unwrap();
            }
        }
    }
}
