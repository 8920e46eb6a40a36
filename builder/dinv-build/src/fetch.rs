//! Downloads over http(s), `file://` URLs and plain paths, with bounded
//! retries and exponential backoff for transient failures, and progress
//! reporting.
//!
//! Transient: a refused, reset or closed connection, a body cut short
//! (fewer bytes than its `Content-Length`, or a chunked body without its
//! end), a read that waited longer than the timeout, and `5xx`/`429`
//! answers. Each retry starts the download again from its first byte. A
//! complete download that then fails its checksum or signature is not
//! retried here: the caller decides (package files and indexes are fetched
//! once more, see `sources::common`).

use std::collections::HashMap;
use std::io::{self, Read, Seek, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::progress::Progress;

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("{url}: HTTP status {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: {source}")]
    Io { url: String, source: io::Error },
    #[error("{url}: offline build, and it is not in the cache or vendor directory")]
    Offline { url: String },
    /// Every attempt failed with a transient error; `last` is the last one.
    #[error("{url}: {} after {attempts} attempt{} ({last})", if *.timed_out { "timed out" } else { "failed" }, if *.attempts == 1 { "" } else { "s" })]
    Exhausted { url: String, attempts: u32, timed_out: bool, last: String },
}

/// How long a download may wait and how often it is tried
/// (`DINV_FETCH_TIMEOUT`, `DINV_FETCH_ATTEMPTS`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FetchSettings {
    /// Connecting, and each read: a mirror that sends nothing for this long has stalled.
    pub timeout: Duration,
    /// Tries per download, the first included (at least 1).
    pub attempts: u32,
    /// The pause before the first retry; it doubles before each next one.
    pub backoff: Duration,
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings { timeout: Duration::from_secs(30), attempts: 3, backoff: Duration::from_millis(500) }
    }
}

impl FetchSettings {
    /// The defaults, overridden by `DINV_FETCH_TIMEOUT` (seconds, decimals
    /// allowed) and `DINV_FETCH_ATTEMPTS`; a bad value is an error naming
    /// the variable.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<FetchSettings, String> {
        let mut s = FetchSettings::default();
        if let Some(v) = get("DINV_FETCH_TIMEOUT") {
            let secs: f64 = v.trim().parse().ok().filter(|s: &f64| s.is_finite() && *s > 0.0).ok_or_else(|| format!("DINV_FETCH_TIMEOUT={v:?}: expected a number of seconds above 0"))?;
            s.timeout = Duration::from_secs_f64(secs);
        }
        if let Some(v) = get("DINV_FETCH_ATTEMPTS") {
            s.attempts = v.trim().parse().ok().filter(|n| (1..=100).contains(n)).ok_or_else(|| format!("DINV_FETCH_ATTEMPTS={v:?}: expected a whole number from 1 to 100"))?;
        }
        Ok(s)
    }

    /// The pause before retry number `retry` (1-based): backoff, doubled each time.
    fn pause(&self, retry: u32) -> Duration {
        self.backoff.saturating_mul(1 << (retry - 1).min(10))
    }
}

/// What identifies a version of a file on a server: its ETag and
/// Last-Modified headers, sent back as If-None-Match / If-Modified-Since.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    /// True when the server gave something to ask with.
    pub fn any(&self) -> bool {
        self.etag.is_some() || self.last_modified.is_some()
    }
}

/// The answer to [`Fetcher::fetch_if_changed`].
pub enum Fetched {
    /// The cached copy is current.
    NotModified,
    /// A new body and its validators.
    Body(Vec<u8>, Validators),
}

/// Where a download is written; emptied before each retry.
pub trait Sink: Write {
    fn restart(&mut self) -> io::Result<()>;
}

impl Sink for Vec<u8> {
    fn restart(&mut self) -> io::Result<()> {
        self.clear();
        Ok(())
    }
}

impl Sink for std::fs::File {
    fn restart(&mut self) -> io::Result<()> {
        self.set_len(0)?;
        self.seek(io::SeekFrom::Start(0)).map(|_| ())
    }
}

/// How one attempt failed.
enum Failure {
    /// Worth another attempt; `timed_out` when the mirror stalled.
    Transient { message: String, timed_out: bool },
    Fatal(FetchError),
}

/// An I/O error from reading a response body after `got` of `expected`
/// bytes: a timeout, or a broken connection.
fn read_failure(e: io::Error, got: u64, expected: Option<u64>) -> Failure {
    let timed_out = e.kind() == io::ErrorKind::TimedOut
        || e.get_ref().and_then(|r| r.downcast_ref::<reqwest::Error>()).is_some_and(|r| r.is_timeout());
    let of = expected.map(|l| format!(" of {l}")).unwrap_or_default();
    let message = if timed_out {
        format!("no data for longer than the timeout after {got}{of} bytes")
    } else {
        format!("connection broken after {got}{of} bytes ({e})")
    };
    Failure::Transient { message, timed_out }
}

