//! `/etc/dinv/launcher.json`, written by the builder: where the kernel,
//! initramfs, root filesystem and QEMU are, the kernel command line, and
//! image-specific defaults for DINV_* variables. Env overrides:
//! DINV_LAUNCHER_CONFIG (the file itself), DINV_KERNEL, DINV_INITRD,
//! DINV_ROOTFS, DINV_QEMU, DINV_RUN_DIR, DINV_SNAPSHOT_DIR.

use std::path::{Path, PathBuf};

use super::LauncherError;

pub use dinv_contract::launcher::{LauncherConfig, DEFAULT_CONFIG_PATH};

/// Resolved paths of everything the launcher uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub rootfs: PathBuf,
    pub qemu: PathBuf,
    pub append: String,
    pub docker_disk: PathBuf,
    pub volume_disk: PathBuf,
    pub run_dir: PathBuf,
    /// Where the image's snapshot is, if it has one.
    pub snapshot_dir: PathBuf,
}

impl Paths {
    /// Guest agent socket.
    pub fn qga_socket(&self) -> PathBuf {
        self.run_dir.join("qga.sock")
    }
    /// QMP socket.
    pub fn qmp_socket(&self) -> PathBuf {
        self.run_dir.join("qmp.sock")
    }
    /// A snapshot VM's restore channel (see `snapshot_vm`).
    pub fn restore_socket(&self) -> PathBuf {
        self.run_dir.join("restore.sock")
    }
    /// Serial console log.
    pub fn console_log(&self) -> PathBuf {
        self.run_dir.join("console.log")
    }
    /// The boot timeline, written once dockerd is ready (for benchmarks).
    pub fn timeline_json(&self) -> PathBuf {
        self.run_dir.join("timeline.json")
    }
}

/// Parses launcher.json bytes, naming the file in errors.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<LauncherConfig, LauncherError> {
    LauncherConfig::parse(bytes).map_err(|why| LauncherError::Config { path: path.to_path_buf(), why })
}

/// Loads the config named by DINV_LAUNCHER_CONFIG or the default path;
/// a missing default file is an empty config (everything from env).
pub fn load(env: &dyn Fn(&str) -> Option<String>) -> Result<(PathBuf, LauncherConfig), LauncherError> {
    let explicit = env("DINV_LAUNCHER_CONFIG").filter(|s| !s.is_empty());
    let path = PathBuf::from(explicit.clone().unwrap_or_else(|| DEFAULT_CONFIG_PATH.into()));
    match std::fs::read(&path) {
        Ok(bytes) => Ok((path.clone(), parse(&path, &bytes)?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => Ok((path, LauncherConfig::default())),
        Err(e) => Err(LauncherError::Config { path, why: e.to_string() }),
    }
}

/// Applies env overrides and defaults; kernel and rootfs are required.
pub fn resolve(cfg: &LauncherConfig, path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Paths, LauncherError> {
    let pick = |var: &str, v: &Option<PathBuf>| env(var).filter(|s| !s.is_empty()).map(PathBuf::from).or_else(|| v.clone());
    let required = |var: &'static str, key: &str, v: &Option<PathBuf>| {
        pick(var, v).ok_or_else(|| LauncherError::Config { path: path.to_path_buf(), why: format!("no \"{key}\" path (set it there or in {var})") })
    };
    Ok(Paths {
        kernel: required("DINV_KERNEL", "kernel", &cfg.kernel)?,
        initrd: pick("DINV_INITRD", &cfg.initrd),
        rootfs: required("DINV_ROOTFS", "rootfs", &cfg.rootfs)?,
        // This binary's own architecture: qemu-system-x86_64 or qemu-system-aarch64.
        qemu: pick("DINV_QEMU", &cfg.qemu).unwrap_or_else(|| format!("qemu-system-{}", std::env::consts::ARCH).into()),
        append: cfg.append.clone().unwrap_or_else(|| dinv_contract::launcher::append_for(std::env::consts::ARCH)),
        docker_disk: cfg.docker_disk.clone().unwrap_or_else(|| "/docker/docker.img".into()),
        volume_disk: cfg.volume_disk.clone().unwrap_or_else(|| "/volume/volume.img".into()),
        run_dir: pick("DINV_RUN_DIR", &cfg.run_dir).unwrap_or_else(|| "/run/dinv".into()),
        snapshot_dir: pick("DINV_SNAPSHOT_DIR", &cfg.snapshot).unwrap_or_else(|| dinv_contract::snapshot::SNAPSHOT_DIR.into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_resolve_and_override() {
        let p = Path::new("/etc/dinv/launcher.json");
        let c = parse(
            p,
            br#"{"kernel":"/usr/lib/dinv/vmlinuz","initrd":"/usr/lib/dinv/initramfs.img","rootfs":"/usr/lib/dinv/rootfs.ext4",
                "qemu":"/usr/bin/qemu-system-x86_64","append":"console=ttyS0 root=/dev/vda rw","defaults":{"DINV_MEMORY":"1G"}}"#,
        )
        .unwrap();
        let none = |_: &str| None;
        let paths = resolve(&c, p, &none).unwrap();
        assert_eq!(paths.kernel, PathBuf::from("/usr/lib/dinv/vmlinuz"));
        assert_eq!(paths.docker_disk, PathBuf::from("/docker/docker.img"));
        assert_eq!(paths.qga_socket(), PathBuf::from("/run/dinv/qga.sock"));
        let env = |k: &str| (k == "DINV_KERNEL" || k == "DINV_RUN_DIR").then(|| "/tmp/x".to_string());
        let paths = resolve(&c, p, &env).unwrap();
        assert_eq!((paths.kernel.as_path(), paths.run_dir.as_path()), (Path::new("/tmp/x"), Path::new("/tmp/x")));
        let mem = |k: &str| (k == "DINV_MEMORY").then(|| "2G".to_string());
        assert_eq!(c.lookup(&none)("DINV_MEMORY").as_deref(), Some("1G"));
        assert_eq!(c.lookup(&mem)("DINV_MEMORY").as_deref(), Some("2G"));
        // Round trip.
        let again = parse(p, &serde_json::to_vec(&c).unwrap()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn errors_name_the_file_and_key() {
        let p = Path::new("/cfg.json");
        let e = parse(p, br#"{"kernal":"/k"}"#).unwrap_err().to_string();
        assert!(e.contains("/cfg.json") && e.contains("kernal"), "{e}");
        let e = resolve(&LauncherConfig::default(), p, &|_| None).unwrap_err().to_string();
        assert!(e.contains("\"kernel\"") && e.contains("DINV_KERNEL"), "{e}");
        let missing = |k: &str| (k == "DINV_LAUNCHER_CONFIG").then(|| "/nonexistent/launcher.json".to_string());
        assert!(load(&missing).unwrap_err().to_string().contains("/nonexistent/launcher.json"));
    }
}
