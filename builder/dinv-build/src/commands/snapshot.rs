//! `snapshot OUT`: boot a built image once and write the snapshot image.

use std::path::Path;

use serde_json::json;

use super::outcome::{human, object, Outcome};
use crate::snapshot::{self, SnapshotOptions, SnapshotReport};
use crate::{Context, Result};

impl Outcome for SnapshotReport {
    fn text(&self) -> String {
        if let Some(why) = &self.skipped {
            return format!("no snapshot: {why}; nothing written\n");
        }
        let steps: Vec<String> = self.steps.iter().map(|(k, v)| format!("{k} {v:.1} s")).collect();
        let mut out = format!("snapshot in {} in {:.1} s ({}):\n", self.out_dir.display(), self.seconds, steps.join(", "));
        if let (Some(i), Some(b)) = (&self.image, &self.base_image) {
            out.push_str(&format!("  {} extends {}@{}\n", i.reference, b.reference, b.manifest_digest));
            out.push_str(&format!("  snapshot layer {} ({})\n", human(i.layer_bytes), i.layer_digest));
            out.push_str(&format!("  image manifest {}\n", i.manifest_digest));
        }
        out
    }

    fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        object(json!({"snapshot": self}))
    }
}

pub fn run(ctx: &Context, out: &Path, opts: &SnapshotOptions) -> Result<Box<dyn Outcome>> {
    Ok(Box::new(snapshot::snapshot(out, opts, &ctx.progress(), Some(ctx.cache_root()))?))
}
