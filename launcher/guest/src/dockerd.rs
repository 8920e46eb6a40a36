//! `dinv-guest exec-dockerd DOCKERD [ARG...]`: the dockerd service of
//! `init = "dinv"` guests. Opens dockerd's plain TCP listeners itself,
//! hands them over as systemd socket activation (`LISTEN_FDS`, from fd 3)
//! and execs dockerd, which keeps this pid, with the configuration that
//! names them `fd://` ([`daemon_json::activated`]).
//!
//! dockerd waits a deliberate second before it listens on TCP without
//! client verification; handed sockets skip that wait. A client that
//! connects while dockerd starts waits in the listen queue instead of
//! being refused. Whenever there is nothing to hand over (TLS with client
//! verification, no numeric `tcp://` host, `-H` or `--config-file` on the
//! command line, no daemon.json, a port that will not bind), dockerd is
//! exec'd as given and opens its listeners itself, as before.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{IntoRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::error::{GuestError, Result};
use crate::log::say;
use crate::setup::daemon_json;
use crate::system::{Live, System};

/// The first fd of socket activation (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

/// Hands dockerd (`program` with `args`) its listeners where it can, then execs it; returns only on failure.
pub fn exec_dockerd(program: &str, args: &[String], daemon_json: &Path, activated_json: &Path) -> Result<i32> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    match prepare(args, daemon_json, activated_json) {
        Ok(Some(listeners)) => {
            let n = listeners.len();
            place(listeners).map_err(|e| GuestError::Command { command: "placing the listeners at fd 3".into(), why: e.to_string() })?;
            // SAFETY: getpid has no preconditions.
            let pid = unsafe { libc::getpid() };
            cmd.env("LISTEN_FDS", n.to_string()).env("LISTEN_PID", pid.to_string()).env_remove("LISTEN_FDNAMES");
            cmd.arg("--config-file").arg(activated_json);
        }
        Ok(None) => {}
        Err(why) => say(format_args!("exec-dockerd: {why}; dockerd opens its listeners itself")),
    }
    let e = cmd.exec();
    Err(GuestError::Command { command: program.into(), why: format!("cannot run: {e}") })
}

/// Binds the listeners daemon.json names for plain TCP and writes the
/// configuration for them; None when dockerd should open its own.
fn prepare(args: &[String], daemon_json: &Path, activated_json: &Path) -> std::result::Result<Option<Vec<TcpListener>>, String> {
    let own_choice = |a: &String| a.starts_with("-H") || ["--host", "--config-file"].iter().any(|f| a == f || a.starts_with(&format!("{f}=")));
    if args.iter().any(own_choice) {
        return Ok(None);
    }
    let text = match std::fs::read_to_string(daemon_json) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", daemon_json.display())),
    };
    let Some((config, addrs)) = daemon_json::activated(Some(&text)).map_err(|e| format!("{}: {e}", daemon_json.display()))? else {
        return Ok(None);
    };
    let listeners = addrs.iter().map(|a| bind(a)).collect::<std::result::Result<Vec<_>, _>>()?;
    Live.write_file(activated_json, &config).map_err(|e| e.to_string())?;
    let list: Vec<String> = addrs.iter().map(SocketAddr::to_string).collect();
    say(format_args!("exec-dockerd: listening on {} for dockerd (socket activation)", list.join(", ")));
    Ok(Some(listeners))
}

fn bind(addr: &SocketAddr) -> std::result::Result<TcpListener, String> {
    TcpListener::bind(addr).map_err(|e| format!("binding {addr}: {e}"))
}

