//! apk gzip segments and signature members: `segments::split`,
//! `sign::read_signatures` (+ `sign::verify`), and signed/unsigned index
//! reading (`index::read_index`, `index::read_index_unverified`).
#![no_main]

use std::io::Read;

use dinv_apk::{index, segments, sign};
use dinv_fuzz::apk_keyring;
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    // Generating the key takes seconds under ASan: not part of any input's time.
    init: {
        dinv_fuzz::apk_keyring();
    },
    |data: &[u8]| {
    if let Ok(ranges) = segments::split(data) {
        for r in ranges.iter().take(4) {
            let _ = segments::read_member(data, r.start);
        }
    }
    let mut all = Vec::new();
    let _ = segments::decompress_slice(data).take(16 << 20).read_to_end(&mut all);
    if let Ok(sigs) = sign::read_signatures(data) {
        let signed = &data[sigs.signed_start..];
        let _ = sign::verify(apk_keyring(), &sigs.signatures, signed);
    }
    let _ = index::read_index_unverified(data);
    let _ = index::read_index(data, apk_keyring());
});
