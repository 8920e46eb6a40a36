//! `cache du` and `cache prune`: what the cache holds, and removing what no
//! recent build uses (see `cache::gc`).

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::outcome::{human, object, Outcome};
use crate::cache::gc::{self, Count, Pruned, Usage};
use crate::{Context, Error, Result};

fn buckets_json(buckets: &[(&str, Count)]) -> serde_json::Value {
    buckets.iter().map(|(name, c)| (name.to_string(), json!({"files": c.files, "bytes": c.bytes}))).collect::<serde_json::Map<_, _>>().into()
}

impl Outcome for Usage {
    fn text(&self) -> String {
        let mut s = format!("{}\n", self.root.display());
        for (name, c) in &self.buckets {
            s += &format!("  {name:<9} {:>10}  {} files\n", human(c.bytes), c.files);
        }
        s += &format!("  {:<9} {:>10}  {} files; {} recorded builds\n", "total", human(self.total.bytes), self.total.files, self.roots);
        s
    }

    fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        object(json!({"cache": self.root, "buckets": buckets_json(&self.buckets), "bytes": self.total.bytes, "files": self.total.files, "roots": self.roots}))
    }

    fn is_summary(&self) -> bool {
        false
    }
}

impl Outcome for Pruned {
    fn text(&self) -> String {
        let verb = if self.dry_run { "would remove" } else { "removed" };
        let mut s = format!(
            "{}: {verb} {} in {} files; kept {} in {} files, used by {} recorded builds",
            self.root.display(),
            human(self.removed_total.bytes),
            self.removed_total.files,
            human(self.kept_total.bytes),
            self.kept_total.files,
            self.roots_kept
        );
        if self.roots_removed > 0 {
            s += &format!(" ({} older records {})", self.roots_removed, if self.dry_run { "would go" } else { "dropped" });
        }
        s.push('\n');
        for (name, c) in self.removed.iter().filter(|(_, c)| c.files > 0) {
            s += &format!("  {name:<9} {:>10}  {} files\n", human(c.bytes), c.files);
        }
        s
    }

    fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        object(json!({
            "cache": self.root, "dry_run": self.dry_run,
            "roots_kept": self.roots_kept, "roots_removed": self.roots_removed,
            "removed": buckets_json(&self.removed),
            "removed_bytes": self.removed_total.bytes, "removed_files": self.removed_total.files,
            "kept_bytes": self.kept_total.bytes, "kept_files": self.kept_total.files,
        }))
    }
}

fn missing(root: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::Io { path: root.to_path_buf(), source: std::io::Error::new(e.kind(), "no dinv-build cache here (see --cache-dir)") }
    } else {
        Error::io(root)(e)
    }
}

/// `cache du`.
pub fn du(ctx: &Context) -> Result<Box<dyn Outcome>> {
    let root = ctx.cache_root();
    Ok(Box::new(gc::usage(&root).map_err(|e| missing(&root, e))?))
}

/// `cache prune`: keeps what builds recorded within `days` use.
pub fn prune(ctx: &Context, days: f64, dry_run: bool, wait: bool) -> Result<Box<dyn Outcome>> {
    if !(0.0..=36_500.0).contains(&days) {
        return Err(Error::Usage(format!("--older-than {days}: expected days from 0 to 36500")));
    }
    let root = ctx.cache_root();
    let pruned = gc::prune(&root, Duration::from_secs_f64(days * 86_400.0), dry_run, wait).map_err(|e| missing(&root, e))?;
    Ok(Box::new(pruned))
}
