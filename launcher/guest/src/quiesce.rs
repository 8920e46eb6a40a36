//! `dinv-guest quiesce`: makes the running guest small and settled right
//! before the launcher saves it (`dinv-build snapshot`). Every step only
//! shrinks what is saved; none is needed for the snapshot to be exact, as
//! QEMU saves RAM and disks at one instant.

use std::path::Path;

use dinv_contract::snapshot::QUIESCE_STEPS;

use crate::error::{GuestError, Result};
use crate::log::say;
use crate::setup::mounts;
use dinv_contract::services::DOCKER_SOCK;

/// One quiesce step (names in [`QUIESCE_STEPS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Sync,
    PageOut,
    DropCaches,
    WarmApi,
    Fstrim,
    ZeroFreeMemory,
}

impl Step {
    const ALL: [Step; 6] = [Step::Sync, Step::PageOut, Step::DropCaches, Step::WarmApi, Step::Fstrim, Step::ZeroFreeMemory];

    pub fn name(self) -> &'static str {
        QUIESCE_STEPS[self as usize].0
    }

    pub fn from_name(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The steps named, in their fixed order (dropping the caches first frees
/// the pages that zeroing then clears); none named: the default set.
pub fn parse_steps(names: &[String]) -> Result<Vec<Step>> {
    if names.is_empty() {
        return Ok(Step::ALL.into_iter().filter(|s| QUIESCE_STEPS[*s as usize].1).collect());
    }
    let mut steps = names
        .iter()
        .map(|n| {
            Step::from_name(n).ok_or_else(|| {
                let known: Vec<&str> = QUIESCE_STEPS.iter().map(|s| s.0).collect();
                GuestError::Usage(format!("unknown quiesce step {n:?} (known: {})", known.join(", ")))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    steps.sort();
    steps.dedup();
    Ok(steps)
}

/// A `/proc/meminfo` field in KiB.
fn meminfo_kib(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.split_whitespace().next()?.parse().ok())
}

/// How many bytes of free memory to fill with zero pages: `MemFree` less a
/// margin that keeps the kernel well above its watermarks (four times
/// `min_free_kbytes`, at least 16 MiB), so filling never wakes the OOM
/// killer; in whole 2 MiB.
pub fn fill_bytes(meminfo: &str, min_free_kbytes: u64) -> u64 {
    let free = meminfo_kib(meminfo, "MemFree").unwrap_or(0) << 10;
    let margin = (4 * min_free_kbytes << 10).max(16 << 20);
    free.saturating_sub(margin) & !((2 << 20) - 1)
}

/// Faults in `bytes` of fresh anonymous memory (and writes each page, in
/// case the kernel gave it the shared zero page) and gives it back. The
/// kernel hands out free pages cleared, and they return to the free lists
/// still zero: QEMU saves a zero page as a flag instead of 4 KiB.
fn zero_free_memory(bytes: u64) -> Result<u64> {
    if bytes == 0 {
        return Ok(0);
    }
    let len = bytes as usize;
    // SAFETY: an anonymous private mapping we own; touched only within it and unmapped below.
    // MAP_POPULATE: the kernel faults every page in at once, which under
    // TCG is far quicker than a fault per page.
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_POPULATE;
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0) };
    if p == libc::MAP_FAILED {
        return Err(GuestError::Command { command: format!("mmap of {bytes} bytes"), why: std::io::Error::last_os_error().to_string() });
    }
    let page = 4096;
    for off in (0..len).step_by(page) {
        // SAFETY: `off` is inside the mapping; a volatile write makes the kernel fault the page in.
        unsafe { std::ptr::write_volatile((p as *mut u8).add(off), 0) };
    }
    // SAFETY: unmapping exactly what was mapped.
    unsafe { libc::munmap(p, len) };
    Ok(bytes)
}

/// The file-backed mappings (`start`, `len`) of one `/proc/PID/maps` text.
pub fn file_mappings(maps: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (range, _perms, _offset, _dev, inode) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
            let path = f.next()?;
            if inode == "0" || !path.starts_with('/') {
                return None;
            }
            let (a, b) = range.split_once('-')?;
            let (a, b) = (usize::from_str_radix(a, 16).ok()?, usize::from_str_radix(b, 16).ok()?);
            (b > a).then_some((a, b - a))
        })
        .collect()
}

/// Asks the kernel to reclaim every process's file-backed pages
/// (`process_madvise(MADV_PAGEOUT)`): clean ones are dropped, and a page
/// cache page no longer mapped is dropped too by `drop-caches`. Returns the
/// bytes of the mappings advised.
fn page_out() -> u64 {
    const SYS_PIDFD_OPEN: libc::c_long = 434;
    const SYS_PROCESS_MADVISE: libc::c_long = 440;
    const MADV_PAGEOUT: libc::c_int = 21;
    let me = std::process::id();
    let mut advised = 0u64;
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else { continue };
        let ranges = file_mappings(&maps);
        if ranges.is_empty() {
            continue;
        }
        // SAFETY: pidfd_open takes a pid and flags; a failure returns -1.
        let pidfd = unsafe { libc::syscall(SYS_PIDFD_OPEN, pid as libc::c_long, 0) } as libc::c_int;
        if pidfd < 0 {
            continue;
        }
        for chunk in ranges.chunks(512) {
            let iov: Vec<libc::iovec> = chunk.iter().map(|&(a, n)| libc::iovec { iov_base: a as *mut libc::c_void, iov_len: n }).collect();
            // SAFETY: the iovecs describe the other process's ranges; the kernel only reads the array.
            let r = unsafe { libc::syscall(SYS_PROCESS_MADVISE, pidfd, iov.as_ptr(), iov.len(), MADV_PAGEOUT, 0) };
            if r > 0 {
                advised += r as u64;
            }
        }
        // SAFETY: closing the pidfd we opened.
        unsafe { libc::close(pidfd) };
    }
    advised
}

