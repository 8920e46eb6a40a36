//! Debian versions (`compare_versions`, `validate_version`) and
//! relationship fields (`parse_relations`, `parse_dependencies`,
//! `parse_conflicts`, `parse_provides`). Input: `field\nversion\nversion`.
#![no_main]

use std::cmp::Ordering;

use dinv_deb::{compare_versions, parse_conflicts, parse_dependencies, parse_provides, parse_relations, validate_version, DebVersions};
use dinv_solver::VersionScheme;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The field may span lines (continuations); versions are the last two lines.
    let (field, versions) = match text.rsplitn(3, '\n').collect::<Vec<_>>().as_slice() {
        [b, a, field] => (*field, (*a, *b)),
        _ => (text, ("", "")),
    };
    let _ = parse_relations(field, "fuzz Depends");
    let _ = parse_dependencies(field, "amd64", "fuzz Depends");
    let _ = parse_conflicts(field, "amd64", "fuzz Conflicts");
    let _ = parse_provides(field, "fuzz Provides");
    let (a, b) = versions;
    let _ = (validate_version(a), validate_version(b));
    let ab = compare_versions(a, b);
    assert_eq!(ab.reverse(), compare_versions(b, a), "{a:?} vs {b:?}");
    assert_eq!(compare_versions(a, a), Ordering::Equal);
    let _ = DebVersions.compare(a, b);
});
