//! Recipe values parsed once, when the recipe is read: sizes and shares
//! carry their bytes, so no stage parses them again. Imports nothing from
//! the rest of the recipe module.

use serde::{Deserialize, Serialize};

/// A size in bytes, parsed once when the recipe is read (the contract's
/// one size grammar; a bare number is bytes); kept with its text for
/// `show` and templates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Size {
    pub text: String,
    pub bytes: u64,
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match dinv_contract::settings::parse_size(&text, 1) {
            Some(bytes) => Ok(Size { text, bytes }),
            None => Err(serde::de::Error::custom(format!("{text:?} is not a size like 512M or 2G"))),
        }
    }
}

impl Serialize for Size {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.text.serialize(s)
    }
}

/// `rootfs.free`, parsed once: a share of the content (`"10%"`) or a size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Free {
    pub text: String,
    /// Percent of the content (0 when a size is given).
    pub percent: u32,
    /// Bytes (0 when a share is given).
    pub bytes: u64,
}

impl<'de> Deserialize<'de> for Free {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match parse_free(&text) {
            Some((percent, bytes)) => Ok(Free { text, percent, bytes }),
            None => Err(serde::de::Error::custom(format!("{text:?} is neither a share of the content like 10% nor a size like 64M"))),
        }
    }
}

impl Serialize for Free {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.text.serialize(s)
    }
}

/// `rootfs.free`: `"10%"` → a share of the content, in percent; `"64M"` →
/// bytes. `(percent, bytes)`, one of them zero.
pub fn parse_free(s: &str) -> Option<(u32, u64)> {
    match s.trim().strip_suffix('%') {
        Some(p) => p.trim().parse::<u32>().ok().filter(|p| *p <= 1000).map(|p| (p, 0)),
        None => dinv_contract::settings::parse_size(s, 1).map(|b| (0, b)),
    }
}
