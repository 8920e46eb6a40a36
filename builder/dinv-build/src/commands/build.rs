//! `build`: every artifact into the output directory.

use serde_json::json;

use super::outcome::{human, object, Outcome};
use crate::emit::report::Report;
use crate::error::Stage;
use crate::pipeline::{self, BuildOptions};
use crate::recipe::LoadedRecipe;
use crate::{Context, Result};

struct Built(Report);

impl Outcome for Built {
    fn text(&self) -> String {
        let r = &self.0;
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

    fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        object(json!({"report": self.0}))
    }
}

pub fn run(ctx: &Context, l: &LoadedRecipe, opts: &BuildOptions) -> Result<Box<dyn Outcome>> {
    Ok(Box::new(Built(pipeline::build(ctx, l, opts)?)))
}
