//! `dinv-guest restore`: what a restored guest needs before the container's
//! command runs, read as a [`RestoreRequest`] (JSON) on stdin from the
//! launcher, through the guest agent's `guest-exec`. A booted guest got all
//! of it from fw_cfg at boot; a restored one booted long ago, elsewhere.
//!
//! In order: the clock from the host's (the saved guest's clock stopped
//! at the save); fresh host entropy into the kernel's pool and an immediate
//! reseed (every restored copy starts from the same saved generator state);
//! the 9p shares; the docker socket's owner; dockerd's shutdown timeout
//! (a reload) and, with TLS, its certificates and a restart onto 2376 with
//! `--tlsverify`, as a booted guest has it.
//!
//! `dinv-guest restore --listen` is how a restore gets there fast: started
//! by `quiesce` right before the save, it is saved waiting on the restore
//! port ([`RESTORE_PORT`]), so after a restore the request needs no guest
//! agent, fork or exec: it reads the request line, applies it with its
//! messages going back on the port, and ends with [`RESTORE_DONE`].

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dinv_contract::snapshot::{RestoreRequest, RESTORE_DONE, RESTORE_PORT};

use crate::error::{GuestError, Result};
use crate::log::say;
use crate::setup::mounts::MountRequest;
use crate::setup::settings::TlsFiles;
use crate::setup::setup::{self, SetupPaths};
use crate::system::System;

/// Where `restore` leaves dockerd's shutdown timeout for PID 1, which read
/// the boot's value from fw_cfg long ago and times dockerd's stop with it.
pub const SHUTDOWN_TIMEOUT_FILE: &str = "/run/dinv-guest/shutdown_timeout";

/// dockerd's pid file (its default `pidfile`).
pub const DOCKERD_PIDFILE: &str = "/var/run/docker.pid";

/// The files `restore` touches (tests point them into a scratch directory).
#[derive(Clone, Debug)]
pub struct RestorePaths {
    pub setup: SetupPaths,
    pub docker_sock: PathBuf,
    pub dockerd_pidfile: PathBuf,
    pub shutdown_timeout_file: PathBuf,
}

impl Default for RestorePaths {
    fn default() -> Self {
        RestorePaths {
            setup: SetupPaths::default(),
            docker_sock: crate::setup::post::DOCKER_SOCK.into(),
            dockerd_pidfile: DOCKERD_PIDFILE.into(),
            shutdown_timeout_file: SHUTDOWN_TIMEOUT_FILE.into(),
        }
    }
}

/// The shutdown timeout `restore` left for PID 1, if any.
pub fn shutdown_timeout_override() -> Option<u64> {
    std::fs::read_to_string(SHUTDOWN_TIMEOUT_FILE).ok()?.trim().parse().ok()
}

/// Where the kernel lists the virtio-serial ports.
pub const VIRTIO_PORTS: &str = "/sys/class/virtio-ports";

/// The restore port's device node, from the ports listed in `sys_class`.
pub fn restore_port(sys_class: &Path) -> Option<PathBuf> {
    crate::setup::virtio_ports::named_ports(sys_class).into_iter().find(|(name, _)| name == RESTORE_PORT).map(|(_, node)| Path::new("/dev").join(node))
}

/// [`restore_port`], or an error naming the port that is missing.
fn find_restore_port(sys_class: &Path) -> Result<PathBuf> {
    restore_port(sys_class).ok_or_else(|| GuestError::Config { path: sys_class.into(), why: format!("no virtio-serial port named {RESTORE_PORT}") })
}

