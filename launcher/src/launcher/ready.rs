//! Readiness: dockerd answers `GET /_ping` with `OK`. Polled from 50 ms,
//! doubling to 1 s, until a total timeout or until told to stop (QEMU
//! exited). SLIRP accepts connections even before the guest listens, so only
//! a full `OK` answer counts.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// One /_ping over HTTP/1.0; Ok when the status is 200 and the body is `OK`.
pub fn ping(addr: &SocketAddr, timeout: Duration) -> Result<(), String> {
    let mut s = TcpStream::connect_timeout(addr, timeout).map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(timeout)).and_then(|()| s.set_write_timeout(Some(timeout))).map_err(|e| e.to_string())?;
    s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n").map_err(|e| format!("{addr}: {e}"))?;
    let mut buf = Vec::new();
    // HTTP/1.0: the server closes after the body; cap the size read.
    s.take(64 * 1024).read_to_end(&mut buf).map_err(|e| format!("{addr}: {e}"))?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| format!("{addr}: no complete HTTP answer"))?;
    let status = head.lines().next().unwrap_or("");
    if !(status.starts_with("HTTP/1.") && status.split_whitespace().nth(1) == Some("200")) {
        return Err(format!("{addr}: {status}"));
    }
    if body.trim() != "OK" {
        return Err(format!("{addr}: /_ping answered {body:?}"));
    }
    Ok(())
}

/// Why waiting for readiness ended without success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotReady {
    /// No OK within the timeout; the last error seen.
    Timeout { after: Duration, last: String },
    /// `stop()` returned true (QEMU exited or shutdown began).
    Stopped,
}

/// Polls until /_ping says OK; returns how long it took.
pub fn wait_ready(addr: &SocketAddr, total: Duration, stop: &dyn Fn() -> bool) -> Result<Duration, NotReady> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(50);
    loop {
        if stop() {
            return Err(NotReady::Stopped);
        }
        let last = match ping(addr, Duration::from_secs(2)) {
            Ok(()) => return Ok(start.elapsed()),
            Err(e) => e,
        };
        let elapsed = start.elapsed();
        if elapsed >= total {
            return Err(NotReady::Timeout { after: elapsed, last });
        }
        // Sleep in small steps so stop() is noticed quickly.
        let until = Instant::now() + delay.min(total - elapsed);
        while Instant::now() < until {
            if stop() {
                return Err(NotReady::Stopped);
            }
            std::thread::sleep(Duration::from_millis(20).min(until.saturating_duration_since(Instant::now())));
        }
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A fake dockerd: the first `fail` connections are closed without an
    /// answer (like SLIRP before dockerd listens), then it answers OK.
    fn server(fail: usize) -> (SocketAddr, Arc<AtomicUsize>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let mut conn = conn.unwrap();
                let n = c.fetch_add(1, Ordering::SeqCst);
                let mut req = [0u8; 512];
                let got = conn.read(&mut req).unwrap();
                assert!(req[..got].starts_with(b"GET /_ping HTTP/1.0\r\n"));
                if n >= fail {
                    conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK").unwrap();
                }
            }
        });
        (addr, count)
    }

    #[test]
    fn ready_after_some_polls() {
        let (addr, count) = server(3);
        let took = wait_ready(&addr, Duration::from_secs(10), &|| false).unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 4);
        // 50 + 100 + 200 ms of backoff before the 4th poll.
        assert!(took >= Duration::from_millis(350) && took < Duration::from_secs(3), "{took:?}");
        ping(&addr, Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn timeout_and_stop() {
        let (addr, _) = server(usize::MAX);
        match wait_ready(&addr, Duration::from_millis(300), &|| false) {
            Err(NotReady::Timeout { last, .. }) => assert!(last.contains("no complete HTTP answer"), "{last}"),
            other => panic!("{other:?}"),
        }
        let t = Instant::now();
        let calls = AtomicUsize::new(0);
        let stop = || calls.fetch_add(1, Ordering::SeqCst) > 2;
        assert_eq!(wait_ready(&addr, Duration::from_secs(30), &stop), Err(NotReady::Stopped));
        assert!(t.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn wrong_answers_are_not_ready() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for (i, conn) in l.incoming().enumerate() {
                let mut conn = conn.unwrap();
                let _ = conn.read(&mut [0u8; 512]);
                let answer: &[u8] = if i == 0 { b"HTTP/1.0 500 Internal Server Error\r\n\r\nOK" } else { b"HTTP/1.0 200 OK\r\n\r\nNO" };
                conn.write_all(answer).unwrap();
            }
        });
        assert!(ping(&addr, Duration::from_secs(1)).unwrap_err().contains("500"));
        assert!(ping(&addr, Duration::from_secs(1)).unwrap_err().contains("\"NO\""));
    }
}
