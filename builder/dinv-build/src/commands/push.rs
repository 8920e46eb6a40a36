//! `push`: upload a built image to a registry.

use std::path::Path;

use serde_json::json;

use super::outcome::{object, Outcome};
use crate::push::{PushReport, Reference};
use crate::Result;

struct Pushed(PushReport);

impl Outcome for Pushed {
    fn text(&self) -> String {
        let r = &self.0;
        format!("pushed {}@{} ({} blobs uploaded, {} already there)\n", r.reference, r.manifest_digest, r.blobs_uploaded, r.blobs_present)
    }

    fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        object(json!({"push": self.0}))
    }
}

pub fn run(image: &Path, reference: &str, plain_http: bool) -> Result<Box<dyn Outcome>> {
    let r = Reference::parse(reference)?;
    Ok(Box::new(Pushed(crate::push::push(image, &r, plain_http)?)))
}
