//! apk v2 signatures: leading gzip members holding a tar of
//! `.SIGN.RSA.<key>` (PKCS#1 v1.5 over SHA-1), `.SIGN.RSA256.<key>`
//! (SHA-256) or `.SIGN.RSA512.<key>` (SHA-512) files, each signing the raw
//! compressed bytes that follow the signature members.


use dinv_fstree::tar::{EntryType, TarError, TarReader};
use flate2::bufread::GzDecoder;

use crate::{Keyring, SegmentError, SignatureError};

pub use crate::algo::SigAlgo;

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

/// Largest `.SIGN.*` file read: an RSA signature is the key size (512
/// bytes for RSA-4096); anything this large is not one.
pub const MAX_SIGNATURE_BYTES: u64 = 64 << 10;

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

/// Reads the leading signature members. Tar headers are parsed before any
/// name is looked at (PAX `x`/`g` records and GNU `L`/`K` long names may
/// come first, as in Alpine v3.22's index, whose signature member opens
/// with a PAX header): a member is a signature member when its first real
/// entry is named `.SIGN.*`, and then every entry in it must be one. The
/// first member that is not one starts the signed content (as in apk-tools
/// v2).
pub fn read_signatures(bytes: &[u8]) -> Result<Signatures, SegmentError> {
    let mut signatures = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        match read_signature_member(bytes, pos)? {
            Some((found, end)) => {
                signatures.extend(found);
                pos = end;
            }
            None => break,
        }
    }
    let signed_start = if signatures.is_empty() { 0 } else { pos };
    Ok(Signatures { signatures, signed_start })
}

