//! `dinv-guest post`: once dockerd listens, hands its socket to the configured owner.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{GuestError, Result};
use crate::log::say;
use crate::setup::settings::Settings;

/// dockerd's unix socket in the guest.
pub use dinv_contract::services::DOCKER_SOCK;

/// How long `post` waits for the socket by default (first boots format disks and load images).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Waits for `socket`, then chowns it to `sock_uid:sock_gid`.
pub fn post(settings: &Settings, socket: &Path, timeout: Duration) -> Result<()> {
    // On OpenRC this runs right after the docker service started dockerd; the
    // launcher's boot timeline takes this line as "dockerd started" there.
    say(format_args!("{}{}", dinv_contract::console::markers::POST_WAITING, socket.display()));
    wait_for_socket(socket, timeout)?;
    std::os::unix::fs::chown(socket, Some(settings.sock_uid), Some(settings.sock_gid))
        .map_err(|e| GuestError::io("changing owner of", socket, e))?;
    say(format_args!("{} owned by {}:{}", socket.display(), settings.sock_uid, settings.sock_gid));
    Ok(())
}

/// Polls until `path` exists and is a unix socket, or `timeout` passes.
pub fn wait_for_socket(path: &Path, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(GuestError::Timeout {
                what: format!("{} appearing (is dockerd running?)", path.display()),
                secs: timeout.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::net::UnixListener;

    #[test]
    fn chowns_socket_once_it_appears() {
        let dir = TempDir::new("post");
        let sock = dir.path().join("docker.sock");
        // As root the test hands the socket to another owner; otherwise to ourselves.
        let (uid, gid) = if unsafe { libc::geteuid() } == 0 { (4321, 4322) } else { unsafe { (libc::getuid(), libc::getgid()) } };
        let settings = Settings { sock_uid: uid, sock_gid: gid, ..Settings::default() };
        let late = sock.clone();
        let listener = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            UnixListener::bind(late).unwrap()
        });
        post(&settings, &sock, Duration::from_secs(10)).unwrap();
        let meta = std::fs::metadata(&sock).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (uid, gid));
        drop(listener.join().unwrap());
    }

    #[test]
    fn a_plain_file_is_not_the_socket_and_times_out() {
        let dir = TempDir::new("post");
        let sock = dir.path().join("docker.sock");
        std::fs::write(&sock, "").unwrap();
        let started = Instant::now();
        let err = wait_for_socket(&sock, Duration::from_millis(300)).unwrap_err().to_string();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(err.contains("docker.sock appearing"), "{err}");
    }
}
