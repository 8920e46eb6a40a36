//! OpenPGP verification of archive metadata: clear-signed `InRelease` and
//! detached `Release` + `Release.gpg`, against a keyring given as bytes.
//!
//! Policy (as apt applies it with gpgv): at least one signature must verify
//! with a key from the keyring; signatures by keys not in the keyring are
//! ignored; a signature by a key in the keyring that does not verify fails
//! the whole file, because it means the bytes were altered.

use pgp::composed::{CleartextSignedMessage, Deserializable, DetachedSignature, SignedPublicKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::KeyDetails;

use crate::DebError;

/// Trusted public keys (binary keyrings such as the archive keyring
/// package's `.gpg` files, or ASCII-armored keys).
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

/// The key that made a good signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signer {
    /// Fingerprint (upper-case hex) of the key that signed: the primary key
    /// or one of its signing subkeys.
    pub fingerprint: String,
    /// Fingerprint of the primary key (equal to `fingerprint` when the
    /// primary key signed).
    pub primary_fingerprint: String,
    /// The key's first user ID, for messages.
    pub user_id: String,
}

/// A verified document: exactly the bytes that were signed, and who signed.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The signed text with `\n` line endings (for InRelease: without the
    /// armor, dash-escaping undone).
    pub text: String,
    /// Every key in the keyring whose signature verified (at least one).
    pub signers: Vec<Signer>,
}

fn fpr(k: &impl KeyDetails) -> String {
    format!("{:X}", k.fingerprint())
}

impl Keyring {
    /// Reads every key from binary or ASCII-armored OpenPGP data.
    pub fn from_bytes(bytes: &[u8]) -> Result<Keyring, DebError> {
        let err = |why: String| DebError::Keyring { why };
        let (iter, _) = SignedPublicKey::from_reader_many(bytes).map_err(|e| err(format!("cannot read keys: {e}")))?;
        let keys = iter.collect::<Result<Vec<_>, _>>().map_err(|e| err(format!("cannot read a key: {e}")))?;
        if keys.is_empty() {
            return Err(err("no public keys in the data".into()));
        }
        Ok(Keyring { keys })
    }

    /// Adds the keys of another keyring.
    pub fn extend(&mut self, other: Keyring) {
        self.keys.extend(other.keys);
    }

    /// Primary-key fingerprints, upper-case hex.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys.iter().map(|k| fpr(&k.primary_key)).collect()
    }

    /// The keys, ASCII-armored (for writing a keyring into a guest).
    pub fn to_armored(&self) -> Result<String, DebError> {
        let mut out = String::new();
        for k in &self.keys {
            out.push_str(
                &k.to_armored_string(Default::default()).map_err(|e| DebError::Keyring { why: e.to_string() })?,
            );
        }
        Ok(out)
    }
}

/// How one signature fared.
enum Outcome {
    Good(Signer),
    /// A key in the keyring, but the signature does not verify.
    Bad {
        key: String,
        why: String,
    },
    /// A key in the keyring that may not sign (unbound subkey, revoked, expired).
    Unusable(String),
    /// No key in the keyring matches the issuer.
    Unknown(String),
}

fn issuer_label(sig: &Signature) -> String {
    let mut ids: Vec<String> = sig.issuer_fingerprint().iter().map(|f| format!("{f:X}")).collect();
    if ids.is_empty() {
        ids = sig.issuer_key_id().iter().map(|k| hex::encode_upper(k.as_ref())).collect();
    }
    if ids.is_empty() {
        "(no issuer)".into()
    } else {
        ids.join("/")
    }
}

fn issued_by(sig: &Signature, k: &impl KeyDetails) -> bool {
    let (f, id) = (k.fingerprint(), k.legacy_key_id());
    sig.issuer_fingerprint().iter().any(|x| **x == f) || sig.issuer_key_id().iter().any(|x| **x == id)
}

/// Expiry (Unix seconds) from the newest of `sigs` that sets one.
fn expiry(created: u32, sigs: &[&Signature]) -> Option<u64> {
    let newest = sigs.iter().filter(|s| s.created().is_some()).max_by_key(|s| s.created().map(|t| t.as_secs()))?;
    newest.key_expiration_time().map(|d| created as u64 + d.as_secs() as u64)
}

fn sig_time(sig: &Signature) -> u64 {
    sig.created().map(|t| t.as_secs() as u64).unwrap_or(0)
}

