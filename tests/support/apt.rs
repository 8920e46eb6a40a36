//! A private apt for tests: its own sources list, lists, caches and an
//! empty dpkg status under one directory, so tests can read any suite of
//! the real archive (trixie on a bookworm host), download exact package
//! versions, and ask apt what it would install. The host's apt state is
//! never touched.
//!
//! The archive URLs come from this host's apt sources (the entry whose
//! path ends in `/debian`, and `/debian-security` or the same host's
//! `debian-security` next to it), never from a name written here.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

/// The keyring the archive's InRelease files are signed with.
pub const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Which tree of the archive serves a suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Archive {
    Main,
    Security,
}

impl Archive {
    /// The directory name in Debian's layout (and in the local mirror).
    pub fn dir(self) -> &'static str {
        match self {
            Archive::Main => "debian",
            Archive::Security => "debian-security",
        }
    }
}

/// A release with its updates and security suites, as the recipes list them.
pub fn release_suites(codename: &str) -> Vec<(String, Archive)> {
    vec![
        (codename.to_string(), Archive::Main),
        (format!("{codename}-updates"), Archive::Main),
        (format!("{codename}-security"), Archive::Security),
    ]
}

/// The host's archive URLs: (main, security).
pub fn host_archives() -> (String, String) {
    let mut uris = Vec::new();
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(rd) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    for f in files {
        let Ok(text) = fs::read_to_string(&f) else { continue };
        match f.extension().and_then(|e| e.to_str()) {
            Some("list") => {
                for line in text.lines() {
                    let line = line.split('#').next().unwrap_or("").trim();
                    let Some(rest) = line.strip_prefix("deb ") else { continue };
                    let rest = if rest.trim_start().starts_with('[') { rest.split_once(']').map(|(_, r)| r).unwrap_or("") } else { rest };
                    if let Some(u) = rest.split_whitespace().next() {
                        uris.push(u.to_string());
                    }
                }
            }
            Some("sources") => {
                for line in text.lines() {
                    if let Some(v) = line.strip_prefix("URIs:") {
                        uris.extend(v.split_whitespace().map(str::to_string));
                    }
                }
            }
            _ => {}
        }
    }
    let last = |u: &String, name: &str| u.trim_end_matches('/').rsplit('/').next() == Some(name);
    let main = uris.iter().find(|u| last(u, "debian")).cloned().unwrap_or_else(|| {
        panic!("no Debian archive (a URI ending in /debian) in this host's apt sources: add one (tests read the archive through it)")
    });
    let security = uris.iter().find(|u| last(u, "debian-security")).cloned().unwrap_or_else(|| {
        let t = main.trim_end_matches('/');
        format!("{}/debian-security", &t[..t.rfind('/').unwrap()])
    });
    (main, security)
}

/// apt with a private state for some suites of the archive.
pub struct Apt {
    pub dir: PathBuf,
    pub suites: Vec<(String, Archive)>,
    /// Debian's name of the architecture (`amd64`, `arm64`).
    pub arch: String,
}

impl Apt {
    /// The state in `dir` (kept between runs), its lists fetched when
    /// missing or older than a day (apt asks with If-Modified-Since, so a
    /// refresh of unchanged lists costs little). Runs serialised by a lock
    /// file: test binaries may share the directory.
    pub fn at(dir: &Path, suites: &[(String, Archive)]) -> Apt {
        Apt::for_arch(dir, suites, "amd64")
    }

    /// [`Apt::at`] for another architecture's packages (`arm64`): a state
    /// of its own, since apt's lists are per architecture.
    pub fn for_arch(dir: &Path, suites: &[(String, Archive)], arch: &str) -> Apt {
        let apt = Apt { dir: dir.to_path_buf(), suites: suites.to_vec(), arch: arch.to_string() };
        for d in ["state/lists/partial", "cache/archives/partial", "etc/sources.list.d", "etc/preferences.d", "etc/apt.conf.d"] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        let _lock = FileLock::take(&dir.join("lock"));
        let (main, security) = host_archives();
        let mut list = String::new();
        for (suite, archive) in suites {
            let url = if *archive == Archive::Security { &security } else { &main };
            list.push_str(&format!("deb [signed-by={KEYRING}] {url} {suite} main\n"));
        }
        let list_path = dir.join("etc/sources.list");
        // Rewritten only when different, and by a rename: another test may
        // be running apt on this state right now.
        let changed = replace_if_changed(&list_path, &list);
        // Everything apt reads is ours: no host configuration (its
        // apt.conf.d may drop caches or add architectures), no preferences.
        replace_if_changed(&dir.join("apt.conf"), &format!("Dir::Etc::Parts \"{}\";\nDir::Etc::Main \"/dev/null\";\n", dir.join("etc/apt.conf.d").display()));
        if !dir.join("state/status").exists() {
            fs::write(dir.join("state/status"), "").unwrap();
        }
        let stamp = dir.join("updated");
        let fresh = fs::metadata(&stamp).and_then(|m| m.modified()).ok().and_then(|t| SystemTime::now().duration_since(t).ok()).is_some_and(|age| age < Duration::from_secs(86400));
        if changed || !fresh || !apt.all_lists_present() {
            let out = apt.run(&["update", "-q"]);
            assert!(out.status.success() && apt.all_lists_present(), "apt-get update (private state {}): {}", dir.display(), text(&out));
            fs::write(&stamp, "").unwrap();
        }
        apt
    }

