//! Runs the image's own launcher (`save-snapshot`) on the unpacked image,
//! with the image's own QEMU: a saved state only loads into the QEMU build
//! that saved it, so the host's QEMU is never used. QEMU runs through the
//! image's dynamic loader and libraries (a small script the launcher takes
//! as `DINV_QEMU`), finds its firmware and modules in the image, and sees
//! nothing of the host's but the kernel.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use dinv_contract::launcher::{LauncherConfig, DEFAULT_CONFIG_PATH, LAUNCHER_PATH};
use dinv_contract::snapshot::SNAPSHOT_DIR;

use crate::error::Stage;
use crate::recipe::SnapshotSection;
use crate::{Error, Result};

fn fail(why: impl std::fmt::Display) -> Error {
    Error::stage(Stage::Snapshot, why.to_string())
}

/// `abs` (an absolute path in the image) under `root`.
pub fn rooted(root: &Path, abs: &Path) -> PathBuf {
    root.join(abs.strip_prefix("/").unwrap_or(abs))
}

/// Single-quoted for a POSIX shell.
fn sh(p: &Path) -> String {
    format!("'{}'", p.to_string_lossy().replace('\'', r"'\''"))
}

/// The directories under `root` holding shared libraries, the standard
/// ones first: the loader's `--library-path`, so no library comes from the
/// host (a RUNPATH naming an absolute directory would otherwise reach it).
pub fn library_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let standard = ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "usr/lib64", "lib", "usr/lib"];
    let has_libs = |d: &Path| fs::read_dir(d).map(|rd| rd.flatten().any(|e| e.file_name().to_string_lossy().contains(".so"))).unwrap_or(false);
    let mut seen = std::collections::BTreeSet::new();
    let mut push = |d: PathBuf, dirs: &mut Vec<PathBuf>| {
        let real = d.canonicalize().unwrap_or(d.clone());
        if has_libs(&d) && seen.insert(real) {
            dirs.push(d);
        }
    };
    for s in standard {
        push(root.join(s), &mut dirs);
    }
    for s in standard {
        let mut stack = vec![root.join(s)];
        while let Some(d) = stack.pop() {
            let Ok(rd) = fs::read_dir(&d) else { continue };
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    push(e.path(), &mut dirs);
                    stack.push(e.path());
                }
            }
        }
    }
    dirs
}

/// Writes `work/qemu`: the image's QEMU through the image's loader.
pub fn qemu_wrapper(root: &Path, qemu: &Path, work: &Path) -> Result<PathBuf> {
    let qemu = rooted(root, qemu);
    let bytes = fs::read(&qemu).map_err(Error::io(&qemu))?;
    let info = dinv_elf::parse(&bytes).map_err(|e| fail(format!("{}: {e}", qemu.display())))?;
    let interp = info.interpreter.ok_or_else(|| fail(format!("{}: no program interpreter (a static QEMU is not expected)", qemu.display())))?;
    let loader = rooted(root, Path::new(&interp));
    if !loader.exists() {
        return Err(fail(format!("{}: its loader {interp} is not in the image", qemu.display())));
    }
    let libs: Vec<String> = library_dirs(root).iter().map(|d| d.to_string_lossy().into_owned()).collect();
    let firmware: Vec<String> = ["usr/share/qemu", "usr/share/seabios", "usr/lib/ipxe/qemu"].iter().map(|d| root.join(d)).filter(|d| d.is_dir()).map(|d| format!("-L {}", sh(&d))).collect();
    let modules = ["usr/lib/x86_64-linux-gnu/qemu", "usr/lib/qemu", "usr/lib64/qemu"].iter().map(|d| root.join(d)).find(|d| d.is_dir());
    let script = format!(
        "#!/bin/sh\n# The image's QEMU, its loader, libraries, firmware and modules (dinv-build snapshot).\n{}exec {} --library-path {} {} \"$@\" {}\n",
        modules.map(|m| format!("QEMU_MODULE_DIR={} export QEMU_MODULE_DIR\n", sh(&m))).unwrap_or_default(),
        sh(&loader),
        sh(Path::new(&libs.join(":"))),
        sh(&qemu),
        firmware.join(" "),
    );
    let path = work.join("qemu");
    fs::write(&path, script).map_err(Error::io(&path))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).map_err(Error::io(&path))?;
    Ok(path)
}

/// What `save-snapshot` reported.
#[derive(Clone, Debug)]
pub struct Saved {
    pub report: serde_json::Value,
    /// Where the snapshot's files are (in the unpacked image).
    pub dir: PathBuf,
}

