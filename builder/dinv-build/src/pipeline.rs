//! The build, stage by stage: resolve → fetch → unpack → configure → emit
//! (kernel, rootfs, image, SBOM) → report → publish. Each stage takes the
//! previous stages' data and hands its own on; none reaches back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use dinv_fstree::Tree;

use crate::configure::{self, GuestInputs};
use crate::context::{BuildEnv, Context};
use crate::emit::report::{self, Report};
use crate::emit::{Emit, EMITTERS};
use crate::error::Stage;
use crate::output::{Protected, Target};
use crate::progress::Progress;
use crate::recipe::LoadedRecipe;
use crate::resolve::{self, Resolved};
use crate::Result;

/// Options of a build.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Output directory (default `out/<image name>`).
    pub out: Option<PathBuf>,
    /// No network.
    pub offline: bool,
    /// Install exactly the packages of RECIPE.lock (no solver, no indexes).
    pub locked: bool,
    /// Read package blobs from this vendor directory instead of their URLs.
    pub vendor: Option<PathBuf>,
    /// Do not record this build as a cache root (`verify`'s throwaway outputs).
    pub no_cache_root: bool,
}

/// The test hook `DINV_TEST_PAUSE_AT=<stage>` (fault tests): at the start
/// of that stage, say so on stderr and wait to be killed.
fn pause_if_asked(pause_at: Option<Stage>, stage: Stage) {
    if pause_at == Some(stage) {
        eprintln!("dinv-build: paused at stage {stage} (DINV_TEST_PAUSE_AT)");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// Times the stages of a build and announces each on the terminal.
struct Stages {
    times: BTreeMap<Stage, f64>,
    progress: Progress,
    pause_at: Option<Stage>,
}

use crate::progress::human as megabytes;

impl Stages {
    fn new(progress: Progress, pause_at: Option<Stage>) -> Self {
        Stages { times: BTreeMap::new(), progress, pause_at }
    }

    fn pause_if_asked(&self, stage: Stage) {
        pause_if_asked(self.pause_at, stage);
    }

    /// Runs `stage`, first printing its status line `what`.
    fn run<T>(&mut self, stage: Stage, what: impl std::fmt::Display, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.pause_if_asked(stage);
        self.progress.status(stage.verb(), what);
        let t = Instant::now();
        tracing::info!(stage = stage.name(), "start");
        let r = f();
        let secs = t.elapsed().as_secs_f64();
        tracing::info!(stage = stage.name(), seconds = secs, ok = r.is_ok(), "done");
        *self.times.entry(stage).or_default() += secs;
        r
    }
}

/// The output directory for a recipe.
pub fn out_dir(l: &LoadedRecipe, opts: &BuildOptions) -> PathBuf {
    opts.out.clone().unwrap_or_else(|| PathBuf::from("out").join(l.recipe.image.name.replace('/', "_")))
}

/// The digests `report.json` records of the build's inputs.
fn build_inputs(l: &LoadedRecipe, epoch: i64) -> Result<report::BuildInputs> {
    use sha2::Digest;
    let recipe = crate::recipe::vfs::read(&l.path).map_err(crate::Error::io(&l.path))?;
    let recipe_sha256 = hex::encode(sha2::Sha256::digest(&recipe));
    Ok(report::BuildInputs { recipe_sha256, inputs_sha256: crate::recipe::inputs_digest(&l.inputs), source_date_epoch: epoch })
}

/// SOURCE_DATE_EPOCH: the recipe's value, else the environment's, else the
/// newest package build time, else 0.
pub fn source_date_epoch(l: &LoadedRecipe, env: &BuildEnv, r: &Resolved) -> i64 {
    l.recipe.build.source_date_epoch.or(env.host.source_date_epoch).unwrap_or_else(|| r.packages().filter_map(|p| p.build_time).max().unwrap_or(0))
}

/// Resolves (or reads the lock), then fetches every set.
fn resolve_and_fetch(env: &mut BuildEnv, l: &LoadedRecipe, opts: &BuildOptions, stages: &mut Stages) -> Result<(Resolved, u64)> {
    let what = if opts.locked { format!("{} from its lock file", l.path.display()) } else { format!("the packages of {}", l.path.display()) };
    let resolved = stages.run(Stage::Resolve, what, || resolve::resolve_with(env, l, opts.locked))?;
    if let Some(dir) = &opts.vendor {
        env.fetcher = env.fetcher.clone().with_vendor(crate::vendor::url_map(dir, &resolved)?);
    }
    let mut downloaded = 0;
    for set in resolved.sets() {
        // Honest figures: what is already in the cache is not fetched.
        let source = resolved.source_of(set);
        let (cached, missing): (Vec<_>, Vec<_>) = set.packages.iter().partition(|p| source.cache_path(&env.cache, p).is_ok_and(|c| c.is_file()));
        let to_fetch: u64 = missing.iter().map(|p| p.size).sum();
        let what = match (cached.len(), missing.len()) {
            (_, 0) => format!("nothing: all {} {} packages are in the cache", set.packages.len(), set.set.as_str()),
            (0, n) => format!("{n} {} packages ({})", set.set.as_str(), megabytes(to_fetch)),
            (c, n) => format!("{n} {} packages ({}; {c} more in the cache)", set.set.as_str(), megabytes(to_fetch)),
        };
        downloaded += stages.run(Stage::Fetch, what, || resolved.source_of(set).fetch(&set.packages, env))?;
    }
    Ok((resolved, downloaded))
}

/// What a build made: one platform's report, or (with `image.platforms`)
/// the multi-platform report holding each platform's.
#[derive(Clone, Debug)]
pub enum Built {
    One(Report),
    Platforms(crate::emit::platforms::PlatformsReport),
}

/// Runs a whole build into `out/<name>` (atomically: a failed build leaves
/// the previous output untouched). A recipe with `image.platforms` builds
/// each platform into `out/<name>/linux-<arch>/` and joins their images
/// into one OCI index (see [`crate::emit::platforms`]).
pub fn build(ctx: &Context, l: &LoadedRecipe, opts: &BuildOptions) -> Result<Built> {
    let started = Instant::now();
    // The output directory is checked, and its staging directory made,
    // before any work: a refused or unwritable --out costs nothing.
    let out = out_dir(l, opts);
    let target = Target::check(&out, &Protected { recipes: l.files.iter().filter(|f| !crate::recipe::vfs::is_embedded(f)).cloned().collect(), cache: Some(ctx.cache_root()) })?;
    let staging = target.stage()?;
    let (built, env) = if l.is_multi_platform() {
        let mut reports = Vec::new();
        let mut env = None;
        for v in &l.variants {
            let dir = crate::emit::platforms::platform_dir(v);
            let path = staging.path().join(&dir);
            std::fs::create_dir(&path).map_err(crate::Error::io(&path))?;
            crate::output::mark(&path)?;
            let (report, e) = build_into(ctx, v, opts, &path, &out.join(&dir), started)?;
            reports.push((v, report));
            env = Some(e);
        }
        let env = env.expect("a multi-platform recipe has platforms");
        env.progress.status("Joining", format!("{} platforms into one OCI index", reports.len()));
        let joined = crate::emit::platforms::join(l, &reports, staging.path(), &out, started)?;
        (Built::Platforms(joined), env)
    } else {
        let (report, env) = build_into(ctx, l, opts, staging.path(), &out, started)?;
        (Built::One(report), env)
    };
    pause_if_asked(env.host.test_pause_at, Stage::Publish);
    staging.publish()?;
    // What `cache prune` keeps for this output (the build is done: a
    // failure here only costs a re-fetch after a prune).
    if !opts.no_cache_root {
        let about = serde_json::json!({ "out": out, "recipe": l.path });
        let id = format!("build:{}", out.canonicalize().unwrap_or_else(|_| out.clone()).display());
        if let Err(e) = env.cache.write_root(&id, about) {
            tracing::warn!("cache: cannot record this build's entries: {e}");
        }
    }
    // The one summary is the command's own (`built … in … s (stages)`).
    Ok(built)
}

/// Builds one platform's artifacts and `report.json` into `dir`, which
/// is published as `out`.
fn build_into(ctx: &Context, l: &LoadedRecipe, opts: &BuildOptions, dir: &Path, out: &Path, started: Instant) -> Result<(Report, BuildEnv)> {
    let mut env = ctx.env(opts.offline)?;
    if let Some(arch) = l.platform {
        env.progress.status("Platform", arch.platform());
    }
    let mut stages = Stages::new(env.progress.clone(), env.host.test_pause_at);
    let (resolved, downloaded) = resolve_and_fetch(&mut env, l, opts, &mut stages)?;
    let env = env;
    let epoch = source_date_epoch(l, &env, &resolved);

    let mut guest = Tree::new();
    let what = format!("{} guest packages", resolved.guest.packages.len());
    stages.run(Stage::Unpack, what, || resolved.source_of(&resolved.guest).unpack(&resolved.guest.packages, &env, &mut guest))?;
    let inputs = GuestInputs { packages: &resolved.guest.packages, epoch };
    let configured = stages.run(Stage::Configure, "the guest tree", || configure::apply(l, &mut guest, &inputs))?;
    guest.clamp_mtimes(epoch);
    // The runtime layer is only needed when an image is built.
    let runtime = match (&resolved.runtime, &configured.kernel) {
        (Some(rt), Some(_)) => {
            let mut tree = Tree::new();
            let what = format!("{} runtime packages", rt.packages.len());
            let summary = stages.run(Stage::UnpackRuntime, what, || {
                resolved.source_of(rt).unpack(&rt.packages, &env, &mut tree)?;
                configure::runtime::apply(l, &mut tree)
            })?;
            Some((tree, summary))
        }
        _ => None,
    };

    let mut emit = Emit {
        recipe: l,
        resolved: &resolved,
        env: &env,
        guest: &guest,
        kernel_plan: configured.kernel.as_ref(),
        runtime: runtime.as_ref().map(|(t, _)| t),
        epoch,
        out: dir,
        kernel: None,
        rootfs: None,
        image: None,
        cached_layers: Vec::new(),
        hashing: Vec::new(),
    };
    for (stage, emitter) in EMITTERS {
        let what = match stage {
            Stage::Kernel if emit.kernel_plan.is_none() => "nothing (the guest has no kernel)".to_string(),
            Stage::Kernel => "vmlinuz and initramfs".to_string(),
            Stage::Rootfs => format!("rootfs.ext4 ({} of files)", megabytes(guest.content_bytes())),
            Stage::Image => format!("image.tar and oci/ ({}:{})", l.recipe.image.name, l.recipe.image.tag),
            Stage::Sbom => "sbom.spdx.json".to_string(),
            other => other.to_string(),
        };
        stages.run(*stage, what, || emitter(&mut emit))?;
    }
    let mut hashed = BTreeMap::new();
    for (name, handle) in std::mem::take(&mut emit.hashing) {
        hashed.insert(name, handle.join().expect("hashing thread")?);
    }
    let sets: Vec<_> = resolved.sets().cloned().collect();
    let newest = |src: &str, name: &str| resolved.sources.get(src).and_then(|s| s.newest_version(name));
    let current = crate::currency::currency(l, &sets, (!opts.locked).then_some(&newest as &dyn Fn(&str, &str) -> Option<String>));
    let report = Report {
        current,
        recipe: l.path.clone(),
        out_dir: out.to_path_buf(),
        seconds: started.elapsed().as_secs_f64(),
        outputs: report::outputs(dir, hashed)?,
        packages: resolved.sets().map(|s| (s.set.as_str().to_string(), s.packages.len())).collect(),
        stages: std::mem::take(&mut stages.times).into_iter().map(|(s, t)| (s.name().to_string(), t)).collect(),
        downloaded_bytes: downloaded,
        kernel: emit.kernel.map(|k| k.summary),
        rootfs: emit.rootfs.expect("the rootfs emitter always runs"),
        image: emit.image,
        runtime_layer: runtime.as_ref().map(|(_, s)| s.clone()),
        cached_layers: emit.cached_layers,
        removed: configured.removed.clone(),
        peak_rss_bytes: report::peak_rss(),
        snapshot: l.recipe.snapshot.clone(),
        build_inputs: build_inputs(l, epoch)?,
        lock_sha256: if opts.locked { Some(crate::sources::sha256_file(&crate::lock::lock_path(&l.path))?) } else { None },
    };
    report.write(dir)?;
    Ok((report, env))
}

/// The configured guest tree of a recipe (resolve, fetch, unpack,
/// configure), without emitting anything: for tests and tools that inspect
/// what a recipe puts in the guest.
pub fn configured_guest(ctx: &Context, l: &LoadedRecipe) -> Result<Tree> {
    let mut env = ctx.env(false)?;
    let (resolved, _) = resolve_and_fetch(&mut env, l, &BuildOptions::default(), &mut Stages::new(Progress::hidden(), None))?;
    let epoch = source_date_epoch(l, &env, &resolved);
    let mut guest = Tree::new();
    resolved.source_of(&resolved.guest).unpack(&resolved.guest.packages, &env, &mut guest)?;
    configure::apply(l, &mut guest, &GuestInputs { packages: &resolved.guest.packages, epoch })?;
    Ok(guest)
}