fn check(sig: &Signature, data: &[u8], keyring: &Keyring) -> Outcome {
    for key in &keyring.keys {
        let primary = &key.primary_key;
        let user_id = key.details.users.first().and_then(|u| u.id.as_str().map(str::to_string)).unwrap_or_default();
        let primary_fpr = fpr(primary);
        if issued_by(sig, primary) {
            if key.details.revocation_signatures.iter().any(|r| r.verify_key(primary).is_ok()) {
                return Outcome::Unusable(format!("key {primary_fpr} is revoked"));
            }
            let self_sigs: Vec<&Signature> = key
                .details
                .users
                .iter()
                .flat_map(|u| u.signatures.iter())
                .chain(key.details.direct_signatures.iter())
                .filter(|s| issued_by(s, primary))
                .collect();
            if let Some(until) = expiry(primary.created_at().as_secs(), &self_sigs) {
                if sig_time(sig) > until {
                    return Outcome::Unusable(format!("key {primary_fpr} had expired when it signed"));
                }
            }
            return match sig.verify(primary, data) {
                Ok(()) => Outcome::Good(Signer {
                    fingerprint: primary_fpr.clone(),
                    primary_fingerprint: primary_fpr,
                    user_id,
                }),
                Err(e) => Outcome::Bad { key: primary_fpr, why: e.to_string() },
            };
        }
        for sub in &key.public_subkeys {
            if !issued_by(sig, sub) {
                continue;
            }
            let sub_fpr = fpr(sub);
            // The binding (and the subkey's back-signature) proves the
            // primary key holder made this a signing subkey.
            if let Err(e) = sub.verify_bindings(primary) {
                return Outcome::Unusable(format!("subkey {sub_fpr} of {primary_fpr} is not validly bound: {e}"));
            }
            if sub.signatures.iter().any(|s| s.typ() == Some(SignatureType::SubkeyRevocation)) {
                return Outcome::Unusable(format!("subkey {sub_fpr} of {primary_fpr} is revoked"));
            }
            let bindings: Vec<&Signature> =
                sub.signatures.iter().filter(|s| s.typ() == Some(SignatureType::SubkeyBinding)).collect();
            if !bindings.iter().any(|b| b.key_flags().sign()) {
                return Outcome::Unusable(format!("subkey {sub_fpr} of {primary_fpr} is not a signing subkey"));
            }
            if let Some(until) = expiry(sub.created_at().as_secs(), &bindings) {
                if sig_time(sig) > until {
                    return Outcome::Unusable(format!("subkey {sub_fpr} of {primary_fpr} had expired when it signed"));
                }
            }
            return match sig.verify(sub, data) {
                Ok(()) => Outcome::Good(Signer { fingerprint: sub_fpr, primary_fingerprint: primary_fpr, user_id }),
                Err(e) => Outcome::Bad { key: sub_fpr, why: e.to_string() },
            };
        }
    }
    Outcome::Unknown(issuer_label(sig))
}

/// Applies the policy in the module doc to all signatures over `data`.
fn judge(sigs: &[Signature], data: &[u8], keyring: &Keyring, what: &str) -> Result<Vec<Signer>, DebError> {
    if sigs.is_empty() {
        return Err(DebError::NotSigned { what: what.into(), why: "the signature block holds no signatures".into() });
    }
    let (mut good, mut unusable, mut unknown) = (Vec::new(), Vec::new(), Vec::new());
    for sig in sigs {
        match check(sig, data, keyring) {
            Outcome::Good(s) => good.push(s),
            Outcome::Bad { key, why } => return Err(DebError::BadSignature { what: what.into(), key, why }),
            Outcome::Unusable(why) => unusable.push(why),
            Outcome::Unknown(issuer) => unknown.push(issuer),
        }
    }
    if !good.is_empty() {
        return Ok(good);
    }
    if !unusable.is_empty() {
        unusable.extend(unknown.into_iter().map(|i| format!("key {i} is not in the keyring")));
        return Err(DebError::NoValidSignature { what: what.into(), why: unusable });
    }
    Err(DebError::UnknownKey { what: what.into(), issuers: unknown })
}

/// Verifies a clear-signed document (an `InRelease`); `what` names it in errors.
pub fn verify_clearsigned(data: &[u8], keyring: &Keyring, what: &str) -> Result<Verified, DebError> {
    let text = std::str::from_utf8(data)
        .map_err(|_| DebError::NotSigned { what: what.into(), why: "not UTF-8 text".into() })?;
    if !text.starts_with("-----BEGIN PGP SIGNED MESSAGE-----") {
        return Err(DebError::NotSigned {
            what: what.into(),
            why: "does not start with `-----BEGIN PGP SIGNED MESSAGE-----`".into(),
        });
    }
    let (msg, _) = CleartextSignedMessage::from_string(text)
        .map_err(|e| DebError::NotSigned { what: what.into(), why: format!("cannot read the signed message: {e}") })?;
    let signed = msg.signed_text();
    let signers = judge(msg.signatures(), signed.as_bytes(), keyring, what)?;
    Ok(Verified { text: signed.replace("\r\n", "\n"), signers })
}

/// Verifies `data` (a `Release`) against a detached signature (`Release.gpg`,
/// armored or binary); `what` names it in errors.
pub fn verify_detached(data: &[u8], signature: &[u8], keyring: &Keyring, what: &str) -> Result<Verified, DebError> {
    let not_signed = |why: String| DebError::NotSigned { what: what.into(), why };
    let (iter, _) = DetachedSignature::from_reader_many(signature)
        .map_err(|e| not_signed(format!("cannot read the signature: {e}")))?;
    let sigs: Vec<Signature> = iter
        .map(|s| s.map(|d| d.signature))
        .collect::<Result<_, _>>()
        .map_err(|e| not_signed(format!("cannot read the signature: {e}")))?;
    let signers = judge(&sigs, data, keyring, what)?;
    let text = String::from_utf8(data.to_vec()).map_err(|_| DebError::malformed(what, "signed data is not UTF-8"))?;
    Ok(Verified { text, signers })
}
