//! `Release` files (the text an `InRelease` signs): suite metadata and the
//! SHA256 list that every index is checked against.

use sha2::{Digest, Sha256};

use crate::compression::Compression;
use crate::deb822;
use crate::DebError;

/// One line of the SHA256 list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseFile {
    /// Path relative to the `dists/<suite>/` directory.
    pub path: String,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
}

impl ReleaseFile {
    /// The compression implied by the file name.
    pub fn compression(&self) -> Compression {
        Compression::from_name(&self.path)
    }

    /// Checks bytes against this entry's size and SHA256.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), DebError> {
        crate::archive::verify_blob(bytes, &self.sha256, self.size, &self.path)
    }
}

/// The parsed fields of a Release file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub origin: String,
    pub suite: String,
    pub codename: String,
    pub version: String,
    /// As written (RFC 2822, UTC).
    pub date: String,
    pub valid_until: Option<String>,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    /// `Acquire-By-Hash: yes`: indices are also at `by-hash/SHA256/<hash>`.
    pub acquire_by_hash: bool,
    pub sha256: Vec<ReleaseFile>,
}

impl Release {
    /// Parses the (already verified) text of a Release file.
    pub fn parse(text: &str) -> Result<Release, DebError> {
        let what = "Release";
        let paras = deb822::parse_all(text, what)?;
        let [p] = paras.as_slice() else {
            return Err(DebError::malformed(what, format!("expected one paragraph, found {}", paras.len())));
        };
        let opt = |f: &str| p.get(f).unwrap_or("").trim().to_string();
        let list = |f: &str| p.get(f).unwrap_or("").split_whitespace().map(str::to_string).collect::<Vec<_>>();
        let sums = p
            .get("SHA256")
            .ok_or_else(|| DebError::malformed(what, "no SHA256 field (MD5/SHA1-only archives are refused)"))?;
        let mut sha256 = Vec::new();
        for line in sums.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let bad = || DebError::malformed(what, format!("bad SHA256 line {line:?}"));
            let mut it = line.split_whitespace();
            let (Some(h), Some(s), Some(path), None) = (it.next(), it.next(), it.next(), it.next()) else {
                return Err(bad());
            };
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            sha256.push(ReleaseFile {
                path: path.to_string(),
                size: s.parse().map_err(|_| bad())?,
                sha256: h.to_ascii_lowercase(),
            });
        }
        let date = opt("Date");
        if !date.is_empty() {
            parse_date(&date)?;
        }
        let valid_until = p.get("Valid-Until").map(|v| v.trim().to_string());
        if let Some(v) = &valid_until {
            parse_date(v)?;
        }
        Ok(Release {
            origin: opt("Origin"),
            suite: opt("Suite"),
            codename: opt("Codename"),
            version: opt("Version"),
            date,
            valid_until,
            architectures: list("Architectures"),
            components: list("Components"),
            acquire_by_hash: p.get("Acquire-By-Hash").map(str::trim) == Some("yes"),
            sha256,
        })
    }

    /// The SHA256 entry for a path (`main/binary-amd64/Packages.xz`).
    pub fn file(&self, path: &str) -> Option<&ReleaseFile> {
        self.sha256.iter().find(|f| f.path == path)
    }

    /// The listed variants of `<component>/binary-<arch>/Packages`, best
    /// download first: `.xz`, `.gz`, plain (what the mirror actually has
    /// can differ; the plain entry is listed even when only compressed
    /// files exist, so the decompressed bytes can always be checked).
    pub fn packages_indices(&self, component: &str, arch: &str) -> Vec<&ReleaseFile> {
        let base = format!("{component}/binary-{arch}/Packages");
        [".xz", ".gz", ""].iter().filter_map(|ext| self.file(&format!("{base}{ext}"))).collect()
    }

    /// Refuses a Release whose Valid-Until is before `now` (Unix seconds).
    pub fn check_valid_at(&self, now: i64) -> Result<(), DebError> {
        if let Some(v) = &self.valid_until {
            if parse_date(v)? < now {
                return Err(DebError::Expired {
                    what: format!("Release of {}", self.codename),
                    valid_until: v.clone(),
                });
            }
        }
        Ok(())
    }

    /// The `by-hash` path of an index (for mirrors with `Acquire-By-Hash`).
    pub fn by_hash_path(file: &ReleaseFile) -> String {
        let dir = file.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        format!("{dir}/by-hash/SHA256/{}", file.sha256)
    }
}

/// Parses a Release date (`Sat, 11 Jul 2026 10:16:37 UTC`, also with a
/// numeric zone like `+0000`) into Unix seconds.
pub fn parse_date(s: &str) -> Result<i64, DebError> {
    let bad = |why: &str| DebError::malformed("Release date", format!("{s:?}: {why}"));
    let rest = s.split_once(',').map(|(_, r)| r).unwrap_or(s);
    let parts: Vec<&str> = rest.split_whitespace().collect();
    let [day, mon, year, time, zone @ ..] = parts.as_slice() else {
        return Err(bad("expected `day month year hh:mm:ss zone`"));
    };
    let day: i64 = day.parse().map_err(|_| bad("day"))?;
    let mon = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| m == mon)
        .ok_or_else(|| bad("month"))? as i64
        + 1;
    let year: i64 = year.parse().map_err(|_| bad("year"))?;
    let t: Vec<i64> = time.split(':').map(|x| x.parse().map_err(|_| bad("time"))).collect::<Result<_, _>>()?;
    let [h, m, sec] = t.as_slice() else { return Err(bad("time")) };
    let offset = match zone.first().copied() {
        None | Some("UTC") | Some("GMT") | Some("Z") => 0,
        Some(z) if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) => {
            let n: i64 = z[1..].parse().map_err(|_| bad("zone"))?;
            let secs = (n / 100) * 3600 + (n % 100) * 60;
            if z.starts_with('-') {
                -secs
            } else {
                secs
            }
        }
        Some(_) => return Err(bad("zone")),
    };
    if !(1..=31).contains(&day) || !(0..=23).contains(h) || !(0..=59).contains(m) || !(0..=60).contains(sec) {
        return Err(bad("out of range"));
    }
    // The year is unbounded text: overflow is an error, not a panic.
    days_from_civil(year, mon, day)
        .and_then(|d| d.checked_mul(86400))
        .and_then(|s| s.checked_add(h * 3600 + m * 60 + sec - offset))
        .ok_or_else(|| bad("year out of range"))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm); `None` when the year is too large to count in days.
