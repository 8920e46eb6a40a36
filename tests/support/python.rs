//! A Python with the packages a test needs: the host's `python3` when it
//! imports them all, else a venv under the test's target directory where
//! pip installs them (once). None, with the reason printed, when neither
//! works, unless `DINV_REQUIRE_DOCKER=1` (CI), where it panics.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `packages`: (module to import, PyPI name).
pub fn python_with(tmp: &Path, packages: &[(&str, &str)]) -> Option<PathBuf> {
    let imports = packages.iter().map(|(m, _)| format!("import {m}")).collect::<Vec<_>>().join("; ");
    let works = |py: &Path| Command::new(py).args(["-c", &imports]).output().is_ok_and(|o| o.status.success());
    let host = PathBuf::from("python3");
    if works(&host) {
        return Some(host);
    }
    let venv = tmp.join("python-venv");
    let py = venv.join("bin/python");
    if !works(&py) {
        let made = (py.exists() || Command::new("python3").arg("-m").arg("venv").arg(&venv).output().is_ok_and(|o| o.status.success()))
            && Command::new(&py).args(["-m", "pip", "install", "-q"]).args(packages.iter().map(|(_, p)| *p)).output().is_ok_and(|o| o.status.success());
        if !made || !works(&py) {
            let names: Vec<&str> = packages.iter().map(|(_, p)| *p).collect();
            if std::env::var("DINV_REQUIRE_DOCKER").as_deref() == Ok("1") {
                panic!("DINV_REQUIRE_DOCKER=1 but the Python packages {names:?} cannot be installed: run scripts/setup");
            }
            eprintln!("notice: the Python packages {names:?} are not installed and pip could not install them: that check was skipped");
            return None;
        }
    }
    Some(py)
}
