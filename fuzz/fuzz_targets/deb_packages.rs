//! deb822 paragraphs and `Packages` indices (`dinv_deb::deb822`,
//! `dinv_deb::parse_packages_bytes`), each record through to a solver
//! candidate as the Debian source does.
#![no_main]

use dinv_deb::{deb822, parse_packages_bytes, to_candidate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(paras) = deb822::parse_all(text, "fuzz") {
            for p in &paras {
                let _ = p.get("Package").map(deb822::first_line);
            }
        }
    }
    if let Ok(records) = parse_packages_bytes(data, "Packages") {
        for r in &records {
            let _ = to_candidate(r, 0, "amd64");
            let _ = dinv_deb::validate_version(&r.version);
        }
    }
});
