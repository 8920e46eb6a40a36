//! Readiness: dockerd answers `GET /_ping` with `OK`. Polled from 50 ms,
//! doubling to 1 s, until a total timeout or until told to stop (QEMU
//! exited). SLIRP accepts connections even before the guest listens, so only
//! a full `OK` answer counts. With `DOCKER_TLS_CERTDIR` the probe speaks
//! TLS and shows the client certificate, as any docker client must.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::certs::{CertDir, Role};
use super::settings::Settings;
use super::LauncherError;

/// How /_ping is reached.
#[derive(Clone)]
pub enum Probe {
    /// Plain HTTP (port 2375).
    Plain,
    /// HTTPS with the client certificate (port 2376, `--tlsverify`).
    Tls(Arc<rustls::ClientConfig>),
}

impl Probe {
    /// TLS with `$DOCKER_TLS_CERTDIR/client/{ca,cert,key}.pem` when set, else plain.
    pub fn for_settings(s: &Settings) -> Result<Probe, LauncherError> {
        match &s.tls_certdir {
            None => Ok(Probe::Plain),
            Some(dir) => tls_client(&CertDir(dir.clone())).map(Probe::Tls),
        }
    }
}

/// A TLS client trusting `client/ca.pem` and showing `client/cert.pem`.
pub fn tls_client(dir: &CertDir) -> Result<Arc<rustls::ClientConfig>, LauncherError> {
    let (ca, cert, key) = (dir.file(Role::Client, "ca.pem"), dir.file(Role::Client, "cert.pem"), dir.file(Role::Client, "key.pem"));
    let bad = |path: &std::path::Path, why: String| LauncherError::Config { path: path.to_path_buf(), why };
    let certs = |path: &std::path::Path| -> Result<Vec<CertificateDer<'static>>, LauncherError> {
        let all = CertificateDer::pem_file_iter(path).and_then(|i| i.collect::<Result<Vec<_>, _>>()).map_err(|e| bad(path, e.to_string()))?;
        if all.is_empty() {
            return Err(bad(path, "no certificate in it".into()));
        }
        Ok(all)
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(&ca)? {
        roots.add(c).map_err(|e| bad(&ca, e.to_string()))?;
    }
    let chain = certs(&cert)?;
    let key_der = PrivateKeyDer::from_pem_file(&key).map_err(|e| bad(&key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LauncherError::Runtime(format!("TLS client: {e}")))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key_der)
        .map_err(|e| bad(&key, format!("does not go with {}: {e}", cert.display())))?;
    Ok(Arc::new(config))
}

const REQUEST: &[u8] = b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n";

