//! Signed `APKINDEX.tar.gz` from index entries.

use dinv_fstree::tar::Header;

use super::apk::signature_member;
use super::tar::{StyledTar, TarStyle};
use super::tar::gzip;
use super::TestKey;
use crate::index::format_text;
use crate::sign::SigAlgo;
use crate::IndexEntry;

/// How to build an index.
#[derive(Clone, Debug)]
pub struct IndexOptions<'k> {
    /// Signing key; `None` builds an unsigned index.
    pub key: Option<&'k TestKey>,
    pub algo: SigAlgo,
    pub description: Option<String>,
    pub compression: u32,
    /// Replace the content after signing (an extra package appears).
    pub tamper: bool,
    /// Tar header style of the signature member. The content member is
    /// always what `apk index` writes: GNU magic, with end-of-archive blocks.
    pub style: TarStyle,
}

impl<'k> IndexOptions<'k> {
    /// Signed with `key` (SHA-1), description `v0.0.0-test`, the signature
    /// member PAX-headed as in Alpine v3.22.
    pub fn signed(key: &'k TestKey) -> Self {
        IndexOptions {
            key: Some(key),
            algo: SigAlgo::RsaSha1,
            description: Some("v0.0.0-test".into()),
            compression: 6,
            tamper: false,
            style: TarStyle::Pax,
        }
    }
}

fn content_member(text: &str, description: Option<&str>, level: u32) -> Vec<u8> {
    let mut tar = StyledTar::new(TarStyle::Gnu);
    if let Some(d) = description {
        let mut h = Header::new("DESCRIPTION", b'0');
        h.size = d.len() as u64;
        tar.append(&h, d.as_bytes());
    }
    let mut h = Header::new("APKINDEX", b'0');
    h.size = text.len() as u64;
    tar.append(&h, text.as_bytes());
    gzip(&tar.finish(), level)
}

/// Builds `APKINDEX.tar.gz`: [signature member] + gzipped tar of
/// `DESCRIPTION` and `APKINDEX` (with end marker, as `apk index` writes).
pub fn build_index(entries: &[IndexEntry], opts: &IndexOptions) -> Vec<u8> {
    let text = format_text(entries);
    let content = content_member(&text, opts.description.as_deref(), opts.compression);
    let mut out = opts
        .key
        .map(|k| signature_member(k, opts.algo, &content, opts.compression, opts.style))
        .unwrap_or_default();
    if opts.tamper {
        let evil = format!("{text}P:evil\nV:1.0-r0\nA:x86_64\nS:1\nI:1\nT:x\nU:\nL:MIT\n\n");
        out.extend_from_slice(&content_member(&evil, opts.description.as_deref(), opts.compression));
    } else {
        out.extend_from_slice(&content);
    }
    out
}
