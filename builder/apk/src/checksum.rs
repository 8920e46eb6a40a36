//! Package identity checksums as written in `C:` (`Q1` + base64 SHA-1).

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha1::{Digest, Sha1};

/// A package identity: SHA-1 of its control member (modern), or MD5 (from
/// indexes of the apk-tools 1 era, hex without prefix).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Checksum {
    /// SHA-1 (`Q1…`/`X1…`).
    Sha1([u8; 20]),
    /// MD5 (legacy).
    Md5([u8; 16]),
}

impl Checksum {
    /// The SHA-1 identity of `bytes` (the raw compressed control member).
    pub fn sha1_of(bytes: &[u8]) -> Self {
        Checksum::Sha1(Sha1::digest(bytes).into())
    }

    /// Parses `Q1<base64>`, `X1<hex>` (SHA-1) or 32 hex digits (MD5).
    pub fn parse(s: &str) -> Option<Self> {
        if let Some(b64) = s.strip_prefix("Q1") {
            let mut out = [0u8; 20];
            let v = STANDARD.decode(b64).ok()?;
            (v.len() == 20).then(|| {
                out.copy_from_slice(&v);
                Checksum::Sha1(out)
            })
        } else if let Some(h) = s.strip_prefix("X1") {
            let mut out = [0u8; 20];
            hex::decode_to_slice(h, &mut out).ok()?;
            Some(Checksum::Sha1(out))
        } else {
            let mut out = [0u8; 16];
            hex::decode_to_slice(s, &mut out).ok()?;
            Some(Checksum::Md5(out))
        }
    }

    /// The raw digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Checksum::Sha1(b) => b,
            Checksum::Md5(b) => b,
        }
    }
}

impl fmt::Display for Checksum {
    /// `Q1…` for SHA-1 (as apk writes `C:`), hex for MD5.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Checksum::Sha1(b) => write!(f, "Q1{}", STANDARD.encode(b)),
            Checksum::Md5(b) => f.write_str(&hex::encode(b)),
        }
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let c = Checksum::sha1_of(b"control");
        let q = c.to_string();
        assert!(q.starts_with("Q1") && q.len() == 30, "{q}");
        assert_eq!(Checksum::parse(&q), Some(c));
        let x = format!("X1{}", hex::encode(c.as_bytes()));
        assert_eq!(Checksum::parse(&x), Some(c));
        let md5 = Checksum::parse("0123456789abcdef0123456789abcdef").unwrap();
        assert!(matches!(md5, Checksum::Md5(_)));
        assert_eq!(md5.to_string(), "0123456789abcdef0123456789abcdef");
        for bad in ["", "Q1", "Q1AAAA", "Q2abc", "X1zz", "Q1!!!!!!!!!!!!!!!!!!!!!!!!!!!"] {
            assert_eq!(Checksum::parse(bad), None, "{bad}");
        }
    }
}
