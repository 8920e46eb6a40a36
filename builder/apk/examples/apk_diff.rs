//! Differential check of our apk resolution against apk-tools itself.
//!
//! Not part of CI: apk-tools is no Debian package, so the caller brings the
//! binary (`--apk`, or `$APK`). For each of `--count` random worlds (1–3
//! package names drawn from the indexes with `--seed`) it runs
//! `apk add --simulate` on an empty root and [`dinv_apk::ApkUniverse`] on the
//! same indexes (`--max-names` raises the 3), and prints every world where
//! the two disagree: the packages only one side installs, or one side's
//! error.
//!
//! ```text
//! cargo run -p dinv-apk --example apk_diff -- --apk /path/to/apk \
//!     --keys keys/alpine --count 500 --seed 24 \
//!     /path/to/mirror/v3.19/main /path/to/mirror/v3.19/community
//! ```
//! Each repository argument is a directory holding `x86_64/APKINDEX.tar.gz`
//! (a `@tag=DIR` argument makes it a tagged repository). Exits 1 when any
//! world disagrees.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use dinv_apk::{ApkUniverse, IndexEntry, Keyring, Repository};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

struct Args {
    apk: PathBuf,
    keys: PathBuf,
    count: usize,
    seed: u64,
    /// Names per world: 1 to this.
    max_names: usize,
    arch: String,
    /// (directory, tag)
    repos: Vec<(PathBuf, Option<String>)>,
    /// Extra worlds to check first, one per `--world "a b c"`.
    worlds: Vec<Vec<String>>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        apk: std::env::var_os("APK").map(PathBuf::from).unwrap_or_default(),
        keys: PathBuf::from("keys/alpine"),
        count: 500,
        seed: 24,
        max_names: 3,
        arch: "x86_64".into(),
        repos: vec![],
        worlds: vec![],
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--apk" => a.apk = value()?.into(),
            "--keys" => a.keys = value()?.into(),
            "--count" => a.count = value()?.parse().map_err(|e| format!("--count: {e}"))?,
            "--seed" => a.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--max-names" => a.max_names = value()?.parse().map_err(|e| format!("--max-names: {e}"))?,
            "--arch" => a.arch = value()?,
            "--world" => a.worlds.push(value()?.split_whitespace().map(str::to_string).collect()),
            s if s.starts_with('@') => {
                let (tag, dir) = s[1..].split_once('=').ok_or("a tagged repository is @tag=DIR")?;
                a.repos.push((dir.into(), Some(tag.to_string())));
            }
            s => a.repos.push((s.into(), None)),
        }
    }
    if a.apk.as_os_str().is_empty() || a.repos.is_empty() {
        return Err("usage: apk_diff --apk APK [--keys DIR] [--count N] [--seed S] [--world \"a b\"] REPO_DIR [@tag=REPO_DIR]...".into());
    }
    Ok(a)
}

/// The result of one side: the installed `name-version` set, or an error.
type Outcome = Result<BTreeSet<String>, String>;

/// `apk add --simulate` on an empty root with only these repositories.
struct ApkTools {
    bin: PathBuf,
    root: tempfile::TempDir,
    repos_file: PathBuf,
    keys: PathBuf,
}

