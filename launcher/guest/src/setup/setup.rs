//! `dinv-guest setup`: prepares disks, shares and dockerd's config before dockerd starts.

use std::io;
use std::path::{Path, PathBuf};

use crate::setup::daemon_json;
use crate::error::{GuestError, Result};
use crate::setup::ext4::has_ext4_superblock;
use crate::log::say;
use crate::setup::mounts::MountRequest;
use crate::setup::settings::{Settings, TlsFiles};
use crate::system::System;

/// Filesystem label given to a freshly formatted docker data disk.
pub const DOCKER_LABEL: &str = "dinv-docker";
/// Filesystem label given to a freshly formatted extra volume.
pub const VOLUME_LABEL: &str = "dinv-volume";

/// The devices and paths `setup` works on (tests point them into a scratch directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupPaths {
    pub docker_disk: PathBuf,
    pub volume_disk: PathBuf,
    pub docker_dir: PathBuf,
    pub daemon_json: PathBuf,
    /// The copy dockerd runs with when `exec-dockerd` handed it its
    /// listeners ([`daemon_json::ACTIVATED_JSON`]).
    pub activated_json: PathBuf,
    /// Where dockerd's TLS server files go (`ca.pem`, `cert.pem`, `key.pem`).
    pub tls_dir: PathBuf,
}

impl Default for SetupPaths {
    /// The disks are found by the serials the launcher gives them
    /// (`dinv-docker`, `dinv-volume`): virtio-mmio devices are not
    /// enumerated in command-line order. Without serials, vdb and vdc.
    fn default() -> Self {
        let by_serial = |serial: &str, fallback: &str| {
            dinv_contract::disks::find_by_serial(std::path::Path::new("/sys/block"), serial).unwrap_or_else(|| PathBuf::from(fallback))
        };
        SetupPaths {
            docker_disk: by_serial(dinv_contract::disks::DOCKER_SERIAL, "/dev/vdb"),
            volume_disk: by_serial(dinv_contract::disks::VOLUME_SERIAL, "/dev/vdc"),
            docker_dir: "/var/lib/docker".into(),
            daemon_json: daemon_json::DAEMON_JSON.into(),
            activated_json: daemon_json::ACTIVATED_JSON.into(),
            // On the root disk, which the launcher opens with snapshot=on:
            // the key is gone when the VM stops.
            tls_dir: "/etc/docker/tls".into(),
        }
    }
}

/// Runs every setup step; a failed step is reported and the others still run. Safe to run again.
pub fn setup(settings: &Settings, paths: &SetupPaths, sys: &mut dyn System) -> Result<()> {
    let mut failed = 0;
    let mut step = |result: Result<()>| {
        if let Err(e) = result {
            say(format_args!("error: {e}"));
            failed += 1;
        }
    };
    step(disk(sys, &paths.docker_disk, DOCKER_LABEL, &paths.docker_dir, "docker data disk"));
    if let Some(volume) = &settings.volume_path {
        step(disk(sys, &paths.volume_disk, VOLUME_LABEL, volume, "volume disk").and_then(|()| {
            say(format_args!("handing {} to {}:{}", volume.display(), settings.volume_uid, settings.volume_gid));
            sys.chown(volume, settings.volume_uid, settings.volume_gid)
        }));
    }
    for share in &settings.mounts {
        step(mount_once(sys, &MountRequest::ninep(&share.tag, &share.path)));
    }
    let tls = settings.tls.as_ref().map(|files| tls_files(sys, &paths.tls_dir, files));
    match tls {
        // Without its files dockerd must not get a TLS config it cannot load.
        Some(Err(e)) => step(Err(e)),
        tls => step(daemon_config(sys, paths, settings.shutdown_timeout, tls.and_then(Result::ok).as_ref()).map(drop)),
    }
    match failed {
        0 => Ok(()),
        failed => Err(GuestError::SetupFailed { failed }),
    }
}

/// Formats `device` if it carries no ext4 yet, then mounts it at `target`.
fn disk(sys: &mut dyn System, device: &Path, label: &str, target: &Path, what: &str) -> Result<()> {
    if sys.is_mounted(target)? {
        say(format_args!("{} already mounted; leaving the {what} alone", target.display()));
        return Ok(());
    }
    let formatted = has_ext4_superblock(device).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => GuestError::Config { path: device.into(), why: format!("{what} not found (was the disk attached?)") },
        _ => GuestError::io("reading the superblock of", device, e),
    })?;
    if !formatted {
        say(format_args!("{} has no ext4 filesystem; formatting it as {label}", device.display()));
        sys.mkfs_ext4(device, label)?;
    }
    mount_once(sys, &MountRequest::ext4(device, target))
}

