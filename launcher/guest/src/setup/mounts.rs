//! Mount requests, the mount(2)/umount2(2) wrappers and `/proc/self/mounts` parsing.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{GuestError, Result};

/// 9p options of the original DinV plus a larger msize (fewer round trips per read).
pub const NINEP_OPTIONS: &str = "trans=virtio,version=9p2000.L,msize=512000";

/// One mount(2) call: what, where, which filesystem, flags and option string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountRequest {
    pub source: String,
    pub target: PathBuf,
    pub fstype: String,
    pub flags: libc::c_ulong,
    pub data: String,
}

impl MountRequest {
    /// A virtio-9p share `tag` mounted at `target`.
    pub fn ninep(tag: &str, target: &Path) -> Self {
        Self::new(tag, target, "9p", 0, NINEP_OPTIONS)
    }

    /// An ext4 disk `device` mounted at `target`.
    pub fn ext4(device: &Path, target: &Path) -> Self {
        Self::new(&device.to_string_lossy(), target, "ext4", 0, "")
    }

    /// Any mount; `source` is also the device name shown in `/proc/mounts`.
    pub fn new(source: &str, target: &Path, fstype: &str, flags: libc::c_ulong, data: &str) -> Self {
        MountRequest { source: source.into(), target: target.into(), fstype: fstype.into(), flags, data: data.into() }
    }

    /// `mount -t FSTYPE -o DATA SOURCE TARGET`, for messages.
    pub fn describe(&self) -> String {
        let opts = if self.data.is_empty() { String::new() } else { format!(" -o {}", self.data) };
        format!("mount -t {}{opts} {} {}", self.fstype, self.source, self.target.display())
    }
}

/// Performs the mount(2) system call for `req`.
pub fn mount(req: &MountRequest) -> Result<()> {
    let source = cstr(req.source.as_bytes(), &req.target)?;
    let target = cstr(req.target.as_os_str().as_bytes(), &req.target)?;
    let fstype = cstr(req.fstype.as_bytes(), &req.target)?;
    let data = cstr(req.data.as_bytes(), &req.target)?;
    let data_ptr = if req.data.is_empty() { std::ptr::null() } else { data.as_ptr().cast() };
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
    let rc = unsafe { libc::mount(source.as_ptr(), target.as_ptr(), fstype.as_ptr(), req.flags, data_ptr) };
    if rc != 0 {
        return Err(GuestError::Command { command: req.describe(), why: io::Error::last_os_error().to_string() });
    }
    Ok(())
}

/// Detaches the filesystem at `target`; `lazy` detaches it even while busy.
pub fn unmount(target: &Path, lazy: bool) -> io::Result<()> {
    let c = cstr(target.as_os_str().as_bytes(), target).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let flags = if lazy { libc::MNT_DETACH } else { 0 };
    // SAFETY: `c` is a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// True if `path` is the root of a mounted filesystem (its device differs from its parent's).
///
/// Enough for the guest's mounts (each is a different filesystem); a bind mount
/// of the same filesystem would not be seen, and the guest makes none.
pub fn is_mount_point(path: &Path) -> io::Result<bool> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let parent = std::fs::metadata(path.join(".."))?;
    Ok(meta.dev() != parent.dev() || meta.ino() == parent.ino())
}

/// One line of `/proc/self/mounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub source: String,
    pub target: PathBuf,
    pub fstype: String,
}

/// Parses `/proc/self/mounts` text, undoing the kernel's octal escapes (`\040` = space).
pub fn parse_mounts_table(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (source, target, fstype) = (fields.next()?, fields.next()?, fields.next()?);
            Some(MountEntry { source: unescape(source), target: PathBuf::from(unescape(target)), fstype: unescape(fstype) })
        })
        .collect()
}

/// Kernel API filesystems left mounted at shutdown: they hold no data, and /proc is needed until the end.
const API_FILESYSTEMS: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "mqueue",
    "hugetlbfs",
    "binfmt_misc",
    "efivarfs",
    "autofs",
];

/// Mount points to detach at shutdown, innermost (last mounted) first; `/` and API filesystems excluded.
pub fn unmount_order(table: &[MountEntry]) -> Vec<PathBuf> {
    table
        .iter()
        .rev()
        .filter(|m| m.target != Path::new("/") && !API_FILESYSTEMS.contains(&m.fstype.as_str()))
        .map(|m| m.target.clone())
        .collect()
}

fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn cstr(bytes: &[u8], context: &Path) -> Result<CString> {
    CString::new(bytes).map_err(|_| GuestError::Config { path: context.into(), why: "contains a NUL byte".into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ninep_and_ext4_requests() {
        let r = MountRequest::ninep("src", Path::new("/src"));
        assert_eq!(r.describe(), "mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 src /src");
        let r = MountRequest::ext4(Path::new("/dev/vdb"), Path::new("/var/lib/docker"));
        assert_eq!(r.describe(), "mount -t ext4 /dev/vdb /var/lib/docker");
        assert_eq!(r.flags, 0);
    }

    #[test]
    fn parses_mounts_table_with_escapes() {
        let text = "/dev/root / ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\nsrc /my\\040dir 9p rw,trans=virtio 0 0\n\n";
        let t = parse_mounts_table(text);
        assert_eq!(t.len(), 3);
        assert_eq!(t[2], MountEntry { source: "src".into(), target: "/my dir".into(), fstype: "9p".into() });
        assert_eq!(unescape("a\\134b\\011"), "a\\b\t");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }

    #[test]
    fn unmount_order_is_reverse_and_skips_root_and_api() {
        let text = "/dev/vda / ext4 rw 0 0\nproc /proc proc rw 0 0\ndevtmpfs /dev devtmpfs rw 0 0\ntmpfs /run tmpfs rw 0 0\n\
                    /dev/vdb /var/lib/docker ext4 rw 0 0\noverlay /var/lib/docker/overlay2/x/merged overlay rw 0 0\n\
                    cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\nsrc /src 9p rw 0 0\n";
        let order = unmount_order(&parse_mounts_table(text));
        let want: Vec<PathBuf> =
            ["/src", "/var/lib/docker/overlay2/x/merged", "/var/lib/docker", "/run"].iter().map(PathBuf::from).collect();
        assert_eq!(order, want);
    }

    #[test]
    fn mount_point_detection_on_host() {
        assert!(is_mount_point(Path::new("/")).unwrap());
        assert!(is_mount_point(Path::new("/proc")).unwrap());
        assert!(!is_mount_point(Path::new("/proc/self")).unwrap());
        assert!(!is_mount_point(Path::new("/nonexistent-dinv-path")).unwrap());
    }
}
