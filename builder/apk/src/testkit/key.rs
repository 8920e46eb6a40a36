//! Signing keys for fixtures.

use std::sync::OnceLock;

use rand::rngs::StdRng;
use rand::SeedableRng;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::{RsaPrivateKey, RsaPublicKey};

use crate::sign::SigAlgo;
use crate::Keyring;

/// A private key and the file name its public half is known by.
#[derive(Clone, Debug)]
pub struct TestKey {
    /// e.g. `test-0@dinv.invalid-00000000.rsa.pub`.
    pub name: String,
    pub private: RsaPrivateKey,
}

impl TestKey {
    /// Generates a key deterministically from `seed`.
    pub fn generate(name: &str, bits: usize, seed: u64) -> TestKey {
        let mut rng = StdRng::seed_from_u64(seed);
        let private = RsaPrivateKey::new(&mut rng, bits).expect("RSA key generation");
        TestKey { name: name.to_string(), private }
    }

    /// The public key.
    pub fn public(&self) -> RsaPublicKey {
        self.private.to_public_key()
    }

    /// The public key as `BEGIN PUBLIC KEY` PEM (what Alpine ships).
    pub fn public_pem(&self) -> String {
        self.public().to_public_key_pem(LineEnding::LF).expect("PEM encoding")
    }

    /// A keyring trusting only this key.
    pub fn keyring(&self) -> Keyring {
        let mut k = Keyring::new();
        k.insert(&self.name, self.public());
        k
    }

    /// Signs `data` as apk does (PKCS#1 v1.5 over the digest).
    pub fn sign(&self, algo: SigAlgo, data: &[u8]) -> Vec<u8> {
        self.private.sign(algo.scheme(), &algo.digest(data)).expect("RSA signing")
    }
}

/// Process-wide cached 2048-bit keys (generation is slow), `slot` 0..8.
pub fn shared_key(slot: usize) -> &'static TestKey {
    static KEYS: [OnceLock<TestKey>; 8] = [const { OnceLock::new() }; 8];
    KEYS[slot].get_or_init(|| {
        let name = format!("test-{slot}@dinv.invalid-{:08x}.rsa.pub", 0x6165_ee59u32.wrapping_add(slot as u32));
        TestKey::generate(&name, 2048, 1000 + slot as u64)
    })
}
