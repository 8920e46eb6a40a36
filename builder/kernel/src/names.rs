//! Module names.

/// Module names compare with `-` and `_` as the same character; this is
/// the canonical (underscore) form.
pub fn normalize_name(name: &str) -> String {
    name.replace('-', "_")
}