/// Moves `listeners` to fds 3, 4, ... without close-on-exec. Each goes
/// first above every target, so no move overwrites one not yet moved.
fn place(listeners: Vec<TcpListener>) -> std::io::Result<()> {
    let n = listeners.len() as RawFd;
    let fds: Vec<RawFd> = listeners.into_iter().map(IntoRawFd::into_raw_fd).collect();
    let mut high = Vec::with_capacity(fds.len());
    for &fd in &fds {
        // SAFETY: fcntl on an fd this process owns.
        let h = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, LISTEN_FDS_START + n) };
        if h < 0 {
            return Err(std::io::Error::last_os_error());
        }
        high.push(h);
    }
    for (i, &h) in high.iter().enumerate() {
        // SAFETY: dup2 and close on fds this process owns; dup2 leaves the copy without close-on-exec.
        unsafe {
            libc::close(fds[i]);
            if libc::dup2(h, LISTEN_FDS_START + i as RawFd) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    for h in high {
        // SAFETY: the fd was made above and is no longer needed.
        unsafe { libc::close(h) };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    const HELPER_ENV: &str = "DINV_GUEST_EXEC_DOCKERD_DIR";

    /// A stand-in for dockerd: a shell that reports its fds, its
    /// activation environment and its arguments, then answers one
    /// connection on fd 3 with python (the real dockerd serves fd:// the
    /// same way: Go's net.FileListener on LISTEN_FDS from 3).
    fn fake_dockerd(dir: &Path) -> String {
        let script = dir.join("dockerd");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n\
                 {{ echo \"pid=$$ LISTEN_PID=$LISTEN_PID LISTEN_FDS=$LISTEN_FDS\"; echo \"args=$*\"; ls /proc/$$/fd | sort -n | tr '\\n' ' '; echo; }} > {d}/report\n\
                 exec python3 -c 'import socket; s = socket.socket(fileno=3); c, _ = s.accept(); c.sendall(b\"OK\"); c.close()'\n",
                d = dir.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        script.display().to_string()
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    /// exec-dockerd replaces the process, so it runs in a child test process.
    #[test]
    fn hands_plain_tcp_listeners_to_dockerd_at_fd_3() {
        let dir = TempDir::new("exec-dockerd");
        let port = free_port();
        std::fs::write(
            dir.path().join("daemon.json"),
            format!(r#"{{"hosts": ["unix:///var/run/docker.sock", "tcp://127.0.0.1:{port}"], "tls": false, "shutdown-timeout": 5}}"#),
        )
        .unwrap();
        let fake = fake_dockerd(dir.path());
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "dockerd::tests::exec_dockerd_helper", "--ignored", "--nocapture", "--test-threads=1"])
            .env(HELPER_ENV, dir.path())
            .env("FAKE_DOCKERD", &fake)
            .spawn()
            .unwrap();
        // The listener exists before "dockerd" runs: connect, then wait for the answer.
        let mut answer = String::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(mut s) => {
                    s.read_to_string(&mut answer).unwrap();
                    break;
                }
                Err(_) if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(20)),
                Err(e) => panic!("nothing listened on {port}: {e}"),
            }
        }
        assert!(child.wait().unwrap().success());
        assert_eq!(answer, "OK");
        let report = std::fs::read_to_string(dir.path().join("report")).unwrap();
        let mut lines = report.lines();
        let ids = lines.next().unwrap();
        let pid = ids.split_whitespace().next().unwrap().trim_start_matches("pid=");
        assert_eq!(ids, format!("pid={pid} LISTEN_PID={pid} LISTEN_FDS=1"), "exec kept the pid that LISTEN_PID names");
        let config = dir.path().join("run/dockerd.json");
        assert_eq!(lines.next().unwrap(), format!("args=--debug --config-file {}", config.display()));
        let fds: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(fds[..4], ["0", "1", "2", "3"], "the socket at fd 3: {fds:?}");
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
        assert_eq!(v["hosts"], serde_json::json!(["unix:///var/run/docker.sock", "fd://"]));
        assert_eq!(v["shutdown-timeout"], 5);
    }

    #[test]
    #[ignore = "run by hands_plain_tcp_listeners_to_dockerd_at_fd_3 in its own process"]
    fn exec_dockerd_helper() {
        let Some(dir) = std::env::var_os(HELPER_ENV).map(std::path::PathBuf::from) else { return };
        let e = exec_dockerd(&std::env::var("FAKE_DOCKERD").unwrap(), &["--debug".into()], &dir.join("daemon.json"), &dir.join("run/dockerd.json")).unwrap_err();
        panic!("exec failed: {e}");
    }

    #[test]
    fn dockerd_opens_its_own_listeners_when_told_on_the_command_line() {
        let dir = TempDir::new("exec-dockerd-flags");
        let port = free_port();
        let json = dir.path().join("daemon.json");
        std::fs::write(&json, format!(r#"{{"hosts": ["tcp://127.0.0.1:{port}"]}}"#)).unwrap();
        let out = dir.path().join("run/dockerd.json");
        for args in [&["-H", "tcp://0.0.0.0:1"][..], &["--host=unix:///x"], &["-Hunix:///x"], &["--config-file", "/x.json"]] {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            assert!(prepare(&args, &json, &out).unwrap().is_none(), "{args:?}");
        }
        assert!(prepare(&[], &dir.path().join("absent.json"), &out).unwrap().is_none());
        assert!(!out.exists());
        // A port that is taken is dockerd's to report.
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        std::fs::write(&json, format!(r#"{{"hosts": ["tcp://{}"]}}"#, taken.local_addr().unwrap())).unwrap();
        assert!(prepare(&[], &json, &out).unwrap_err().starts_with("binding 127.0.0.1:"));
        let mut s = TcpStream::connect(taken.local_addr().unwrap()).unwrap();
        s.write_all(b"x").unwrap();
    }
}
