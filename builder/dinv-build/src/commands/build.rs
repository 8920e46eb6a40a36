//! `build`: every artifact into the output directory.

use serde_json::json;

use super::outcome::{human, object, Outcome};
use crate::emit::report::Report;
use crate::error::Stage;
use crate::pipeline::{self, BuildOptions};
use crate::recipe::LoadedRecipe;
use crate::{Context, Result};

struct Built(pipeline::Built);

/// `built OUT in N s (stages)` and the files.
fn one(r: &Report) -> String {
    let times: Vec<String> = Stage::ALL.iter().filter_map(|st| r.stages.get(st.name()).map(|v| format!("{st} {v:.1} s"))).collect();
    let mut out = format!("built {} in {:.1} s ({}):\n", r.out_dir.display(), r.seconds, times.join(", "));
    for o in &r.outputs {
        out.push_str(&format!("  {:28} {:>10}  sha256:{}\n", o.name, human(o.size), &o.sha256[..16]));
    }
    // Debian sources: packages per suite, and whether the guest is current.
    for line in r.current.iter().flat_map(|c| c.lines()) {
        out.push_str(&format!("{line}\n"));
    }
    out
}

impl Outcome for Built {
    fn text(&self) -> String {
        match &self.0 {
            pipeline::Built::One(r) => one(r),
            pipeline::Built::Platforms(p) => {
                let mut out: String = p.platforms.values().map(one).collect();
                let names: Vec<&str> = p.platforms.keys().map(String::as_str).collect();
                out.push_str(&format!("built {} ({}) in {:.1} s:\n", p.out_dir.display(), names.join(", "), p.seconds));
                for o in &p.outputs {
                    out.push_str(&format!("  {:28} {:>10}  sha256:{}\n", o.name, human(o.size), &o.sha256[..16]));
                }
                out.push_str(&format!("  {:28} {:>10}  {}\n", "oci/ (image index)", "", p.image.index_digest));
                out
            }
        }
    }

    fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        match &self.0 {
            pipeline::Built::One(r) => object(json!({"report": r})),
            pipeline::Built::Platforms(p) => object(json!({"report": p})),
        }
    }
}

pub fn run(ctx: &Context, l: &LoadedRecipe, opts: &BuildOptions) -> Result<Box<dyn Outcome>> {
    Ok(Box::new(Built(pipeline::build(ctx, l, opts)?)))
}
