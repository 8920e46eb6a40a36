//! Recipe errors, and where in which file they point.

use std::fmt;
use std::path::PathBuf;

/// Where a key came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A recipe problem, pointing into the file: `file:line: key: message`
/// (parts that are not known are left out).
#[derive(Debug, thiserror::Error)]
#[error("{}", render(location.as_ref(), key, message))]
pub struct RecipeError {
    pub location: Option<Location>,
    /// Dotted key path (`docker.bip`, `guest.packages[2]`).
    pub key: String,
    pub message: String,
}

fn render(location: Option<&Location>, key: &str, message: &str) -> String {
    let mut out = String::new();
    if let Some(l) = location {
        out.push_str(&format!("{l}: "));
    }
    if !key.is_empty() {
        out.push_str(&format!("{key}: "));
    }
    out.push_str(message);
    out
}

impl RecipeError {
    /// An error about the whole file (no key).
    pub fn file(location: Option<Location>, message: impl Into<String>) -> RecipeError {
        RecipeError { location, key: String::new(), message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_parts_are_left_out() {
        let at = Some(Location { file: "r.toml".into(), line: 3 });
        assert_eq!(RecipeError { location: at.clone(), key: "vm.memory".into(), message: "bad".into() }.to_string(), "r.toml:3: vm.memory: bad");
        assert_eq!(RecipeError::file(at, "invalid TOML: x").to_string(), "r.toml:3: invalid TOML: x");
        assert_eq!(RecipeError::file(None, "cannot read recipe r.toml: gone").to_string(), "cannot read recipe r.toml: gone");
    }
}
