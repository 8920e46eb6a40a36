//! `.apk` v2 verification: signature member, control member (`.PKGINFO`
//! and scripts, tar without end marker), data member (the files).
//!
//! The index's `C:` is the SHA-1 of the compressed control member; the
//! signature signs the same bytes; `.PKGINFO`'s `datahash` is the SHA-256
//! of the compressed data member. Together they pin every byte.

use std::io::{Cursor, Read};
use std::ops::Range;

use dinv_fstree::tar::{EntryType, TarReader};
use sha2::{Digest, Sha256};

use crate::sign::{self, SigAlgo};
use crate::{segments, Checksum, Keyring, PackageError, PackageProblem, PkgInfo};

/// Script names apk runs (the control file is `.<name>`).
pub const SCRIPT_NAMES: [&str; 7] = [
    "pre-install",
    "post-install",
    "pre-deinstall",
    "post-deinstall",
    "pre-upgrade",
    "post-upgrade",
    "trigger",
];

/// Largest decompressed control member accepted (`.PKGINFO` and scripts
/// are a few KiB; this is dpkg-sized headroom, as in `dinv-deb`).
pub const MAX_CONTROL_BYTES: usize = 64 << 20;

/// A `Vec` writer that fails once more than `limit` bytes arrive.
struct LimitedWriter {
    out: Vec<u8>,
    limit: usize,
}

impl std::io::Write for LimitedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > self.limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("control member larger than {} bytes decompressed", self.limit),
            ));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a package is checked against. At least one of `checksum` and
/// `keys` must be given.
#[derive(Clone, Copy, Debug)]
pub struct ApkCheck<'a> {
    /// Expected `pkgname`.
    pub name: &'a str,
    /// Expected `pkgver`.
    pub version: &'a str,
    /// The index's `C:` for this package (from a verified index).
    pub checksum: Option<&'a Checksum>,
    /// Verify the package's own signature against these keys.
    pub keys: Option<&'a Keyring>,
}

/// One maintainer script from the control member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlScript {
    /// Without the leading dot: `post-install`, `trigger`, ...
    pub name: String,
    /// Permission bits as archived.
    pub mode: u32,
    /// The script itself.
    pub bytes: Vec<u8>,
}

/// A package whose checks passed.
#[derive(Clone, Debug)]
pub struct VerifiedApk {
    /// The parsed `.PKGINFO`.
    pub pkginfo: PkgInfo,
    /// Known scripts, in archive order.
    pub scripts: Vec<ControlScript>,
    /// Other control files apk ignores (names as in the archive).
    pub other_control_files: Vec<String>,
    /// Identity of the package (what `C:` should say).
    pub checksum: Checksum,
    /// Key and algorithm of the verified signature, when keys were given.
    pub signed_by: Option<(String, SigAlgo)>,
    /// Compressed byte range of the control member in the file.
    pub control_range: Range<u64>,
    /// Compressed byte range of the data member(s): to the end of the file.
    pub data_range: Range<u64>,
}

impl VerifiedApk {
    /// The data member's tar stream, decompressed from the same `.apk`
    /// bytes that were verified.
    pub fn data_reader<'a>(&self, apk: &'a [u8]) -> impl Read + 'a {
        segments::decompress_slice(&apk[self.data_range.start as usize..self.data_range.end as usize])
    }
}

/// Verifies a whole `.apk` held in memory.
pub fn verify(apk: &[u8], check: &ApkCheck) -> Result<VerifiedApk, PackageError> {
    let fail = |problem: PackageProblem| PackageError {
        package: format!("{}-{}", check.name, check.version),
        problem,
    };
    if check.checksum.is_none() && check.keys.is_none() {
        return Err(fail(PackageProblem::Untrusted));
    }
    let sigs = sign::read_signatures(apk).map_err(|e| fail(e.into()))?;
    let control_start = sigs.signed_start;
    if control_start >= apk.len() {
        return Err(fail(PackageProblem::NoControl));
    }
    // Inflated before the checksum or signature is checked (they cover the
    // compressed bytes, but which bytes depends on `.PKGINFO`): bounded.
    let mut control = LimitedWriter { out: Vec::new(), limit: MAX_CONTROL_BYTES };
    let control_end = segments::read_member_into(apk, control_start, &mut control).map_err(|e| fail(e.into()))?;
    let control = control.out;
    let (pkginfo, scripts, other_control_files) = read_control(&control).map_err(fail)?;
    if pkginfo.name != check.name || pkginfo.version != check.version {
        return Err(fail(PackageProblem::WrongPackage {
            expected: format!("{}-{}", check.name, check.version),
            found: pkginfo.label(),
        }));
    }
    // With a datahash the control member alone is the identity and the
    // signed content; old packages without one sign everything after the
    // signature.
    let identity_end = if pkginfo.datahash.is_some() { control_end } else { apk.len() };
    let identity = &apk[control_start..identity_end];
    let checksum = Checksum::sha1_of(identity);
    if let Some(expected) = check.checksum {
        if *expected != checksum {
            return Err(fail(PackageProblem::ChecksumMismatch {
                expected: *expected,
                actual: checksum,
            }));
        }
    }
    let signed_by = match check.keys {
        Some(keys) => {
            let v = sign::verify(keys, &sigs.signatures, identity).map_err(|e| fail(e.into()))?;
            Some((v.key_name, v.algo))
        }
        None => None,
    };
    if control_end >= apk.len() {
        return Err(fail(PackageProblem::NoData));
    }
    if let Some(expected) = &pkginfo.datahash {
        let actual: [u8; 32] = Sha256::digest(&apk[control_end..]).into();
        if actual != *expected {
            return Err(fail(PackageProblem::DataHashMismatch {
                expected: hex::encode(expected),
                actual: hex::encode(actual),
            }));
        }
    }
    Ok(VerifiedApk {
        pkginfo,
        scripts,
        other_control_files,
        checksum,
        signed_by,
        control_range: control_start as u64..control_end as u64,
        data_range: control_end as u64..apk.len() as u64,
    })
}

