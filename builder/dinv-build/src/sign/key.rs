//! Signing keys in cosign's formats: the encrypted private key PEM
//! (`ENCRYPTED SIGSTORE PRIVATE KEY`, or the older `ENCRYPTED COSIGN
//! PRIVATE KEY`), an unencrypted PKCS#8 (or SEC1) PEM, and the public key
//! as a SubjectPublicKeyInfo PEM. Keys are ECDSA P-256.
//!
//! The encrypted form is a JSON document inside the PEM: the passphrase
//! goes through scrypt (`kdf.params` N, r, p; `kdf.salt`) into a 32-byte
//! key that opens `ciphertext` with NaCl's secretbox (XSalsa20-Poly1305,
//! `cipher.nonce`); the plaintext is the PKCS#8 DER of the private key.
//! Byte strings are standard base64, as Go's encoding/json writes them.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use p256::ecdsa::{signature::Signer, signature::Verifier, Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The PEM label cosign (2.x) and containers/image write.
pub const ENCRYPTED_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The label of older cosign keys, still read.
pub const LEGACY_ENCRYPTED_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// scrypt cost for new keys: cosign's (N = 2^15, r = 8, p = 1).
const SCRYPT_LOG_N: u8 = 15;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;

#[derive(Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

/// An ECDSA P-256 private key, ready to sign.
pub struct PrivateKey(SigningKey);

/// An ECDSA P-256 public key, ready to verify.
#[derive(Clone, Debug)]
pub struct PublicKey(VerifyingKey);

fn bad_key(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::Usage(format!("signing key {}: {why}", path.display()))
}

fn derive(passphrase: &[u8], salt: &[u8], n: u64, r: u32, p: u32) -> std::result::Result<[u8; 32], String> {
    if n < 2 || !n.is_power_of_two() {
        return Err(format!("scrypt N = {n} is not a power of two"));
    }
    let params = scrypt::Params::new(n.trailing_zeros() as u8, r, p, 32).map_err(|e| format!("scrypt parameters: {e}"))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(passphrase, salt, &params, &mut key).map_err(|e| format!("scrypt: {e}"))?;
    Ok(key)
}

impl PrivateKey {
    /// A new random key.
    pub fn generate() -> PrivateKey {
        PrivateKey(SigningKey::random(&mut rand::rngs::OsRng))
    }

    /// Reads a key file: cosign's encrypted PEM (opened with `passphrase`)
    /// or an unencrypted PKCS#8 / SEC1 PEM. Errors name the file.
    pub fn read(path: &Path, passphrase: Option<&str>) -> Result<PrivateKey> {
        let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
        let (label, der) = pem_rfc7468::decode_vec(text.trim().as_bytes()).map_err(|e| bad_key(path, format!("not a PEM file: {e}")))?;
        match label {
            ENCRYPTED_LABEL | LEGACY_ENCRYPTED_LABEL => {
                let passphrase = passphrase.ok_or_else(|| {
                    bad_key(path, "it is encrypted: give its passphrase in DINV_SIGN_PASSPHRASE or with --sign-passphrase-file FILE")
                })?;
                Self::decrypt(&der, passphrase).map_err(|e| bad_key(path, e))
            }
            "PRIVATE KEY" => SigningKey::from_pkcs8_der(&der).map(PrivateKey).map_err(|e| bad_key(path, format!("not an ECDSA P-256 PKCS#8 key: {e}"))),
            "EC PRIVATE KEY" => p256::SecretKey::from_sec1_der(&der).map(|k| PrivateKey(k.into())).map_err(|e| bad_key(path, format!("not an ECDSA P-256 key: {e}"))),
            other => Err(bad_key(path, format!("PEM block {other:?} is no private key ({ENCRYPTED_LABEL}, {LEGACY_ENCRYPTED_LABEL} or PRIVATE KEY)"))),
        }
    }

    fn decrypt(json: &[u8], passphrase: &str) -> std::result::Result<PrivateKey, String> {
        use crypto_secretbox::aead::{Aead, KeyInit};
        let env: Envelope = serde_json::from_slice(json).map_err(|e| format!("the encrypted key is not cosign's JSON envelope: {e}"))?;
        if env.kdf.name != "scrypt" || env.cipher.name != "nacl/secretbox" {
            return Err(format!("unsupported encryption {} + {} (cosign uses scrypt + nacl/secretbox)", env.kdf.name, env.cipher.name));
        }
        let decode = |what: &str, s: &str| B64.decode(s).map_err(|e| format!("{what}: {e}"));
        let salt = decode("kdf.salt", &env.kdf.salt)?;
        let nonce = decode("cipher.nonce", &env.cipher.nonce)?;
        let ciphertext = decode("ciphertext", &env.ciphertext)?;
        if nonce.len() != 24 {
            return Err(format!("cipher.nonce is {} bytes, not 24", nonce.len()));
        }
        let key = derive(passphrase.as_bytes(), &salt, env.kdf.params.n, env.kdf.params.r, env.kdf.params.p)?;
        let cipher = crypto_secretbox::XSalsa20Poly1305::new(crypto_secretbox::Key::from_slice(&key));
        let der = cipher.decrypt(crypto_secretbox::Nonce::from_slice(&nonce), ciphertext.as_slice()).map_err(|_| "wrong passphrase (or a damaged key)".to_string())?;
        SigningKey::from_pkcs8_der(&der).map(PrivateKey).map_err(|e| format!("the decrypted key is not an ECDSA P-256 PKCS#8 key: {e}"))
    }

