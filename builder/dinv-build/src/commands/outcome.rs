//! What a command returns, and the formatting helpers the commands share.

use serde_json::Value;

use crate::Error;

/// A command's result, for people (text) and pipelines (JSON).
pub trait Outcome {
    /// What the command prints on stdout in text mode.
    fn text(&self) -> String;
    /// The JSON object printed with `--json` (`"ok": true` is added).
    fn json(&self) -> serde_json::Map<String, Value>;
    /// True when the text is a summary `-q` hides, false when it is the
    /// command's product (`show`, `resolve`).
    fn is_summary(&self) -> bool {
        true
    }
    /// A line for stderr, hidden by `-q` (timings).
    fn note(&self) -> Option<String> {
        None
    }
    /// The error the command ends with after printing (verify's differences).
    fn failure(&self) -> Option<Error> {
        None
    }
}

pub(super) use crate::progress::human;

/// A JSON object from `json!({...})`.
pub(super) fn object(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("outcomes are objects"),
    }
}