/// One line from `port`, without its newline. A virtio-serial port reads
/// end-of-file while no host is connected (between the save and a
/// restore's connect): that is waited out, `idle` apart, as is EINTR.
pub fn read_line(port: &mut impl Read, idle: Duration) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match port.read(&mut buf) {
            Ok(0) => std::thread::sleep(idle),
            Ok(n) => {
                if let Some(end) = buf[..n].iter().position(|b| *b == b'\n') {
                    line.extend_from_slice(&buf[..end]);
                    return Ok(line);
                }
                line.extend_from_slice(&buf[..n]);
                if line.len() > 1 << 20 {
                    return Err(std::io::Error::other("a restore request over 1 MiB"));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The line that ends a restore's messages: [`RESTORE_DONE`] and how many
/// steps failed.
pub fn done_line(failed: usize) -> String {
    format!("{RESTORE_DONE}{failed}\n")
}

/// `dinv-guest restore --listen`: waits on the restore port for one
/// request, applies it with this process's messages (stdout) going to the
/// port, ends with [`done_line`].
pub fn listen(sys_class: &Path, paths: &RestorePaths, sys: &mut dyn System) -> Result<()> {
    let node = find_restore_port(sys_class)?;
    let mut port = std::fs::OpenOptions::new().read(true).write(true).open(&node).map_err(|e| GuestError::io("opening", &node, e))?;
    let line = read_line(&mut port, Duration::from_millis(5)).map_err(|e| GuestError::io("reading", &node, e))?;
    // From here every message goes to the launcher.
    // SAFETY: dup2 of an fd we own onto stdout.
    unsafe { libc::dup2(port.as_raw_fd(), 1) };
    let t = std::time::Instant::now();
    let failed = apply_line(&line, paths, sys);
    say(format_args!("restore: applied in {:.3} s", t.elapsed().as_secs_f64()));
    port.write_all(done_line(failed).as_bytes()).map_err(|e| GuestError::io("writing", &node, e))
}

/// Applies one request line; returns how many steps failed (a line that
/// is no request counts as one).
pub fn apply_line(line: &[u8], paths: &RestorePaths, sys: &mut dyn System) -> usize {
    match serde_json::from_slice::<RestoreRequest>(line) {
        Ok(req) => match restore(&req, paths, sys) {
            Ok(()) => 0,
            Err(GuestError::SetupFailed { failed }) => failed,
            Err(e) => {
                say(format_args!("error: {e}"));
                1
            }
        },
        Err(e) => {
            say(format_args!("error: not a restore request: {e}"));
            1
        }
    }
}

/// Starts `dinv-guest restore --listen` in its own session, detached from
/// the caller's output (quiesce runs under the guest agent, which waits
/// for its pipes to close); returns the port it will wait on.
pub fn start_listener(sys_class: &Path) -> Result<PathBuf> {
    let node = find_restore_port(sys_class)?;
    let exe = std::env::current_exe().map_err(|e| GuestError::io("finding", "/proc/self/exe", e))?;
    let mut cmd = std::process::Command::new(&exe);
    cmd.args(["restore", "--listen"]).stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::setsid();
            Ok(())
        });
    }
    cmd.spawn().map_err(|e| GuestError::Command { command: format!("{} restore --listen", exe.display()), why: e.to_string() })?;
    Ok(node)
}

/// Reads the request from stdin.
pub fn read_request() -> Result<RestoreRequest> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).map_err(|e| GuestError::io("reading", "stdin", e))?;
    serde_json::from_str(&text).map_err(|e| GuestError::Config { path: "stdin".into(), why: format!("not a restore request: {e}") })
}

fn hex_bytes(hex: &str) -> Result<Vec<u8>> {
    let bad = || GuestError::Config { path: "stdin".into(), why: "entropy is not hex".into() };
    if hex.len() % 2 != 0 {
        return Err(bad());
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())).collect()
}

