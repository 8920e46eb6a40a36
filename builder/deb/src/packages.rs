//! `Packages` indices: deb822 paragraphs → typed records.

use crate::deb822::{self, first_line, Paragraph};
use crate::DebError;

/// Debian `Multi-Arch` values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MultiArch {
    #[default]
    No,
    Same,
    Foreign,
    Allowed,
}

/// One binary package as listed in a `Packages` index. Relationship fields
/// stay raw (`""` when absent); see [`crate::relations`] to parse them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackageRecord {
    pub package: String,
    pub version: String,
    pub architecture: String,
    pub multi_arch: MultiArch,
    pub depends: String,
    pub pre_depends: String,
    pub recommends: String,
    pub suggests: String,
    pub provides: String,
    pub conflicts: String,
    pub breaks: String,
    pub replaces: String,
    /// `Essential: yes`.
    pub essential: bool,
    /// `required`, `important`, `standard`, `optional`, `extra` (`""` if absent).
    pub priority: String,
    pub section: String,
    /// The source package name (without the `(version)` part); the binary
    /// name when absent, as Policy says.
    pub source: String,
    /// The source version when `Source: name (version)` gives one.
    pub source_version: Option<String>,
    pub maintainer: String,
    /// Path of the `.deb` relative to the archive root.
    pub filename: String,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
    /// KiB, as declared.
    pub installed_size: Option<u64>,
    /// The synopsis (first line of Description).
    pub description: String,
    pub homepage: String,
}

impl PackageRecord {
    /// Reads one paragraph; `what` names the index file in errors.
    pub fn from_paragraph(p: &Paragraph, what: &str) -> Result<Self, DebError> {
        let at = |why: String| DebError::Malformed { what: what.to_string(), line: Some(p.line), why };
        let package = p.get("Package").ok_or_else(|| at("paragraph without a Package field".into()))?;
        let need = |f: &str| p.get(f).ok_or_else(|| at(format!("package {package}: missing {f}")));
        let opt = |f: &str| p.get(f).unwrap_or("").to_string();
        let num = |f: &str, v: &str| {
            v.trim().parse::<u64>().map_err(|_| at(format!("package {package}: {f} {v:?} is not a number")))
        };
        let multi_arch = match p.get("Multi-Arch").unwrap_or("no") {
            "no" => MultiArch::No,
            "same" => MultiArch::Same,
            "foreign" => MultiArch::Foreign,
            "allowed" => MultiArch::Allowed,
            other => return Err(at(format!("package {package}: unknown Multi-Arch {other:?}"))),
        };
        let sha256 = need("SHA256")?;
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(at(format!("package {package}: SHA256 {sha256:?} is not 64 hex digits")));
        }
        let (source, source_version) = match p.get("Source") {
            None => (package.to_string(), None),
            Some(s) => match s.split_once('(') {
                Some((n, v)) => (n.trim().to_string(), Some(v.trim_end_matches(')').trim().to_string())),
                None => (s.trim().to_string(), None),
            },
        };
        Ok(PackageRecord {
            package: package.to_string(),
            version: need("Version")?.to_string(),
            architecture: need("Architecture")?.to_string(),
            multi_arch,
            depends: opt("Depends"),
            pre_depends: opt("Pre-Depends"),
            recommends: opt("Recommends"),
            suggests: opt("Suggests"),
            provides: opt("Provides"),
            conflicts: opt("Conflicts"),
            breaks: opt("Breaks"),
            replaces: opt("Replaces"),
            essential: p.get("Essential") == Some("yes"),
            priority: opt("Priority"),
            section: opt("Section"),
            source,
            source_version,
            maintainer: opt("Maintainer"),
            filename: need("Filename")?.to_string(),
            size: num("Size", need("Size")?)?,
            sha256: sha256.to_ascii_lowercase(),
            installed_size: p.get("Installed-Size").map(|v| num("Installed-Size", v)).transpose()?,
            description: first_line(p.get("Description").unwrap_or("")).to_string(),
            homepage: opt("Homepage"),
        })
    }
}

/// Parses a whole (decompressed) `Packages` index; `what` names it in errors.
pub fn parse_packages(text: &str, what: &str) -> Result<Vec<PackageRecord>, DebError> {
    deb822::paragraphs(text, what).map(|p| PackageRecord::from_paragraph(&p?, what)).collect()
}

/// [`parse_packages`] on bytes, refusing non-UTF-8 input with the offset.
pub fn parse_packages_bytes(bytes: &[u8], what: &str) -> Result<Vec<PackageRecord>, DebError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| DebError::malformed(what, format!("not UTF-8 at byte {}", e.valid_up_to())))?;
    parse_packages(text, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Package: docker.io
Version: 20.10.24+dfsg1-1+b3
Installed-Size: 121180
Maintainer: Debian Go Packaging Team <team@example.org>
Architecture: amd64
Source: docker.io (20.10.24+dfsg1-1)
Depends: adduser, containerd (>= 1.2.6-2~), iptables, libc6 (>= 2.34)
Recommends: apparmor, ca-certificates
Breaks: docker (<< 1.5~)
Conflicts: docker (<< 1.5~)
Replaces: docker (<< 1.5~)
Description: Linux container runtime
 Docker complements kernel namespacing.
Homepage: https://example.org/moby
Section: admin
Priority: optional
Filename: pool/main/d/docker.io/docker.io_20.10.24+dfsg1-1+b3_amd64.deb
Size: 28539668
SHA256: 6E9A1D4C2A1F0B7E3A2C9D8E7F6A5B4C3D2E1F0A9B8C7D6E5F4A3B2C1D0E9F8A

Package: base-files
Essential: yes
Priority: required
Multi-Arch: foreign
Version: 12.4+deb12u5
Architecture: amd64
Filename: pool/main/b/base-files/base-files_12.4+deb12u5_amd64.deb
Size: 70000
SHA256: 0000000000000000000000000000000000000000000000000000000000000000
";

    #[test]
    fn typed_records() {
        let r = parse_packages(SAMPLE, "Packages").unwrap();
        assert_eq!(r.len(), 2);
        let d = &r[0];
        assert_eq!(d.package, "docker.io");
        assert_eq!(d.source, "docker.io");
        assert_eq!(d.source_version.as_deref(), Some("20.10.24+dfsg1-1"));
        assert_eq!(d.size, 28539668);
        assert_eq!(d.installed_size, Some(121180));
        assert_eq!(d.description, "Linux container runtime");
        assert!(d.sha256.starts_with("6e9a1d"));
        assert_eq!(d.breaks, "docker (<< 1.5~)");
        assert!(!d.essential);
        let b = &r[1];
        assert!(b.essential);
        assert_eq!(b.multi_arch, MultiArch::Foreign);
        assert_eq!(b.source, "base-files");
        assert_eq!(b.priority, "required");
    }

    #[test]
    fn missing_fields_name_the_package() {
        let bad = SAMPLE.replace("Size: 28539668\n", "");
        let e = parse_packages(&bad, "main/binary-amd64/Packages").unwrap_err().to_string();
        assert!(e.contains("docker.io") && e.contains("Size") && e.contains("main/binary-amd64/Packages"), "{e}");
        let bad = SAMPLE.replace("SHA256: 6E9A", "SHA256: XX9A");
        assert!(parse_packages(&bad, "P").unwrap_err().to_string().contains("hex"));
        assert!(parse_packages_bytes(b"Package: \xff\n", "P").unwrap_err().to_string().contains("UTF-8"));
    }
}
