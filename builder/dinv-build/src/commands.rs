//! The subcommands, as library functions the CLI calls.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use crate::pipeline::{self, Resolved};
use crate::recipe::{self, LoadedRecipe};
use crate::{Context, Error, Result};

/// Options of `build`.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    pub out: Option<PathBuf>,
    pub offline: bool,
    /// Install exactly the packages of RECIPE.lock (no solver, no indexes).
    pub locked: bool,
    /// Read package blobs from this vendor directory instead of their URLs.
    pub vendor: Option<PathBuf>,
}

/// Loads and validates a recipe.
pub fn load(path: &Path) -> Result<LoadedRecipe> {
    Ok(recipe::load(path)?)
}

/// `check`: validate only.
pub fn check(ctx: &Context, path: &Path) -> Result<()> {
    let l = load(path)?;
    if ctx.json {
        println!("{}", json!({"ok": true, "recipe": path, "files": l.files}));
    } else if !ctx.quiet {
        println!("{}: ok ({} file{})", path.display(), l.files.len(), if l.files.len() == 1 { "" } else { "s" });
    }
    Ok(())
}

/// `show`: the merged recipe with the origin of every value.
pub fn show(ctx: &Context, path: &Path) -> Result<()> {
    let l = load(path)?;
    let cwd = std::env::current_dir().unwrap_or_default();
    let rel = |p: &Path| p.strip_prefix(&cwd).unwrap_or(p).display().to_string();
    if ctx.json {
        let origins: serde_json::Map<String, serde_json::Value> =
            l.origins.iter().map(|(k, v)| (k.clone(), json!(format!("{}:{}", rel(&v.file), v.line)))).collect();
        println!("{}", json!({"ok": true, "recipe": l.merged, "origins": origins}));
        return Ok(());
    }
    print!("{}", crate::show::render(&l.merged, &|key| l.locate(key).map(|loc| format!("{}:{}", rel(&loc.file), loc.line))));
    Ok(())
}

fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// `push`: upload a built image to a registry.
pub fn push(ctx: &Context, image: &Path, reference: &str, plain_http: bool) -> Result<()> {
    let r = crate::push::Reference::parse(reference)?;
    let report = crate::push::push(image, &r, plain_http)?;
    if ctx.json {
        println!("{}", json!({"ok": true, "push": report}));
    } else if !ctx.quiet {
        println!(
            "pushed {}@{} ({} blobs uploaded, {} already there)",
            report.reference, report.manifest_digest, report.blobs_uploaded, report.blobs_present
        );
    }
    Ok(())
}

/// `new`: write a starter team recipe.
pub fn new(ctx: &Context, name: &str, dir: Option<PathBuf>, extends: &Path) -> Result<()> {
    let dir = dir.unwrap_or_else(|| if Path::new("recipes").is_dir() { PathBuf::from("recipes") } else { PathBuf::from(".") });
    let path = crate::starter::write_starter(name, &dir, extends)?;
    if ctx.json {
        println!("{}", json!({"ok": true, "recipe": path}));
    } else if !ctx.quiet {
        println!("wrote {}; build it with `dinv-build {}`", path.display(), path.display());
    }
    Ok(())
}

/// `resolve`: print the package sets (with `locked`, those of RECIPE.lock).
pub fn resolve(ctx: &Context, path: &Path, locked: bool) -> Result<()> {
    let l = load(path)?;
    let started = Instant::now();
    let env = pipeline::Env::new(ctx, false)?;
    let resolved = pipeline::resolve_with(&env, &l, locked)?;
    print_resolved(ctx, &resolved, started.elapsed().as_secs_f64());
    Ok(())
}

fn print_resolved(ctx: &Context, r: &Resolved, secs: f64) {
    if ctx.json {
        let sets: Vec<_> = r.sets.iter().map(|s| json!({"set": s.set, "source": s.source, "packages": s.packages})).collect();
        println!("{}", json!({"ok": true, "seconds": secs, "sets": sets}));
        return;
    }
    for s in &r.sets {
        let size: u64 = s.packages.iter().map(|p| p.size).sum();
        let inst: u64 = s.packages.iter().map(|p| p.installed_size).sum();
        println!(
            "{} packages from source {:?}: {} packages, {} to download, {} installed",
            s.set,
            s.source,
            s.packages.len(),
            human(size),
            human(inst)
        );
        let wn = s.packages.iter().map(|p| p.name.len()).max().unwrap_or(0);
        let wv = s.packages.iter().map(|p| p.version.len()).max().unwrap_or(0);
        for p in &s.packages {
            println!("  {:wn$}  {:wv$}  {:>10}  {}", p.name, p.version, human(p.size), p.reasons.join("; "));
        }
    }
    if !ctx.quiet {
        eprintln!("resolved in {secs:.2} s");
    }
}