/// Creates the mount point and mounts, unless something is mounted there already.
pub(crate) fn mount_once(sys: &mut dyn System, req: &MountRequest) -> Result<()> {
    if sys.is_mounted(&req.target)? {
        say(format_args!("{} already mounted", req.target.display()));
        return Ok(());
    }
    say(format_args!("mounting {} on {} ({})", req.source, req.target.display(), req.fstype));
    sys.create_dir(&req.target)?;
    sys.mount(req)
}

/// Writes dockerd's TLS server files into `dir` (the key readable by root only).
pub(crate) fn tls_files(sys: &mut dyn System, dir: &Path, files: &TlsFiles) -> Result<daemon_json::TlsPaths> {
    let path = |name: &str| dir.join(name);
    sys.write_file(&path("ca.pem"), &files.ca)?;
    sys.write_file(&path("cert.pem"), &files.cert)?;
    sys.write_secret(&path("key.pem"), &files.key)?;
    let s = |name: &str| path(name).to_string_lossy().into_owned();
    Ok(daemon_json::TlsPaths { ca: s("ca.pem"), cert: s("cert.pem"), key: s("key.pem") })
}

/// Writes dockerd's shutdown timeout, and the TLS settings when given,
/// into daemon.json when it differs; true if it wrote. A dockerd running
/// with handed-over listeners reads the copy `exec-dockerd` derived at its
/// start: that copy follows, so that a reload (SIGHUP) sees the change.
/// (A change of listeners, TLS, restarts dockerd, which derives it anew.)
pub(crate) fn daemon_config(sys: &mut dyn System, paths: &SetupPaths, secs: u64, tls: Option<&daemon_json::TlsPaths>) -> Result<bool> {
    let path = paths.daemon_json.as_path();
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(GuestError::io("reading", path, e)),
    };
    let config = |why| GuestError::Config { path: path.into(), why };
    let mut merged = daemon_json::with_shutdown_timeout(existing.as_deref(), secs).map_err(config)?;
    if let Some(files) = tls {
        merged = daemon_json::with_tls(Some(&merged), files).map_err(config)?;
    }
    if existing.as_deref() == Some(merged.as_str()) {
        return Ok(false);
    }
    say(format_args!("setting dockerd's shutdown-timeout to {secs} s in {}", path.display()));
    if tls.is_some() {
        say(format_args!("dockerd: TLS with client verification on port {}, no plain TCP", dinv_contract::fw_cfg::DOCKER_TLS_PORT));
    }
    sys.write_file(path, &merged)?;
    let running_copy = if paths.activated_json.exists() { daemon_json::activated(Some(&merged)).map_err(config)? } else { None };
    if let Some((copy, _)) = running_copy {
        sys.write_file(&paths.activated_json, &copy)?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::settings::Share;
    use crate::system::{Action, DryRun};
    use crate::testutil::TempDir;

    fn scratch(dir: &TempDir) -> SetupPaths {
        let p = dir.path();
        for disk in ["vdb.img", "vdc.img"] {
            std::fs::File::create(p.join(disk)).unwrap().set_len(4 << 20).unwrap();
        }
        SetupPaths {
            docker_disk: p.join("vdb.img"),
            volume_disk: p.join("vdc.img"),
            docker_dir: p.join("var/lib/docker"),
            daemon_json: p.join("etc/docker/daemon.json"),
            activated_json: p.join("run/dinv/dockerd.json"),
            tls_dir: p.join("etc/docker/tls"),
        }
    }

    fn full_settings() -> Settings {
        Settings {
            mounts: vec![Share { tag: "src".into(), path: "/src".into() }],
            volume_path: Some("/data".into()),
            volume_uid: 1000,
            volume_gid: 1001,
            shutdown_timeout: 20,
            ..Settings::default()
        }
    }

    #[test]
    fn blank_disks_are_formatted_then_everything_mounted() {
        let dir = TempDir::new("setup");
        let paths = scratch(&dir);
        std::fs::create_dir_all(paths.daemon_json.parent().unwrap()).unwrap();
        std::fs::write(&paths.daemon_json, r#"{"bip": "172.19.0.1/16"}"#).unwrap();
        let mut sys = DryRun::default();
        setup(&full_settings(), &paths, &mut sys).unwrap();
        let want = vec![
            Action::Mkfs { device: paths.docker_disk.clone(), label: "dinv-docker".into() },
            Action::CreateDir(paths.docker_dir.clone()),
            Action::Mount(MountRequest::ext4(&paths.docker_disk, &paths.docker_dir)),
            Action::Mkfs { device: paths.volume_disk.clone(), label: "dinv-volume".into() },
            Action::CreateDir("/data".into()),
            Action::Mount(MountRequest::ext4(&paths.volume_disk, Path::new("/data"))),
            Action::Chown { path: "/data".into(), uid: 1000, gid: 1001 },
            Action::CreateDir("/src".into()),
            Action::Mount(MountRequest::new("src", Path::new("/src"), "9p", 0, "trans=virtio,version=9p2000.L,msize=512000")),
            Action::WriteFile {
                path: paths.daemon_json.clone(),
                contents: "{\n  \"bip\": \"172.19.0.1/16\",\n  \"shutdown-timeout\": 20\n}\n".into(),
            },
        ];
        assert_eq!(sys.actions, want);
    }

    #[test]
    fn formatted_disk_is_mounted_without_mkfs() {
        let Some(mke2fs) = ["/usr/sbin/mke2fs", "/sbin/mke2fs"].into_iter().find(|p| Path::new(p).exists()) else {
            eprintln!("skipped: mke2fs (e2fsprogs) is not installed");
            return;
        };
        let dir = TempDir::new("setup");
        let paths = scratch(&dir);
        let ok = std::process::Command::new(mke2fs).args(["-q", "-F", "-t", "ext4"]).arg(&paths.docker_disk).status().unwrap();
        assert!(ok.success());
        let mut sys = DryRun::default();
        setup(&Settings::default(), &paths, &mut sys).unwrap();
        assert!(!sys.actions.iter().any(|a| matches!(a, Action::Mkfs { .. })), "{:?}", sys.actions);
        assert!(sys.actions.contains(&Action::Mount(MountRequest::ext4(&paths.docker_disk, &paths.docker_dir))));
        // No volume_path: the volume disk is left alone.
        assert!(!sys.actions.iter().any(|a| matches!(a, Action::Mount(r) if r.source.ends_with("vdc.img"))));
    }

    #[test]
    fn second_run_changes_nothing() {
        let dir = TempDir::new("setup");
        let paths = scratch(&dir);
        std::fs::create_dir_all(paths.daemon_json.parent().unwrap()).unwrap();
        std::fs::write(&paths.daemon_json, daemon_json::with_shutdown_timeout(None, 20).unwrap()).unwrap();
        let mut sys = DryRun { mounted: vec![paths.docker_dir.clone(), "/data".into(), "/src".into()], actions: vec![] };
        setup(&full_settings(), &paths, &mut sys).unwrap();
        // Only the volume's owner is (re)applied: it is cheap and fixes a changed DINV_VOLUME_UID.
        assert_eq!(sys.actions, vec![Action::Chown { path: "/data".into(), uid: 1000, gid: 1001 }]);
    }

    #[test]
    fn missing_disk_fails_but_other_steps_run() {
        let dir = TempDir::new("setup");
        let mut paths = scratch(&dir);
        paths.docker_disk = dir.path().join("absent.img");
        let mut sys = DryRun::default();
        let err = setup(&Settings::default(), &paths, &mut sys).unwrap_err();
        assert!(matches!(err, GuestError::SetupFailed { failed: 1 }), "{err}");
        assert!(matches!(sys.actions.as_slice(), [Action::WriteFile { .. }]), "{:?}", sys.actions);
    }

    #[test]
    fn broken_daemon_json_is_reported_with_its_path() {
        let dir = TempDir::new("setup");
        let paths = scratch(&dir);
        std::fs::create_dir_all(paths.daemon_json.parent().unwrap()).unwrap();
        std::fs::write(&paths.daemon_json, "{oops").unwrap();
        let mut sys = DryRun::default();
        assert!(daemon_config(&mut sys, &paths, 5, None).unwrap_err().to_string().contains("daemon.json: invalid JSON"));
    }

    #[test]
    fn tls_files_and_daemon_json() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("setup");
        let paths = scratch(&dir);
        std::fs::create_dir_all(paths.daemon_json.parent().unwrap()).unwrap();
        std::fs::write(&paths.daemon_json, r#"{"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"]}"#).unwrap();
        let files = TlsFiles { ca: "CA\n".into(), cert: "CERT\n".into(), key: "KEY\n".into() };
        let settings = Settings { tls: Some(files.clone()), ..Settings::default() };
        let mut sys = DryRun { mounted: vec![paths.docker_dir.clone()], actions: vec![] };
        setup(&settings, &paths, &mut sys).unwrap();
        let tls = |n: &str| paths.tls_dir.join(n);
        assert_eq!(sys.actions[..3], [
            Action::WriteFile { path: tls("ca.pem"), contents: "CA\n".into() },
            Action::WriteFile { path: tls("cert.pem"), contents: "CERT\n".into() },
            Action::WriteSecret(tls("key.pem")),
        ]);
        let Action::WriteFile { contents, .. } = &sys.actions[3] else { panic!("{:?}", sys.actions) };
        let v: serde_json::Value = serde_json::from_str(contents).unwrap();
        assert_eq!(v["hosts"], serde_json::json!(["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"]));
        assert_eq!(v["tlskey"], tls("key.pem").to_string_lossy().as_ref());
        assert_eq!(v["tlsverify"], true);
        // For real: the key is the owner's alone.
        tls_files(&mut crate::system::Live, &paths.tls_dir, &files).unwrap();
        assert_eq!(std::fs::read_to_string(tls("key.pem")).unwrap(), "KEY\n");
        assert_eq!(std::fs::metadata(tls("key.pem")).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
