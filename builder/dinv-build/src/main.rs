//! `dinv-build`: the command line. It parses arguments, sets up logging and
//! prints; the library does the work.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use dinv_build::commands::{self, BuildOptions, Command as Cmd, Outcome, PushOptions};
use dinv_build::{Context, Error};

/// Build Docker-in-VM appliances from declarative recipes.
///
/// A recipe (TOML) names package sources, guest packages, kernel, docker and
/// VM settings. `dinv-build RECIPE` builds everything into out/<name>/:
/// vmlinuz, initramfs, rootfs.ext4, image.tar (docker load) and an OCI
/// layout. No Docker daemon, no root, no network beyond package mirrors.
#[derive(Parser, Debug)]
#[command(
    name = "dinv-build",
    version,
    arg_required_else_help = true,
    override_usage = "dinv-build [OPTIONS] RECIPE\n       dinv-build [OPTIONS] <COMMAND>"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Recipe to build (same as `dinv-build build RECIPE`).
    recipe: Option<PathBuf>,

    #[command(flatten)]
    build: BuildArgs,

    #[command(flatten)]
    global: GlobalArgs,
}

#[derive(Args, Debug, Clone)]
struct GlobalArgs {
    /// More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// No progress bars and no summary.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Machine-readable JSON on stdout (results and errors).
    #[arg(long, global = true)]
    json: bool,
}

