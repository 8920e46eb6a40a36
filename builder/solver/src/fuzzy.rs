//! apk's fuzzy version match (`~`).

/// apk `~prefix`: equal, or `prefix` followed by a component boundary.
pub(crate) fn fuzzy_ok(version: &str, prefix: &str) -> bool {
    if prefix.is_empty() {
        return true;
    }
    let Some(rest) = version.strip_prefix(prefix) else {
        return false;
    };
    let last = prefix.chars().next_back().unwrap_or('.');
    match rest.chars().next() {
        None => true,
        Some('.' | '_' | '-') => true,
        // `~1.2` matches `1.2a` (a letter suffix starts a new component).
        Some(c) if c.is_ascii_alphabetic() => last.is_ascii_digit(),
        // `~1.2.` already ends at a boundary.
        Some(_) => matches!(last, '.' | '_' | '-'),
    }
}