/// Streams a response body into `out` (in 1 MiB writes), counting bytes
/// on `bar`; a body shorter than its `Content-Length` is a transient failure.
fn copy_body(mut resp: reqwest::blocking::Response, out: &mut dyn Sink, u: &str, bar: &indicatif::ProgressBar) -> Result<u64, Failure> {
    let expected = resp.content_length();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            let n = resp.read(&mut buf[filled..]).map_err(|e| read_failure(e, total + filled as u64, expected))?;
            if n == 0 {
                break;
            }
            filled += n;
            bar.inc(n as u64);
        }
        if filled == 0 {
            break;
        }
        out.write_all(&buf[..filled]).map_err(|source| Failure::Fatal(FetchError::Io { url: u.to_string(), source }))?;
        total += filled as u64;
    }
    if let Some(len) = expected.filter(|&l| l != total) {
        return Err(Failure::Transient { message: format!("connection closed after {total} of {len} bytes"), timed_out: false });
    }
    Ok(total)
}

/// Fetches URLs. Cheap to clone (the HTTP client is shared).
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::blocking::Client,
    offline: bool,
    settings: FetchSettings,
    progress: Progress,
    /// URL → local file that stands in for it (a vendor directory).
    vendor: Arc<HashMap<String, PathBuf>>,
}

/// Where a URL points.
enum Target {
    Http(String),
    File(PathBuf),
}

fn classify(url: &str) -> Target {
    if let Some(p) = url.strip_prefix("file://") {
        Target::File(PathBuf::from(p))
    } else if url.starts_with("http://") || url.starts_with("https://") {
        Target::Http(url.to_string())
    } else {
        Target::File(PathBuf::from(url))
    }
}

/// Joins a base URL (or path) and a relative part with one `/`.
pub fn join_url(base: &str, rel: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), rel.trim_start_matches('/'))
}

impl Fetcher {
    pub fn new(offline: bool, settings: FetchSettings, progress: Progress) -> Self {
        let client = reqwest::blocking::Client::builder()
            .user_agent(concat!("dinv-build/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(settings.timeout)
            // Per read, in the blocking client: a stall, not a slow download.
            .timeout(settings.timeout)
            .build()
            .expect("HTTP client");
        Fetcher { client, offline, settings, progress, vendor: Arc::default() }
    }

    /// This fetcher, reading the given URLs from local files instead
    /// (blobs of a vendor directory, already named by their checksums).
    pub fn with_vendor(mut self, files: HashMap<String, PathBuf>) -> Self {
        self.vendor = Arc::new(files);
        self
    }

    pub fn is_offline(&self) -> bool {
        self.offline
    }

    /// Streams `url` into `out` (emptied first on a retry), returning the
    /// byte count. `label` names the download on the progress bar.
    pub fn fetch_into(&self, url: &str, out: &mut dyn Sink, label: &str) -> Result<u64, FetchError> {
        let io_err = |source| FetchError::Io { url: url.to_string(), source };
        if let Some(p) = self.vendor.get(url) {
            let mut f = std::fs::File::open(p).map_err(|source| FetchError::Io { url: format!("{url} (vendored as {})", p.display()), source })?;
            return io::copy(&mut f, out).map_err(io_err);
        }
        match classify(url) {
            Target::File(p) => {
                let mut f = std::fs::File::open(&p).map_err(io_err)?;
                io::copy(&mut f, out).map_err(io_err)
            }
            Target::Http(u) => match self.download(&u, None, out, label)? {
                Some((n, _)) => Ok(n),
                None => unreachable!("no validators were sent"),
            },
        }
    }

    /// Downloads `u` into `out`, retrying transient failures with
    /// backoff. `None` when the server answered `304 Not Modified` to the
    /// validators `known`; else the byte count and the new validators.
    fn download(&self, u: &str, known: Option<&Validators>, out: &mut dyn Sink, label: &str) -> Result<Option<(u64, Validators)>, FetchError> {
        if self.offline {
            return Err(FetchError::Offline { url: u.to_string() });
        }
        let attempts = self.settings.attempts.max(1);
        for attempt in 1.. {
            let (message, timed_out) = match self.attempt(u, known, out, label) {
                Ok(r) => return Ok(r),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient { message, timed_out }) => (message, timed_out),
            };
            if attempt >= attempts {
                return Err(FetchError::Exhausted { url: u.to_string(), attempts, timed_out, last: message });
            }
            let pause = self.settings.pause(attempt);
            tracing::warn!("{u}: {message}; retrying in {:.1} s (attempt {} of {attempts})", pause.as_secs_f64(), attempt + 1);
            std::thread::sleep(pause);
            out.restart().map_err(|source| FetchError::Io { url: u.to_string(), source })?;
        }
        unreachable!("the loop returns")
    }

    /// One GET of `u` (with the validators of a cached copy, if any),
    /// its body streamed into `out`.
    fn attempt(&self, u: &str, known: Option<&Validators>, out: &mut dyn Sink, label: &str) -> Result<Option<(u64, Validators)>, Failure> {
        let mut req = self.client.get(u);
        if let Some(v) = known {
            if let Some(etag) = &v.etag {
                req = req.header(reqwest::header::IF_NONE_MATCH, etag);
            }
            if let Some(lm) = &v.last_modified {
                req = req.header(reqwest::header::IF_MODIFIED_SINCE, lm);
            }
        }
        let resp = match req.send() {
            Ok(resp) => resp,
            Err(e) if e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() => {
                return Err(Failure::Transient { message: e.to_string(), timed_out: e.is_timeout() })
            }
            Err(e) => return Err(Failure::Fatal(FetchError::Http { url: u.to_string(), message: e.to_string() })),
        };
        let status = resp.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(Failure::Transient { message: format!("HTTP status {}", status.as_u16()), timed_out: false });
        }
        if status == reqwest::StatusCode::NOT_MODIFIED && known.is_some() {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(Failure::Fatal(FetchError::Status { url: u.to_string(), status: status.as_u16() }));
        }
        let header = |h: reqwest::header::HeaderName| resp.headers().get(h).and_then(|v| v.to_str().ok()).map(str::to_string);
        let validators = Validators { etag: header(reqwest::header::ETAG), last_modified: header(reqwest::header::LAST_MODIFIED) };
        let bar = self.progress.bytes(label, resp.content_length());
        let n = copy_body(resp, out, u, &bar);
        bar.finish_and_clear();
        Ok(Some((n?, validators)))
    }