/// Sends the request and reads the answer until the server closes (HTTP/1.0), at most 64 KiB.
fn exchange(s: &mut (impl Read + Write)) -> std::io::Result<Vec<u8>> {
    s.write_all(REQUEST)?;
    s.flush()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while buf.len() < 64 * 1024 {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            // A TLS peer that closes without close_notify, after answering.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    Ok(buf)
}

/// One /_ping over HTTP/1.0 (in TLS for [`Probe::Tls`], checking the
/// server certificate names `addr`'s IP); Ok when the status is 200 and
/// the body is `OK`.
pub fn ping(addr: &SocketAddr, timeout: Duration, probe: &Probe) -> Result<(), String> {
    let mut s = TcpStream::connect_timeout(addr, timeout).map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(timeout)).and_then(|()| s.set_write_timeout(Some(timeout))).map_err(|e| e.to_string())?;
    let buf = match probe {
        Probe::Plain => exchange(&mut s),
        Probe::Tls(config) => {
            let conn = rustls::ClientConnection::new(config.clone(), ServerName::from(addr.ip())).map_err(|e| format!("{addr}: {e}"))?;
            exchange(&mut rustls::StreamOwned::new(conn, s))
        }
    }
    .map_err(|e| format!("{addr}: {e}"))?;
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

/// The longest wait between two polls.
const MAX_POLL_GAP: Duration = Duration::from_millis(200);

/// Polls until /_ping says OK; returns how long it took.
pub fn wait_ready(addr: &SocketAddr, probe: &Probe, total: Duration, stop: &dyn Fn() -> bool) -> Result<Duration, NotReady> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(50);
    loop {
        if stop() {
            return Err(NotReady::Stopped);
        }
        let last = match ping(addr, Duration::from_secs(2), probe) {
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
        // At most 200 ms apart: a refused connect through SLIRP costs next
        // to nothing, and each step of a longer backoff is time the
        // container's command waits after dockerd is up (with a 1 s cap
        // the launcher saw readiness about 0.4 s after the client could).
        delay = (delay * 2).min(MAX_POLL_GAP);
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
        let took = wait_ready(&addr, &Probe::Plain, Duration::from_secs(10), &|| false).unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 4);
        // 50 + 100 + 200 ms of backoff before the 4th poll.
        assert!(took >= Duration::from_millis(350) && took < Duration::from_secs(3), "{took:?}");
        ping(&addr, Duration::from_secs(1), &Probe::Plain).unwrap();
    }

    #[test]
    fn polls_stay_at_most_200_ms_apart() {
        // 6 failures: 50 + 100 + 4 × 200 = 950 ms of waiting before the 7th
        // poll, where an uncapped doubling would wait at least 2.55 s.
        let (addr, count) = server(6);
        let took = wait_ready(&addr, &Probe::Plain, Duration::from_secs(10), &|| false).unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 7);
        assert!(took >= Duration::from_millis(950) && took < Duration::from_millis(2200), "{took:?}");
    }

    #[test]
    fn timeout_and_stop() {
        let (addr, _) = server(usize::MAX);
        match wait_ready(&addr, &Probe::Plain, Duration::from_millis(300), &|| false) {
            Err(NotReady::Timeout { last, .. }) => assert!(last.contains("no complete HTTP answer"), "{last}"),
            other => panic!("{other:?}"),
        }
        let t = Instant::now();
        let calls = AtomicUsize::new(0);
        let stop = || calls.fetch_add(1, Ordering::SeqCst) > 2;
        assert_eq!(wait_ready(&addr, &Probe::Plain, Duration::from_secs(30), &stop), Err(NotReady::Stopped));
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
        assert!(ping(&addr, Duration::from_secs(1), &Probe::Plain).unwrap_err().contains("500"));
        assert!(ping(&addr, Duration::from_secs(1), &Probe::Plain).unwrap_err().contains("\"NO\""));
    }

    /// A fake dockerd with `--tlsverify`: the server set of `dir`, client
    /// certificates checked against its CA; answers OK to each client that
    /// gets through the handshake.
    fn tls_server(dir: &CertDir) -> SocketAddr {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(dir.file(Role::Server, "ca.pem")).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().unwrap();
        let chain: Vec<_> = CertificateDer::pem_file_iter(dir.file(Role::Server, "cert.pem")).unwrap().map(Result::unwrap).collect();
        let key = PrivateKeyDer::from_pem_file(dir.file(Role::Server, "key.pem")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap();
        let config = Arc::new(config);
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let conn = conn.unwrap();
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut tls = rustls::StreamOwned::new(rustls::ServerConnection::new(config.clone()).unwrap(), conn);
                let mut req = [0u8; 512];
                if matches!(tls.read(&mut req), Ok(n) if req[..n].starts_with(b"GET /_ping HTTP/1.0\r\n")) {
                    let _ = tls.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nOK");
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
            }
        });
        addr
    }

    /// One handshake + /_ping presenting `name` as the server's name.
    fn ping_as(addr: &SocketAddr, config: Arc<rustls::ClientConfig>, name: &str) -> std::io::Result<Vec<u8>> {
        let conn = rustls::ClientConnection::new(config, ServerName::try_from(name.to_string()).unwrap()).unwrap();
        exchange(&mut rustls::StreamOwned::new(conn, TcpStream::connect(addr)?))
    }

    #[test]
    fn tls_probe_shows_the_client_certificate_and_checks_the_server() {
        use crate::certs::{self, tests::tempdir};
        let (a, b) = (tempdir("probe-a"), tempdir("probe-b"));
        let (dir, other) = (CertDir(a.clone()), CertDir(b.clone()));
        for d in [&dir, &other] {
            certs::ensure(d, &certs::tests::sans(), std::time::SystemTime::now()).unwrap();
        }
        let addr = tls_server(&dir);
        let client = tls_client(&dir).unwrap();
        ping(&addr, Duration::from_secs(5), &Probe::Tls(client.clone())).unwrap();
        assert_eq!(wait_ready(&addr, &Probe::Tls(client.clone()), Duration::from_secs(10), &|| false).map(|_| ()), Ok(()));
        // Every name the server certificate carries verifies; others do not.
        for name in ["localhost", "docker", "dinv-host", "172.17.0.5", "::1"] {
            let answer = ping_as(&addr, client.clone(), name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(String::from_utf8_lossy(&answer).ends_with("OK"), "{name}");
        }
        let e = ping_as(&addr, client.clone(), "elsewhere.example").unwrap_err().to_string();
        assert!(e.contains("NotValidForName") || e.contains("not valid for name"), "{e}");
        // Plain HTTP gets no answer from a TLS port.
        assert!(ping(&addr, Duration::from_secs(5), &Probe::Plain).is_err());
        // A client of another CA (same name, other key) does not trust this server.
        let stranger = tls_client(&other).unwrap();
        let e = ping(&addr, Duration::from_secs(5), &Probe::Tls(stranger)).unwrap_err();
        assert!(e.contains("invalid peer certificate: BadSignature"), "{e}");
        // Without a client certificate the server refuses the handshake.
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_file(dir.file(Role::Client, "ca.pem")).unwrap()).unwrap();
        let anonymous = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        assert!(ping(&addr, Duration::from_secs(5), &Probe::Tls(Arc::new(anonymous))).is_err());
        // Missing client files are reported with their path.
        std::fs::remove_file(dir.file(Role::Client, "key.pem")).unwrap();
        let e = tls_client(&dir).err().unwrap().to_string();
        assert!(e.contains("client/key.pem"), "{e}");
        for d in [a, b] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
}
