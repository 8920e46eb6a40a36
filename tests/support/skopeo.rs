//! A skopeo whose containers/image signs and verifies sigstore signatures,
//! the judge of `push --sign-key`.
//!
//! The host's skopeo when it has sigstore support. Debian bookworm's skopeo
//! 1.9 has it patched out (its binary carries "Debian-local change: sigstore
//! disabled" and answers that for signing and verifying alike); then
//! Debian trixie's skopeo (1.18, built with sigstore) is unpacked with the
//! libraries it links from the archive, through a private apt for trixie's
//! suites (the host's mirror, see `apt.rs`), into `TMP/skopeo-trixie/`, and
//! run through its own dynamic loader: trixie's libc is newer than the
//! host's.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::apt::{release_suites, Apt};

/// What the patched-out build says, and carries in its binary.
pub const SIGSTORE_DISABLED: &str = "sigstore disabled";

/// trixie's skopeo and the shared libraries it needs (its `NEEDED` entries
/// and theirs); checked by running `--version` through the loader.
const TRIXIE_PACKAGES: &[&str] = &["skopeo", "libc6", "libgpgme11t64", "libsqlite3-0", "libassuan9", "libgpg-error0"];

/// A skopeo to run.
#[derive(Clone, Debug)]
pub struct Skopeo {
    program: PathBuf,
    prefix: Vec<OsString>,
    /// `skopeo --version`, for the test's log.
    pub version: String,
}

impl Skopeo {
    /// A command running this skopeo; arguments follow.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.prefix);
        c
    }
}

/// Whether the skopeo binary at `path` was built without sigstore.
fn sigstore_disabled(path: &Path) -> bool {
    let needle = format!("Debian-local change: {SIGSTORE_DISABLED}");
    fs::read(path).map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes())).unwrap_or(false)
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|p| p.is_file()))
}

fn version(s: &Skopeo) -> Result<String, String> {
    let o = s.command().arg("--version").output().map_err(|e| format!("{}: {e}", s.program.display()))?;
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    if o.status.success() {
        Ok(text.trim().to_string())
    } else {
        Err(text)
    }
}

/// The skopeo to judge sigstore signatures with, assembled once per
/// process; Err says why there is none (no skopeo on the host, or trixie's
/// could not be fetched or run).
pub fn sigstore_skopeo(tmp: &Path) -> Result<Skopeo, String> {
    static ONE: OnceLock<Result<Skopeo, String>> = OnceLock::new();
    ONE.get_or_init(|| find(tmp)).clone()
}

fn find(tmp: &Path) -> Result<Skopeo, String> {
    let host = which("skopeo").ok_or("no skopeo on PATH (scripts/setup installs it)")?;
    if !sigstore_disabled(&host) {
        let mut s = Skopeo { program: host, prefix: Vec::new(), version: String::new() };
        s.version = version(&s)?;
        return Ok(s);
    }
    let root = tmp.join("skopeo-trixie");
    let loader = root.join("usr/lib64/ld-linux-x86-64.so.2");
    let libs = root.join("usr/lib/x86_64-linux-gnu");
    let trixie = |root: &Path| Skopeo {
        program: root.join("usr/lib64/ld-linux-x86-64.so.2"),
        prefix: vec!["--library-path".into(), root.join("usr/lib/x86_64-linux-gnu").into(), root.join("usr/bin/skopeo").into()],
        version: String::new(),
    };
    if !loader.is_file() || !libs.is_dir() {
        // Unpacked beside, then renamed: other test processes may race.
        let work = tmp.join(format!("skopeo-trixie.tmp-{}", std::process::id()));
        let _ = fs::remove_dir_all(&work);
        fs::create_dir_all(work.join("debs")).map_err(|e| e.to_string())?;
        let apt = Apt::at(&tmp.join("apt-trixie"), &release_suites("trixie"));
        let o = apt.command().args(["download", "-q"]).args(TRIXIE_PACKAGES).current_dir(work.join("debs")).output().map_err(|e| e.to_string())?;
        if !o.status.success() {
            return Err(format!("apt-get download {}: {}", TRIXIE_PACKAGES.join(" "), String::from_utf8_lossy(&o.stderr)));
        }
        for deb in fs::read_dir(work.join("debs")).map_err(|e| e.to_string())? {
            let deb = deb.map_err(|e| e.to_string())?.path();
            let o = Command::new("dpkg-deb").arg("-x").arg(&deb).arg(work.join("root")).output().map_err(|e| e.to_string())?;
            if !o.status.success() {
                return Err(format!("dpkg-deb -x {}: {}", deb.display(), String::from_utf8_lossy(&o.stderr)));
            }
        }
        if fs::rename(work.join("root"), &root).is_err() && !loader.is_file() {
            return Err(format!("could not put trixie's skopeo in {}", root.display()));
        }
        let _ = fs::remove_dir_all(&work);
    }
    let mut s = trixie(&root);
    s.version = version(&s).map_err(|e| format!("trixie's skopeo in {} does not run: {e}", root.display()))?;
    if sigstore_disabled(&root.join("usr/bin/skopeo")) {
        return Err(format!("trixie's skopeo ({}) has sigstore disabled too", s.version));
    }
    Ok(s)
}