/// FITRIM on the filesystem at `path`; returns the bytes trimmed.
fn fstrim(path: &Path) -> Result<u64> {
    #[repr(C)]
    struct FstrimRange {
        start: u64,
        len: u64,
        minlen: u64,
    }
    const FITRIM: libc::c_ulong = 0xc018_5879; // _IOWR('X', 121, struct fstrim_range)
    let f = std::fs::File::open(path).map_err(|e| GuestError::io("opening", path, e))?;
    let mut range = FstrimRange { start: 0, len: u64::MAX, minlen: 0 };
    use std::os::fd::AsRawFd;
    // SAFETY: FITRIM reads and writes the fstrim_range we pass.
    if unsafe { libc::ioctl(f.as_raw_fd(), FITRIM, &mut range) } != 0 {
        return Err(GuestError::io("trimming", path, std::io::Error::last_os_error()));
    }
    Ok(range.len)
}

/// dockerd 20.10's engine key (its ID in `docker info`), made at its first start.
pub const ENGINE_KEY: &str = "/etc/docker/key.json";

/// Overwrites `path` with zeros, syncs it and removes it: a freed block
/// keeps its bytes, and the root disk's overlay goes into the image.
fn scrub(path: &Path) -> Result<bool> {
    use std::io::Write;
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(GuestError::io("reading", path, e)),
    };
    let mut f = std::fs::OpenOptions::new().write(true).open(path).map_err(|e| GuestError::io("opening", path, e))?;
    f.write_all(&vec![0u8; len as usize]).and_then(|()| f.sync_all()).map_err(|e| GuestError::io("overwriting", path, e))?;
    std::fs::remove_file(path).map_err(|e| GuestError::io("removing", path, e))?;
    Ok(true)
}

/// `GET /version` on dockerd's socket, read to the end: dockerd runs
/// `runc --version` and `docker-init --version` for it, which reads their
/// files back into the page cache the save keeps.
fn warm_api(sock: &Path) -> std::io::Result<usize> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(sock)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    s.write_all(b"GET /version HTTP/1.0\r\nHost: docker\r\n\r\n")?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply)?;
    if !reply.starts_with(b"HTTP/1.0 200") && !reply.starts_with(b"HTTP/1.1 200") {
        return Err(std::io::Error::other(String::from_utf8_lossy(reply.split(|b| *b == b'\r').next().unwrap_or_default()).into_owned()));
    }
    Ok(reply.len())
}

