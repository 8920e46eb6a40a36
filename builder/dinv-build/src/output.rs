//! Atomic publication of a build's outputs: everything is written into a
//! staging directory next to `out/<name>` and swapped into place only when
//! the whole build succeeded, so a failed or interrupted build leaves the
//! previous output untouched.

use std::fs;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// A staging directory for one output directory.
pub struct Staging {
    dir: tempfile::TempDir,
    out: PathBuf,
}

impl Staging {
    /// A fresh staging directory beside `out` (same filesystem, so the
    /// final rename is atomic).
    pub fn new(out: &Path) -> Result<Staging> {
        let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(Error::io(parent))?;
        let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let dir = tempfile::Builder::new().prefix(&format!(".{name}.partial-")).tempdir_in(parent).map_err(Error::io(parent))?;
        Ok(Staging { dir, out: out.to_path_buf() })
    }

    /// Where the outputs are written until they are published.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Moves the finished directory to `out`, replacing what was there.
    pub fn publish(self) -> Result<()> {
        let staged = self.dir.keep();
        let out = &self.out;
        if out.exists() {
            let old = out.with_file_name(format!(".{}.old-{}", out.file_name().unwrap().to_string_lossy(), std::process::id()));
            fs::rename(out, &old).map_err(Error::io(out))?;
            fs::rename(&staged, out).map_err(Error::io(out))?;
            let _ = fs::remove_dir_all(&old);
        } else {
            fs::rename(&staged, out).map_err(Error::io(out))?;
        }
        Ok(())
    }
}
