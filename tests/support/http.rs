//! A static file server on 127.0.0.1 for mirror tests: GET only, one
//! request per connection, `ETag` and `Last-Modified` on every file with
//! `304 Not Modified` for a matching `If-None-Match` or `If-Modified-Since`
//! (as nginx and the Alpine and Debian CDNs answer), a log of what it
//! answered, and faults a test can arm: server errors, connections closed
//! mid-body, bodies cut short, and stalls.

use std::collections::VecDeque;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

/// One answered request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub path: String,
    pub status: u16,
    /// Body bytes sent.
    pub sent: u64,
}

/// A misbehaviour for the next request whose path ends with a suffix.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer `500 Internal Server Error`.
    ServerError,
    /// Send the headers (with the full Content-Length) and this many body
    /// bytes, then close the connection.
    CloseAfter(u64),
    /// Send headers claiming `len` and a body of `len` bytes of which only
    /// the first `good` are the file's (the rest zeros): a corrupted copy.
    Corrupt { good: u64 },
    /// Send the headers and this many body bytes, then send nothing for
    /// the duration before closing.
    StallAfter(u64, Duration),
    /// Answer with a chunked body: this many bytes in one chunk, then close
    /// without the final empty chunk.
    ChunkedCut(u64),
    /// Answer without a Content-Length (the body ends when the connection
    /// closes) and close after this many bytes: a short body that looks
    /// complete to HTTP, as a broken proxy serves it.
    ShortClose(u64),
}

#[derive(Default)]
struct State {
    log: Vec<Hit>,
    faults: VecDeque<(String, Fault)>,
}

/// A running server (it stops with the test process).
#[derive(Clone)]
pub struct Server {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl Server {
    /// Serves `root`.
    pub fn start(root: PathBuf) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state: Arc<Mutex<State>> = Arc::default();
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (root, st) = (root.clone(), st.clone());
                std::thread::spawn(move || {
                    let _ = answer(conn, &root, &st);
                });
            }
        });
        Server { port, state }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Arms `fault` for the next request whose path ends with `suffix`
    /// (faults fire once each, in the order armed).
    pub fn arm(&self, suffix: &str, fault: Fault) {
        self.state.lock().unwrap().faults.push_back((suffix.to_string(), fault));
    }

    /// Every request answered so far.
    pub fn log(&self) -> Vec<Hit> {
        self.state.lock().unwrap().log.clone()
    }

    /// The statuses answered for paths ending with `suffix`, in order.
    pub fn statuses(&self, suffix: &str) -> Vec<u16> {
        self.log().into_iter().filter(|h| h.path.ends_with(suffix)).map(|h| h.status).collect()
    }

    /// Forgets the log.
    pub fn clear_log(&self) {
        self.state.lock().unwrap().log.clear();
    }
}

/// Serves `root` over HTTP and returns the port (no log, no faults).
pub fn serve(root: PathBuf) -> u16 {
    Server::start(root).port
}

/// `"<size>-<mtime ns>"`, like nginx's size and time tag.
fn etag(meta: &fs::Metadata) -> String {
    let ns = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_nanos()).unwrap_or(0);
    format!("\"{:x}-{:x}\"", meta.len(), ns)
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) for a Unix time.
pub fn http_date(secs: u64) -> String {
    // From the image crate's RFC 3339 form, YYYY-MM-DDTHH:MM:SSZ.
    let t = dinv_image::rfc3339(secs as i64);
    let month: usize = t[5..7].parse().unwrap();
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][((secs / 86_400) % 7) as usize];
    let name = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][month - 1];
    format!("{weekday}, {} {name} {} {} GMT", &t[8..10], &t[0..4], &t[11..19])
}

fn answer(conn: TcpStream, root: &Path, st: &Mutex<State>) -> std::io::Result<()> {
    let mut r = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let (mut if_none_match, mut if_modified_since) = (None, None);
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "if-none-match" => if_none_match = Some(v.trim().to_string()),
                "if-modified-since" => if_modified_since = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    let mut w = conn;
    let mut parts = line.split_whitespace();
    let (method, raw) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = percent_decode(raw);
    let file = root.join(path.trim_start_matches('/'));
    let log = |status: u16, sent: u64| st.lock().unwrap().log.push(Hit { path: path.clone(), status, sent });
    if method != "GET" {
        log(405, 0);
        return w.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
    if path.contains("..") || !file.is_file() {
        log(404, 0);
        return w.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
    let fault = {
        let mut s = st.lock().unwrap();
        let i = s.faults.iter().position(|(suffix, _)| path.ends_with(suffix.as_str()));
        i.and_then(|i| s.faults.remove(i)).map(|(_, f)| f)
    };
    let bytes = fs::read(&file)?;
    let meta = fs::metadata(&file)?;
    let tag = etag(&meta);
    let modified = http_date(meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs()).unwrap_or(0));
    if matches!(fault, Some(Fault::ServerError)) {
        log(500, 0);
        return w.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
    let fresh = match (&if_none_match, &if_modified_since) {
        (Some(inm), _) => inm == &tag,
        (None, Some(ims)) => ims == &modified,
        _ => false,
    };
    if fresh {
        log(304, 0);
        return write!(w, "HTTP/1.1 304 Not Modified\r\nETag: {tag}\r\nLast-Modified: {modified}\r\nConnection: close\r\n\r\n");
    }
    let len = bytes.len() as u64;
    match fault {
        Some(Fault::ChunkedCut(n)) => {
            let n = n.min(len) as usize;
            log(200, n as u64);
            write!(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{n:x}\r\n")?;
            w.write_all(&bytes[..n])?;
            w.write_all(b"\r\n")?;
            return w.flush();
        }
        Some(Fault::ShortClose(n)) => {
            let n = n.min(len) as usize;
            log(200, n as u64);
            write!(w, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?;
            w.write_all(&bytes[..n])?;
            return w.flush();
        }
        _ => {}
    }
    // Every answer is logged before its bytes go out: the client may read
    // the whole body and exit before this thread runs again, and a test
    // that then reads the log must already see the answer.
    let sent = match fault {
        Some(Fault::CloseAfter(n) | Fault::StallAfter(n, _)) => n.min(len),
        _ => len,
    };
    log(200, sent);
    write!(w, "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nETag: {tag}\r\nLast-Modified: {modified}\r\nConnection: close\r\n\r\n")?;
    match fault {
        Some(Fault::CloseAfter(_)) => w.write_all(&bytes[..sent as usize])?,
        Some(Fault::Corrupt { good }) => {
            let good = good.min(len) as usize;
            w.write_all(&bytes[..good])?;
            w.write_all(&vec![0u8; bytes.len() - good])?;
        }
        Some(Fault::StallAfter(_, pause)) => {
            w.write_all(&bytes[..sent as usize])?;
            w.flush()?;
            std::thread::sleep(pause);
            return Ok(());
        }
        _ => w.write_all(&bytes)?,
    }
    w.flush()
}

/// Decodes `%XX` escapes (apt asks for `+` as `%2b`).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::http_date;

    #[test]
    fn dates() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_709_251_200), "Fri, 01 Mar 2024 00:00:00 GMT");
    }
}
