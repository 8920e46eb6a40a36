//! Shared test fixtures: the real Debian kernel package, fetched with
//! apt-get and cached under the target directory so reruns are fast.

#![allow(dead_code)]

pub mod boot;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use dinv_fstree::tar::{unpack_backed, UnpackOptions};
use dinv_fstree::{BackingFile, Replace, Tree};

/// The Debian kernel behind `linux-image-amd64`, unpacked into a tree.
pub struct DebianKernel {
    /// e.g. `linux-image-6.1.0-28-amd64`.
    pub package: String,
    /// e.g. `6.1.119-1`.
    pub version: String,
    pub deb: PathBuf,
    /// The package's data tar (what `dpkg-deb --fsys-tarfile` prints).
    pub tar: PathBuf,
    pub tree: Tree,
}

/// Where downloads and unpacked files are kept between runs.
pub fn cache_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR exists for tests only; examples use the default layout.
    let tmp = option_env!("CARGO_TARGET_TMPDIR").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tmp"));
    let d = tmp.join("dinv-kernel-debian");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The real package name behind the `linux-image-amd64` metapackage.
fn real_package() -> String {
    let out = run(Command::new("apt-cache").args(["depends", "linux-image-amd64"]));
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-") && p.ends_with("-amd64"))
        .unwrap_or_else(|| panic!("apt-cache depends linux-image-amd64 names no linux-image-*-amd64 (run apt-get update?):\n{out}"))
        .to_string()
}

/// Loads (downloading once) the Debian kernel package.
pub fn debian_kernel() -> &'static DebianKernel {
    static K: OnceLock<DebianKernel> = OnceLock::new();
    K.get_or_init(|| {
        let package = real_package();
        let dir = cache_dir();
        let find = || {
            std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                n.starts_with(&format!("{package}_")) && n.ends_with(".deb")
            })
        };
        let deb = find().unwrap_or_else(|| {
            // Download into a private directory, then rename: other test
            // binaries may be doing the same at the same time.
            let tmp = tempfile::tempdir_in(&dir).unwrap();
            run(Command::new("apt-get").args(["download", &package]).current_dir(tmp.path()));
            let got = std::fs::read_dir(tmp.path()).unwrap().next().expect("apt-get download wrote nothing").unwrap().path();
            let dest = dir.join(got.file_name().unwrap());
            std::fs::rename(&got, &dest).unwrap();
            dest
        });
        let file = deb.file_name().unwrap().to_string_lossy().into_owned();
        let version = file.split('_').nth(1).unwrap().replace("%3a", ":");
        let tar = dir.join(format!("{package}.tar"));
        if !tar.exists() {
            let tmp = dir.join(format!("{package}.tar.{}", std::process::id()));
            let out = Command::new("dpkg-deb").arg("--fsys-tarfile").arg(&deb).output().expect("dpkg-deb is needed to unpack the kernel package");
            assert!(out.status.success(), "dpkg-deb --fsys-tarfile {deb:?}: {}", String::from_utf8_lossy(&out.stderr));
            std::fs::write(&tmp, &out.stdout).unwrap();
            std::fs::rename(&tmp, &tar).unwrap();
        }
        let backing = BackingFile::open(&tar).unwrap();
        let mut tree = Tree::new();
        let opts = UnpackOptions { origin: Arc::from(format!("{package} {version}")), replace: Replace::Deny, rewrite: None };
        unpack_backed(std::fs::File::open(&tar).unwrap(), &backing, &mut tree, &opts).unwrap();
        DebianKernel { package, version, deb, tar, tree }
    })
}

/// The package unpacked on disk (for tools such as depmod that need files).
pub fn debian_kernel_on_disk() -> PathBuf {
    let k = debian_kernel();
    let dest = cache_dir().join(format!("{}.root", k.package));
    if !dest.join(".done").exists() {
        let tmp = cache_dir().join(format!("{}.root.{}", k.package, std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        run(Command::new("tar").arg("-xf").arg(&k.tar).arg("-C").arg(&tmp));
        std::fs::write(tmp.join(".done"), "").unwrap();
        let _ = std::fs::rename(&tmp, &dest);
        let _ = std::fs::remove_dir_all(&tmp);
    }
    dest
}