fn days_from_civil(y: i64, m: i64, d: i64) -> Option<i64> {
    let y = if m <= 2 { y.checked_sub(1)? } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era.checked_mul(146097)?.checked_add(doe - 719468)
}

/// SHA256 of bytes as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "Origin: Debian
Suite: stable
Codename: bookworm
Date: Sat, 10 Jun 2023 08:52:43 UTC
Valid-Until: Sat, 17 Jun 2023 08:52:43 +0100
Acquire-By-Hash: yes
Architectures: all amd64 arm64
Components: main contrib
MD5Sum:
 0ed6d4c8891eb86358b94bb35d9e4da4  1484322 main/binary-amd64/Packages
SHA256:
 515e692f2c4121c6fcec444ef100cc18f79a991910615f3a88c8b7becfc94d2f 50060337 main/binary-amd64/Packages
 6777ea16514725f9427f48c240d92e0a6b8496138e37a1491d8597e66774e309 12084798 main/binary-amd64/Packages.gz
 9E0B5AABB2465B3D2E7A7FE27F9913846277833F7A2826E7767ACCCFF5B588C5  8790396 main/binary-amd64/Packages.xz
";

    #[test]
    fn fields_and_lookup() {
        let r = Release::parse(TEXT).unwrap();
        assert_eq!((r.suite.as_str(), r.codename.as_str()), ("stable", "bookworm"));
        assert_eq!(r.architectures, ["all", "amd64", "arm64"]);
        assert_eq!(r.components, ["main", "contrib"]);
        assert!(r.acquire_by_hash);
        assert_eq!(r.sha256.len(), 3);
        let idx = r.packages_indices("main", "amd64");
        assert_eq!(
            idx.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["main/binary-amd64/Packages.xz", "main/binary-amd64/Packages.gz", "main/binary-amd64/Packages"]
        );
        assert_eq!(idx[0].compression(), Compression::Xz);
        assert!(idx[0].sha256.starts_with("9e0b5a"));
        assert_eq!(idx[1].size, 12084798);
        assert_eq!(Release::by_hash_path(idx[2]), format!("main/binary-amd64/by-hash/SHA256/{}", idx[2].sha256));
        assert!(r.file("main/binary-i386/Packages").is_none());
    }

    #[test]
    fn dates_and_validity() {
        assert_eq!(parse_date("Thu, 01 Jan 1970 00:00:00 UTC").unwrap(), 0);
        assert_eq!(parse_date("Sat, 10 Jun 2023 08:52:43 UTC").unwrap(), 1686387163);
        assert_eq!(parse_date("Sat, 10 Jun 2023 09:52:43 +0100").unwrap(), 1686387163);
        assert!(parse_date("10 Foo 2023 08:52:43 UTC").is_err());
        let r = Release::parse(TEXT).unwrap();
        let until = 1686387163 + 7 * 86400 - 3600;
        r.check_valid_at(until).unwrap();
        let e = r.check_valid_at(until + 1).unwrap_err();
        assert!(matches!(e, DebError::Expired { .. }) && e.to_string().contains("bookworm"), "{e}");
    }

    /// Found while fuzzing (read in the code, confirmed through the
    /// deb_release target): a huge year overflowed the day and
    /// second arithmetic (`attempt to multiply with overflow`).
    #[test]
    fn huge_years_are_errors() {
        for y in ["99999999999999999", "9223372036854775807", "-9223372036854775808"] {
            for mon in ["Jan", "Jun"] {
                let s = format!("Sat, 10 {mon} {y} 08:52:43 UTC");
                let e = parse_date(&s).unwrap_err().to_string();
                assert!(e.contains("out of range"), "{s}: {e}");
            }
        }
        let e = Release::parse(&TEXT.replace("2023 08:52:43 UTC", "99999999999999999 08:52:43 UTC")).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
        assert_eq!(parse_date("Fri, 31 Dec 9999 23:59:59 UTC").unwrap(), 253402300799);
        // Negative times overflowed the same way.
        assert!(parse_date("Sat, 10 Jun 2023 -9223372036854775808:00:00 UTC").is_err());
    }

    #[test]
    fn index_checks() {
        let data = b"Package: a\n";
        let f = ReleaseFile {
            path: "main/binary-amd64/Packages".into(),
            size: data.len() as u64,
            sha256: sha256_hex(data),
        };
        f.verify(data).unwrap();
        let e = f.verify(b"Package: b\n").unwrap_err().to_string();
        assert!(e.contains("main/binary-amd64/Packages") && e.contains("SHA256"), "{e}");
        assert!(Release::parse(&TEXT.replace("SHA256:", "SHA512:")).is_err());
        assert!(Release::parse(&TEXT.replace("8790396 main", "87x0396 main")).is_err());
    }
}
