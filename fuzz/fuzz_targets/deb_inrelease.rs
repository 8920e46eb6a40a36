//! Clear-signed `InRelease` (`dinv_deb::verify_clearsigned`) against a
//! fixed keyring, then the signed text as a Release.
#![no_main]

use dinv_deb::{verify_clearsigned, Release};
use dinv_fuzz::deb_keyring;
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    // Generating the key takes seconds under ASan: not part of any input's time.
    init: {
        dinv_fuzz::deb_keyring();
    },
    |data: &[u8]| {
    if let Ok(v) = verify_clearsigned(data, deb_keyring(), "InRelease") {
        let _ = Release::parse(&v.text);
    }
});
