//! Atomic publication of a build's outputs: everything is written into a
//! staging directory next to `out/<name>` and swapped into place only when
//! the whole build succeeded, so a failed or interrupted build leaves the
//! previous output untouched. Staging directories carry their build's
//! process id; the next build removes those of builds that are gone
//! (killed), so an interruption leaves nothing behind for long.
//!
//! An output directory is only ever replaced when it is one of ours: it
//! must be missing, empty, or hold the [`MARKER`] that every output gets.
//! [`Target::check`] refuses anything else before any work starts.

use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::cache::process_alive;
use crate::{Error, Result};

/// The file that marks a directory as written by dinv-build; `--out`
/// replaces only directories that hold it (or are empty).
pub const MARKER: &str = ".dinv-build-output";

/// What the marker says to whoever opens it.
const MARKER_TEXT: &str = "This directory was written by dinv-build. The next build with --out here replaces all of it.\n";

/// Places an output directory must never be or contain.
#[derive(Clone, Debug, Default)]
pub struct Protected {
    /// The recipe files (their directories are protected).
    pub recipes: Vec<PathBuf>,
    /// The package cache.
    pub cache: Option<PathBuf>,
}

/// An output directory that passed [`Target::check`].
#[derive(Debug)]
pub struct Target {
    out: PathBuf,
}

/// `path` made absolute without following its last components that do not
/// exist yet: the nearest existing ancestor is canonicalized.
fn absolute(path: &Path) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let full = if path.is_absolute() { path.to_path_buf() } else { cwd.join(path) };
    // Lexically drop `.` and `..` first, so `a/../b` is judged as `b`.
    let mut lexical = PathBuf::new();
    for c in full.components() {
        match c {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    let mut rest = Vec::new();
    let mut base = lexical.as_path();
    loop {
        if let Ok(c) = base.canonicalize() {
            let mut p = c;
            for r in rest.iter().rev() {
                p.push(r);
            }
            return p;
        }
        match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                base = parent;
            }
            _ => return lexical,
        }
    }
}

/// Why `out` may not hold an output, or None when it may.
fn refusal(out: &Path, protected: &Protected) -> Option<String> {
    let abs = absolute(out);
    if let Ok(cwd) = std::env::current_dir().and_then(|c| c.canonicalize()) {
        if cwd == abs {
            return Some("it is the current directory".into());
        }
        if cwd.starts_with(&abs) {
            return Some(format!("it contains the current directory ({})", cwd.display()));
        }
    }
    for recipe in &protected.recipes {
        let dir = absolute(recipe.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")));
        if dir.starts_with(&abs) {
            return Some(format!("it holds the recipe {}", recipe.display()));
        }
    }
    if let Some(cache) = &protected.cache {
        let cache = absolute(cache);
        if cache.starts_with(&abs) {
            return Some(format!("it holds the package cache ({})", cache.display()));
        }
        if abs.starts_with(&cache) {
            return Some(format!("it is inside the package cache ({})", cache.display()));
        }
    }
    let meta = match fs::symlink_metadata(out) {
        // Missing, or below a file: making the staging directory tells.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => return None,
        Err(e) => return Some(format!("cannot read it: {e}")),
        Ok(m) => m,
    };
    if meta.file_type().is_symlink() {
        return Some("it is a symbolic link; give the directory itself".into());
    }
    if !meta.is_dir() {
        return Some("it exists and is not a directory".into());
    }
    foreign_contents(out)
}

/// Why the existing directory `dir` is not ours to replace, or None when it
/// is empty or holds the marker.
fn foreign_contents(dir: &Path) -> Option<String> {
    if fs::symlink_metadata(dir.join(MARKER)).is_ok_and(|m| m.is_file()) {
        return None;
    }
    match fs::read_dir(dir) {
        Err(e) => Some(format!("cannot list it: {e}")),
        Ok(mut entries) => match entries.next() {
            None => None,
            Some(e) => {
                let first = e.map(|e| e.file_name().to_string_lossy().into_owned()).unwrap_or_default();
                Some(format!("it is not empty (it holds {first:?}, …) and was not written by dinv-build (no {MARKER} in it); remove it or choose another --out"))
            }
        },
    }
}

impl Target {
    /// Checks that `out` may receive a build's outputs: missing, an empty
    /// directory, or a previous output (it holds the [`MARKER`]); never the
    /// current directory or an ancestor, the recipe's directory, or the
    /// cache. Refusals are usage errors (exit 2), before any work starts.
    pub fn check(out: &Path, protected: &Protected) -> Result<Target> {
        match refusal(out, protected) {
            Some(why) => Err(Error::OutputRefused { path: out.to_path_buf(), why }),
            None => Ok(Target { out: out.to_path_buf() }),
        }
    }

    /// A staging directory for it; failing to make one (a read-only or
    /// missing parent) is a refusal too, so it shows before any work.
    pub fn stage(&self) -> Result<Staging> {
        Staging::new(&self.out).map_err(|e| match e {
            Error::Io { path, source } => Error::OutputRefused { path: self.out.clone(), why: format!("cannot write next to it ({}: {source})", path.display()) },
            other => other,
        })
    }
}

/// Marks `dir` as an output of dinv-build (each platform's directory of a
/// multi-platform output is one too: `snapshot` takes it).
pub fn mark(dir: &Path) -> Result<()> {
    let marker = dir.join(MARKER);
    fs::write(&marker, MARKER_TEXT).map_err(Error::io(&marker))
}

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
        let dir = dinv_image::output_temp_dir(parent, &prefix).map_err(Error::io(parent))?;
        mark(dir.path())?;
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
        let out = &self.out;
        // Checked before the build; checked again in case something else
        // wrote there since.
        if let Some(why) = fs::symlink_metadata(out).ok().and_then(|m| if m.is_dir() { foreign_contents(out) } else { Some("it exists and is not a directory".into()) }) {
            return Err(Error::OutputRefused { path: out.clone(), why });
        }
        let staged = self.dir.keep();
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