/// `lock`: resolve and write RECIPE.lock.
pub fn lock(ctx: &Context, path: &Path) -> Result<()> {
    let l = load(path)?;
    let env = pipeline::Env::new(ctx, false)?;
    let resolved = pipeline::resolve(&env, &l)?;
    let lock = crate::lock::LockFile::new(&l, &resolved)?;
    let lock_path = crate::lock::lock_path(path);
    lock.write(&lock_path)?;
    if ctx.json {
        println!("{}", json!({"ok": true, "lock": lock_path}));
    } else if !ctx.quiet {
        let n: usize = resolved.sets.iter().map(|s| s.packages.len()).sum();
        println!("wrote {} ({n} packages)", lock_path.display());
    }
    Ok(())
}

/// `build`: every artifact into the output directory.
pub fn build(ctx: &Context, path: &Path, opts: &BuildOptions) -> Result<()> {
    let l = load(path)?;
    let report = pipeline::build(ctx, &l, opts)?;
    if ctx.json {
        println!("{}", serde_json::to_string(&json!({"ok": true, "report": report})).expect("json"));
    } else if !ctx.quiet {
        println!("built {} in {:.1} s:", report.out_dir.display(), report.seconds);
        for o in &report.outputs {
            println!("  {:28} {:>10}  sha256:{}", o.name, human(o.size), &o.sha256[..16]);
        }
    }
    Ok(())
}

/// `fetch`: download and verify every package into the cache and, with
/// `vendor`, copy each blob into that directory for offline builds.
pub fn fetch(ctx: &Context, path: &Path, locked: bool, offline: bool, vendor: Option<&Path>) -> Result<()> {
    let l = load(path)?;
    let env = pipeline::Env::new(ctx, offline)?;
    let resolved = pipeline::resolve_with(&env, &l, locked)?;
    match vendor {
        Some(dir) => {
            let s = crate::vendor::write(&env, &resolved, dir)?;
            if ctx.json {
                println!("{}", json!({"ok": true, "vendor": s}));
            } else if !ctx.quiet {
                println!("vendored {} packages into {} ({} new, {})", s.packages, s.dir.display(), s.written, human(s.bytes));
            }
        }
        None => {
            let mut bytes = 0;
            let mut n = 0;
            for set in &resolved.sets {
                n += set.packages.len();
                bytes += match &resolved.sources[&set.source] {
                    pipeline::OpenSource::Apk(s) => s.fetch(&set.packages, &env.fetcher, &env.cache, &env.progress)?,
                    pipeline::OpenSource::Deb(s) => s.fetch(&set.packages, &env.fetcher, &env.cache, &env.progress)?,
                };
            }
            if ctx.json {
                println!("{}", json!({"ok": true, "packages": n, "downloaded_bytes": bytes}));
            } else if !ctx.quiet {
                println!("{n} packages in the cache ({} downloaded)", human(bytes));
            }
        }
    }
    Ok(())
}

/// `verify`: build twice and compare every output; exit 6 on a difference.
pub fn verify(ctx: &Context, path: &Path, opts: &BuildOptions) -> Result<()> {
    let l = load(path)?;
    let report = crate::verify::verify(ctx, &l, opts)?;
    let differing: Vec<String> = report
        .files
        .iter()
        .filter(|f| !f.ok)
        .map(|f| match (f.first_difference, &f.note) {
            (_, Some(n)) => format!("{} ({n})", f.name),
            (Some(at), None) => format!("{} (first difference at byte {at})", f.name),
            (None, None) => f.name.clone(),
        })
        .collect();
    if ctx.json && !differing.is_empty() {
        // One JSON document on stdout: the error, which lists the differences.
        return Err(Error::NotReproducible(differing.join(", ")));
    }
    if ctx.json {
        println!("{}", json!({"ok": report.reproducible, "verify": report}));
    } else if !ctx.quiet {
        let w = report.files.iter().map(|f| f.name.len()).max().unwrap_or(0);
        for f in &report.files {
            let status = if f.ok { "OK".to_string() } else { "DIFFERS".to_string() };
            let mut detail = String::new();
            if let Some(off) = f.first_difference.filter(|_| !f.ok) {
                detail = format!("first difference at byte {off}");
            }
            if let Some(n) = &f.note {
                detail = if detail.is_empty() { n.clone() } else { format!("{detail}; {n}") };
            }
            println!("{}", format!("  {:w$}  {status:7} {detail}", f.name).trim_end());
        }
        println!("{}: {}", path.display(), if report.reproducible { "reproducible" } else { "NOT reproducible" });
    }
    if !differing.is_empty() {
        return Err(Error::NotReproducible(differing.join(", ")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn human_sizes() {
        assert_eq!(human(12), "12 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(3 << 20), "3.0 MiB");
    }
}