    /// Fetches `url` unless the copy described by `known` is still current
    /// (the server answers `304 Not Modified` to If-None-Match /
    /// If-Modified-Since). Local files are always read.
    pub fn fetch_if_changed(&self, url: &str, known: Option<&Validators>, label: &str) -> Result<Fetched, FetchError> {
        let Target::Http(u) = classify(url) else {
            return self.fetch_bytes(url, label).map(|b| Fetched::Body(b, Validators::default()));
        };
        if self.vendor.contains_key(url) {
            return self.fetch_bytes(url, label).map(|b| Fetched::Body(b, Validators::default()));
        }
        let mut body = Vec::new();
        Ok(match self.download(&u, known, &mut body, label)? {
            None => Fetched::NotModified,
            Some((_, validators)) => Fetched::Body(body, validators),
        })
    }

    /// Fetches a small file into memory.
    pub fn fetch_bytes(&self, url: &str, label: &str) -> Result<Vec<u8>, FetchError> {
        let mut v = Vec::new();
        self.fetch_into(url, &mut v, label)?;
        Ok(v)
    }

    /// True when a local URL exists (http URLs are not probed).
    pub fn local_exists(url: &str) -> Option<bool> {
        match classify(url) {
            Target::File(p) => Some(p.exists()),
            Target::Http(_) => None,
        }
    }

    /// The local path of a `file://` URL or path.
    pub fn local_path(url: &str) -> Option<PathBuf> {
        match classify(url) {
            Target::File(p) => Some(p),
            Target::Http(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        assert_eq!(FetchSettings::from_env(env(&[])).unwrap(), FetchSettings::default());
        let s = FetchSettings::from_env(env(&[("DINV_FETCH_TIMEOUT", "1.5"), ("DINV_FETCH_ATTEMPTS", "5")])).unwrap();
        assert_eq!((s.timeout, s.attempts), (Duration::from_millis(1500), 5));
        let e = FetchSettings::from_env(env(&[("DINV_FETCH_TIMEOUT", "soon")])).unwrap_err();
        assert!(e.contains("DINV_FETCH_TIMEOUT"), "{e}");
        let e = FetchSettings::from_env(env(&[("DINV_FETCH_ATTEMPTS", "0")])).unwrap_err();
        assert!(e.contains("DINV_FETCH_ATTEMPTS"), "{e}");
        let d = FetchSettings::default();
        assert_eq!([d.pause(1), d.pause(2), d.pause(3)], [Duration::from_millis(500), Duration::from_secs(1), Duration::from_secs(2)]);
    }

    #[test]
    fn the_exhausted_message_says_timed_out_and_how_often() {
        let e = FetchError::Exhausted { url: "http://m/x.apk".into(), attempts: 3, timed_out: true, last: "no data".into() };
        assert_eq!(e.to_string(), "http://m/x.apk: timed out after 3 attempts (no data)");
    }
}