    fn all_lists_present(&self) -> bool {
        self.suites.iter().all(|(s, _)| self.find_list(&format!("_dists_{s}_InRelease")).is_some())
    }

    /// A file of the private lists whose name ends with `suffix`.
    pub fn find_list(&self, suffix: &str) -> Option<PathBuf> {
        fs::read_dir(self.dir.join("state/lists")).ok()?.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| p.file_name().unwrap().to_string_lossy().ends_with(suffix))
    }

    /// A suite's verified InRelease, as apt fetched it.
    pub fn in_release(&self, suite: &str) -> Vec<u8> {
        fs::read(self.find_list(&format!("_dists_{suite}_InRelease")).unwrap()).unwrap()
    }

    /// A suite's `main/binary-<arch>/Packages`, decompressed (its SHA256 is
    /// the one the InRelease lists).
    pub fn packages(&self, suite: &str) -> Vec<u8> {
        let base = format!("_dists_{suite}_main_binary-{}_Packages", self.arch);
        if let Some(p) = self.find_list(&format!("{base}.lz4")) {
            return crate::debian_mirror::lz4_frames(&p);
        }
        fs::read(self.find_list(&base).unwrap_or_else(|| panic!("no {base} in {}", self.dir.display()))).unwrap()
    }

    /// The options that make apt use this state only.
    pub fn options(&self) -> Vec<String> {
        let d = self.dir.display();
        [
            format!("Dir::State={d}/state"),
            format!("Dir::State::status={d}/state/status"),
            format!("Dir::Cache={d}/cache"),
            format!("Dir::Cache::pkgcache={d}/cache/pkgcache.bin"),
            format!("Dir::Cache::srcpkgcache={d}/cache/srcpkgcache.bin"),
            format!("Dir::Etc::SourceList={d}/etc/sources.list"),
            format!("Dir::Etc::SourceParts={d}/etc/sources.list.d"),
            format!("Dir::Etc::Preferences={d}/etc/preferences"),
            format!("Dir::Etc::PreferencesParts={d}/etc/preferences.d"),
            format!("APT::Architecture={}", self.arch),
            format!("APT::Architectures={}", self.arch),
            "APT::Install-Recommends=false".into(),
            "APT::Install-Suggests=false".into(),
            "Acquire::Languages=none".into(),
            "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false".into(),
            "Debug::NoLocking=1".into(),
        ]
        .into_iter()
        .flat_map(|o| ["-o".to_string(), o])
        .collect()
    }

    /// `apt-get ARGS` with this state.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("apt-get")
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new("apt-get");
        c.env("APT_CONFIG", self.dir.join("apt.conf")).env("LC_ALL", "C").args(self.options());
        c
    }

    /// What `apt-get install --simulate` would install on an empty system:
    /// sorted `(name, version)`, or apt's message when it cannot.
    pub fn simulate(&self, packages: &[String]) -> Result<Vec<(String, String)>, String> {
        let mut c = self.command();
        c.args(["install", "--simulate", "-q", "--no-install-recommends"]).arg("--").args(packages);
        let out = c.output().expect("apt-get");
        if !out.status.success() {
            return Err(text(&out));
        }
        let mut v: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("Inst ")?;
                let (name, rest) = rest.split_once(" (")?;
                let version = rest.split_whitespace().next()?;
                Some((name.to_string(), version.to_string()))
            })
            .collect();
        v.sort();
        Ok(v)
    }

    /// Downloads exact versions (`name=version`) into `dir`; panics with
    /// apt's message when one fails.
    pub fn download(&self, pkgs: &[(String, String)], dir: &Path) {
        for chunk in pkgs.chunks(40) {
            let args: Vec<String> = chunk.iter().map(|(n, v)| format!("{n}={v}")).collect();
            let out = self.command().args(["download", "-q"]).args(&args).current_dir(dir).output().expect("apt-get");
            assert!(out.status.success(), "apt-get download failed: {}", text(&out));
        }
    }
}

/// Writes `text` to `path` by a rename unless it holds it already; true
/// when it changed.
fn replace_if_changed(path: &Path, text: &str) -> bool {
    if fs::read_to_string(path).is_ok_and(|t| t == text) {
        return false;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, path).unwrap();
    true
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// An exclusive `flock` held until dropped.
pub struct FileLock {
    _file: fs::File,
}

impl FileLock {
    pub fn take(path: &Path) -> FileLock {
        let f = fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).unwrap();
        extern "C" {
            fn flock(fd: i32, op: i32) -> i32;
        }
        use std::os::fd::AsRawFd;
        // LOCK_EX
        assert_eq!(unsafe { flock(f.as_raw_fd(), 2) }, 0, "flock {}", path.display());
        FileLock { _file: f }
    }
}
