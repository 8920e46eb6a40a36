//! A binary snapshot of parsed `Packages` records, for caches: writing it
//! once and reading it back skips decompressing and parsing a 40 MB index
//! on every build. The snapshot ends with the SHA-256 of everything before
//! it, so a damaged file is refused (and the index parsed again) rather
//! than read.
//!
//! Layout: `DINVPKG` + format byte, record count (u32 LE), the records,
//! then the SHA-256. Strings are a u32 LE length and UTF-8 bytes; numbers
//! u64 LE; options a 0/1 byte before the value.

use sha2::{Digest, Sha256};

use crate::packages::{MultiArch, PackageRecord};

const MAGIC: &[u8; 8] = b"DINVPKG\x01";

struct Writer(Vec<u8>);

impl Writer {
    fn str(&mut self, s: &str) {
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
}

/// Serialises records into a snapshot.
pub fn encode(records: &[PackageRecord]) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(records.len() * 400 + 64));
    w.0.extend_from_slice(MAGIC);
    w.0.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for r in records {
        for s in [&r.package, &r.version, &r.architecture] {
            w.str(s);
        }
        w.u8(match r.multi_arch {
            MultiArch::No => 0,
            MultiArch::Same => 1,
            MultiArch::Foreign => 2,
            MultiArch::Allowed => 3,
        });
        for s in [&r.depends, &r.pre_depends, &r.recommends, &r.suggests, &r.provides, &r.conflicts, &r.breaks, &r.replaces] {
            w.str(s);
        }
        w.u8(r.essential as u8);
        for s in [&r.priority, &r.section, &r.source] {
            w.str(s);
        }
        match &r.source_version {
            Some(v) => {
                w.u8(1);
                w.str(v);
            }
            None => w.u8(0),
        }
        for s in [&r.maintainer, &r.filename] {
            w.str(s);
        }
        w.u64(r.size);
        w.str(&r.sha256);
        match r.installed_size {
            Some(v) => {
                w.u8(1);
                w.u64(v);
            }
            None => w.u8(0),
        }
        for s in [&r.description, &r.homepage] {
            w.str(s);
        }
    }
    let digest = Sha256::digest(&w.0);
    w.0.extend_from_slice(&digest);
    w.0
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len())?;
        let s = &self.b[self.at..end];
        self.at = end;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn str(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        std::str::from_utf8(self.take(n)?).ok().map(str::to_string)
    }
    fn flag(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

/// Reads a snapshot back; `None` when it is not a whole, undamaged
/// snapshot of this format.
pub fn decode(bytes: &[u8]) -> Option<Vec<PackageRecord>> {
    let body_len = bytes.len().checked_sub(32)?;
    let (body, digest) = bytes.split_at(body_len);
    if !body.starts_with(MAGIC) || Sha256::digest(body)[..] != digest[..] {
        return None;
    }
    let mut r = Reader { b: body, at: MAGIC.len() };
    let count = r.u32()? as usize;
    // Every record takes at least 100 bytes: the count cannot ask for more.
    let mut out = Vec::with_capacity(count.min(body.len() / 100 + 1));
    for _ in 0..count {
        let (package, version, architecture) = (r.str()?, r.str()?, r.str()?);
        let multi_arch = match r.u8()? {
            0 => MultiArch::No,
            1 => MultiArch::Same,
            2 => MultiArch::Foreign,
            3 => MultiArch::Allowed,
            _ => return None,
        };
        let (depends, pre_depends, recommends, suggests) = (r.str()?, r.str()?, r.str()?, r.str()?);
        let (provides, conflicts, breaks, replaces) = (r.str()?, r.str()?, r.str()?, r.str()?);
        let essential = r.flag()?;
        let (priority, section, source) = (r.str()?, r.str()?, r.str()?);
        let source_version = if r.flag()? { Some(r.str()?) } else { None };
        let (maintainer, filename) = (r.str()?, r.str()?);
        let size = r.u64()?;
        let sha256 = r.str()?;
        let installed_size = if r.flag()? { Some(r.u64()?) } else { None };
        let (description, homepage) = (r.str()?, r.str()?);
        out.push(PackageRecord {
            package,
            version,
            architecture,
            multi_arch,
            depends,
            pre_depends,
            recommends,
            suggests,
            provides,
            conflicts,
            breaks,
            replaces,
            essential,
            priority,
            section,
            source,
            source_version,
            maintainer,
            filename,
            size,
            sha256,
            installed_size,
            description,
            homepage,
        });
    }
    (r.at == body.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<PackageRecord> {
        let text = "Package: docker.io\nVersion: 20.10.24+dfsg1-1+b3\nInstalled-Size: 121180\nMaintainer: Go Team <t@example.org>\n\
Architecture: amd64\nSource: docker.io (20.10.24+dfsg1-1)\nDepends: adduser, containerd (>= 1.2.6-2~)\nMulti-Arch: foreign\n\
Provides: docker\nDescription: Linux container runtime\n more\nFilename: pool/main/d/docker.io/docker.io_20.10.24.deb\nSize: 3\n\
SHA256: 0000000000000000000000000000000000000000000000000000000000000000\nEssential: yes\nPriority: optional\n\n\
Package: zstd\nVersion: 1.5.4+dfsg2-5\nArchitecture: amd64\nFilename: pool/main/z/zstd.deb\nSize: 9\n\
SHA256: 1111111111111111111111111111111111111111111111111111111111111111\nHomepage: https://example.invalid/zstd\n\n";
        crate::parse_packages(text, "test").unwrap()
    }

    #[test]
    fn round_trip() {
        let r = records();
        assert_eq!(r.len(), 2);
        let bytes = encode(&r);
        assert_eq!(decode(&bytes), Some(r));
        assert_eq!(decode(&encode(&[])), Some(vec![]));
    }

    #[test]
    fn damage_is_refused() {
        let bytes = encode(&records());
        for at in [0, 9, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 1;
            assert_eq!(decode(&bad), None, "flipped byte {at}");
        }
        for len in [0, 10, bytes.len() - 1] {
            assert_eq!(decode(&bytes[..len]), None, "cut at {len}");
        }
        // A count larger than the records, with a valid digest: refused, no huge allocation.
        let mut forged = bytes[..bytes.len() - 32].to_vec();
        forged[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        let d = Sha256::digest(&forged);
        forged.extend_from_slice(&d);
        assert_eq!(decode(&forged), None);
    }
}
