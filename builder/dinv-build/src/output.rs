//! Atomic publication of a build's outputs: everything is written into a
//! staging directory next to `out/<name>` and swapped into place only when
//! the whole build succeeded, so a failed or interrupted build leaves the
//! previous output untouched. Staging directories carry their build's
//! process id; the next build removes those of builds that are gone
//! (killed), so an interruption leaves nothing behind for long.

use std::fs;
use std::path::{Path, PathBuf};

use crate::cache::process_alive;
use crate::{Error, Result};

/// A staging directory for one output directory.
pub struct Staging {
    dir: tempfile::TempDir,
    out: PathBuf,
}

/// `.NAME.partial-` and `.NAME.old-`: the prefixes of `out`'s staging and
/// replaced directories.
fn prefixes(out: &Path) -> (String, String) {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    (format!(".{name}.partial-"), format!(".{name}.old-"))
}

/// Removes staging directories of `out` left by builds that no longer run;
/// a replaced output whose build died before putting the new one in place
/// (only possible where directories cannot be exchanged) is put back.
fn clean_stale(parent: &Path, out: &Path) {
    let (partial, old) = prefixes(out);
    let Ok(entries) = fs::read_dir(parent) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&partial).or_else(|| name.strip_prefix(&old)) else { continue };
        let Ok(pid) = rest.split('-').next().unwrap_or("").parse::<u32>() else { continue };
        if process_alive(pid) {
            continue;
        }
        let path = e.path();
        if name.starts_with(&old) && !out.exists() && fs::rename(&path, out).is_ok() {
            tracing::warn!("{}: put back the previous output (its replacement was interrupted)", out.display());
            continue;
        }
        tracing::info!("removing {} (left by an interrupted build)", path.display());
        let _ = fs::remove_dir_all(&path);
    }
}

/// Swaps two directories atomically (Linux `renameat2` with `RENAME_EXCHANGE`).
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both are valid NUL-terminated paths, relative to the working directory.
    let r = unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_EXCHANGE) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl Staging {
    /// A fresh staging directory beside `out` (same filesystem, so the
    /// final rename is atomic), after removing stale ones.
    pub fn new(out: &Path) -> Result<Staging> {
        let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(Error::io(parent))?;
        clean_stale(parent, out);
        let prefix = format!("{}{}-", prefixes(out).0, std::process::id());
        let dir = tempfile::Builder::new().prefix(&prefix).tempdir_in(parent).map_err(Error::io(parent))?;
        Ok(Staging { dir, out: out.to_path_buf() })
    }

    /// Where the outputs are written until they are published.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Moves the finished directory to `out`, replacing what was there:
    /// one atomic exchange, so `out` is at every instant either the whole
    /// previous output or the whole new one.
    pub fn publish(self) -> Result<()> {
        let staged = self.dir.keep();
        let out = &self.out;
        if !out.exists() {
            return fs::rename(&staged, out).map_err(Error::io(out));
        }
        match exchange(&staged, out) {
            // `staged` now holds the previous output.
            Ok(()) => {
                let _ = fs::remove_dir_all(&staged);
                Ok(())
            }
            // A filesystem without exchange: two renames.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP)) => {
                let old = out.with_file_name(format!("{}{}", prefixes(out).1, std::process::id()));
                fs::rename(out, &old).map_err(Error::io(out))?;
                fs::rename(&staged, out).map_err(Error::io(out))?;
                let _ = fs::remove_dir_all(&old);
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&staged);
                Err(Error::io(out)(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_replaces_and_stale_staging_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out/x");
        // A staging directory of a build that is gone, and one of a live process (this one).
        fs::create_dir_all(dir.path().join("out/.x.partial-999999999-abc/oci")).unwrap();
        let live = dir.path().join(format!("out/.x.partial-{}-def", std::process::id()));
        fs::create_dir_all(&live).unwrap();
        for content in ["first", "second"] {
            let s = Staging::new(&out).unwrap();
            fs::write(s.path().join("f"), content).unwrap();
            s.publish().unwrap();
            assert_eq!(fs::read_to_string(out.join("f")).unwrap(), content);
        }
        let mut left: Vec<String> = fs::read_dir(dir.path().join("out")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, [live.file_name().unwrap().to_string_lossy().into_owned(), "x".to_string()]);
    }

    #[test]
    fn an_interrupted_two_rename_swap_is_undone() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x");
        fs::create_dir_all(dir.path().join(".x.old-999999999")).unwrap();
        fs::write(dir.path().join(".x.old-999999999/f"), "previous").unwrap();
        let s = Staging::new(&out).unwrap();
        assert_eq!(fs::read_to_string(out.join("f")).unwrap(), "previous");
        drop(s);
    }
}
