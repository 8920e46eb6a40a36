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
    /// Debian security archive override (`--debian-security-mirror` or
    /// `DINV_DEBIAN_SECURITY_MIRROR`).
    pub debian_security_mirror: Option<String>,
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
    /// Test hook `DINV_TEST_NOW=<unix seconds>`: the time Valid-Until is
    /// checked against, so a test can see a suite expire.
    pub test_now: Option<i64>,
}

impl HostInputs {
    /// Now, in Unix seconds (or the test hook's time).
    pub fn now(&self) -> i64 {
        self.test_now.unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0))
    }
}

impl HostInputs {
    /// Reads them from this process's environment and `/etc/apt`.
    pub fn read() -> HostInputs {
        HostInputs {
            source_date_epoch: std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.trim().parse().ok()),
            revision: std::env::var("DINV_REVISION").ok().filter(|v| !v.is_empty()),
            apt_sources: AptSources::read(Path::new("/etc/apt")),
            test_pause_at: std::env::var("DINV_TEST_PAUSE_AT").ok().and_then(|v| crate::error::Stage::from_name(&v)),
            test_now: std::env::var("DINV_TEST_NOW").ok().and_then(|v| v.trim().parse().ok()),
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

    /// The first archive whose URL's last path segment is `name` (`debian`,
    /// `debian-security`): Debian's own layout, which most mirrors keep,
    /// for a suite the host does not list (a trixie guest on a bookworm
    /// host). A wrong guess fails the InRelease signature or is a 404.
    pub fn archive_named(&self, name: &str) -> Option<String> {
        self.entries.iter().map(|(url, _)| url).find(|url| url.trim_end_matches('/').rsplit('/').next() == Some(name)).cloned()
    }
}

/// Where a Debian source's suites come from: each suite with its archive
/// and base URL, in the recipe's order. Pure: the settings in, the URLs out.
///
/// The main archive: the recipe's `mirror`, else `--debian-mirror` /
/// `DINV_DEBIAN_MIRROR`, else the host's apt entry listing the suite, else
/// the host's entry for an archive named `debian`. The security archive:
/// the recipe's `security_mirror`, else `--debian-security-mirror` /
/// `DINV_DEBIAN_SECURITY_MIRROR`, else (when the main archive was given
/// explicitly) `debian-security` next to it, else the host's entry listing
/// the suite, else the host's `debian-security` archive, else
/// `debian-security` next to the main archive.
pub fn suite_sites(
    suites: &[(String, crate::recipe::DebArchive)],
    mirror: (Option<&str>, Option<&str>),
    security: (Option<&str>, Option<&str>),
    apt: &AptSources,
) -> std::result::Result<Vec<SuiteSite>, String> {
    use crate::recipe::DebArchive;
    let explicit_main = mirror.0.or(mirror.1).map(str::to_string);
    let first_main = suites.iter().find(|(_, a)| *a == DebArchive::Main).map(|(s, _)| s.as_str());
    let host_main = |suite: Option<&str>| suite.and_then(|s| apt.mirror_for(s)).or_else(|| apt.archive_named("debian"));
    let mut out = Vec::new();
    for (suite, archive) in suites {
        let base = match archive {
            DebArchive::Main => explicit_main.clone().or_else(|| host_main(Some(suite))).ok_or_else(|| {
                format!("no mirror for suite {suite}: set `mirror`, pass --debian-mirror or DINV_DEBIAN_MIRROR, or add suite {suite} to the host's apt sources")
            })?,
            DebArchive::Security => match security.0.or(security.1) {
                Some(m) => m.to_string(),
                None => {
                    let derived = |main: &str| {
                        sibling(main, "debian-security").ok_or_else(|| {
                            format!("no security archive for suite {suite}: {main} has no path to put debian-security next to; set `security_mirror`, pass --debian-security-mirror or DINV_DEBIAN_SECURITY_MIRROR")
                        })
                    };
                    match &explicit_main {
                        Some(m) => derived(m)?,
                        None => match apt.mirror_for(suite).or_else(|| apt.archive_named("debian-security")) {
                            Some(m) => m,
                            None => derived(&host_main(first_main).ok_or_else(|| {
                                format!("no security archive for suite {suite}: set `security_mirror` or `mirror`, pass --debian-security-mirror or --debian-mirror, or add suite {suite} to the host's apt sources")
                            })?)?,
                        },
                    }
                }
            },
        };
        out.push(SuiteSite { suite: suite.clone(), archive: *archive, base });
    }
    Ok(out)
}

/// One suite of a Debian source and the archive URL it is fetched from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuiteSite {
    pub suite: String,
    pub archive: crate::recipe::DebArchive,
    /// The archive's base URL: `dists/<suite>/` and the `Filename`s are below it.
    pub base: String,
}

