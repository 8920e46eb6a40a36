//! Host-side checks and disk images before QEMU starts: the shipped files
//! exist, shared paths exist, and the docker (and volume) disks are there,
//! created sparse on first start.

use std::fs::{self, OpenOptions};
use std::path::Path;

use super::config::Paths;
use super::settings::Settings;
use super::LauncherError;

/// What [`ensure_disk`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskState {
    Created,
    Existing { size: u64 },
}

/// Creates `path` as a sparse file of `size` bytes (rounded up to 1 MiB)
/// unless it exists; an existing disk is never resized or touched.
pub fn ensure_disk(path: &Path, size: u64) -> Result<DiskState, LauncherError> {
    if let Ok(m) = fs::metadata(path) {
        if !m.is_file() {
            return Err(LauncherError::Runtime(format!("{}: exists but is not a regular file", path.display())));
        }
        return Ok(DiskState::Existing { size: m.len() });
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(LauncherError::io(parent, "creating the disk's directory"))?;
    }
    let size = size.div_ceil(1 << 20) << 20;
    let f = OpenOptions::new().write(true).create_new(true).open(path).map_err(LauncherError::io(path, "creating the disk image"))?;
    // set_len makes a hole: no blocks are used until the guest writes.
    f.set_len(size).map_err(LauncherError::io(path, "sizing the disk image"))?;
    Ok(DiskState::Created)
}

/// Checks that every file QEMU needs exists and every DINV_MOUNTS path is a
/// directory, so a mistake is reported by name before QEMU starts.
pub fn check_inputs(s: &Settings, p: &Paths) -> Result<(), LauncherError> {
    let mut files = vec![("kernel", &p.kernel), ("rootfs", &p.rootfs)];
    if let Some(i) = &p.initrd {
        files.push(("initrd", i));
    }
    for (what, f) in files {
        match fs::metadata(f) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(LauncherError::Runtime(format!("{what} {}: not a regular file", f.display()))),
            Err(e) => return Err(LauncherError::Io { path: f.clone(), what: "the guest's files are incomplete", source: e }),
        }
    }
    for m in &s.mounts {
        if !Path::new(m).is_dir() {
            return Err(LauncherError::Setting {
                var: "DINV_MOUNTS",
                value: s.mounts.join(";"),
                why: format!("{m} is not a directory in the container (bind-mount it with docker run -v)"),
            });
        }
    }
    Ok(())
}

/// Creates the run dir and the disks; prints what was created.
pub fn prepare(s: &Settings, p: &Paths) -> Result<(), LauncherError> {
    fs::create_dir_all(&p.run_dir).map_err(LauncherError::io(&p.run_dir, "creating the run directory"))?;
    let mut disks = vec![(&p.docker_disk, s.docker_size)];
    if let Some(v) = &s.volume {
        disks.push((&p.volume_disk, v.size));
    }
    for (path, size) in disks {
        if ensure_disk(path, size)? == DiskState::Created {
            eprintln!("dinv-launcher: created {} ({} MiB, sparse)", path.display(), size.div_ceil(1 << 20));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn sparse_creation_and_reuse() {
        let d = tempfile_dir();
        let p = d.join("sub/docker.img");
        assert_eq!(ensure_disk(&p, (1 << 30) + 1).unwrap(), DiskState::Created);
        let m = fs::metadata(&p).unwrap();
        assert_eq!(m.len(), (1 << 30) + (1 << 20));
        assert!(m.blocks() * 512 < 1 << 20, "sparse: {} blocks", m.blocks());
        fs::write(&p, b"data").unwrap();
        assert_eq!(ensure_disk(&p, 1 << 30).unwrap(), DiskState::Existing { size: 4 });
        assert_eq!(fs::read(&p).unwrap(), b"data", "an existing disk is never touched");
        fs::create_dir(d.join("dir.img")).unwrap();
        assert!(ensure_disk(&d.join("dir.img"), 1 << 20).unwrap_err().to_string().contains("not a regular file"));
        fs::remove_dir_all(&d).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("dinv-disks-{}-{:?}", std::process::id(), std::thread::current().id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }
}
