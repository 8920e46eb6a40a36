//! apk v2 signatures: leading gzip members holding a tar of
//! `.SIGN.RSA.<key>` (PKCS#1 v1.5 over SHA-1), `.SIGN.RSA256.<key>`
//! (SHA-256) or `.SIGN.RSA512.<key>` (SHA-512) files, each signing the raw
//! compressed bytes that follow the signature members.

use std::fmt;
use std::io::Cursor;

use dinv_fstree::tar::{EntryType, TarReader};
use rsa::Pkcs1v15Sign;
use sha1::{Digest, Sha1};
use sha2::{Sha256, Sha512};

use crate::segments;
use crate::{Keyring, SegmentError, SignatureError};

/// Digest and scheme of a signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SigAlgo {
    /// `.SIGN.RSA.*`: PKCS#1 v1.5 over SHA-1.
    RsaSha1,
    /// `.SIGN.RSA256.*`: over SHA-256.
    RsaSha256,
    /// `.SIGN.RSA512.*`: over SHA-512.
    RsaSha512,
}

impl SigAlgo {
    /// The file-name tag after `.SIGN.` (`RSA`, `RSA256`, `RSA512`).
    pub fn tag(self) -> &'static str {
        match self {
            SigAlgo::RsaSha1 => "RSA",
            SigAlgo::RsaSha256 => "RSA256",
            SigAlgo::RsaSha512 => "RSA512",
        }
    }

    /// The digest of `data` this algorithm signs.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            SigAlgo::RsaSha1 => Sha1::digest(data).to_vec(),
            SigAlgo::RsaSha256 => Sha256::digest(data).to_vec(),
            SigAlgo::RsaSha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// The PKCS#1 v1.5 padding scheme for this digest.
    pub fn scheme(self) -> Pkcs1v15Sign {
        match self {
            SigAlgo::RsaSha1 => Pkcs1v15Sign::new::<Sha1>(),
            SigAlgo::RsaSha256 => Pkcs1v15Sign::new::<Sha256>(),
            SigAlgo::RsaSha512 => Pkcs1v15Sign::new::<Sha512>(),
        }
    }

    /// The signature file name for a key: `.SIGN.RSA256.<key>`.
    pub fn file_name(self, key_name: &str) -> String {
        format!(".SIGN.{}.{key_name}", self.tag())
    }
}

impl fmt::Display for SigAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SigAlgo::RsaSha1 => "RSA/SHA-1",
            SigAlgo::RsaSha256 => "RSA/SHA-256",
            SigAlgo::RsaSha512 => "RSA/SHA-512",
        })
    }
}

/// One `.SIGN.*` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// `None` for kinds apk knows but we cannot check (`.SIGN.DSA.*`).
    pub algo: Option<SigAlgo>,
    /// The key's file name, as the signature refers to it.
    pub key_name: String,
    /// The raw RSA signature.
    pub bytes: Vec<u8>,
}

/// The signatures at the start of a file and where the signed bytes begin.
#[derive(Clone, Debug)]
pub struct Signatures {
    /// Every `.SIGN.*` file, in archive order.
    pub signatures: Vec<Signature>,
    /// Offset of the first member after the signature members (0 when
    /// unsigned).
    pub signed_start: usize,
}

fn parse_sign_name(name: &str) -> Option<(Option<SigAlgo>, &str)> {
    let rest = name.strip_prefix(".SIGN.")?;
    let (tag, key) = rest.split_once('.')?;
    let algo = match tag {
        "RSA" => Some(SigAlgo::RsaSha1),
        "RSA256" => Some(SigAlgo::RsaSha256),
        "RSA512" => Some(SigAlgo::RsaSha512),
        _ => None,
    };
    Some((algo, key))
}

/// Reads the leading signature members. A member is a signature member when
/// its first tar entry is named `.SIGN.*`; the first member that is not one
/// starts the signed content (as in apk-tools v2).
pub fn read_signatures(bytes: &[u8]) -> Result<Signatures, SegmentError> {
    let mut signatures = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let head = segments::peek_member(bytes, pos, 512)?;
        if head.len() < 512 || !head.starts_with(b".SIGN.") {
            break;
        }
        let (tar, end) = segments::read_member(bytes, pos)?;
        let bad = |why: String| SegmentError::BadSignatureMember { offset: pos, why };
        let mut r = TarReader::new(Cursor::new(&tar));
        while let Some(e) = r.next_entry().map_err(|e| bad(e.to_string()))? {
            let Some((algo, key)) = parse_sign_name(&e.path) else {
                return Err(bad(format!("{:?} is not a signature file", e.path)));
            };
            if e.entry_type != EntryType::Regular {
                return Err(bad(format!("{:?} is not a regular file", e.path)));
            }
            let data = r.read_data(&e).map_err(|e| bad(e.to_string()))?;
            signatures.push(Signature { algo, key_name: key.to_string(), bytes: data });
        }
        pos = end;
    }
    let signed_start = if signatures.is_empty() { 0 } else { pos };
    Ok(Signatures { signatures, signed_start })
}

/// The signature that checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The trusted key's name.
    pub key_name: String,
    /// How it signed.
    pub algo: SigAlgo,
}

/// Verifies `signed` against the first signature made by a trusted key (as
/// apk-tools v2 does: later signatures are not tried if that one fails).
pub fn verify(keys: &Keyring, signatures: &[Signature], signed: &[u8]) -> Result<Verified, SignatureError> {
    if signatures.is_empty() {
        return Err(SignatureError::Unsigned);
    }
    let usable = signatures.iter().find_map(|s| Some((s, s.algo?, keys.get(&s.key_name)?)));
    let Some((sig, algo, key)) = usable else {
        return Err(SignatureError::UnknownKey { keys: signatures.iter().map(|s| s.key_name.clone()).collect() });
    };
    key.verify(algo.scheme(), &algo.digest(signed), &sig.bytes)
        .map_err(|_| SignatureError::BadSignature { key: sig.key_name.clone(), algo })?;
    tracing::debug!(key = %sig.key_name, %algo, bytes = signed.len(), "apk signature verified");
    Ok(Verified { key_name: sig.key_name.clone(), algo })
}
