//! The build, stage by stage: resolve → fetch → unpack → configure → emit.
//! Each stage takes the previous stage's data and hands its own on; none
//! reaches back.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use dinv_fstree::Tree;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cache::Cache;
use crate::commands::BuildOptions;
use crate::fetch::Fetcher;
use crate::progress::Progress;
use crate::recipe::{LoadedRecipe, Source};
use crate::sources::apk::ApkSourceSet;
use crate::sources::deb::DebSourceSet;
use crate::sources::ResolvedPackage;
use crate::{Context, Error, Result};

/// What every stage needs: cache, fetcher, progress.
pub struct Env {
    pub cache: Cache,
    pub fetcher: Fetcher,
    pub progress: Progress,
    /// `--debian-mirror` / `DINV_DEBIAN_MIRROR`, for Debian sources without `mirror`.
    pub debian_mirror: Option<String>,
}

impl Env {
    pub fn new(ctx: &Context, offline: bool) -> Result<Env> {
        let progress = ctx.progress();
        Ok(Env {
            cache: ctx.cache()?,
            fetcher: Fetcher::new(offline, progress.clone()),
            progress,
            debian_mirror: ctx.debian_mirror.clone(),
        })
    }
}

/// An opened package source.
pub enum OpenSource {
    Apk(ApkSourceSet),
    Deb(DebSourceSet),
}

impl OpenSource {
    fn resolve(&self, packages: &[String], reason: &str, what: &str) -> Result<Vec<ResolvedPackage>> {
        match self {
            OpenSource::Apk(s) => s.resolve(packages, reason, what),
            OpenSource::Deb(s) => s.resolve(packages, reason, what),
        }
    }

    fn fetch(&self, pkgs: &[ResolvedPackage], env: &Env) -> Result<u64> {
        match self {
            OpenSource::Apk(s) => s.fetch(pkgs, &env.fetcher, &env.cache, &env.progress),
            OpenSource::Deb(s) => s.fetch(pkgs, &env.fetcher, &env.cache, &env.progress),
        }
    }

    fn unpack(&self, pkgs: &[ResolvedPackage], env: &Env, tree: &mut Tree) -> Result<()> {
        match self {
            OpenSource::Apk(s) => s.unpack(pkgs, &env.cache, tree, &env.progress).map(|_| ()),
            OpenSource::Deb(s) => s.unpack(pkgs, &env.cache, tree, &env.progress).map(|_| ()),
        }
    }

    /// SHA-256 of every trusted key, by name (for the lock file).
    pub fn key_digests(&self) -> BTreeMap<String, String> {
        match self {
            OpenSource::Apk(s) => s.key_digests().clone(),
            OpenSource::Deb(s) => s.key_digests().clone(),
        }
    }
}

/// One resolved package set (`guest` or `runtime`).
#[derive(Clone, Debug, Serialize)]
pub struct PackageSet {
    pub set: String,
    pub source: String,
    pub packages: Vec<ResolvedPackage>,
}

/// Every package set of a recipe, with the sources they came from.
pub struct Resolved {
    pub sets: Vec<PackageSet>,
    pub sources: BTreeMap<String, OpenSource>,
}

fn open_source(env: &Env, name: &str, src: &Source) -> Result<OpenSource> {
    match src {
        Source::Apk(a) => Ok(OpenSource::Apk(ApkSourceSet::open(name, a, &env.fetcher, &env.cache)?)),
        Source::Deb(d) => Ok(OpenSource::Deb(DebSourceSet::open(name, d, env.debian_mirror.as_deref(), &env.fetcher, &env.cache)?)),
    }
}

/// Opens the sources the recipe uses and resolves each package set.
pub fn resolve(env: &Env, l: &LoadedRecipe) -> Result<Resolved> {
    let r = &l.recipe;
    let mut wanted: Vec<(&str, &str, &Vec<String>, &str)> = vec![("guest", r.guest.source.as_str(), &r.guest.packages, "requested (guest.packages)")];
    if let Some(rt) = &r.runtime {
        wanted.push(("runtime", rt.source.as_str(), &rt.packages, "requested (runtime.packages)"));
    }
    let mut sources = BTreeMap::new();
    let mut sets = Vec::new();
    for (set, source, packages, reason) in wanted {
        if !sources.contains_key(source) {
            let started = Instant::now();
            sources.insert(source.to_string(), open_source(env, source, &r.sources[source])?);
            tracing::info!(source, seconds = started.elapsed().as_secs_f64(), "source opened");
        }
        let started = Instant::now();
        let pkgs = sources[source].resolve(packages, reason, set)?;
        tracing::info!(set, packages = pkgs.len(), seconds = started.elapsed().as_secs_f64(), "resolved");
        sets.push(PackageSet { set: set.to_string(), source: source.to_string(), packages: pkgs });
    }
    Ok(Resolved { sets, sources })
}

/// One emitted file.
#[derive(Clone, Debug, Serialize)]
pub struct Output {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// `report.json`: what was built, from what, and how long each stage took.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub recipe: PathBuf,
    pub out_dir: PathBuf,
    pub seconds: f64,
    pub outputs: Vec<Output>,
    pub packages: BTreeMap<String, usize>,
    pub stages: BTreeMap<String, f64>,
    pub downloaded_bytes: u64,
}

