//! The signature algorithms of apk v2 files.

use std::fmt;

use rsa::Pkcs1v15Sign;
use sha1::{Digest, Sha1};
use sha2::{Sha256, Sha512};

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

