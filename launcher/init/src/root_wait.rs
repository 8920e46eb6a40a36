//! Waiting for the root block device to show up in devtmpfs.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Calls `ready` every `interval` until it returns true or `timeout`
/// passes. `Ok(elapsed)` when ready, `Err(elapsed)` on timeout. `ready` is
/// always asked at least once and once more at the deadline.
pub fn poll_until(timeout: Duration, interval: Duration, mut ready: impl FnMut() -> bool) -> Result<Duration, Duration> {
    let start = Instant::now();
    loop {
        if ready() {
            return Ok(start.elapsed());
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return Err(elapsed);
        }
        std::thread::sleep(interval.min(timeout - elapsed));
    }
}

/// True when `path` is a block device.
pub fn is_block_device(path: &Path) -> bool {
    std::fs::metadata(path).map(|m| m.file_type().is_block_device()).unwrap_or(false)
}

pub use dinv_contract::disks::find_by_serial;

/// Resolves a root spec: `SERIAL=name` to the device with that serial (if
/// present yet), anything else to itself.
pub fn resolve_root(spec: &str) -> Option<std::path::PathBuf> {
    match spec.strip_prefix("SERIAL=") {
        Some(serial) => find_by_serial(Path::new("/sys/block"), serial),
        None => Some(std::path::PathBuf::from(spec)),
    }
}

/// The block devices the kernel knows (from /sys/class/block), for the
/// message when the root device never appears.
pub fn known_block_devices() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/sys/class/block")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_disks_by_serial() {
        let d = tempfile_dir();
        for (n, s) in [("vda", "dinv-docker"), ("vdb", "dinv-root\n")] {
            std::fs::create_dir_all(d.join(n)).unwrap();
            std::fs::write(d.join(n).join("serial"), s).unwrap();
        }
        std::fs::create_dir_all(d.join("vdc")).unwrap();
        assert_eq!(find_by_serial(&d, "dinv-root"), Some(Path::new("/dev/vdb").to_path_buf()));
        assert_eq!(find_by_serial(&d, "dinv-docker"), Some(Path::new("/dev/vda").to_path_buf()));
        assert_eq!(find_by_serial(&d, "dinv-volume"), None);
        assert_eq!(resolve_root("/dev/vda"), Some(Path::new("/dev/vda").to_path_buf()));
        std::fs::remove_dir_all(&d).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("dinv-serial-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn polls_until_ready_or_timeout() {
        let mut n = 0;
        assert!(poll_until(Duration::from_secs(5), Duration::from_millis(1), || {
            n += 1;
            n == 3
        })
        .is_ok());
        assert_eq!(n, 3);
        let mut calls = 0;
        let e = poll_until(Duration::from_millis(30), Duration::from_millis(10), || {
            calls += 1;
            false
        })
        .unwrap_err();
        assert!(e >= Duration::from_millis(30));
        assert!((3..=6).contains(&calls), "{calls}");
        assert!(poll_until(Duration::ZERO, Duration::from_millis(10), || true).is_ok());
    }

    #[test]
    fn block_device_check() {
        assert!(!is_block_device(Path::new("/nonexistent")));
        assert!(!is_block_device(Path::new("/")));
    }
}
