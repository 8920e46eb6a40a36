//! The build, stage by stage: resolve → fetch → unpack → configure → emit
//! (kernel, rootfs, image, SBOM) → report → publish. Each stage takes the
//! previous stages' data and hands its own on; none reaches back.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use dinv_fstree::Tree;

use crate::configure::{self, GuestInputs};
use crate::context::{BuildEnv, Context};
use crate::emit::report::{self, Report};
use crate::emit::{Emit, EMITTERS};
use crate::output::Staging;
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
}

/// Times the stages of a build.
#[derive(Default)]
struct Stages {
    times: BTreeMap<String, f64>,
}

impl Stages {
    fn run<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let t = Instant::now();
        tracing::info!(stage = name, "start");
        let r = f();
        let secs = t.elapsed().as_secs_f64();
        tracing::info!(stage = name, seconds = secs, ok = r.is_ok(), "done");
        *self.times.entry(name.to_string()).or_default() += secs;
        r
    }
}

/// The output directory for a recipe.
pub fn out_dir(l: &LoadedRecipe, opts: &BuildOptions) -> PathBuf {
    opts.out.clone().unwrap_or_else(|| PathBuf::from("out").join(l.recipe.image.name.replace('/', "_")))
}

/// SOURCE_DATE_EPOCH: the recipe's value, else the environment's, else the
/// newest package build time, else 0.
pub fn source_date_epoch(l: &LoadedRecipe, env: &BuildEnv, r: &Resolved) -> i64 {
    l.recipe.build.source_date_epoch.or(env.host.source_date_epoch).unwrap_or_else(|| r.packages().filter_map(|p| p.build_time).max().unwrap_or(0))
}

/// Resolves (or reads the lock), then fetches every set.
fn resolve_and_fetch(env: &mut BuildEnv, l: &LoadedRecipe, opts: &BuildOptions, stages: &mut Stages) -> Result<(Resolved, u64)> {
    let resolved = stages.run("resolve", || resolve::resolve_with(env, l, opts.locked))?;
    if let Some(dir) = &opts.vendor {
        env.fetcher = env.fetcher.clone().with_vendor(crate::vendor::url_map(dir, &resolved)?);
    }
    let mut downloaded = 0;
    for set in resolved.sets() {
        downloaded += stages.run("fetch", || resolved.source_of(set).fetch(&set.packages, env))?;
    }
    Ok((resolved, downloaded))
}

/// Runs a whole build into `out/<name>` (atomically: a failed build leaves
/// the previous output untouched).
pub fn build(ctx: &Context, l: &LoadedRecipe, opts: &BuildOptions) -> Result<Report> {
    let started = Instant::now();
    let mut env = ctx.env(opts.offline)?;
    let mut stages = Stages::default();
    let (resolved, downloaded) = resolve_and_fetch(&mut env, l, opts, &mut stages)?;
    let env = env;
    let epoch = source_date_epoch(l, &env, &resolved);

    let mut guest = Tree::new();
    stages.run("unpack", || resolved.source_of(&resolved.guest).unpack(&resolved.guest.packages, &env, &mut guest))?;
    let inputs = GuestInputs { packages: &resolved.guest.packages, epoch };
    let configured = stages.run("configure", || configure::apply(l, &mut guest, &inputs))?;
    guest.clamp_mtimes(epoch);
    // The runtime layer is only needed when an image is built.
    let runtime = match (&resolved.runtime, &configured.kernel) {
        (Some(rt), Some(_)) => {
            let mut tree = Tree::new();
            stages.run("unpack", || resolved.source_of(rt).unpack(&rt.packages, &env, &mut tree))?;
            if let Some(r) = &l.recipe.runtime {
                configure::remove_paths(&mut tree, &r.remove);
            }
            Some(tree)
        }
        _ => None,
    };

    let out = out_dir(l, opts);
    let staging = Staging::new(&out)?;
    let mut emit = Emit {
        recipe: l,
        resolved: &resolved,
        env: &env,
        guest: &guest,
        kernel_plan: configured.kernel.as_ref(),
        runtime: runtime.as_ref(),
        epoch,
        out: staging.path(),
        kernel: None,
        rootfs: None,
        image: None,
    };
    for (stage, emitter) in EMITTERS {
        stages.run(&stage.to_string(), || emitter(&mut emit))?;
    }
    let report = Report {
        recipe: l.path.clone(),
        out_dir: out.clone(),
        seconds: started.elapsed().as_secs_f64(),
        outputs: report::outputs(staging.path())?,
        packages: resolved.sets().map(|s| (s.set.as_str().to_string(), s.packages.len())).collect(),
        stages: stages.times,
        downloaded_bytes: downloaded,
        kernel: emit.kernel.map(|k| k.summary),
        rootfs: emit.rootfs.expect("the rootfs emitter always runs"),
        image: emit.image,
    };
    report.write(staging.path())?;
    staging.publish()?;
    Ok(report)
}

/// The configured guest tree of a recipe (resolve, fetch, unpack,
/// configure), without emitting anything: for tests and tools that inspect
/// what a recipe puts in the guest.
pub fn configured_guest(ctx: &Context, l: &LoadedRecipe) -> Result<Tree> {
    let mut env = ctx.env(false)?;
    let (resolved, _) = resolve_and_fetch(&mut env, l, &BuildOptions::default(), &mut Stages::default())?;
    let epoch = source_date_epoch(l, &env, &resolved);
    let mut guest = Tree::new();
    resolved.source_of(&resolved.guest).unpack(&resolved.guest.packages, &env, &mut guest)?;
    configure::apply(l, &mut guest, &GuestInputs { packages: &resolved.guest.packages, epoch })?;
    Ok(guest)
}
