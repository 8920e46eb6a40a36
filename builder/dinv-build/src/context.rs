//! What a command starts from: the command line's settings, and every input
//! that comes from the host rather than the recipe, read once at the start.
//! No stage reads the environment or the host's files on its own.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::cache::Cache;
use crate::fetch::{FetchSettings, Fetcher};
use crate::progress::Progress;
use crate::{Error, Result};

/// Settings from the command line that every command needs.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Print JSON on stdout instead of text.
    pub json: bool,
    /// No progress bars, no summary.
    pub quiet: bool,
    /// Cache root override (`--cache-dir`).
    pub cache_dir: Option<PathBuf>,
    /// Debian mirror override (`--debian-mirror` or `DINV_DEBIAN_MIRROR`).
    pub debian_mirror: Option<String>,
}

/// Inputs from the host: the environment and the apt configuration.
#[derive(Clone, Debug, Default)]
pub struct HostInputs {
    /// `SOURCE_DATE_EPOCH`, when set to a number.
    pub source_date_epoch: Option<i64>,
    /// `DINV_REVISION` (the image's `org.opencontainers.image.revision`).
    pub revision: Option<String>,
    /// The archives of the host's apt sources, in file order.
    pub apt_sources: AptSources,
    /// Test hook `DINV_TEST_PAUSE_AT=<stage>`: the build stops at the start
    /// of that stage (see `pipeline`), for fault tests that kill it there.
    pub test_pause_at: Option<crate::error::Stage>,
}

impl HostInputs {
    /// Reads them from this process's environment and `/etc/apt`.
    pub fn read() -> HostInputs {
        HostInputs {
            source_date_epoch: std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.trim().parse().ok()),
            revision: std::env::var("DINV_REVISION").ok().filter(|v| !v.is_empty()),
            apt_sources: AptSources::read(Path::new("/etc/apt")),
            test_pause_at: std::env::var("DINV_TEST_PAUSE_AT").ok().and_then(|v| crate::error::Stage::from_name(&v)),
        }
    }
}

/// `deb` entries of an apt configuration: (archive URL, suites).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AptSources {
    entries: Vec<(String, Vec<String>)>,
}

impl AptSources {
    /// Reads `sources.list`, then `sources.list.d/*.list` and `*.sources` in name order.
    pub fn read(etc: &Path) -> AptSources {
        let mut files = vec![etc.join("sources.list")];
        if let Ok(rd) = fs::read_dir(etc.join("sources.list.d")) {
            let mut more: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
            more.sort();
            files.extend(more);
        }
        let mut entries = Vec::new();
        for f in files {
            let Ok(text) = fs::read_to_string(&f) else { continue };
            match f.extension().and_then(|e| e.to_str()) {
                Some("list") => entries.extend(one_line_entries(&text)),
                Some("sources") => entries.extend(deb822_entries(&text)),
                _ => {}
            }
        }
        AptSources { entries }
    }

    /// The first archive that serves `suite`.
    pub fn mirror_for(&self, suite: &str) -> Option<String> {
        self.entries.iter().find(|(_, suites)| suites.iter().any(|s| s == suite)).map(|(url, _)| url.clone())
    }
}

/// One-line style: `deb [opts] URL SUITE COMPONENTS...`.
fn one_line_entries(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(rest) = line.strip_prefix("deb ").or_else(|| line.strip_prefix("deb\t")) else { continue };
        let mut rest = rest.trim_start();
        if rest.starts_with('[') {
            rest = rest.split_once(']').map(|(_, r)| r.trim_start()).unwrap_or("");
        }
        let mut words = rest.split_whitespace();
        if let (Some(url), Some(suite)) = (words.next(), words.next()) {
            out.push((url.to_string(), vec![suite.to_string()]));
        }
    }
    out
}

