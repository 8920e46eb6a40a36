//! `.apk` files assembled from fuzzed tar streams: the input is the
//! uncompressed signature, control and data tars (any number of parts,
//! separated by `dinv_fuzz::PART_MARKER`); each gets its header checksums
//! repaired and is gzipped here, so mutations reach the tar headers and
//! names inside the members, which raw `.apk` bytes (deflate, CRC) hide
//! from a fuzzer. Then `package::verify` against the checksum an index
//! would list, signatures, index reading, and the data member unpacked.
#![no_main]

use dinv_apk::{index, package, segments, sign, ApkCheck, Checksum};
use dinv_fuzz::{apk_keyring, drain_tar, fix_tar_checksums, gzip_fast, split_parts, APK_NAME, APK_VERSION};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    // Generating the key takes seconds under ASan: not part of any input's time.
    init: {
        dinv_fuzz::apk_keyring();
    },
    |data: &[u8]| {
    let parts = split_parts(data);
    if parts.len() > 8 {
        return;
    }
    let apk: Vec<u8> = parts.iter().flat_map(|p| gzip_fast(&fix_tar_checksums(p))).collect();
    let _ = index::read_index_unverified(&apk);
    let Ok(sigs) = sign::read_signatures(&apk) else { return };
    let _ = sign::verify(apk_keyring(), &sigs.signatures, &apk[sigs.signed_start..]);
    let start = sigs.signed_start;
    let Ok(end) = segments::read_member_into(&apk, start, &mut std::io::sink()) else { return };
    for identity in [&apk[start..end], &apk[start..]] {
        let c = Checksum::sha1_of(identity);
        let check = ApkCheck { name: APK_NAME, version: APK_VERSION, checksum: Some(&c), keys: None };
        if let Ok(v) = package::verify(&apk, &check) {
            drain_tar(v.data_reader(&apk));
        }
    }
});
