//! Detached OpenPGP signatures (`dinv_deb::verify_detached`, `Release` +
//! `Release.gpg`) against a fixed keyring. Input: `signature \0 data`
//! (the signature first: armored signatures hold no NUL).
#![no_main]

use dinv_deb::verify_detached;
use dinv_fuzz::{deb_keyring, split_at_byte};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    // Generating the key takes seconds under ASan: not part of any input's time.
    init: {
        dinv_fuzz::deb_keyring();
    },
    |data: &[u8]| {
    let (signature, signed) = split_at_byte(data, 0);
    let _ = verify_detached(signed, signature, deb_keyring(), "Release");
    // The whole input as a binary signature over nothing.
    let _ = verify_detached(b"", data, deb_keyring(), "Release");
});