/// Runs the unpacked image's launcher to boot and save it under `root`'s
/// snapshot directory. The environment is cleared: no `DINV_*` of the host
/// changes what is saved.
pub fn save(root: &Path, work: &Path, settings: &SnapshotSection) -> Result<Saved> {
    let config_path = rooted(root, Path::new(DEFAULT_CONFIG_PATH));
    let bytes = fs::read(&config_path).map_err(|e| fail(format!("the image has no {DEFAULT_CONFIG_PATH} ({e}): not a DinV image")))?;
    let config = LauncherConfig::parse(&bytes).map_err(|e| fail(format!("{}: {e}", config_path.display())))?;
    let need = |what: &str, p: &Option<PathBuf>| p.clone().ok_or_else(|| fail(format!("{}: no {what}", config_path.display())));
    let qemu = qemu_wrapper(root, &config.qemu.clone().unwrap_or_else(|| "/usr/bin/qemu-system-x86_64".into()), work)?;
    let dir = rooted(root, Path::new(SNAPSHOT_DIR));
    let run_dir = work.join("run");
    fs::create_dir_all(&run_dir).map_err(Error::io(&run_dir))?;
    let log_path = work.join("save.log");
    let log = fs::File::create(&log_path).map_err(Error::io(&log_path))?;
    let mut cmd = Command::new(rooted(root, Path::new(LAUNCHER_PATH)));
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("DINV_LAUNCHER_CONFIG", &config_path)
        .env("DINV_KERNEL", rooted(root, &need("kernel", &config.kernel)?))
        .env("DINV_ROOTFS", rooted(root, &need("rootfs", &config.rootfs)?))
        .env("DINV_QEMU", &qemu)
        .env("DINV_RUN_DIR", &run_dir)
        .arg("save-snapshot")
        .arg("--out")
        .arg(&dir)
        .args(["--mounts", &settings.mounts.to_string()]);
    if let Some(initrd) = &config.initrd {
        cmd.env("DINV_INITRD", rooted(root, initrd));
    }
    if let Some(m) = &settings.memory {
        cmd.args(["--memory", m]);
    }
    if !settings.quiesce.is_empty() {
        cmd.args(["--quiesce", &settings.quiesce.join(",")]);
    }
    let out = cmd.stdin(Stdio::null()).stderr(log).output().map_err(Error::io(rooted(root, Path::new(LAUNCHER_PATH))))?;
    if !out.status.success() {
        let text = fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(25).collect::<Vec<_>>().into_iter().rev().collect();
        return Err(fail(format!("the image's launcher could not save the guest ({}); the end of its log:\n{}", out.status, tail.join("\n"))));
    }
    let report = serde_json::from_slice(&out.stdout).map_err(|e| fail(format!("save-snapshot printed no report: {e}")))?;
    Ok(Saved { report, dir })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wrapper_uses_only_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        for d in ["usr/lib/x86_64-linux-gnu/qemu", "usr/lib/x86_64-linux-gnu/pulseaudio", "usr/share/qemu", "usr/bin", "lib64"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::write(root.join("usr/lib/x86_64-linux-gnu/libc.so.6"), "").unwrap();
        fs::write(root.join("usr/lib/x86_64-linux-gnu/pulseaudio/libpulsecommon-16.1.so"), "").unwrap();
        fs::write(root.join("lib64/ld-linux-x86-64.so.2"), "").unwrap();
        let elf = dinv_elf::testkit::ElfSpec { interpreter: Some("/lib64/ld-linux-x86-64.so.2".into()), ..Default::default() }.bytes();
        fs::write(root.join("usr/bin/qemu-system-x86_64"), elf).unwrap();
        let w = qemu_wrapper(&root, Path::new("/usr/bin/qemu-system-x86_64"), dir.path()).unwrap();
        let script = fs::read_to_string(w).unwrap();
        let r = root.display();
        assert!(script.contains(&format!("QEMU_MODULE_DIR='{r}/usr/lib/x86_64-linux-gnu/qemu' export QEMU_MODULE_DIR")), "{script}");
        assert!(script.contains(&format!("exec '{r}/lib64/ld-linux-x86-64.so.2' --library-path '{r}/usr/lib/x86_64-linux-gnu:{r}/lib64:{r}/usr/lib/x86_64-linux-gnu/pulseaudio' '{r}/usr/bin/qemu-system-x86_64' \"$@\" -L '{r}/usr/share/qemu'")), "{script}");
        fs::remove_file(root.join("lib64/ld-linux-x86-64.so.2")).unwrap();
        assert!(qemu_wrapper(&root, Path::new("/usr/bin/qemu-system-x86_64"), dir.path()).unwrap_err().to_string().contains("loader /lib64/ld-linux-x86-64.so.2 is not in the image"));
    }
}
