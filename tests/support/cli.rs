//! Running `dinv-build` in tests, with one environment policy: the host's
//! hidden inputs (`SOURCE_DATE_EPOCH`, `DINV_REVISION`,
//! `DINV_DEBIAN_MIRROR`, `DINV_DEBIAN_SECURITY_MIRROR`, `RUST_LOG`, `DINV_CACHE_DIR`) never leak in from
//! the developer's shell; a test that wants one sets it with [`Cli::env`].

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The variables a test run never inherits.
pub const HIDDEN_INPUTS: &[&str] = &["SOURCE_DATE_EPOCH", "DINV_REVISION", "DINV_DEBIAN_MIRROR", "DINV_DEBIAN_SECURITY_MIRROR", "RUST_LOG", "DINV_CACHE_DIR", "DINV_TEST_NOW"];

/// A `dinv-build` invocation template: binary, working directory, cache,
/// extra environment and umask.
#[derive(Clone, Debug)]
pub struct Cli {
    bin: PathBuf,
    cwd: PathBuf,
    cache: PathBuf,
    env: Vec<(String, String)>,
    umask: Option<String>,
}

impl Cli {
    /// Runs `bin` (pass `env!("CARGO_BIN_EXE_dinv-build")`) in `dir`, with
    /// the cache in `dir/cache`.
    pub fn new(bin: &str, dir: &Path) -> Cli {
        Cli { bin: bin.into(), cwd: dir.to_path_buf(), cache: dir.join("cache"), env: Vec::new(), umask: None }
    }

    /// Another cache directory.
    pub fn cache(mut self, dir: impl Into<PathBuf>) -> Cli {
        self.cache = dir.into();
        self
    }

    /// Another working directory.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Cli {
        self.cwd = dir.into();
        self
    }

    /// An environment variable for the run.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Cli {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// Runs under this umask (through `sh -c`).
    pub fn umask(mut self, umask: &str) -> Cli {
        self.umask = Some(umask.to_string());
        self
    }

    /// The command for `args`, with the policy applied.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = match &self.umask {
            Some(u) => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(format!("umask {u}; exec \"$0\" \"$@\"")).arg(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        c.args(args).current_dir(&self.cwd);
        for k in HIDDEN_INPUTS {
            c.env_remove(k);
        }
        c.env("DINV_CACHE_DIR", &self.cache);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs `dinv-build ARGS` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        std::fs::create_dir_all(&self.cwd).unwrap();
        self.command(args).output().unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()))
    }

    /// Runs and asserts success; returns stdout and stderr.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "dinv-build {args:?}: {}", text(&o));
        text(&o)
    }
}

/// A command's stdout followed by its stderr, for assertions and messages.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}
