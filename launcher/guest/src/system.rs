//! The side effects `setup` needs, behind a trait: the live system, or a dry run that records them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{GuestError, Result};
use crate::log::say;
use crate::setup::mounts::{self, MountRequest};

/// Changes `setup` makes to the machine.
pub trait System {
    /// True if a filesystem is mounted at `path`.
    fn is_mounted(&self, path: &Path) -> Result<bool>;
    /// Formats `device` as ext4 with `label`.
    fn mkfs_ext4(&mut self, device: &Path, label: &str) -> Result<()>;
    /// Creates `path` and its parents.
    fn create_dir(&mut self, path: &Path) -> Result<()>;
    /// Mounts as `req` says.
    fn mount(&mut self, req: &MountRequest) -> Result<()>;
    /// Sets the owner of `path`.
    fn chown(&mut self, path: &Path, uid: u32, gid: u32) -> Result<()>;
    /// Replaces the contents of `path` (atomically on the live system).
    fn write_file(&mut self, path: &Path, contents: &str) -> Result<()>;
    /// Like `write_file`, readable by root only; a dry run does not show the contents.
    fn write_secret(&mut self, path: &Path, contents: &str) -> Result<()>;
    /// Mixes `bytes` into the kernel's entropy pool, crediting them, then
    /// makes the kernel reseed its generator from the pool at once.
    fn add_entropy(&mut self, bytes: &[u8]) -> Result<()>;
    /// Sends `sig` to the process whose pid `pidfile` holds.
    fn signal_pidfile(&mut self, pidfile: &Path, sig: libc::c_int) -> Result<()>;
    /// Sets the system clock (CLOCK_REALTIME).
    fn set_clock(&mut self, ns_since_epoch: u64) -> Result<()>;
}

/// The real machine: system calls and `mkfs.ext4`.
pub struct Live;

impl System for Live {
    fn is_mounted(&self, path: &Path) -> Result<bool> {
        mounts::is_mount_point(path).map_err(|e| GuestError::io("checking mount point", path, e))
    }

    fn mkfs_ext4(&mut self, device: &Path, label: &str) -> Result<()> {
        let command = format!("mkfs.ext4 -q -F -L {label} {}", device.display());
        let status = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", label])
            .arg(device)
            .status()
            .map_err(|e| GuestError::Command { command: command.clone(), why: format!("cannot run (is e2fsprogs installed?): {e}") })?;
        if !status.success() {
            return Err(GuestError::Command { command, why: format!("failed with {status}") });
        }
        Ok(())
    }

    fn create_dir(&mut self, path: &Path) -> Result<()> {
        std::fs::create_dir_all(path).map_err(|e| GuestError::io("creating directory", path, e))
    }

    fn mount(&mut self, req: &MountRequest) -> Result<()> {
        mounts::mount(req)
    }