/// Applies `req`; every step runs, failures are counted and reported.
pub fn restore(req: &RestoreRequest, paths: &RestorePaths, sys: &mut dyn System) -> Result<()> {
    let mut failed = 0;
    let mut step = |result: Result<()>| {
        if let Err(e) = result {
            say(format_args!("error: {e}"));
            failed += 1;
        }
    };
    step(sys.set_clock(req.clock_ns));
    step(hex_bytes(&req.entropy).and_then(|bytes| {
        if bytes.len() < 32 {
            return Err(GuestError::Config { path: "stdin".into(), why: format!("{} bytes of entropy is too little (at least 32)", bytes.len()) });
        }
        sys.add_entropy(&bytes)?;
        say(format_args!("restore: reseeded the random generator with {} bytes from the host", bytes.len()));
        Ok(())
    }));
    for share in &req.shares {
        step(setup::mount_once(sys, &MountRequest::ninep(&share.tag, Path::new(&share.path))));
    }
    if paths.docker_sock.exists() {
        step(sys.chown(&paths.docker_sock, req.sock_uid, req.sock_gid));
    }
    step(sys.write_file(&paths.shutdown_timeout_file, &format!("{}\n", req.shutdown_timeout)));
    let tls = req.tls.as_ref().map(|t| TlsFiles { ca: t.ca.clone(), cert: t.cert.clone(), key: t.key.clone() });
    let tls_paths = match tls.as_ref().map(|files| setup::tls_files(sys, &paths.setup.tls_dir, files)) {
        Some(Err(e)) => {
            // Without its files dockerd must not get a TLS config it cannot load.
            step(Err(e));
            None
        }
        other => other.map(|r| r.expect("errors handled above")),
    };
    let changed = setup::daemon_config(sys, &paths.setup, req.shutdown_timeout, tls_paths.as_ref());
    step(match (changed, &tls_paths) {
        // dockerd reads its listeners and TLS files only at start: PID 1
        // starts it again once it exits.
        (Ok(_), Some(_)) => sys.signal_pidfile(&paths.dockerd_pidfile, libc::SIGTERM).map(|()| say("restore: restarting dockerd for TLS")),
        // The shutdown timeout is one of the options dockerd reloads.
        (Ok(true), None) => sys.signal_pidfile(&paths.dockerd_pidfile, libc::SIGHUP).map(|()| say("restore: dockerd reloads daemon.json")),
        (Ok(false), None) => Ok(()),
        (Err(e), _) => Err(e),
    });
    match failed {
        0 => Ok(()),
        failed => Err(GuestError::SetupFailed { failed }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::{Action, DryRun};
    use crate::testutil::TempDir;
    use dinv_contract::snapshot::{Share, TlsServer};

    fn paths(dir: &TempDir) -> RestorePaths {
        let p = dir.path();
        std::fs::create_dir_all(p.join("etc/docker")).unwrap();
        // As setup left it at boot.
        let built = r#"{"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"], "tls": false}"#;
        std::fs::write(p.join("etc/docker/daemon.json"), crate::setup::daemon_json::with_shutdown_timeout(Some(built), 5).unwrap()).unwrap();
        std::fs::write(p.join("docker.sock"), "").unwrap();
        RestorePaths {
            setup: SetupPaths {
                docker_disk: p.join("vdb"),
                volume_disk: p.join("vdc"),
                docker_dir: p.join("var/lib/docker"),
                daemon_json: p.join("etc/docker/daemon.json"),
                activated_json: p.join("run/dinv/dockerd.json"),
                tls_dir: p.join("etc/docker/tls"),
            },
            docker_sock: p.join("docker.sock"),
            dockerd_pidfile: p.join("docker.pid"),
            shutdown_timeout_file: p.join("run/shutdown_timeout"),
        }
    }

    fn request() -> RestoreRequest {
        RestoreRequest { clock_ns: 1_700_000_000_000_000_000, entropy: "ab".repeat(64), shares: vec![], sock_uid: 0, sock_gid: 0, shutdown_timeout: 5, tls: None }
    }

    #[test]
    fn plain_restore_reseeds_mounts_and_leaves_dockerd_alone() {
        let dir = TempDir::new("restore-plain");
        let p = paths(&dir);
        let mut sys = DryRun { mounted: vec![p.setup.docker_dir.clone()], actions: vec![] };
        let req = RestoreRequest { shares: vec![Share { tag: "dinv0".into(), path: "/src".into() }], sock_uid: 1000, sock_gid: 999, ..request() };
        restore(&req, &p, &mut sys).unwrap();
        assert_eq!(
            sys.actions,
            [
                Action::SetClock(1_700_000_000_000_000_000),
                Action::AddEntropy(64),
                Action::CreateDir("/src".into()),
                Action::Mount(MountRequest::ninep("dinv0", Path::new("/src"))),
                Action::Chown { path: p.docker_sock.clone(), uid: 1000, gid: 999 },
                Action::WriteFile { path: p.shutdown_timeout_file.clone(), contents: "5\n".into() },
            ]
        );
    }

    #[test]
    fn a_reload_reads_the_copy_of_a_dockerd_with_handed_over_listeners() {
        let dir = TempDir::new("restore-activated");
        let p = paths(&dir);
        // As exec-dockerd left it at dockerd's start.
        let (copy, _) = crate::setup::daemon_json::activated(Some(&std::fs::read_to_string(&p.setup.daemon_json).unwrap())).unwrap().unwrap();
        std::fs::create_dir_all(p.setup.activated_json.parent().unwrap()).unwrap();
        std::fs::write(&p.setup.activated_json, copy).unwrap();
        let mut sys = DryRun { mounted: vec![p.setup.docker_dir.clone()], actions: vec![] };
        restore(&RestoreRequest { shutdown_timeout: 30, ..request() }, &p, &mut sys).unwrap();
        let Action::WriteFile { path, contents } = &sys.actions[5] else { panic!("{:?}", sys.actions) };
        assert_eq!(path, &p.setup.activated_json);
        let v: serde_json::Value = serde_json::from_str(contents).unwrap();
        assert_eq!((v["shutdown-timeout"].clone(), v["hosts"].clone()), (serde_json::json!(30), serde_json::json!(["unix:///var/run/docker.sock", "fd://"])));
        assert_eq!(sys.actions[6], Action::Signal { pidfile: p.dockerd_pidfile.clone(), sig: libc::SIGHUP });
    }

    #[test]
    fn a_new_shutdown_timeout_is_reloaded_and_tls_restarts_dockerd() {
        let dir = TempDir::new("restore-tls");
        let p = paths(&dir);
        let mut sys = DryRun { mounted: vec![p.setup.docker_dir.clone()], actions: vec![] };
        restore(&RestoreRequest { shutdown_timeout: 30, ..request() }, &p, &mut sys).unwrap();
        assert!(matches!(&sys.actions[4], Action::WriteFile { path, contents } if *path == p.setup.daemon_json && contents.contains("\"shutdown-timeout\": 30")));
        assert_eq!(sys.actions[5], Action::Signal { pidfile: p.dockerd_pidfile.clone(), sig: libc::SIGHUP });

        let mut sys = DryRun { mounted: vec![p.setup.docker_dir.clone()], actions: vec![] };
        let tls = TlsServer { ca: "CA\n".into(), cert: "CERT\n".into(), key: "KEY\n".into() };
        restore(&RestoreRequest { tls: Some(tls), ..request() }, &p, &mut sys).unwrap();
        let tls_dir = &p.setup.tls_dir;
        assert_eq!(sys.actions[4..7], [
            Action::WriteFile { path: tls_dir.join("ca.pem"), contents: "CA\n".into() },
            Action::WriteFile { path: tls_dir.join("cert.pem"), contents: "CERT\n".into() },
            Action::WriteSecret(tls_dir.join("key.pem")),
        ]);
        let Action::WriteFile { contents, .. } = &sys.actions[7] else { panic!("{:?}", sys.actions) };
        let v: serde_json::Value = serde_json::from_str(contents).unwrap();
        assert_eq!(v["hosts"], serde_json::json!(["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"]));
        assert_eq!((v["tls"].as_bool(), v["tlsverify"].as_bool()), (Some(true), Some(true)));
        assert_eq!(v["tlskey"], tls_dir.join("key.pem").to_string_lossy().as_ref());
        assert_eq!(sys.actions[8], Action::Signal { pidfile: p.dockerd_pidfile.clone(), sig: libc::SIGTERM });
    }

    /// A port that reads these chunks in turn (None: end-of-file, as
    /// while no host is connected; Some(empty): EINTR).
    struct Port(Vec<Option<&'static [u8]>>);

    impl Read for Port {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.0.remove(0) {
                None => Ok(0),
                Some([]) => Err(std::io::ErrorKind::Interrupted.into()),
                Some(b) => {
                    buf[..b.len()].copy_from_slice(b);
                    Ok(b.len())
                }
            }
        }
    }

    #[test]
    fn the_request_line_waits_out_a_host_not_yet_connected() {
        let mut port = Port(vec![None, None, Some(b"{\"a\":"), Some(b""), None, Some(b"1}\nleft over")]);
        assert_eq!(read_line(&mut port, Duration::ZERO).unwrap(), b"{\"a\":1}");
        assert!(port.0.is_empty());
    }

    #[test]
    fn the_restore_port_is_found_by_name() {
        let dir = TempDir::new("restore-port");
        let sys = dir.path();
        assert_eq!(restore_port(sys), None);
        for (node, name) in [("vport0p1", "org.qemu.guest_agent.0\n"), ("vport0p2", "org.dinv.restore.0\n")] {
            std::fs::create_dir_all(sys.join(node)).unwrap();
            std::fs::write(sys.join(node).join("name"), name).unwrap();
        }
        assert_eq!(restore_port(sys), Some(PathBuf::from("/dev/vport0p2")));
    }

    #[test]
    fn a_request_line_is_applied_and_counted() {
        let dir = TempDir::new("restore-line");
        let p = paths(&dir);
        let mut sys = DryRun { mounted: vec![p.setup.docker_dir.clone()], actions: vec![] };
        let line = serde_json::to_vec(&request()).unwrap();
        assert_eq!(apply_line(&line, &p, &mut sys), 0);
        assert_eq!(sys.actions[..2], [Action::SetClock(1_700_000_000_000_000_000), Action::AddEntropy(64)]);
        let bad = serde_json::to_vec(&RestoreRequest { entropy: "abcd".into(), ..request() }).unwrap();
        assert_eq!(apply_line(&bad, &p, &mut sys), 1);
        let mut untouched = DryRun::default();
        assert_eq!(apply_line(b"{\"clock\": 1}", &p, &mut untouched), 1);
        assert!(untouched.actions.is_empty());
        assert_eq!(done_line(2), "dinv-restore-done 2\n");
    }

    #[test]
    fn too_little_or_bad_entropy_fails_but_the_rest_runs() {
        let dir = TempDir::new("restore-bad");
        let p = paths(&dir);
        for entropy in ["abcd", "zz".repeat(40).as_str(), "abc"] {
            let mut sys = DryRun { mounted: vec![p.setup.docker_dir.clone()], actions: vec![] };
            let err = restore(&RestoreRequest { entropy: entropy.into(), ..request() }, &p, &mut sys).unwrap_err();
            assert!(matches!(err, GuestError::SetupFailed { failed: 1 }), "{entropy}: {err}");
            assert!(!sys.actions.iter().any(|a| matches!(a, Action::AddEntropy(_))));
            assert!(sys.actions.iter().any(|a| matches!(a, Action::WriteFile { .. })));
        }
    }
}