/// Runs `steps`; `docker_dir` is the docker data disk's mount point.
/// First, always, the snapshot's disks lose dockerd's engine key: every
/// restored copy would share it (dockerd keeps using the one it loaded;
/// one that starts again, as for TLS, makes its own).
pub fn quiesce(steps: &[Step], docker_dir: &Path) -> Result<()> {
    if scrub(Path::new(ENGINE_KEY))? {
        say(format_args!("quiesce: removed dockerd's engine key {ENGINE_KEY} from the disk"));
    }
    // Saved waiting: a restore's request needs no agent, fork or exec.
    let port = crate::restore::start_listener(Path::new(crate::restore::VIRTIO_PORTS))?;
    say(format_args!("quiesce: the restore listener waits on {}", port.display()));
    for step in steps {
        let t = std::time::Instant::now();
        let done = match step {
            Step::Sync => {
                // SAFETY: sync has no preconditions.
                unsafe { libc::sync() };
                "synced the disks".to_string()
            }
            Step::PageOut => format!("paged out {} MiB of programs' file mappings", page_out() >> 20),
            Step::DropCaches => {
                std::fs::write("/proc/sys/vm/drop_caches", "3\n").map_err(|e| GuestError::io("writing", "/proc/sys/vm/drop_caches", e))?;
                "dropped the page cache".to_string()
            }
            Step::WarmApi => match warm_api(Path::new(DOCKER_SOCK)) {
                Ok(n) => format!("asked dockerd for its version ({n} bytes)"),
                Err(e) => format!("could not ask dockerd for its version ({e}); went on"),
            },
            // Only the docker disk: the root disk is an overlay of the
            // image's root filesystem, where a discard saves nothing.
            Step::Fstrim if !mounts::is_mount_point(docker_dir).unwrap_or(false) => continue,
            Step::Fstrim => format!("trimmed {} MiB on {}", fstrim(docker_dir)? >> 20, docker_dir.display()),
            Step::ZeroFreeMemory => {
                let meminfo = std::fs::read_to_string("/proc/meminfo").map_err(|e| GuestError::io("reading", "/proc/meminfo", e))?;
                let min_free = std::fs::read_to_string("/proc/sys/vm/min_free_kbytes").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
                format!("zeroed {} MiB of free memory", zero_free_memory(fill_bytes(&meminfo, min_free))? >> 20)
            }
        };
        say(format_args!("quiesce: {done} in {:.1} s", t.elapsed().as_secs_f64()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_in_their_order() {
        let s = |v: &[&str]| parse_steps(&v.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(s(&[]).unwrap(), [Step::Sync, Step::DropCaches, Step::WarmApi, Step::Fstrim, Step::ZeroFreeMemory]);
        assert_eq!(s(&["zero-free-memory", "sync", "sync"]).unwrap(), [Step::Sync, Step::ZeroFreeMemory]);
        assert_eq!(Step::ALL.map(Step::name), ["sync", "page-out", "drop-caches", "warm-api", "fstrim", "zero-free-memory"]);
        assert!(matches!(s(&["defrag"]), Err(GuestError::Usage(m)) if m.contains("\"defrag\"") && m.contains("drop-caches")));
    }

    #[test]
    fn file_mappings_are_read_from_maps() {
        let maps = "55d0c0000000-55d0c0200000 r-xp 00000000 fe:00 1234 /usr/bin/dockerd\n\
                    55d0c0200000-55d0c0300000 rw-p 00000000 00:00 0 [heap]\n\
                    7f0000000000-7f0000001000 r--p 00000000 fe:00 99 /usr/lib/x86_64-linux-gnu/libc.so.6\n\
                    7f0000001000-7f0000002000 rw-p 00000000 00:00 0\n\
                    7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]\n";
        assert_eq!(file_mappings(maps), [(0x55d0c0000000, 0x200000), (0x7f0000000000, 0x1000)]);
        // This process has some, and advising them is harmless.
        assert!(!file_mappings(&std::fs::read_to_string("/proc/self/maps").unwrap()).is_empty());
    }

    #[test]
    fn fill_leaves_a_margin() {
        let meminfo = "MemTotal:         498000 kB\nMemFree:          300000 kB\nMemAvailable:     350000 kB\n";
        // 300000 KiB less 16 MiB, down to 2 MiB.
        assert_eq!(fill_bytes(meminfo, 2000), ((300_000u64 << 10) - (16 << 20)) & !((2 << 20) - 1));
        // A large min_free_kbytes raises the margin.
        assert_eq!(fill_bytes(meminfo, 65536), ((300_000u64 << 10) - (256 << 20)) & !((2 << 20) - 1));
        assert_eq!(fill_bytes("MemFree: 1000 kB\n", 2000), 0);
        assert_eq!(fill_bytes("", 0), 0);
    }

    #[test]
    fn scrubbed_files_are_gone() {
        let d = crate::testutil::TempDir::new("scrub");
        let p = d.path().join("key.json");
        std::fs::write(&p, "secret").unwrap();
        assert!(scrub(&p).unwrap());
        assert!(!p.exists());
        assert!(!scrub(&p).unwrap());
    }

    #[test]
    fn zeroing_touches_and_returns_memory() {
        assert_eq!(zero_free_memory(4 << 20).unwrap(), 4 << 20);
        assert_eq!(zero_free_memory(0).unwrap(), 0);
    }
}
