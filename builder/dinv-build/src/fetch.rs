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
            .timeout(Duration::from_secs(600))
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
                if self.offline {
                    return Err(FetchError::Offline { url: u });
                }
                let mut last = None;
                for attempt in 0..3u32 {
                    if attempt > 0 {
                        std::thread::sleep(Duration::from_millis(300 * 2u64.pow(attempt)));
                        tracing::debug!(%url, attempt, "retrying");
                    }
                    match self.client.get(&u).send() {
                        Ok(resp) => {
                            let status = resp.status();
                            if status.is_server_error() {
                                last = Some(FetchError::Status { url: u.clone(), status: status.as_u16() });
                                continue;
                            }
                            if !status.is_success() {
                                return Err(FetchError::Status { url: u, status: status.as_u16() });
                            }
                            let bar = self.progress.bytes(label, resp.content_length());
                            let mut resp = resp;
                            let mut buf = vec![0u8; 256 * 1024];
                            let mut total = 0u64;
                            loop {
                                let n = resp.read(&mut buf).map_err(|e| FetchError::Http { url: u.clone(), message: e.to_string() })?;
                                if n == 0 {
                                    break;
                                }
                                out.write_all(&buf[..n]).map_err(io_err)?;
                                total += n as u64;
                                bar.inc(n as u64);
                            }
                            bar.finish_and_clear();
                            return Ok(total);
                        }
                        Err(e) if e.is_connect() || e.is_timeout() => {
                            last = Some(FetchError::Http { url: u.clone(), message: e.to_string() });
                        }
                        Err(e) => return Err(FetchError::Http { url: u, message: e.to_string() }),
                    }
                }
                Err(last.expect("at least one attempt"))
            }
        }
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