/// The signatures of the member at `pos` and where it ends, or `None` when
/// its first entry is not a `.SIGN.*` file. Streams the member, so a large
/// content member is not inflated just to look at its first header.
fn read_signature_member(bytes: &[u8], pos: usize) -> Result<Option<(Vec<Signature>, usize)>, SegmentError> {
    let corrupt = |source| SegmentError::Corrupt { offset: pos, source };
    let bad = |why: String| SegmentError::BadSignatureMember { offset: pos, why };
    // A tar error in the first header means this is not a signature member
    // we can read; the caller's reader of the content reports it.
    let mut tar = TarReader::new(GzDecoder::new(&bytes[pos..]));
    let first = match tar.next_entry() {
        Ok(Some(e)) => e,
        Ok(None) => return Ok(None),
        Err(TarError::Io(e)) => return Err(corrupt(e)),
        Err(_) => return Ok(None),
    };
    if parse_sign_name(&first.path).is_none() {
        return Ok(None);
    }
    let mut found = Vec::new();
    let mut entry = Some(first);
    while let Some(e) = entry {
        let Some((algo, key)) = parse_sign_name(&e.path) else {
            return Err(bad(format!("{:?} is not a signature file", e.path)));
        };
        if e.entry_type != EntryType::Regular {
            return Err(bad(format!("{:?} is not a regular file", e.path)));
        }
        // Read before anything is verified: a deflate bomb must not become
        // a multi-GiB "signature".
        if e.size > MAX_SIGNATURE_BYTES {
            return Err(bad(format!("{:?} is {} bytes, too large for a signature", e.path, e.size)));
        }
        let data = tar.read_data(&e).map_err(|e| bad(e.to_string()))?;
        found.push(Signature {
            algo,
            key_name: key.to_string(),
            bytes: data,
        });
        entry = tar.next_entry().map_err(|e| bad(e.to_string()))?;
    }
    // Whatever follows the entries (end-of-archive blocks, if any) still
    // belongs to the member; read to its end to learn where it stops.
    let mut dec = tar.into_inner();
    std::io::copy(&mut dec, &mut std::io::sink()).map_err(corrupt)?;
    let left = dec.into_inner().len();
    Ok(Some((found, bytes.len() - left)))
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
        return Err(SignatureError::UnknownKey {
            keys: signatures.iter().map(|s| s.key_name.clone()).collect(),
        });
    };
    key.verify(algo.scheme(), &algo.digest(signed), &sig.bytes)
        .map_err(|_| SignatureError::BadSignature {
            key: sig.key_name.clone(),
            algo,
        })?;
    tracing::debug!(key = %sig.key_name, %algo, bytes = signed.len(), "apk signature verified");
    Ok(Verified {
        key_name: sig.key_name.clone(),
        algo,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{gzip, shared_key, StyledTar, TarStyle};
    use dinv_fstree::tar::Header;

    fn entry(tar: &mut StyledTar, name: &str, body: &[u8]) {
        tar.append(
            &Header {
                size: body.len() as u64,
                mtime: 1_760_000_000,
                ..Header::new(name, b'0')
            },
            body,
        );
    }

    fn pax_body(records: &[(&str, &str)]) -> Vec<u8> {
        let mut v = Vec::new();
        for (k, val) in records {
            let body = k.len() + val.len() + 3;
            let mut len = body + 1;
            while body + len.to_string().len() != len {
                len = body + len.to_string().len();
            }
            v.extend(format!("{len} {k}={val}\n").into_bytes());
        }
        v
    }

    /// A signed blob: `members` (each a tar stream, gzipped) + content.
    fn signed_file(members: &[Vec<u8>], content: &[u8]) -> Vec<u8> {
        let mut out: Vec<u8> = members.iter().flat_map(|m| gzip(m, 6)).collect();
        out.extend(gzip(content, 6));
        out
    }

    #[test]
    fn extension_headers_before_the_signature_entry_in_every_style() {
        let key = shared_key(0);
        let content = b"the signed content";
        let sig = key.sign(SigAlgo::RsaSha256, &gzip(content, 6));
        let name = SigAlgo::RsaSha256.file_name(&key.name);
        let long_name = SigAlgo::RsaSha256.file_name(&"k".repeat(120));
        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        for style in TarStyle::ALL {
            let mut t = StyledTar::new(style);
            entry(&mut t, &name, &sig);
            cases.push(("style", t.cut()));
        }
        // A global PAX header (as `git archive` writes) before the entry.
        let mut t = StyledTar::new(TarStyle::Ustar);
        t.extension(b'g', "pax_global_header", &pax_body(&[("comment", "made by a test")]));
        entry(&mut t, &name, &sig);
        cases.push(("g", t.cut()));
        // A PAX `path` record naming the signature file: the header's own
        // name field says something else.
        let mut t = StyledTar::new(TarStyle::Ustar);
        t.extension(b'x', "PaxHeaders/x", &pax_body(&[("path", &name)]));
        entry(&mut t, "not-the-name", &sig);
        cases.push(("x path", t.cut()));
        // A GNU long name record for a name that needs none.
        let mut t = StyledTar::new(TarStyle::Gnu);
        t.extension(b'L', "././@LongLink", format!("{name}\0").as_bytes());
        entry(&mut t, "truncated", &sig);
        cases.push(("L", t.cut()));
        for (what, member) in cases {
            let file = signed_file(&[member], content);
            let s = read_signatures(&file).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(s.signatures.len(), 1, "{what}");
            assert_eq!(s.signatures[0].key_name, key.name, "{what}");
            let v = verify(&key.keyring(), &s.signatures, &file[s.signed_start..]).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(v.algo, SigAlgo::RsaSha256);
        }
        // A long key name through an L record.
        let mut t = StyledTar::new(TarStyle::Gnu);
        entry(&mut t, &long_name, &sig);
        let s = read_signatures(&signed_file(&[t.cut()], content)).unwrap();
        assert_eq!(s.signatures[0].key_name, "k".repeat(120));
    }

    #[test]
    fn a_signature_member_holding_anything_else_is_refused() {
        let key = shared_key(0);
        let name = SigAlgo::RsaSha1.file_name(&key.name);
        for style in TarStyle::ALL {
            let mut t = StyledTar::new(style);
            entry(&mut t, &name, &[1u8; 256]);
            entry(&mut t, ".PKGINFO", b"pkgname = evil\n");
            let file = signed_file(&[t.cut()], b"x");
            let e = read_signatures(&file).unwrap_err().to_string();
            assert_eq!(e, "signature member at byte 0: \".PKGINFO\" is not a signature file", "{style:?}");
            let mut t = StyledTar::new(style);
            t.append(
                &Header {
                    link: "elsewhere".into(),
                    ..Header::new(&name, b'2')
                },
                b"",
            );
            let e = read_signatures(&signed_file(&[t.cut()], b"x")).unwrap_err().to_string();
            assert!(e.ends_with("is not a regular file"), "{style:?}: {e}");
        }
    }

    /// Found by reading the code while fuzzing (apk_members): a signature
    /// file's size came from the tar header and its bytes were inflated
    /// into memory before any check, so a small deflate bomb became a
    /// multi-GiB allocation.
    #[test]
    fn oversized_signature_files_are_refused_unread() {
        let name = SigAlgo::RsaSha256.file_name("k.rsa.pub");
        let big = vec![0u8; (MAX_SIGNATURE_BYTES + 1) as usize];
        let mut t = StyledTar::new(TarStyle::Ustar);
        entry(&mut t, &name, &big);
        let file = signed_file(&[t.cut()], b"content");
        assert!(file.len() < 4096, "compresses well: {}", file.len());
        let e = read_signatures(&file).unwrap_err().to_string();
        assert!(e.ends_with("too large for a signature"), "{e}");
        // A size field promising far more than the member holds.
        let block = dinv_fstree::tar::header_block(name.as_bytes(), &Header::new(&name, b'0'), b'0', 0o77777777777, dinv_fstree::tar::Magic::Gnu);
        let e = read_signatures(&signed_file(&[block.to_vec()], b"x")).unwrap_err().to_string();
        assert!(e.ends_with("too large for a signature"), "{e}");
    }

    #[test]
    fn members_whose_first_entry_is_not_a_signature_start_the_content() {
        for style in TarStyle::ALL {
            let mut t = StyledTar::new(style);
            entry(&mut t, ".PKGINFO", b"pkgname = a\n");
            entry(&mut t, ".SIGN.RSA.late.rsa.pub", b"sig");
            let file = signed_file(&[], &t.cut());
            let s = read_signatures(&file).unwrap();
            assert!(s.signatures.is_empty() && s.signed_start == 0, "{style:?}");
        }
        // Two signature members (two keys): both are read, the content starts after them.
        let mut a = StyledTar::new(TarStyle::Pax);
        entry(&mut a, ".SIGN.RSA.a.rsa.pub", b"1");
        let mut b = StyledTar::new(TarStyle::Ustar);
        entry(&mut b, ".SIGN.RSA256.b.rsa.pub", b"2");
        let members = [a.finish(), b.cut()];
        let file = signed_file(&members, b"content");
        let s = read_signatures(&file).unwrap();
        assert_eq!(s.signatures.iter().map(|s| s.key_name.as_str()).collect::<Vec<_>>(), ["a.rsa.pub", "b.rsa.pub"]);
        assert_eq!(s.signed_start, gzip(&members[0], 6).len() + gzip(&members[1], 6).len());
    }
}
