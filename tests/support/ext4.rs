//! Reading our ext4 images in tests with e2fsprogs' debugfs.

use std::path::Path;
use std::process::Command;

/// Runs one debugfs request; returns stdout and stderr.
pub fn debugfs(image: &Path, request: &str) -> (Vec<u8>, String) {
    let bin = ["/usr/sbin/debugfs", "/sbin/debugfs"].iter().map(Path::new).find(|p| p.is_file());
    let bin = bin.expect("debugfs is needed to read rootfs.ext4: apt-get install -y e2fsprogs");
    let out = Command::new(bin).arg("-R").arg(request).arg(image).output().unwrap();
    assert!(out.status.success(), "debugfs -R {request:?}: {}", String::from_utf8_lossy(&out.stderr));
    (out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A file's bytes in the image, `None` when it does not exist.
pub fn ext4_read(image: &Path, path: &str) -> Option<Vec<u8>> {
    let (out, err) = debugfs(image, &format!("cat {path}"));
    (!err.contains("not found")).then_some(out)
}

/// debugfs's `stat` of a path (type, mode, owner, link target).
pub fn ext4_stat(image: &Path, path: &str) -> String {
    let (out, err) = debugfs(image, &format!("stat {path}"));
    assert!(!err.contains("not found"), "{path} is not in {}: {err}", image.display());
    String::from_utf8_lossy(&out).into_owned()
}

/// `e2fsck -fn` exits 0.
pub fn assert_fsck_clean(image: &Path) {
    let bin = ["/usr/sbin/e2fsck", "/sbin/e2fsck"]
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .expect("e2fsck: apt-get install -y e2fsprogs");
    let out = Command::new(bin).arg("-fn").arg(image).output().unwrap();
    assert!(
        out.status.success(),
        "e2fsck -fn {}: {}{}",
        image.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Copies directory `dir` of the image, recursively, to `dest/<its name>` (`dest` is created).
pub fn ext4_dump(image: &Path, dir: &str, dest: &Path) {
    let parent = dest.parent().expect("dest has a parent");
    std::fs::create_dir_all(parent).unwrap();
    let tmp = tempfile::tempdir_in(parent).unwrap();
    debugfs(image, &format!("rdump {dir} {}", tmp.path().display()));
    let name = dir.rsplit('/').next().unwrap();
    std::fs::create_dir_all(dest).unwrap();
    std::fs::rename(tmp.path().join(name), dest.join(name)).unwrap();
}