    /// The key encrypted under `passphrase` as cosign writes it (PEM).
    pub fn to_encrypted_pem(&self, passphrase: &str) -> String {
        use crypto_secretbox::aead::{Aead, KeyInit};
        let mut salt = [0u8; 32];
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let key = derive(passphrase.as_bytes(), &salt, 1 << SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P).expect("fixed scrypt parameters are valid");
        let der = self.0.to_pkcs8_der().expect("a P-256 key encodes");
        let cipher = crypto_secretbox::XSalsa20Poly1305::new(crypto_secretbox::Key::from_slice(&key));
        let sealed = cipher.encrypt(crypto_secretbox::Nonce::from_slice(&nonce), der.as_bytes()).expect("secretbox seals");
        let env = Envelope {
            kdf: Kdf { name: "scrypt".into(), params: ScryptParams { n: 1 << SCRYPT_LOG_N, r: SCRYPT_R, p: SCRYPT_P }, salt: B64.encode(salt) },
            cipher: Cipher { name: "nacl/secretbox".into(), nonce: B64.encode(nonce) },
            ciphertext: B64.encode(sealed),
        };
        let json = serde_json::to_vec(&env).expect("envelope serialises");
        pem_rfc7468::encode_string(ENCRYPTED_LABEL, pem_rfc7468::LineEnding::LF, &json).expect("PEM encodes")
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(*self.0.verifying_key())
    }

    /// An ASN.1 DER ECDSA signature over SHA-256 of `message` (what cosign
    /// and containers/image verify).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let sig: Signature = self.0.sign(message);
        sig.to_der().as_bytes().to_vec()
    }
}

impl PublicKey {
    /// Reads a SubjectPublicKeyInfo PEM (`PUBLIC KEY`).
    pub fn read(path: &Path) -> Result<PublicKey> {
        let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
        Self::from_pem(&text).map_err(|e| Error::Usage(format!("public key {}: {e}", path.display())))
    }

    /// Parses a SubjectPublicKeyInfo PEM.
    pub fn from_pem(text: &str) -> std::result::Result<PublicKey, String> {
        VerifyingKey::from_public_key_pem(text.trim()).map(PublicKey).map_err(|e| format!("not an ECDSA P-256 public key PEM: {e}"))
    }

    /// The SubjectPublicKeyInfo PEM.
    pub fn to_pem(&self) -> String {
        self.0.to_public_key_pem(LineEnding::LF).expect("a P-256 key encodes")
    }

    /// Does `signature` (DER) sign `message` under this key?
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        Signature::from_der(signature).is_ok_and(|s| self.0.verify(message, &s).is_ok())
    }
}

/// The passphrase for an encrypted key: `DINV_SIGN_PASSPHRASE`, or the first
/// line of `file` (never a command-line argument, which `ps` shows).
pub fn passphrase(file: Option<&Path>) -> Result<Option<String>> {
    if let Some(f) = file {
        let text = std::fs::read_to_string(f).map_err(Error::io(f))?;
        return Ok(Some(text.lines().next().unwrap_or("").to_string()));
    }
    Ok(std::env::var("DINV_SIGN_PASSPHRASE").ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_keys_round_trip_and_refuse_a_wrong_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let k = PrivateKey::generate();
        let path = dir.path().join("k.private");
        std::fs::write(&path, k.to_encrypted_pem("pass word")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"), "{text}");
        let back = PrivateKey::read(&path, Some("pass word")).unwrap();
        let sig = back.sign(b"payload");
        assert!(k.public().verify(b"payload", &sig));
        assert!(!k.public().verify(b"payload!", &sig));
        let e = PrivateKey::read(&path, Some("wrong")).err().unwrap().to_string();
        assert!(e.contains("wrong passphrase") && e.contains("k.private"), "{e}");
        let e = PrivateKey::read(&path, None).err().unwrap().to_string();
        assert!(e.contains("DINV_SIGN_PASSPHRASE"), "{e}");
        // The older label reads the same.
        std::fs::write(&path, text.replace(ENCRYPTED_LABEL, LEGACY_ENCRYPTED_LABEL)).unwrap();
        assert!(PrivateKey::read(&path, Some("pass word")).is_ok());
        // Unencrypted PKCS#8.
        std::fs::write(&path, k.0.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
        assert_eq!(PrivateKey::read(&path, None).unwrap().public().to_pem(), k.public().to_pem());
        assert!(PublicKey::from_pem(&k.public().to_pem()).is_ok());
    }
}
