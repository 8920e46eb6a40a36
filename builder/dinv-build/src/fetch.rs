//! Downloads over http(s), `file://` URLs and plain paths, with retries
//! for transient failures and progress reporting.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::path::PathBuf;
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

/// Streams a response body into `out`, counting bytes on `bar`.
fn copy_body(mut resp: reqwest::blocking::Response, out: &mut dyn Write, u: &str, bar: &indicatif::ProgressBar) -> Result<u64, FetchError> {
    let expected = resp.content_length();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = resp.read(&mut buf).map_err(|e| FetchError::Http { url: u.to_string(), message: e.to_string() })?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(|source| FetchError::Io { url: u.to_string(), source })?;
        total += n as u64;
        bar.inc(n as u64);
    }
    if let Some(len) = expected.filter(|&l| l != total) {
        return Err(FetchError::Http { url: u.to_string(), message: format!("connection closed after {total} of {len} bytes") });
    }
    Ok(total)
}

/// Fetches URLs. Cheap to clone (the HTTP client is shared).
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::blocking::Client,
    offline: bool,
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
    pub fn new(offline: bool, progress: Progress) -> Self {
        let client = reqwest::blocking::Client::builder()
            .user_agent(concat!("dinv-build/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(20))
            // Per read: a mirror that sends nothing for this long has stalled.
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        Fetcher { client, offline, progress, vendor: Arc::default() }
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

    /// Streams `url` into `out`, returning the byte count. `label` names the
    /// download on the progress bar.
    pub fn fetch_into(&self, url: &str, out: &mut dyn Write, label: &str) -> Result<u64, FetchError> {
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
            Target::Http(u) => {
                let resp = self.respond(&u, None)?;
                let bar = self.progress.bytes(label, resp.content_length());
                let n = copy_body(resp, out, &u, &bar);
                bar.finish_and_clear();
                n
            }
        }
    }

    /// Sends a GET (with the validators of a cached copy, if any), retrying
    /// refused connections, timeouts and server errors with backoff.
    /// Returns a successful or `304 Not Modified` response.
    fn respond(&self, u: &str, known: Option<&Validators>) -> Result<reqwest::blocking::Response, FetchError> {
        if self.offline {
            return Err(FetchError::Offline { url: u.to_string() });
        }
        let mut last = None;
        for attempt in 0..3u32 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(300 * 2u64.pow(attempt)));
                tracing::debug!(url = %u, attempt, "retrying");
            }
            let mut req = self.client.get(u);
            if let Some(v) = known {
                if let Some(etag) = &v.etag {
                    req = req.header(reqwest::header::IF_NONE_MATCH, etag);
                }
                if let Some(lm) = &v.last_modified {
                    req = req.header(reqwest::header::IF_MODIFIED_SINCE, lm);
                }
            }
            match req.send() {
                Ok(resp) => {
                    let status = resp.status();
                    if status.is_server_error() {
                        last = Some(FetchError::Status { url: u.to_string(), status: status.as_u16() });
                        continue;
                    }
                    if status == reqwest::StatusCode::NOT_MODIFIED && known.is_some() {
                        return Ok(resp);
                    }
                    if !status.is_success() {
                        return Err(FetchError::Status { url: u.to_string(), status: status.as_u16() });
                    }
                    return Ok(resp);
                }
                Err(e) if e.is_connect() || e.is_timeout() => {
                    last = Some(FetchError::Http { url: u.to_string(), message: e.to_string() });
                }
                Err(e) => return Err(FetchError::Http { url: u.to_string(), message: e.to_string() }),
            }
        }
        Err(last.expect("at least one attempt"))
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
        let resp = self.respond(&u, known)?;
        if resp.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified);
        }
        let header = |h: reqwest::header::HeaderName| resp.headers().get(h).and_then(|v| v.to_str().ok()).map(str::to_string);
        let validators = Validators { etag: header(reqwest::header::ETAG), last_modified: header(reqwest::header::LAST_MODIFIED) };
        let mut body = Vec::new();
        let bar = self.progress.bytes(label, resp.content_length());
        let n = copy_body(resp, &mut body, &u, &bar);
        bar.finish_and_clear();
        n?;
        Ok(Fetched::Body(body, validators))
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
