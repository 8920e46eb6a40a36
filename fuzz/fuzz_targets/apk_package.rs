//! A whole `.apk` (`dinv_apk::package::verify`): against the trusted key,
//! and against the checksum an index would list (computed here from the
//! input, so the data hash and the rest of the path run even when the
//! signature is broken), then the data member unpacked.
#![no_main]

use dinv_apk::{package, segments, sign, ApkCheck, Checksum, Keyring};
use dinv_fuzz::{apk_keyring, drain_tar, APK_NAME, APK_VERSION};
use libfuzzer_sys::fuzz_target;

fn check<'a>(checksum: Option<&'a Checksum>, keys: Option<&'a Keyring>) -> ApkCheck<'a> {
    ApkCheck { name: APK_NAME, version: APK_VERSION, checksum, keys }
}

fuzz_target!(
    // Generating the key takes seconds under ASan: not part of any input's time.
    init: {
        dinv_fuzz::apk_keyring();
    },
    |data: &[u8]| {
    let mut ok = Vec::new();
    ok.extend(package::verify(data, &check(None, Some(apk_keyring()))).ok());
    // The identities an index could list: the control member alone, or
    // everything after the signature (old packages without datahash).
    if let Ok(sigs) = sign::read_signatures(data) {
        let start = sigs.signed_start;
        if let Ok(end) = segments::read_member_into(data, start, &mut std::io::sink()) {
            for identity in [&data[start..end], &data[start..]] {
                let c = Checksum::sha1_of(identity);
                ok.extend(package::verify(data, &check(Some(&c), None)).ok());
            }
        }
    }
    let _ = package::verify(data, &check(None, None));
    for v in ok.iter().take(1) {
        let _ = v.pkginfo.to_text();
        drain_tar(v.data_reader(data));
    }
});
