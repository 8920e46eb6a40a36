//! apk dependency atoms and lists (`ApkDep::parse`, `ApkDep::parse_list`)
//! and apk version ordering (`dinv_apk::version`). Input: `atoms\nversion
//! \nversion`.
#![no_main]

use std::cmp::Ordering;

use dinv_apk::{version, ApkDep, ApkVersions};
use dinv_fuzz::split_at_byte;
use dinv_solver::VersionScheme;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (atoms, rest) = split_at_byte(text.as_bytes(), b'\n');
    let (a, b) = split_at_byte(rest, b'\n');
    let (atoms, a, b) = (
        std::str::from_utf8(atoms).unwrap_or(""),
        std::str::from_utf8(a).unwrap_or(""),
        std::str::from_utf8(b).unwrap_or(""),
    );
    let _ = ApkDep::parse(atoms);
    if let Ok(list) = ApkDep::parse_list(atoms) {
        for d in &list {
            let _ = d.matches_version(a);
            // Writing an atom and parsing it again gives the same atom.
            let again = ApkDep::parse(&d.to_string()).expect("a written atom parses");
            assert_eq!(&again, d);
        }
    }
    let _ = version::is_valid(a);
    assert_eq!(version::compare(a, a), Ordering::Equal, "{a:?} vs itself");
    let _ = version::compare(a, b);
    let _ = version::compare_fuzzy(a, b);
    let _ = version::fuzzy_match(a, b);
    let _ = ApkVersions.compare(b, a);
});
