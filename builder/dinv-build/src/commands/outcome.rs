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

/// Sizes for people: `12 B`, `1.5 KiB`, `3.0 MiB`.
pub(super) fn human(bytes: u64) -> String {
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

/// A JSON object from `json!({...})`.
pub(super) fn object(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("outcomes are objects"),
    }
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
