//! `Release` text (`dinv_deb::Release::parse`): fields, the SHA256 list,
//! dates and validity.
#![no_main]

use dinv_deb::Release;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = dinv_deb::release::parse_date(text);
    let Ok(r) = Release::parse(text) else { return };
    let _ = r.check_valid_at(1_700_000_000);
    for c in &r.components {
        for a in &r.architectures {
            for f in r.packages_indices(c, a) {
                let _ = (Release::by_hash_path(f), f.compression());
            }
        }
    }
});
