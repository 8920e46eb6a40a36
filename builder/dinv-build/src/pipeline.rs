//! The build, stage by stage: resolve → fetch → unpack → configure →
//! kernel (vmlinuz, initramfs) → rootfs (ext4) → emit.
//! Each stage takes the previous stage's data and hands its own on; none
//! reaches back.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use dinv_fstree::Tree;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cache::Cache;
use crate::commands::BuildOptions;
use crate::fetch::Fetcher;
use crate::lock::LockFile;
use crate::progress::Progress;
use crate::recipe::{LoadedRecipe, Source};
use crate::sources::apk::ApkSourceSet;
use crate::sources::deb::DebSourceSet;
use crate::sources::ResolvedPackage;
use crate::stages::kernel::KernelSummary;
use crate::stages::rootfs::RootfsSummary;
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

    /// `apk` or `deb` (SBOM purls).
    pub fn kind(&self) -> &'static str {
        match self {
            OpenSource::Apk(_) => "apk",
            OpenSource::Deb(_) => "deb",
        }
    }

    /// SHA-256 (hex) of a fetched package file in the cache.
    pub fn file_sha256(&self, p: &ResolvedPackage, cache: &Cache) -> Result<String> {
        match self {
            // The index checksum of a .deb is already the file's SHA-256, verified on fetch.
            OpenSource::Deb(_) => Ok(p.checksum.clone()),
            OpenSource::Apk(_) => {
                let path = crate::sources::apk::blob_path(cache, p)?;
                Ok(sha256_file(&path)?.1)
            }
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

/// Opens the sources the recipe uses from a lock file: keys only, no
/// indexes, no solver. The package sets are exactly the locked packages,
/// in their locked order. Refuses (exit 2) a lock whose inputs or keys
/// no longer match, naming what changed.
pub fn resolve_locked(env: &Env, l: &LoadedRecipe, lock: &LockFile, lock_path: &Path) -> Result<Resolved> {
    lock.check_inputs(l, lock_path)?;
    let r = &l.recipe;
    let mut wanted: Vec<(&str, &str)> = vec![("guest", r.guest.source.as_str())];
    if let Some(rt) = &r.runtime {
        wanted.push(("runtime", rt.source.as_str()));
    }
    let mut sources = BTreeMap::new();
    let mut sets = Vec::new();
    for (set, source) in wanted {
        if !sources.contains_key(source) {
            let opened = match &r.sources[source] {
                Source::Apk(a) => OpenSource::Apk(ApkSourceSet::from_lock(source, a)?),
                Source::Deb(d) => OpenSource::Deb(DebSourceSet::from_lock(source, d, env.debian_mirror.as_deref())?),
            };
            sources.insert(source.to_string(), opened);
        }
        let pkgs: Vec<ResolvedPackage> = lock.packages.iter().filter(|p| p.set == set).map(|p| p.to_resolved()).collect();
        if let Some(p) = pkgs.iter().find(|p| p.source != source) {
            return Err(Error::Usage(format!(
                "{}: out of date: {set} package {} comes from source {:?}, the recipe says {source:?}; run `dinv-build lock` to update it",
                lock_path.display(),
                p.id(),
                p.source
            )));
        }
        if pkgs.is_empty() {
            return Err(Error::Usage(format!("{}: locks no {set} packages; run `dinv-build lock` to update it", lock_path.display())));
        }
        tracing::info!(set, packages = pkgs.len(), "locked");
        sets.push(PackageSet { set: set.to_string(), source: source.to_string(), packages: pkgs });
    }
    let resolved = Resolved { sets, sources };
    lock.check_keys(&resolved, lock_path)?;
    Ok(resolved)
}

/// Resolves a recipe the way the options ask: from its lock file with
/// `--locked`, else with the solver over fresh indexes.
pub fn resolve_with(env: &Env, l: &LoadedRecipe, locked: bool) -> Result<Resolved> {
    if !locked {
        return resolve(env, l);
    }
    let lock_path = crate::lock::lock_path(&l.path);
    if !lock_path.is_file() {
        return Err(Error::Usage(format!("--locked: {} does not exist; write it with `dinv-build lock {}`", lock_path.display(), l.path.display())));
    }
    let lock = LockFile::read(&lock_path)?;
    resolve_locked(env, l, &lock, &lock_path)
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
    /// The guest kernel, when the guest has one.
    pub kernel: Option<KernelSummary>,
    /// What the ext4 root filesystem holds.
    pub rootfs: RootfsSummary,
    /// The Docker image, when the guest has a kernel to boot.
    pub image: Option<ImageSummary>,
}

/// The emitted image in the report.
#[derive(Clone, Debug, Serialize)]
pub struct ImageSummary {
    pub reference: String,
    pub manifest_digest: String,
    pub config_digest: String,
    pub layers: Vec<crate::stages::image::LayerSummary>,
}

/// Removes the recipe's `remove` paths from a tree.
fn remove_paths(tree: &mut Tree, paths: &[String], key: &str) -> Result<()> {
    for (i, p) in paths.iter().enumerate() {
        let tp = dinv_fstree::TreePath::parse(p, true).map_err(|e| Error::Usage(format!("{key}[{i}]: {e}")))?;
        let n = tree.remove(&tp);
        tracing::debug!(path = %tp, removed = n, "removed");
    }
    Ok(())
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
    let mut env = Env::new(ctx, opts.offline)?;
    let mut stages = Stages { times: BTreeMap::new() };
    let resolved = stages.run("resolve", || resolve_with(&env, l, opts.locked))?;
    if let Some(dir) = &opts.vendor {
        env.fetcher = env.fetcher.with_vendor(crate::vendor::url_map(dir, &resolved)?);
    }
    let mut downloaded = 0;
    for set in &resolved.sets {
        let src = &resolved.sources[&set.source];
        downloaded += stages.run("fetch", || src.fetch(&set.packages, &env))?;
    }
    let guest = &resolved.sets[0];
    let mut tree = Tree::new();
    stages.run("unpack", || resolved.sources[&guest.source].unpack(&guest.packages, &env, &mut tree))?;
    remove_paths(&mut tree, &l.recipe.guest.remove, "guest.remove")?;
    stages.run("configure", || crate::configure::apply(l, &mut tree))?;

    let out = out_dir(l, opts);
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(Error::io(parent))?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{}.partial-", out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()))
        .tempdir_in(parent)
        .map_err(Error::io(parent))?;
    let epoch = source_date_epoch(l, &resolved);
    let kernel = stages.run("kernel", || crate::stages::kernel::run(l, &guest.packages, &mut tree, epoch, staging.path()))?;
    tree.clamp_mtimes(epoch);
    let all_packages = resolved.sets.iter().flat_map(|s| s.packages.iter());
    let rootfs = stages.run("rootfs", || crate::stages::rootfs::run(l, all_packages, &tree, epoch, staging.path(), &env.progress))?;

    let vmlinuz = staging.path().join("vmlinuz");
    let image = match resolved.sets.iter().find(|s| s.set == "runtime") {
        Some(rt) if vmlinuz.is_file() => {
            let mut runtime = Tree::new();
            stages.run("unpack", || resolved.sources[&rt.source].unpack(&rt.packages, &env, &mut runtime))?;
            if let Some(r) = &l.recipe.runtime {
                remove_paths(&mut runtime, &r.remove, "runtime.remove")?;
            }
            let initramfs = staging.path().join("initramfs");
            let inputs = crate::stages::image::ImageInputs {
                recipe: l,
                runtime: &runtime,
                vmlinuz: &vmlinuz,
                initramfs: initramfs.is_file().then_some(initramfs.as_path()),
                rootfs: &staging.path().join("rootfs.ext4"),
                epoch,
                revision: std::env::var("DINV_REVISION").ok().filter(|v| !v.is_empty()),
            };
            let img = stages.run("image", || crate::stages::image::build_image(&inputs, staging.path()))?;
            Some(ImageSummary {
                reference: img.reference.clone(),
                manifest_digest: img.digests.manifest.clone(),
                config_digest: img.digests.config.clone(),
                layers: img.layers.clone(),
            })
        }
        Some(_) => {
            tracing::warn!("no guest kernel, so no bootable image: only the root filesystem is built");
            None
        }
        None => None,
    };

    stages.run("sbom", || {
        let mut packages = Vec::new();
        for set in &resolved.sets {
            let src = &resolved.sources[&set.source];
            for p in &set.packages {
                packages.push(crate::sbom::SbomPackage { set: &set.set, kind: src.kind(), package: p, file_sha256: src.file_sha256(p, &env.cache)? });
            }
        }
        let doc = crate::sbom::spdx(&crate::sbom::SbomInput {
            name: &l.recipe.image.name,
            tag: &l.recipe.image.tag,
            epoch,
            image_digest: image.as_ref().map(|i| i.manifest_digest.as_str()),
            kernel_package: l.recipe.kernel.package.as_deref(),
            packages,
        });
        let p = staging.path().join("sbom.spdx.json");
        fs::write(&p, serde_json::to_vec_pretty(&doc).expect("json")).map_err(Error::io(&p))
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
        kernel,
        rootfs,
        image,
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
