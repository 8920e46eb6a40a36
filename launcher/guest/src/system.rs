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
}