type Control = (PkgInfo, Vec<ControlScript>, Vec<String>);

fn read_control(tar: &[u8]) -> Result<Control, PackageProblem> {
    let mut r = TarReader::new(Cursor::new(tar));
    let (mut pkginfo, mut scripts, mut other) = (None, Vec::new(), Vec::new());
    while let Some(e) = r.next_entry()? {
        let name = e.path.strip_prefix("./").unwrap_or(&e.path);
        if e.entry_type != EntryType::Regular {
            other.push(e.path.clone());
            continue;
        }
        if name == ".PKGINFO" {
            let data = r.read_data(&e)?;
            let text = String::from_utf8(data).map_err(|_| PackageProblem::PkgInfo("not UTF-8".into()))?;
            pkginfo = Some(PkgInfo::parse(&text).map_err(PackageProblem::PkgInfo)?);
        } else if let Some(s) = name.strip_prefix('.').filter(|s| SCRIPT_NAMES.contains(s)) {
            scripts.push(ControlScript {
                name: s.to_string(),
                mode: e.mode,
                bytes: r.read_data(&e)?,
            });
        } else {
            other.push(e.path.clone());
        }
    }
    Ok((pkginfo.ok_or(PackageProblem::NoPkgInfo)?, scripts, other))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{StyledTar, TarStyle};
    use dinv_fstree::tar::Header;

    /// Found by reading the code while fuzzing (apk_package): the control
    /// member was inflated whole into memory before any check, so a small
    /// deflate bomb there made a multi-GiB allocation.
    #[test]
    fn control_member_bomb_is_refused() {
        let zeros = vec![0u8; MAX_CONTROL_BYTES + 1];
        let mut apk = crate::testkit::gzip(&zeros, 9);
        assert!(apk.len() < MAX_CONTROL_BYTES / 500, "compresses well: {}", apk.len());
        apk.extend(crate::testkit::gzip(b"data", 1));
        let c = Checksum::sha1_of(b"anything");
        let check = ApkCheck { name: "a", version: "1", checksum: Some(&c), keys: None };
        let e = verify(&apk, &check).unwrap_err().to_string();
        assert!(e.contains("control member larger than"), "{e}");
    }

    #[test]
    fn pkginfo_behind_extension_headers() {
        let text = "pkgname = a\npkgver = 1-r0\narch = x86_64\nsize = 0\n";
        let pkginfo = |t: &mut StyledTar, name: &str| {
            t.append(
                &Header {
                    size: text.len() as u64,
                    ..Header::new(name, b'0')
                },
                text.as_bytes(),
            )
        };
        let mut streams = Vec::new();
        for style in TarStyle::ALL {
            let mut t = StyledTar::new(style);
            pkginfo(&mut t, ".PKGINFO");
            streams.push(t.cut());
        }
        let mut t = StyledTar::new(TarStyle::Ustar);
        t.extension(b'g', "pax_global_header", b"22 comment=any global\n");
        pkginfo(&mut t, ".PKGINFO");
        streams.push(t.cut());
        let mut t = StyledTar::new(TarStyle::Gnu);
        t.extension(b'L', "././@LongLink", b"./.PKGINFO\0");
        pkginfo(&mut t, "cut-short");
        streams.push(t.cut());
        for (i, tar) in streams.iter().enumerate() {
            let (info, _, other) = read_control(tar).unwrap_or_else(|e| panic!("stream {i}: {e}"));
            assert_eq!((info.name.as_str(), info.version.as_str()), ("a", "1-r0"), "stream {i}");
            assert!(other.is_empty(), "stream {i}: {other:?}");
        }
    }
}