    fn chown(&mut self, path: &Path, uid: u32, gid: u32) -> Result<()> {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| GuestError::io("changing owner of", path, e))
    }

    fn write_file(&mut self, path: &Path, contents: &str) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| GuestError::io("creating directory", dir, e))?;
        }
        let tmp = path.with_extension("dinv-tmp");
        std::fs::write(&tmp, contents).map_err(|e| GuestError::io("writing", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| GuestError::io("replacing", path, e))
    }

    fn write_secret(&mut self, path: &Path, contents: &str) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| GuestError::io("creating directory", dir, e))?;
        }
        let tmp = path.with_extension("dinv-tmp");
        let _ = std::fs::remove_file(&tmp);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(contents.as_bytes()))
            .map_err(|e| GuestError::io("writing", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| GuestError::io("replacing", path, e))
    }

    fn add_entropy(&mut self, bytes: &[u8]) -> Result<()> {
        use std::os::fd::AsRawFd;
        const RNDADDENTROPY: libc::c_ulong = 0x4008_5203; // _IOW('R', 0x03, int[2])
        const RNDRESEEDCRNG: libc::c_ulong = 0x5207; // _IO('R', 0x07)
        let dev = Path::new("/dev/urandom");
        let f = std::fs::OpenOptions::new().write(true).open(dev).map_err(|e| GuestError::io("opening", dev, e))?;
        // struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
        let mut info = Vec::with_capacity(8 + bytes.len());
        info.extend_from_slice(&((bytes.len() * 8) as i32).to_ne_bytes());
        info.extend_from_slice(&(bytes.len() as i32).to_ne_bytes());
        info.extend_from_slice(bytes);
        info.resize(info.len().next_multiple_of(4), 0);
        // SAFETY: the buffer is a rand_pool_info of buf_size bytes; the kernel only reads it.
        if unsafe { libc::ioctl(f.as_raw_fd(), RNDADDENTROPY, info.as_ptr()) } != 0 {
            return Err(GuestError::io("adding entropy through", dev, std::io::Error::last_os_error()));
        }
        // SAFETY: RNDRESEEDCRNG takes no argument.
        if unsafe { libc::ioctl(f.as_raw_fd(), RNDRESEEDCRNG, 0) } != 0 {
            return Err(GuestError::io("reseeding the generator through", dev, std::io::Error::last_os_error()));
        }
        Ok(())
    }

    fn set_clock(&mut self, ns: u64) -> Result<()> {
        let ts = libc::timespec { tv_sec: (ns / 1_000_000_000) as libc::time_t, tv_nsec: (ns % 1_000_000_000) as libc::c_long };
        // SAFETY: clock_settime reads the timespec we pass.
        if unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) } != 0 {
            return Err(GuestError::Command { command: "clock_settime(CLOCK_REALTIME)".into(), why: std::io::Error::last_os_error().to_string() });
        }
        Ok(())
    }

    fn signal_pidfile(&mut self, pidfile: &Path, sig: libc::c_int) -> Result<()> {
        let text = std::fs::read_to_string(pidfile).map_err(|e| GuestError::io("reading", pidfile, e))?;
        let pid: i32 = text.trim().parse().map_err(|_| GuestError::Config { path: pidfile.into(), why: format!("{:?} is not a pid", text.trim()) })?;
        // SAFETY: kill has no memory-safety preconditions.
        if pid <= 1 || unsafe { libc::kill(pid, sig) } != 0 {
            return Err(GuestError::Command { command: format!("kill -{sig} {pid} (from {})", pidfile.display()), why: std::io::Error::last_os_error().to_string() });
        }
        Ok(())
    }
}

/// One change a dry run would have made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Mkfs { device: PathBuf, label: String },
    CreateDir(PathBuf),
    Mount(MountRequest),
    Chown { path: PathBuf, uid: u32, gid: u32 },
    WriteFile { path: PathBuf, contents: String },
    WriteSecret(PathBuf),
    /// How many bytes of entropy, not which.
    AddEntropy(usize),
    SetClock(u64),
    Signal { pidfile: PathBuf, sig: libc::c_int },
}

/// Records actions instead of doing them; `mounted` plays the kernel's mount table.
#[derive(Debug, Default)]
pub struct DryRun {
    pub mounted: Vec<PathBuf>,
    pub actions: Vec<Action>,
}

impl DryRun {
    fn record(&mut self, action: Action) {
        say(format_args!("dry run: would {action:?}"));
        self.actions.push(action);
    }
}

impl System for DryRun {
    fn is_mounted(&self, path: &Path) -> Result<bool> {
        Ok(self.mounted.iter().any(|m| m == path))
    }

    fn mkfs_ext4(&mut self, device: &Path, label: &str) -> Result<()> {
        self.record(Action::Mkfs { device: device.into(), label: label.into() });
        Ok(())
    }

    fn create_dir(&mut self, path: &Path) -> Result<()> {
        self.record(Action::CreateDir(path.into()));
        Ok(())
    }

    fn mount(&mut self, req: &MountRequest) -> Result<()> {
        self.mounted.push(req.target.clone());
        self.record(Action::Mount(req.clone()));
        Ok(())
    }

    fn chown(&mut self, path: &Path, uid: u32, gid: u32) -> Result<()> {
        self.record(Action::Chown { path: path.into(), uid, gid });
        Ok(())
    }

    fn write_file(&mut self, path: &Path, contents: &str) -> Result<()> {
        self.record(Action::WriteFile { path: path.into(), contents: contents.into() });
        Ok(())
    }

    fn write_secret(&mut self, path: &Path, _contents: &str) -> Result<()> {
        self.record(Action::WriteSecret(path.into()));
        Ok(())
    }

    fn add_entropy(&mut self, bytes: &[u8]) -> Result<()> {
        self.record(Action::AddEntropy(bytes.len()));
        Ok(())
    }

    fn signal_pidfile(&mut self, pidfile: &Path, sig: libc::c_int) -> Result<()> {
        self.record(Action::Signal { pidfile: pidfile.into(), sig });
        Ok(())
    }

    fn set_clock(&mut self, ns: u64) -> Result<()> {
        self.record(Action::SetClock(ns));
        Ok(())
    }
}