/// deb822 style: paragraphs with `Types`, `URIs`, `Suites`.
fn deb822_entries(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for para in text.split("\n\n") {
        let mut fields: BTreeMap<String, String> = BTreeMap::new();
        for line in para.lines().filter(|l| !l.trim_start().starts_with('#')) {
            if let Some((k, v)) = line.split_once(':').filter(|_| !line.starts_with(' ')) {
                fields.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let words = |k: &str| fields.get(k).map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>()).unwrap_or_default();
        if fields.get("enabled").is_some_and(|v| v == "no") || !words("types").iter().any(|t| t == "deb") {
            continue;
        }
        if let Some(url) = words("uris").into_iter().next() {
            out.push((url, words("suites")));
        }
    }
    out
}

/// What the stages of a command share: the cache, the fetcher, the
/// progress display and the host's inputs.
pub struct BuildEnv {
    pub cache: Cache,
    pub fetcher: Fetcher,
    pub progress: Progress,
    /// `--debian-mirror` / `DINV_DEBIAN_MIRROR`, for Debian sources without `mirror`.
    pub debian_mirror: Option<String>,
    pub host: HostInputs,
}

impl Context {
    /// The progress display for this invocation.
    pub fn progress(&self) -> Progress {
        Progress::new(!self.quiet && !self.json)
    }

    /// The cache directory: `--cache-dir`, else [`Cache::default_root`].
    pub fn cache_root(&self) -> std::path::PathBuf {
        self.cache_dir.clone().unwrap_or_else(Cache::default_root)
    }

    /// Opens the cache and reads the host's inputs.
    pub fn env(&self, offline: bool) -> Result<BuildEnv> {
        let root = self.cache_root();
        let cache = Cache::open(&root).map_err(Error::io(root))?;
        let progress = self.progress();
        let settings = FetchSettings::from_env(|k| std::env::var(k).ok()).map_err(Error::Usage)?;
        Ok(BuildEnv { cache, fetcher: Fetcher::new(offline, settings, progress.clone()), progress, debian_mirror: self.debian_mirror.clone(), host: HostInputs::read() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_sources_in_both_formats() {
        let one = "# c\ndeb [signed-by=/k.gpg arch=amd64] http://a.invalid/debian bookworm main\ndeb http://b.invalid/debian trixie main\n";
        let mirror_in = |entries: Vec<(String, Vec<String>)>, suite: &str| AptSources { entries }.mirror_for(suite);
        assert_eq!(mirror_in(one_line_entries(one), "trixie").as_deref(), Some("http://b.invalid/debian"));
        assert_eq!(mirror_in(one_line_entries(one), "bookworm").as_deref(), Some("http://a.invalid/debian"));
        assert_eq!(mirror_in(one_line_entries(one), "sid"), None);
        let d = "Types: deb\nURIs: http://c.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb deb-src\nURIs: http://d.invalid/sec\nSuites: bookworm-security\n";
        assert_eq!(mirror_in(deb822_entries(d), "bookworm-updates").as_deref(), Some("http://c.invalid/debian"));
        assert_eq!(mirror_in(deb822_entries(d), "bookworm-security").as_deref(), Some("http://d.invalid/sec"));
        assert_eq!(mirror_in(deb822_entries(d), "sid"), None);

        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("sources.list.d")).unwrap();
        fs::write(dir.path().join("sources.list.d/x.sources"), d).unwrap();
        fs::write(dir.path().join("sources.list.d/y.list.disabled"), one).unwrap();
        assert_eq!(AptSources::read(dir.path()).mirror_for("bookworm").as_deref(), Some("http://c.invalid/debian"));
        assert_eq!(AptSources::read(dir.path()).mirror_for("trixie"), None);
        // Disabled paragraphs and options in brackets.
        fs::write(dir.path().join("sources.list"), "deb [arch=amd64 signed-by=/x] http://e.invalid/debian trixie main\n").unwrap();
        fs::write(dir.path().join("sources.list.d/z.sources"), "Enabled: no\nTypes: deb\nURIs: http://off.invalid/\nSuites: sid\n").unwrap();
        assert_eq!(AptSources::read(dir.path()).mirror_for("trixie").as_deref(), Some("http://e.invalid/debian"));
        assert_eq!(AptSources::read(dir.path()).mirror_for("sid"), None);
    }
}