impl ApkTools {
    fn new(a: &Args) -> Result<ApkTools, String> {
        let root = tempfile::tempdir().map_err(|e| e.to_string())?;
        let repos_file = root.path().join("repositories");
        let lines: Vec<String> = a
            .repos
            .iter()
            .map(|(d, tag)| {
                let abs = std::fs::canonicalize(d).unwrap_or_else(|_| d.clone());
                match tag {
                    Some(t) => format!("@{t} {}", abs.display()),
                    None => abs.display().to_string(),
                }
            })
            .collect();
        std::fs::write(&repos_file, lines.join("\n") + "\n").map_err(|e| e.to_string())?;
        let tools = ApkTools { bin: a.apk.clone(), root, repos_file, keys: a.keys.clone() };
        let out = tools.command().args(["--initdb", "--arch", &a.arch, "add"]).output().map_err(|e| format!("{}: {e}", tools.bin.display()))?;
        if !out.status.success() {
            return Err(format!("apk --initdb failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(tools)
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(self.root.path());
        c.arg("--repositories-file").arg(&self.repos_file);
        c.arg("--keys-dir").arg(std::fs::canonicalize(&self.keys).unwrap_or_else(|_| self.keys.clone()));
        c.args(["--no-network", "--no-cache", "--no-progress"]);
        c
    }

    fn version(&self) -> String {
        let out = Command::new(&self.bin).arg("--version").output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
    }

    /// `(1/14) Installing isl26 (0.26-r1)` lines into `isl26-0.26-r1`.
    fn resolve(&self, world: &[String]) -> Outcome {
        let out = self.command().args(["--simulate", "add"]).args(world).output().map_err(|e| e.to_string())?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let text = if err.trim().is_empty() { stdout.to_string() } else { err.to_string() };
            return Err(text.lines().take(6).collect::<Vec<_>>().join(" | "));
        }
        Ok(stdout
            .lines()
            .filter_map(|l| {
                let rest = l.split_once(") Installing ")?.1;
                let (name, version) = rest.split_once(" (")?;
                // A package from a tagged repository prints as `name@tag`.
                let name = name.split('@').next()?;
                Some(format!("{name}-{}", version.trim_end_matches(')')))
            })
            .collect())
    }
}

fn read_repos(a: &Args) -> Result<Vec<Vec<IndexEntry>>, String> {
    let mut keys = Keyring::new();
    // Key files only: a key directory may hold a README.
    let files = std::fs::read_dir(&a.keys).map_err(|e| format!("{}: {e}", a.keys.display()))?;
    for f in files.filter_map(Result::ok).map(|f| f.path()) {
        if matches!(f.extension().and_then(|e| e.to_str()), Some("pub" | "pem")) {
            keys.load_file(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        }
    }
    a.repos
        .iter()
        .map(|(dir, _)| {
            let path = Path::new(dir).join(&a.arch).join("APKINDEX.tar.gz");
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let index = dinv_apk::index::read_index(&bytes, &keys).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(index.entries)
        })
        .collect()
}

fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let run = || -> Result<usize, String> {
        let entries = read_repos(&a)?;
        let repos: Vec<Repository> = entries.iter().zip(&a.repos).map(|(e, (_, tag))| Repository { entries: e, tag: tag.as_deref() }).collect();
        let ours = ApkUniverse::new(&repos);
        let apk = ApkTools::new(&a)?;
        // Draw from untagged repositories only: a tagged package needs `@tag`.
        let mut names: Vec<&str> = repos
            .iter()
            .filter(|r| r.tag.is_none())
            .flat_map(|r| r.entries.iter().filter(|e| e.is_installable()).map(|e| e.name.as_str()))
            .collect();
        names.sort_unstable();
        names.dedup();
        println!("apk-tools: {}", apk.version());
        println!("repositories: {}", a.repos.iter().map(|(d, _)| d.display().to_string()).collect::<Vec<_>>().join(" "));
        println!("seed {}, {} random worlds of 1-{} names from {} package names", a.seed, a.count, a.max_names, names.len());
        let mut rng = StdRng::seed_from_u64(a.seed);
        let mut worlds = a.worlds.clone();
        for _ in 0..a.count {
            let n = rng.gen_range(1..=a.max_names.max(1));
            worlds.push(names.choose_multiple(&mut rng, n).map(|s| s.to_string()).collect());
        }
        let (mut differ, mut both_fail) = (0, 0);
        for (i, world) in worlds.iter().enumerate() {
            let mine: Outcome = ours
                .resolve(world, "harness")
                .map(|sel| sel.iter().map(|c| repos[c.repo].entries[c.entry].label()).collect())
                .map_err(|e| e.to_string());
            let theirs = apk.resolve(world);
            match (&mine, &theirs) {
                (Ok(m), Ok(t)) if m == t => {}
                (Err(_), Err(_)) => both_fail += 1,
                _ => {
                    differ += 1;
                    println!("DIFFER #{i}: {}", world.join(" "));
                    match (&mine, &theirs) {
                        (Ok(m), Ok(t)) => {
                            println!("  only ours: {}", m.difference(t).cloned().collect::<Vec<_>>().join(" "));
                            println!("  only apk:  {}", t.difference(m).cloned().collect::<Vec<_>>().join(" "));
                        }
                        _ => {
                            println!("  ours: {}", mine.as_ref().map(|s| format!("{} packages", s.len())).unwrap_or_else(|e| e.clone()));
                            println!("  apk:  {}", theirs.as_ref().map(|s| format!("{} packages", s.len())).unwrap_or_else(|e| e.clone()));
                        }
                    }
                }
            }
        }
        println!("{} worlds: {} agree ({} fail on both sides), {} disagree", worlds.len(), worlds.len() - differ, both_fail, differ);
        Ok(differ)
    };
    match run() {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("apk_diff: {e}");
            ExitCode::from(2)
        }
    }
}