/// Times the stages of a build.
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

fn sha256_file(path: &Path) -> Result<(u64, String)> {
    let mut f = fs::File::open(path).map_err(Error::io(path))?;
    let mut h = Sha256::new();
    let n = std::io::copy(&mut f, &mut h).map_err(Error::io(path))?;
    Ok((n, hex::encode(h.finalize())))
}

/// The output directory for a recipe.
pub fn out_dir(l: &LoadedRecipe, opts: &BuildOptions) -> PathBuf {
    opts.out.clone().unwrap_or_else(|| PathBuf::from("out").join(l.recipe.image.name.replace('/', "_")))
}

/// Runs a whole build. Outputs are written to a fresh staging directory
/// and swapped into place only when everything succeeded, so a failed or
/// interrupted build leaves the previous output untouched.
pub fn build(ctx: &Context, l: &LoadedRecipe, opts: &BuildOptions) -> Result<Report> {
    let started = Instant::now();
    let env = Env::new(ctx, opts.offline)?;
    let mut stages = Stages { times: BTreeMap::new() };
    let resolved = stages.run("resolve", || resolve(&env, l))?;
    let mut downloaded = 0;
    for set in &resolved.sets {
        let src = &resolved.sources[&set.source];
        downloaded += stages.run("fetch", || src.fetch(&set.packages, &env))?;
    }
    let guest = &resolved.sets[0];
    let mut tree = Tree::new();
    stages.run("unpack", || resolved.sources[&guest.source].unpack(&guest.packages, &env, &mut tree))?;
    stages.run("configure", || crate::configure::apply(l, &mut tree))?;

    let out = out_dir(l, opts);
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(Error::io(parent))?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{}.partial-", out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()))
        .tempdir_in(parent)
        .map_err(Error::io(parent))?;
    let epoch = source_date_epoch(l, &resolved);
    tree.clamp_mtimes(epoch);

    stages.run("rootfs-tar", || {
        let p = staging.path().join("rootfs.tar");
        let f = fs::File::create(&p).map_err(Error::io(&p))?;
        let mut tar = dinv_fstree::tar::TarBuilder::new(std::io::BufWriter::new(f));
        dinv_fstree::tar::write_tree(&tree, &mut tar, &dinv_fstree::tar::TreeTarOptions { skip_root: false, ..Default::default() })
            .map_err(Error::io(&p))?;
        tar.finish().and_then(|mut w| w.flush()).map_err(Error::io(&p))?;
        Ok(())
    })?;

    let packages_json = staging.path().join("packages.json");
    let sets: Vec<_> = resolved.sets.iter().map(|s| serde_json::json!({"set": s.set, "source": s.source, "packages": s.packages})).collect();
    fs::write(&packages_json, serde_json::to_vec_pretty(&sets).expect("json")).map_err(Error::io(&packages_json))?;

    let mut outputs = Vec::new();
    let mut names: Vec<_> = fs::read_dir(staging.path()).map_err(Error::io(staging.path()))?.filter_map(|e| e.ok()).collect();
    names.sort_by_key(|e| e.file_name());
    for e in names {
        if e.path().is_file() {
            let (size, sha256) = sha256_file(&e.path())?;
            outputs.push(Output { name: e.file_name().to_string_lossy().into_owned(), size, sha256 });
        }
    }
    let report = Report {
        recipe: l.path.clone(),
        out_dir: out.clone(),
        seconds: started.elapsed().as_secs_f64(),
        outputs,
        packages: resolved.sets.iter().map(|s| (s.set.clone(), s.packages.len())).collect(),
        stages: stages.times,
        downloaded_bytes: downloaded,
    };
    let rp = staging.path().join("report.json");
    fs::write(&rp, serde_json::to_vec_pretty(&report).expect("json")).map_err(Error::io(&rp))?;
    publish(staging, &out)?;
    Ok(report)
}

/// SOURCE_DATE_EPOCH: the recipe's value, else the environment's, else the
/// newest package build time, else 0.
pub fn source_date_epoch(l: &LoadedRecipe, r: &Resolved) -> i64 {
    if let Some(e) = l.recipe.build.source_date_epoch {
        return e;
    }
    if let Some(e) = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.trim().parse().ok()) {
        return e;
    }
    r.sets.iter().flat_map(|s| s.packages.iter()).filter_map(|p| p.build_time).max().unwrap_or(0)
}

/// Moves a finished staging directory to `out`, replacing what was there.
fn publish(staging: tempfile::TempDir, out: &Path) -> Result<()> {
    let staged = staging.keep();
    if out.exists() {
        let old = out.with_file_name(format!(".{}.old-{}", out.file_name().unwrap().to_string_lossy(), std::process::id()));
        fs::rename(out, &old).map_err(Error::io(out))?;
        fs::rename(&staged, out).map_err(Error::io(out))?;
        let _ = fs::remove_dir_all(&old);
    } else {
        fs::rename(&staged, out).map_err(Error::io(out))?;
    }
    Ok(())
}
