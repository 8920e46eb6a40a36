//! Thin wrappers over the system calls dinv-init needs, returning
//! `io::Result` so callers can say what failed.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

fn cstr(p: impl AsRef<std::ffi::OsStr>) -> io::Result<CString> {
    CString::new(p.as_ref().as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in argument"))
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// mount(2); `source`/`fstype` may be `None`.
pub fn mount(source: Option<&str>, target: &Path, fstype: Option<&str>, flags: libc::c_ulong, data: Option<&str>) -> io::Result<()> {
    let source = source.map(cstr).transpose()?;
    let target = cstr(target.as_os_str())?;
    let fstype = fstype.map(cstr).transpose()?;
    let data = data.map(cstr).transpose()?;
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is a valid NUL-terminated string or null.
    check(unsafe { libc::mount(ptr(&source), target.as_ptr(), ptr(&fstype), flags, ptr(&data) as *const libc::c_void) })
}

/// umount2(2).
pub fn umount(target: &Path, flags: libc::c_int) -> io::Result<()> {
    let t = cstr(target.as_os_str())?;
    // SAFETY: valid C string.
    check(unsafe { libc::umount2(t.as_ptr(), flags) })
}

/// chroot(2).
pub fn chroot(dir: &Path) -> io::Result<()> {
    let d = cstr(dir.as_os_str())?;
    // SAFETY: valid C string.
    check(unsafe { libc::chroot(d.as_ptr()) })
}

/// Loads a kernel module from a file with finit_module(2).
pub fn finit_module(path: &Path, params: &str) -> io::Result<()> {
    let f = std::fs::File::open(path)?;
    let p = cstr(params)?;
    // SAFETY: the fd is open for the duration of the call; params is a C string.
    let r = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), p.as_ptr(), 0) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The filesystem magic of the filesystem holding `path` (statfs f_type).
pub fn fs_magic(path: &Path) -> io::Result<i64> {
    let p = cstr(path.as_os_str())?;
    // SAFETY: statfs fills the zeroed struct; p is a valid C string.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    check(unsafe { libc::statfs(p.as_ptr(), &mut s) })?;
    Ok(s.f_type as i64)
}

/// Flushes filesystems and powers the machine off (QEMU then exits).
pub fn power_off() -> io::Error {
    // SAFETY: plain system calls without pointers.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    io::Error::last_os_error()
}

/// This process's id.
pub fn pid() -> u32 {
    std::process::id()
}
