//! QEMU guest agent client: `guest-sync` with a random id (so a stale reply
//! from an earlier client cannot be mistaken for ours), then
//! `guest-shutdown`, which the agent never answers.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// A random guest-sync id from /dev/urandom (31 bits, so any JSON reader
/// keeps it exact).
pub fn random_id() -> std::io::Result<u32> {
    let mut b = [0u8; 4];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b) & 0x7fff_ffff)
}

/// The exact request line for guest-sync.
pub fn sync_request(id: u32) -> String {
    format!("{{\"execute\":\"guest-sync\",\"arguments\":{{\"id\":{id}}}}}\n")
}

/// The exact request line for guest-shutdown (power off).
pub const SHUTDOWN_REQUEST: &str = "{\"execute\":\"guest-shutdown\",\"arguments\":{\"mode\":\"powerdown\"}}\n";

/// Asks the guest to power off. Fails if the agent does not answer the
/// sync within `timeout` (not running yet, or the guest is hung).
pub fn shutdown(socket: &Path, timeout: Duration) -> Result<(), String> {
    let ctx = |what: &str, e: std::io::Error| format!("guest agent {}: {what}: {e}", socket.display());
    let stream = UnixStream::connect(socket).map_err(|e| ctx("connect", e))?;
    let id = random_id().map_err(|e| format!("/dev/urandom: {e}"))?;
    let deadline = Instant::now() + timeout;
    stream.set_write_timeout(Some(timeout)).map_err(|e| ctx("socket", e))?;
    (&stream).write_all(sync_request(id).as_bytes()).map_err(|e| ctx("sending guest-sync", e))?;
    let mut reader = BufReader::new(&stream);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("guest agent {}: no answer to guest-sync within {timeout:?}", socket.display()));
        }
        stream.set_read_timeout(Some(left)).map_err(|e| ctx("socket", e))?;
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => return Err(format!("guest agent {}: connection closed before guest-sync answered", socket.display())),
            Ok(_) => {
                // Skip anything that is not our answer (stale replies, errors).
                let v: serde_json::Value = match serde_json::from_str(line.trim()) {
                    Ok(v) => v,
                    Err(_) => continue,
                };
                if v.get("return").and_then(|r| r.as_u64()) == Some(id as u64) {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e) => return Err(ctx("reading", e)),
        }
    }
    (&stream).write_all(SHUTDOWN_REQUEST.as_bytes()).map_err(|e| ctx("sending guest-shutdown", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A fake agent: answers guest-sync (after a stale line), records what it got.
    fn fake_agent(dir: &Path, answer: bool) -> (std::path::PathBuf, std::thread::JoinHandle<Vec<String>>) {
        let sock = dir.join("qga.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let h = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut got = Vec::new();
            let mut line = String::new();
            while r.read_line(&mut line).unwrap() > 0 {
                got.push(line.clone());
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                if v["execute"] == "guest-sync" && answer {
                    let id = v["arguments"]["id"].as_u64().unwrap();
                    (&conn).write_all(format!("{{\"return\": {}}}\n", id.wrapping_add(1)).as_bytes()).unwrap();
                    (&conn).write_all(format!("{{\"return\": {id}}}\n").as_bytes()).unwrap();
                }
                line.clear();
            }
            got
        });
        (sock, h)
    }

    #[test]
    fn sync_then_shutdown() {
        let d = std::env::temp_dir().join(format!("dinv-qga-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let (sock, h) = fake_agent(&d, true);
        shutdown(&sock, Duration::from_secs(5)).unwrap();
        let got = h.join().unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        let v: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
        let id = v["arguments"]["id"].as_u64().unwrap() as u32;
        assert_eq!(got[0], sync_request(id));
        assert_eq!(got[1], SHUTDOWN_REQUEST);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn silent_agent_times_out_without_shutdown() {
        let d = std::env::temp_dir().join(format!("dinv-qga-silent-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let (sock, h) = fake_agent(&d, false);
        let t = Instant::now();
        let err = shutdown(&sock, Duration::from_millis(300)).unwrap_err();
        assert!(err.contains("no answer to guest-sync"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(2));
        let got = h.join().unwrap();
        assert_eq!(got.len(), 1, "guest-shutdown must not be sent: {got:?}");
        assert!(shutdown(&d.join("absent.sock"), Duration::from_millis(100)).unwrap_err().contains("connect"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn ids_differ() {
        let ids: std::collections::BTreeSet<u32> = (0..4).map(|_| random_id().unwrap()).collect();
        assert!(ids.len() > 1 && ids.iter().all(|&i| i <= 0x7fff_ffff));
    }
}
