//! OpenPGP keyrings (`dinv_deb::Keyring::from_bytes`, binary or armored),
//! then a good clear-signed InRelease and a detached signature checked
//! against the keys read: fuzzed subkeys, bindings, revocations and
//! expiry all meet the verifier.
#![no_main]

use std::sync::OnceLock;

use dinv_deb::{verify_clearsigned, verify_detached, Keyring};
use dinv_fuzz::pgp_secret_key;
use libfuzzer_sys::fuzz_target;
use pgp::composed::{CleartextSignedMessage, DetachedSignature};
use pgp::crypto::hash::HashAlgorithm;
use pgp::ser::Serialize;
use pgp::types::Password;
use rand::SeedableRng;

const TEXT: &str = "Origin: Fuzz\nSuite: stable\nCodename: fuzz\nSHA256:\n 0000000000000000000000000000000000000000000000000000000000000000 0 main/binary-amd64/Packages\n";

/// (clear-signed by the primary key, detached signature by the subkey).
fn signed() -> &'static (Vec<u8>, Vec<u8>) {
    static S: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    S.get_or_init(|| {
        let key = pgp_secret_key();
        let rng = || rand::rngs::StdRng::seed_from_u64(1);
        let clear = CleartextSignedMessage::sign(rng(), TEXT, &key.primary_key, &Password::empty())
            .expect("clear-signing")
            .to_armored_bytes(Default::default())
            .expect("armor");
        let sub = &key.secret_subkeys[0].key;
        let det = DetachedSignature::sign_binary_data(rng(), sub, &Password::empty(), HashAlgorithm::Sha256, TEXT.as_bytes())
            .expect("signing");
        let mut bin = Vec::new();
        det.to_writer(&mut bin).expect("serialising");
        (clear, bin)
    })
}

fuzz_target!(
    // Signing with the generated keys takes seconds under ASan: not part of any input's time.
    init: {
        signed();
    },
    |data: &[u8]| {
    let Ok(keyring) = Keyring::from_bytes(data) else { return };
    let _ = keyring.fingerprints();
    let _ = keyring.to_armored();
    let (clear, detached) = signed();
    let _ = verify_clearsigned(clear, &keyring, "InRelease");
    let _ = verify_detached(TEXT.as_bytes(), detached, &keyring, "Release");
});
