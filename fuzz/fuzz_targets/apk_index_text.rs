//! `APKINDEX` text (`dinv_apk::index::parse_text`), then what the builder
//! does with the entries: write them back, re-read them, turn them into
//! solver candidates.
#![no_main]

use dinv_apk::index::{format_text, parse_text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(entries) = parse_text(text) else { return };
    for e in &entries {
        let _ = e.label();
        let _ = e.is_installable();
        let _ = e.to_candidate(0, Some("edge"));
    }
    // What we write we must be able to read again (values with a newline
    // cannot round-trip, so only check entries without one).
    let clean = |s: &str| !s.contains('\n');
    if entries.iter().all(|e| {
        clean(&e.name)
            && clean(&e.version)
            && clean(&e.description)
            && clean(&e.url)
            && clean(&e.license)
            && e.extra.iter().all(|(_, v)| clean(v))
    }) {
        let again = format_text(&entries);
        let _ = parse_text(&again);
    }
});
