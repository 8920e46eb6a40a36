//! Handing the machine over to the real root: move the API filesystems,
//! free the initramfs, make the new root `/`, exec its init.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

use super::sys;

const RAMFS_MAGIC: i64 = 0x8584_58f6;
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Moves /dev, /proc, /sys under `newroot` where it has those directories,
/// else detaches them.
pub fn move_api_mounts(newroot: &Path) -> Vec<String> {
    let mut notes = Vec::new();
    for d in ["/dev", "/proc", "/sys"] {
        let target = newroot.join(&d[1..]);
        if target.is_dir() {
            if let Err(e) = sys::mount(Some(d), &target, None, libc::MS_MOVE, None) {
                notes.push(format!("cannot move {d} to {}: {e}; detaching it", target.display()));
                let _ = sys::umount(Path::new(d), libc::MNT_DETACH);
            }
        } else {
            notes.push(format!("{} has no {d}; detaching it", newroot.display()));
            let _ = sys::umount(Path::new(d), libc::MNT_DETACH);
        }
    }
    notes
}

/// Deletes the initramfs's files (they would pin memory for the guest's
/// lifetime), staying on the root filesystem and refusing anything but
/// ramfs/tmpfs, so a mistake can never touch a disk.
pub fn free_initramfs(keep: &Path) -> io::Result<()> {
    let magic = sys::fs_magic(Path::new("/"))?;
    if magic != RAMFS_MAGIC && magic != TMPFS_MAGIC {
        return Err(io::Error::other(format!("/ is not a ramfs/tmpfs (magic {magic:#x}); not deleting anything")));
    }
    let dev = std::fs::symlink_metadata("/")?.dev();
    remove_below(Path::new("/"), dev, keep);
    Ok(())
}

fn remove_below(dir: &Path, dev: u64, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p == keep {
            continue;
        }
        let Ok(md) = std::fs::symlink_metadata(&p) else { continue };
        if md.dev() != dev {
            continue;
        }
        if md.is_dir() {
            remove_below(&p, dev, keep);
            let _ = std::fs::remove_dir(&p);
        } else {
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// Makes `newroot` the root (mount --move to /, chroot) and returns with
/// the working directory at the new `/`.
pub fn switch_root(newroot: &Path) -> io::Result<()> {
    std::env::set_current_dir(newroot)?;
    sys::mount(Some("."), Path::new("/"), None, libc::MS_MOVE, None)?;
    sys::chroot(Path::new("."))?;
    std::env::set_current_dir("/")
}

/// Replaces this process with the guest init; returns only on failure.
pub fn exec_init(init: &str, args: &[String]) -> io::Error {
    std::process::Command::new(init).arg0(init).args(args).exec()
}