/// Where packages are cached (commands that read or fill the cache).
#[derive(Args, Debug, Clone, Default)]
struct CacheArgs {
    /// Cache directory [default: $DINV_CACHE_DIR, $XDG_CACHE_HOME/dinv-build, ~/.cache/dinv-build].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

/// Where packages come from (commands that resolve or fetch).
#[derive(Args, Debug, Clone, Default)]
struct SourceArgs {
    #[command(flatten)]
    cache: CacheArgs,
    /// Debian mirror URL for deb sources without `mirror` [env: DINV_DEBIAN_MIRROR; default: the host's apt sources].
    #[arg(long, value_name = "URL")]
    debian_mirror: Option<String>,
    /// Debian security archive URL for suites from the security archive [env: DINV_DEBIAN_SECURITY_MIRROR; default: the recipe's `security_mirror`, else `debian-security` next to the mirror].
    #[arg(long, value_name = "URL")]
    debian_security_mirror: Option<String>,
    /// No network: every index and package must already be in the cache (or the vendor directory).
    #[arg(long)]
    offline: bool,
}

/// The recipe a command works on.
const RECIPE_HELP: &str = "Recipe file (TOML); see docs/recipe.md";

#[derive(Args, Debug, Clone, Default)]
struct BuildArgs {
    /// Output directory [default: out/<image name> below the current directory]. Must be missing, empty, or an earlier output.
    #[arg(long, short, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Install exactly the packages of RECIPE.lock; refuse if the recipe or its inputs changed.
    #[arg(long)]
    locked: bool,
    /// Read package files from DIR (written by `fetch --vendor`) instead of the mirrors.
    #[arg(long, value_name = "DIR")]
    vendor: Option<PathBuf>,
    #[command(flatten)]
    source: SourceArgs,
}

impl BuildArgs {
    fn options(&self) -> BuildOptions {
        BuildOptions { out: self.out.clone(), offline: self.source.offline, locked: self.locked, vendor: self.vendor.clone(), ..Default::default() }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build every artifact of a recipe into out/<name>/.
    Build {
        #[arg(help = RECIPE_HELP)]
        recipe: PathBuf,
        #[command(flatten)]
        build: BuildArgs,
    },
    /// Print the resolved package sets with versions, sizes and reasons.
    Resolve {
        #[arg(help = RECIPE_HELP)]
        recipe: PathBuf,
        /// Print the packages of RECIPE.lock instead (refuses a stale lock).
        #[arg(long)]
        locked: bool,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Download and verify every package into the cache, or into a vendor directory.
    Fetch {
        #[arg(help = RECIPE_HELP)]
        recipe: PathBuf,
        /// The packages of RECIPE.lock (refuses a stale lock).
        #[arg(long)]
        locked: bool,
        /// Also copy every package file into DIR (DIR/apk-q1/HEX, DIR/sha256/HEX) for `build --offline --vendor DIR`.
        #[arg(long, value_name = "DIR")]
        vendor: Option<PathBuf>,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Build twice into temporary directories and compare every output byte for byte (exit 6 on a difference).
    Verify {
        #[arg(help = RECIPE_HELP)]
        recipe: PathBuf,
        /// Install exactly the packages of RECIPE.lock.
        #[arg(long)]
        locked: bool,
        /// Read package files from DIR (written by `fetch --vendor`).
        #[arg(long, value_name = "DIR")]
        vendor: Option<PathBuf>,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Resolve and write RECIPE.lock (packages, checksums, key fingerprints, input hashes).
    Lock {
        #[arg(help = RECIPE_HELP)]
        recipe: PathBuf,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Validate a recipe without building: every key, the values the launcher will read, templates, and the kernel when its package is in the cache.
    Check {
        #[arg(help = RECIPE_HELP)]
        recipe: PathBuf,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Print the fully merged recipe and where each value comes from.
    Show {
        #[arg(help = RECIPE_HELP)]
        recipe: PathBuf,
    },
    /// Boot a built image once (TCG, its own QEMU) and write OUT/snapshot/: the image plus a saved, running guest it restores in about a second.
    Snapshot {
        /// The build output directory (out/<name>).
        out: PathBuf,
        /// Where to write [default: OUT/snapshot].
        #[arg(long, value_name = "DIR")]
        dest: Option<PathBuf>,
        /// The snapshot image's tag [default: <tag>-snapshot].
        #[arg(long)]
        tag: Option<String>,
    },
    /// Push a built image (out/<name>, or its oci/ layout) to a registry.
    ///
    /// Credentials come from the docker config file ($DOCKER_CONFIG/config.json,
    /// else ~/.docker/config.json: `auths` entries as `docker login` writes them).
    Push {
        /// The build output directory or OCI layout.
        image: PathBuf,
        /// REGISTRY/REPOSITORY[:TAG]
        reference: String,
        /// Use plain HTTP (loopback registries always do).
        #[arg(long)]
        plain_http: bool,
        /// Sign the pushed manifest with this private key (cosign's encrypted PEM from `keygen` or `cosign generate-key-pair`, or PKCS#8), stored as the tag sha256-<hex>.sig. The passphrase comes from DINV_SIGN_PASSPHRASE or --sign-passphrase-file.
        #[arg(long, value_name = "KEY")]
        sign_key: Option<PathBuf>,
        /// Read the signing key's passphrase from the first line of FILE.
        #[arg(long, value_name = "FILE")]
        sign_passphrase_file: Option<PathBuf>,
        /// Also attach the SBOM and SLSA provenance as signed in-toto attestations (tag sha256-<hex>.att); needs --sign-key and a build output directory.
        #[arg(long)]
        attest: bool,
    },
    /// Write a signing key pair: PREFIX.private (encrypted, cosign's format) and PREFIX.pub.
    ///
    /// The passphrase comes from DINV_SIGN_PASSPHRASE or --sign-passphrase-file, never from an argument.
    Keygen {
        /// Where to write: PREFIX.private and PREFIX.pub.
        #[arg(long, value_name = "PREFIX")]
        output_prefix: PathBuf,
        /// Read the passphrase from the first line of FILE.
        #[arg(long, value_name = "FILE")]
        sign_passphrase_file: Option<PathBuf>,
    },
    /// What the cache holds, or remove what no recent build uses.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Write a starter team recipe NAME.toml that extends another recipe.
    New {
        /// The new recipe's name (lower-case letters, digits, - and _); also its image name.
        name: String,
        /// Directory for the new recipe [default: recipes/ if it exists, else .].
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The recipe to extend [default: recipes/default.toml when it exists, else dinv:default, the one built into dinv-build].
        #[arg(long, value_name = "RECIPE")]
        extends: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum CacheAction {
    /// Sizes per kind of entry (blobs, unpacked, indexes, layers, pieces).
    Du,
    /// Remove every entry that no build or fetch recorded within --older-than days used
    /// (each successful build records what it used, per output directory).
    Prune {
        /// Forget builds recorded more than DAYS ago (0: remove everything).
        #[arg(long, value_name = "DAYS", default_value_t = 30.0)]
        older_than: f64,
        /// Print what would go, remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Fail at once if a build is using the cache (default: wait for it).
        #[arg(long)]
        no_wait: bool,
    },
}

/// The subcommands' names, for "did you mean".
const COMMANDS: &[&str] = &["build", "resolve", "fetch", "verify", "lock", "check", "show", "snapshot", "push", "keygen", "cache", "new"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().take_while(|a| *a != "--").any(|a| a == "--json");
    if let Some(e) = misspelt_command(&args) {
        return fail(&Context { json, ..Context::default() }, &e);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout as text; a usage error is JSON with --json.
        Err(e) if json && e.use_stderr() => {
            let message = e.to_string().lines().next().unwrap_or_default().trim_start_matches("error: ").to_string();
            let ctx = Context { json: true, ..Context::default() };
            return fail(&ctx, &Error::Usage(message));
        }
        Err(e) => e.exit(),
    };
    let g = &cli.global;
    init_logging(g.verbose, g.json);
    // Global flags may come before a subcommand; a recipe or build flags may not.
    let b = &cli.build;
    let top_level_build = cli.recipe.is_some() || b.out.is_some() || b.source.offline || b.locked || b.vendor.is_some() || b.source.debian_mirror.is_some() || b.source.debian_security_mirror.is_some() || b.source.cache.cache_dir.is_some();
    let source = match &cli.command {
        Some(Command::Build { build, .. }) => build.source.clone(),
        Some(Command::Resolve { source, .. } | Command::Fetch { source, .. } | Command::Verify { source, .. } | Command::Lock { source, .. }) => source.clone(),
        Some(Command::Cache { cache, .. } | Command::Check { cache, .. }) => SourceArgs { cache: cache.clone(), ..SourceArgs::default() },
        Some(_) => SourceArgs::default(),
        None => b.source.clone(),
    };
    let ctx = Context {
        json: g.json,
        quiet: g.quiet,
        cache_dir: source.cache.cache_dir.clone(),
        debian_mirror: source.debian_mirror.clone().or_else(|| std::env::var("DINV_DEBIAN_MIRROR").ok()),
        debian_security_mirror: source.debian_security_mirror.clone().or_else(|| std::env::var("DINV_DEBIAN_SECURITY_MIRROR").ok()),
    };
    let command = match cli.command {
        Some(_) if top_level_build => Err(Error::Usage("give the recipe and build flags after the subcommand (see --help)".into())),
        Some(Command::Build { recipe, build }) => Ok(Cmd::Build { recipe, options: build.options() }),
        Some(Command::Resolve { recipe, locked, source }) => Ok(Cmd::Resolve { recipe, locked, offline: source.offline }),
        Some(Command::Fetch { recipe, locked, vendor, source }) => Ok(Cmd::Fetch { recipe, locked, offline: source.offline, vendor }),
        Some(Command::Verify { recipe, locked, vendor, source }) => {
            Ok(Cmd::Verify { recipe, options: BuildOptions { out: None, offline: source.offline, locked, vendor, ..Default::default() } })
        }
        Some(Command::Lock { recipe, source }) => Ok(Cmd::Lock { recipe, offline: source.offline }),
        Some(Command::Check { recipe, .. }) => Ok(Cmd::Check { recipe }),
        Some(Command::Show { recipe }) => Ok(Cmd::Show { recipe }),
        Some(Command::Snapshot { out, dest, tag }) => Ok(Cmd::Snapshot { out, options: dinv_build::snapshot::SnapshotOptions { dest, tag } }),
        Some(Command::Push { image, reference, plain_http, sign_key, sign_passphrase_file, attest }) => {
            Ok(Cmd::Push { image, reference, options: PushOptions { plain_http, sign_key, passphrase_file: sign_passphrase_file, attest } })
        }
        Some(Command::Keygen { output_prefix, sign_passphrase_file }) => Ok(Cmd::Keygen { prefix: output_prefix, passphrase_file: sign_passphrase_file }),
        Some(Command::New { name, dir, extends }) => Ok(Cmd::New { name, dir, extends }),
        Some(Command::Cache { action: CacheAction::Du, .. }) => Ok(Cmd::CacheDu),
        Some(Command::Cache { action: CacheAction::Prune { older_than, dry_run, no_wait }, .. }) => {
            Ok(Cmd::CachePrune { days: older_than, dry_run, wait: !no_wait })
        }
        None => match cli.recipe {
            Some(recipe) => Ok(Cmd::Build { recipe, options: cli.build.options() }),
            None => Err(Error::Usage("give a recipe to build, or a subcommand (see --help)".into())),
        },
    };
    match command.and_then(|c| commands::run(&ctx, c)) {
        Ok(outcome) => render(&ctx, outcome.as_ref()),
        Err(e) => fail(&ctx, &e),
    }
}

/// Prints a command's outcome: JSON with `--json`, else text (summaries
/// hidden by `-q`, notes on stderr).
fn render(ctx: &Context, outcome: &dyn Outcome) -> ExitCode {
    let failure = outcome.failure();
    if ctx.json {
        if let Some(e) = &failure {
            return fail(ctx, e);
        }
        let mut v = serde_json::Map::new();
        v.insert("ok".into(), serde_json::Value::Bool(true));
        v.extend(outcome.json());
        println!("{}", serde_json::Value::Object(v));
        return ExitCode::SUCCESS;
    }
    if !(ctx.quiet && outcome.is_summary()) {
        print!("{}", outcome.text());
    }
    if let Some(note) = outcome.note().filter(|_| !ctx.quiet) {
        eprintln!("{note}");
    }
    match &failure {
        Some(e) => fail(ctx, e),
        None => ExitCode::SUCCESS,
    }
}

/// The first word that is not a flag, when it is no file, has no
/// extension and is nearly a command: `biuld` for `build`.
fn misspelt_command(args: &[String]) -> Option<Error> {
    const WITH_VALUE: &[&str] = &["--cache-dir", "--debian-mirror", "--debian-security-mirror", "--out", "-o", "--vendor", "--dir", "--extends", "--dest", "--tag", "--sign-key", "--sign-passphrase-file", "--output-prefix"];
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if WITH_VALUE.contains(&a.as_str()) {
            i += 2;
            continue;
        }
        if a.starts_with('-') {
            i += 1;
            continue;
        }
        let p = std::path::Path::new(a);
        if COMMANDS.contains(&a.as_str()) || p.exists() || p.extension().is_some() {
            return None;
        }
        return closest_command(a).map(|c| Error::Usage(format!("unknown command `{a}`, did you mean `{c}`? (see --help)")));
    }
    None
}

/// The command nearest to `word`, when it is close.
fn closest_command(word: &str) -> Option<&'static str> {
    dinv_build::suggest::nearest(word, COMMANDS, 1).into_iter().next()
}

/// Prints an error (as a JSON envelope with `--json`) and maps it to its exit code.
fn fail(ctx: &Context, e: &Error) -> ExitCode {
    let kind = e.kind();
    if ctx.json {
        let mut error = serde_json::json!({"kind": kind.name(), "message": e.to_string(), "exit_code": kind.exit_code()});
        // Recipe errors point into the recipe: file, line and key, structured.
        if let Error::Recipe(r) = e {
            if let Some(l) = &r.location {
                error["file"] = serde_json::json!(l.file);
                error["line"] = serde_json::json!(l.line);
            }
            if !r.key.is_empty() {
                error["key"] = serde_json::json!(r.key);
            }
            error["reason"] = serde_json::json!(r.message);
        }
        let v = serde_json::json!({"ok": false, "error": error});
        println!("{v}");
    } else {
        eprintln!("error: {e}");
    }
    ExitCode::from(kind.exit_code())
}

fn init_logging(verbose: u8, json: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("{default},hyper=warn,reqwest=warn,rustls=warn")));
    let _ = json;
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(verbose >= 2).init();
}
