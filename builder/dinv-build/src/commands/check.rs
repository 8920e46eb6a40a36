//! `check`: validate a recipe, and check the guest kernel against the
//! recipe's config fragments when the kernel package is already in the
//! cache. No network: what is not cached is a note, not an error.

use std::path::{Path, PathBuf};

use dinv_fstree::Tree;
use serde_json::json;

use super::outcome::{object, Outcome};
use crate::configure::check_kernel;
use crate::context::{BuildEnv, Context};
use crate::lock;
use crate::recipe::LoadedRecipe;
use crate::resolve::{self, Resolved};
use crate::Result;

/// What became of the kernel check.
enum KernelCheck {
    /// The fragments hold for this kernel.
    Held { package: String, release: String, modules: usize },
    /// Not checked, and why (what is missing from the cache).
    Skipped(String),
}

struct Checked {
    recipe: PathBuf,
    files: Vec<PathBuf>,
    /// Per platform (`None`: the recipe has one).
    kernels: Vec<(Option<String>, Option<KernelCheck>)>,
}

/// ` (linux/arm64)` after a line about one platform of several.
fn of(platform: &Option<String>) -> String {
    platform.as_ref().map(|p| format!(" ({p})")).unwrap_or_default()
}

impl Outcome for Checked {
    fn text(&self) -> String {
        let n = self.files.len();
        let mut out = format!("{}: ok ({n} file{})\n", self.recipe.display(), if n == 1 { "" } else { "s" });
        for (platform, kernel) in &self.kernels {
            if let Some(KernelCheck::Held { package, release, modules }) = kernel {
                out.push_str(&format!("kernel{}: {package} (kernel {release}) meets the fragments ({modules} module{} to load)\n", of(platform), if *modules == 1 { "" } else { "s" }));
            }
        }
        out
    }

    fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        let kernel = |k: &Option<KernelCheck>| match k {
            None => serde_json::Value::Null,
            Some(KernelCheck::Held { package, release, modules }) => json!({"checked": true, "package": package, "release": release, "modules": modules}),
            Some(KernelCheck::Skipped(why)) => json!({"checked": false, "note": why}),
        };
        match &self.kernels[..] {
            [(None, k)] => object(json!({"recipe": self.recipe, "files": self.files, "kernel": kernel(k)})),
            many => {
                let platforms: serde_json::Map<String, serde_json::Value> = many.iter().map(|(p, k)| (p.clone().unwrap_or_default(), json!({"kernel": kernel(k)}))).collect();
                object(json!({"recipe": self.recipe, "files": self.files, "platforms": platforms}))
            }
        }
    }

    fn note(&self) -> Option<String> {
        let notes: Vec<String> = self
            .kernels
            .iter()
            .filter_map(|(p, k)| match k {
                Some(KernelCheck::Skipped(why)) => Some(format!("note: kernel{} not checked: {why}", of(p))),
                _ => None,
            })
            .collect();
        (!notes.is_empty()).then(|| notes.join("\n"))
    }
}

/// Loading validated the recipe; templates are rendered as the build
/// would; the kernel is checked if the cache allows it.
pub fn run(ctx: &Context, path: &Path, l: &LoadedRecipe) -> Result<Box<dyn Outcome>> {
    // Every platform's recipe, for one with `image.platforms`.
    let mut kernels = Vec::new();
    for v in l.builds() {
        crate::configure::overlays::check(&v.recipe).map_err(|(key, message)| v.error(&key, message))?;
        kernels.push((v.platform.map(|a| a.platform()), check_cached_kernel(ctx, v)?));
    }
    Ok(Box::new(Checked { recipe: path.to_path_buf(), files: l.files.clone(), kernels }))
}

/// The build's kernel check, offline: the guest set from the lock file (when
/// it is up to date) or the cached indexes, then `kernel.package` and the
/// packages it depends on directly (where a metapackage's kernel is) from
/// the cache. `None` when there is nothing to check.
fn check_cached_kernel(ctx: &Context, l: &LoadedRecipe) -> Result<Option<KernelCheck>> {
    let k = &l.recipe.kernel;
    if k.fragments.is_empty() {
        return Ok(None);
    }
    let skip = |why: String| Ok(Some(KernelCheck::Skipped(why)));
    let Some(package) = &k.package else {
        return skip("kernel.package is not set; the build finds the kernel in the guest tree and checks it then".into());
    };
    // Opening a cache creates it: a first `check` leaves no cache behind.
    if !ctx.cache_root().is_dir() {
        return skip(format!("nothing is cached yet ({}); `dinv-build fetch` downloads the packages", ctx.cache_root().display()));
    }
    let env = ctx.env(true)?;
    let resolved = match resolve_offline(&env, l) {
        Ok(r) => r,
        Err(e) => return skip(format!("the guest packages do not resolve offline ({e}); `dinv-build fetch` downloads the indexes")),
    };
    let guest = &resolved.guest.packages;
    if !guest.iter().any(|g| &g.name == package) {
        return Err(l.error("kernel.package", format!("{package:?} is not in the resolved guest packages; add it to guest.packages")).into());
    }
    // The solver's reasons say what depends on what.
    let depends = format!("{package} depends on ");
    let wanted: Vec<_> = guest.iter().filter(|g| &g.name == package || g.reasons.iter().any(|r| r.starts_with(&depends))).cloned().collect();
    let source = resolved.source_of(&resolved.guest);
    for p in &wanted {
        if !source.cache_path(&env.cache, p)?.is_file() {
            return skip(format!("{} is not in the cache; `dinv-build fetch` downloads it", p.id()));
        }
    }
    let mut tree = Tree::new();
    source.unpack(&wanted, &env, &mut tree)?;
    Ok(Some(match check_kernel(l, guest, &tree)? {
        Some((package, c)) => KernelCheck::Held { package, release: c.release, modules: c.report.module_names().len() },
        None => KernelCheck::Skipped(format!("neither {package} nor a package it depends on directly ships a kernel; the build checks the kernel it finds")),
    }))
}

/// The guest set from RECIPE.lock when it matches the recipe, else from
/// the cached indexes (the env is offline).
fn resolve_offline(env: &BuildEnv, l: &LoadedRecipe) -> Result<Resolved> {
    let lock_path = lock::lock_path(&l.path);
    if lock_path.is_file() {
        match lock::LockFile::read(&lock_path).and_then(|lock| resolve::resolve_locked(env, l, &lock, &lock_path)) {
            Ok(r) => return Ok(r),
            Err(e) => tracing::info!("lock file not used for the kernel check: {e}"),
        }
    }
    resolve::resolve(env, l)
}
