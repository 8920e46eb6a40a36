//! Helpers shared by the integration tests: host e2fsprogs tools, which
//! the tests need (CI installs them); a missing tool fails loudly.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Finds an e2fsprogs tool on PATH or in the sbin directories.
pub fn tool(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    for d in dirs {
        let p = d.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{name}` not found: these tests need e2fsprogs (apt-get install -y e2fsprogs)");
}

/// Runs `e2fsck -fn` and fails the test unless it reports no problem at all.
pub fn fsck(img: &Path) {
    let out = Command::new(tool("e2fsck")).arg("-fn").arg(img).output().expect("run e2fsck");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.code() == Some(0), "e2fsck -fn {} exited {:?}:\n{text}", img.display(), out.status.code());
}

/// Runs one debugfs request (read-only) and returns its stdout.
pub fn debugfs(img: &Path, request: &str) -> String {
    let out = Command::new(tool("debugfs")).arg("-R").arg(request).arg(img).output().expect("run debugfs");
    assert!(out.status.success(), "debugfs -R {request:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// debugfs `cat` as bytes.
pub fn cat(img: &Path, path: &str) -> Vec<u8> {
    let out = Command::new(tool("debugfs")).arg("-R").arg(format!("cat {path}")).arg(img).output().expect("run debugfs");
    assert!(out.status.success(), "debugfs cat {path} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}