/// `name` next to the last path segment of a URL or path
/// (`http://h/debian` → `http://h/debian-security`); None when there is
/// no path segment to replace.
pub fn sibling(url: &str, name: &str) -> Option<String> {
    let trimmed = url.trim_end_matches('/');
    let path_start = trimmed.find("://").map(|i| trimmed[i + 3..].find('/').map(|j| i + 3 + j)).unwrap_or(Some(0))?;
    let (head, last) = trimmed.rsplit_once('/')?;
    if head.len() < path_start || last.is_empty() {
        return None;
    }
    Some(format!("{head}/{name}"))
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
        // Every URI serves every suite of the paragraph.
        for url in words("uris") {
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
    /// `--debian-security-mirror` / `DINV_DEBIAN_SECURITY_MIRROR`, for suites
    /// of the security archive without `security_mirror`.
    pub debian_security_mirror: Option<String>,
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
        Ok(BuildEnv { cache, fetcher: Fetcher::new(offline, settings, progress.clone()), progress, debian_mirror: self.debian_mirror.clone(), debian_security_mirror: self.debian_security_mirror.clone(), host: HostInputs::read() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::DebArchive;

    #[test]
    fn siblings() {
        assert_eq!(sibling("http://h.invalid/debian", "debian-security").as_deref(), Some("http://h.invalid/debian-security"));
        assert_eq!(sibling("http://h.invalid/pub/debian/", "debian-security").as_deref(), Some("http://h.invalid/pub/debian-security"));
        assert_eq!(sibling("/srv/mirror/debian", "debian-security").as_deref(), Some("/srv/mirror/debian-security"));
        assert_eq!(sibling("file:///srv/debian", "debian-security").as_deref(), Some("file:///srv/debian-security"));
        assert_eq!(sibling("http://h.invalid/", "debian-security"), None);
        assert_eq!(sibling("http://h.invalid", "debian-security"), None);
    }

    #[test]
    fn where_each_suite_comes_from() {
        let trixie = [("trixie", DebArchive::Main), ("trixie-updates", DebArchive::Main), ("trixie-security", DebArchive::Security)]
            .map(|(s, a)| (s.to_string(), a));
        let bases = |v: Vec<SuiteSite>| v.into_iter().map(|s| s.base).collect::<Vec<_>>();
        // A bookworm host (this project's CI): trixie is not listed; the
        // archives are found by their names.
        let host = AptSources {
            entries: vec![
                ("http://a.invalid/debian".into(), vec!["bookworm".into(), "bookworm-updates".into()]),
                ("http://s.invalid/debian-security".into(), vec!["bookworm-security".into()]),
            ],
        };
        assert_eq!(
            bases(suite_sites(&trixie, (None, None), (None, None), &host).unwrap()),
            ["http://a.invalid/debian", "http://a.invalid/debian", "http://s.invalid/debian-security"]
        );
        // An explicit mirror: the security archive next to it, not the host's.
        assert_eq!(
            bases(suite_sites(&trixie, (None, Some("http://127.0.0.1:1/debian")), (None, None), &host).unwrap()),
            ["http://127.0.0.1:1/debian", "http://127.0.0.1:1/debian", "http://127.0.0.1:1/debian-security"]
        );
        // The recipe's keys win over the flags.
        assert_eq!(
            bases(suite_sites(&trixie, (Some("http://r.invalid/d"), Some("http://f.invalid/d")), (Some("http://rs.invalid/"), Some("http://fs.invalid/")), &host).unwrap()),
            ["http://r.invalid/d", "http://r.invalid/d", "http://rs.invalid/"]
        );
        // A host that lists the suites serves them from its entries.
        let host2 = AptSources {
            entries: vec![
                ("http://m.invalid/mirror".into(), vec!["trixie".into()]),
                ("http://u.invalid/mirror".into(), vec!["trixie-updates".into()]),
            ],
        };
        assert_eq!(
            bases(suite_sites(&trixie, (None, None), (None, None), &host2).unwrap()),
            ["http://m.invalid/mirror", "http://u.invalid/mirror", "http://m.invalid/debian-security"]
        );
        let e = suite_sites(&trixie, (None, None), (None, None), &AptSources::default()).unwrap_err();
        assert!(e.contains("no mirror for suite trixie") && e.contains("--debian-mirror"), "{e}");
        let e = suite_sites(&trixie, (None, Some("http://h.invalid/")), (None, None), &host).unwrap_err();
        assert!(e.contains("trixie-security") && e.contains("security_mirror"), "{e}");
    }

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
