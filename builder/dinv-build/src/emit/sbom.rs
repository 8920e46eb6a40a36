//! The SBOM: an SPDX 2.3 JSON document describing the image, every package
//! in it (guest and runtime), and how they relate. Deterministic: no clock,
//! no random namespace.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::context::Emit;
use crate::sources::ResolvedPackage;
use crate::{Error, Result};

/// File names of the package inventory outputs.
pub const SBOM: &str = "sbom.spdx.json";
pub const PACKAGES: &str = "packages.json";

/// Writes `sbom.spdx.json` (every guest and runtime package, the image,
/// the kernel) and `packages.json` (the resolved sets).
pub fn emit(e: &mut Emit) -> Result<()> {
    let l = e.recipe;
    let mut packages = Vec::new();
    for set in e.resolved.sets() {
        let src = e.resolved.source_of(set);
        for p in &set.packages {
            packages.push(SbomPackage { set: set.set.as_str(), kind: src.kind().as_str(), package: p, file_sha256: src.file_sha256(&e.env.cache, p)? });
        }
    }
    let doc = spdx(&SbomInput {
        name: &l.recipe.image.name,
        tag: &l.recipe.image.tag,
        epoch: e.epoch,
        image_digest: e.image.as_ref().map(|i| i.manifest_digest.as_str()),
        kernel_package: l.recipe.kernel.package.as_deref(),
        packages,
    });
    let p = e.out.join(SBOM);
    std::fs::write(&p, serde_json::to_vec_pretty(&doc).expect("json")).map_err(Error::io(&p))?;
    let sets: Vec<_> = e.resolved.sets().collect();
    let p = e.out.join(PACKAGES);
    std::fs::write(&p, serde_json::to_vec_pretty(&sets).expect("json")).map_err(Error::io(&p))
}

/// One package with the SHA-256 of the file that was installed.
pub struct SbomPackage<'a> {
    /// `guest` or `runtime`.
    pub set: &'a str,
    /// `apk` or `deb`.
    pub kind: &'a str,
    pub package: &'a ResolvedPackage,
    /// SHA-256 (hex) of the downloaded package file.
    pub file_sha256: String,
}

/// What the SBOM describes.
pub struct SbomInput<'a> {
    /// Image name and tag.
    pub name: &'a str,
    pub tag: &'a str,
    /// SOURCE_DATE_EPOCH, for `created`.
    pub epoch: i64,
    /// The image manifest digest (`sha256:…`), if an image was written.
    pub image_digest: Option<&'a str>,
    /// The kernel package's name (it gets a relationship of its own).
    pub kernel_package: Option<&'a str>,
    pub packages: Vec<SbomPackage<'a>>,
}

/// SPDX license identifiers kept as they are; any other token becomes a
/// `LicenseRef-` with the declared text recorded, so the document is valid
/// whatever a package declares.
const KNOWN_LICENSES: &[&str] = &[
    "0BSD", "AFL-2.1", "AGPL-3.0-only", "AGPL-3.0-or-later", "Apache-2.0", "Artistic-1.0-Perl", "Artistic-2.0", "BSD-1-Clause",
    "BSD-2-Clause", "BSD-3-Clause", "BSD-4-Clause", "BSL-1.0", "bzip2-1.0.6", "CC-BY-4.0", "CC-BY-SA-4.0", "CC0-1.0", "curl",
    "EPL-2.0", "FTL", "GFDL-1.3-or-later", "GPL-1.0-or-later", "GPL-2.0-only", "GPL-2.0-or-later", "GPL-3.0-only",
    "GPL-3.0-or-later", "HPND", "ICU", "IJG", "ISC", "LGPL-2.0-only", "LGPL-2.0-or-later", "LGPL-2.1-only", "LGPL-2.1-or-later",
    "LGPL-3.0-only", "LGPL-3.0-or-later", "Libpng", "libtiff", "MIT", "MIT-0", "MPL-1.1", "MPL-2.0", "NCSA", "OpenSSL",
    "OLDAP-2.8", "PHP-3.01", "PostgreSQL", "PSF-2.0", "Python-2.0", "Ruby", "SGI-B-2.0", "Sleepycat", "Unicode-DFS-2016",
    "Unlicense", "Vim", "W3C", "WTFPL", "X11", "Zlib", "ZPL-2.1",
];

const OPERATORS: &[&str] = &["AND", "OR", "WITH"];
const EXCEPTIONS: &[&str] = &["Classpath-exception-2.0", "GCC-exception-3.1", "LLVM-exception", "OpenSSL-exception", "Autoconf-exception-3.0", "Bison-exception-2.2"];

fn license_ref(token: &str) -> String {
    let clean: String = token.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' }).collect();
    format!("LicenseRef-{clean}")
}

/// Turns a declared license string into a valid SPDX expression, returning
/// it and the `LicenseRef-`s it needed (with the declared text).
pub fn license_expression(declared: &str) -> (String, Vec<(String, String)>) {
    let spaced = declared.replace('(', " ( ").replace(')', " ) ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    if tokens.is_empty() {
        return ("NOASSERTION".into(), vec![]);
    }
    let mut out = Vec::new();
    let mut refs = Vec::new();
    let mut expect_operand = true;
    let mut after_with = false;
    for t in &tokens {
        let upper = t.to_ascii_uppercase();
        if *t == "(" || *t == ")" {
            out.push(t.to_string());
            continue;
        }
        if OPERATORS.contains(&upper.as_str()) && !expect_operand {
            after_with = upper == "WITH";
            out.push(upper);
            expect_operand = true;
            continue;
        }
        if !expect_operand {
            // Two licenses side by side (`GPL-2.0 LGPL-2.1`): Alpine means AND.
            out.push("AND".into());
        }
        if after_with && EXCEPTIONS.contains(t) {
            out.push(t.to_string());
        } else if after_with {
            // An unknown exception cannot be a LicenseRef: drop the WITH.
            out.pop();
            let r = license_ref(&format!("{}-with-{t}", out.last().cloned().unwrap_or_default()));
            refs.push((r.clone(), declared.to_string()));
            out.push("AND".into());
            out.push(r);
        } else if let Some(k) = KNOWN_LICENSES.iter().find(|k| k.eq_ignore_ascii_case(t.trim_end_matches('+'))) {
            out.push(if t.ends_with('+') { format!("{k}+") } else { k.to_string() });
        } else {
            let r = license_ref(t);
            refs.push((r.clone(), declared.to_string()));
            out.push(r);
        }
        after_with = false;
        expect_operand = false;
    }
    let expr = out.join(" ").replace("( ", "(").replace(" )", ")");
    (expr, refs)
}

fn spdx_id(prefix: &str, s: &str) -> String {
    let clean: String = s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' }).collect();
    format!("SPDXRef-{prefix}-{clean}")
}

fn purl(kind: &str, p: &ResolvedPackage) -> String {
    let ns = if kind == "apk" { "alpine" } else { "debian" };
    let enc = |s: &str| s.replace('%', "%25").replace(':', "%3A").replace('+', "%2B").replace('~', "%7E");
    format!("pkg:{kind}/{ns}/{}@{}?arch={}", enc(&p.name), enc(&p.version), p.arch)
}

use dinv_image::rfc3339;

/// The SPDX 2.3 JSON document.
pub fn spdx(input: &SbomInput) -> Value {
    let image_id = "SPDXRef-Image".to_string();
    let mut hasher = Sha256::new();
    hasher.update(input.name.as_bytes());
    hasher.update(input.tag.as_bytes());
    for p in &input.packages {
        hasher.update(p.file_sha256.as_bytes());
    }
    let doc_hash = hex::encode(hasher.finalize());
    let mut packages = Vec::new();
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id
    })];
    let mut image = json!({
        "SPDXID": image_id,
        "name": input.name,
        "versionInfo": input.tag,
        "supplier": "NOASSERTION",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
    });
    if let Some(d) = input.image_digest {
        if let Some(hex) = d.strip_prefix("sha256:") {
            image["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": hex}]);
        }
    }
    packages.push(image);
    let mut extracted: BTreeSet<(String, String)> = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for p in &input.packages {
        let r = p.package;
        let id = spdx_id(&format!("{}-{}", p.set, p.kind), &format!("{}-{}", r.name, r.version));
        if !seen.insert(id.clone()) {
            continue;
        }
        let (license, refs) = license_expression(r.license.as_deref().unwrap_or(""));
        extracted.extend(refs);
        let supplier = match &r.maintainer {
            Some(m) if !m.trim().is_empty() => format!("Person: {}", m.trim()),
            _ => "NOASSERTION".into(),
        };
        let mut pkg = json!({
            "SPDXID": id,
            "name": r.name,
            "versionInfo": r.version,
            "supplier": supplier,
            "downloadLocation": r.url,
            "filesAnalyzed": false,
            "checksums": [{"algorithm": "SHA256", "checksumValue": p.file_sha256}],
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": license,
            "copyrightText": "NOASSERTION",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl(p.kind, r)}],
        });
        if let Some(o) = &r.origin {
            pkg["sourceInfo"] = json!(format!("built from source package {o}"));
        }
        if let Some(h) = &r.homepage {
            if h.starts_with("http") {
                pkg["homepage"] = json!(h);
            }
        }
        if let Some(d) = &r.description {
            pkg["summary"] = json!(d);
        }
        // Which suite gave the package: a scanner can tell a security
        // update (`trixie-security`) from the release's version.
        if let Some(suite) = &r.suite {
            pkg["comment"] = json!(format!("from Debian suite {suite}"));
        }
        packages.push(pkg);
        relationships.push(json!({"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": id}));
        if input.kernel_package == Some(r.name.as_str()) && p.set == "guest" {
            relationships.push(json!({"spdxElementId": id, "relationshipType": "OTHER", "relatedSpdxElement": image_id,
                "comment": "the guest kernel booted by the image"}));
        }
    }
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}:{}", input.name, input.tag),
        "documentNamespace": format!("https://dinv-build.invalid/spdx/{}-{}", input.name.replace('/', "-"), &doc_hash[..32]),
        "creationInfo": {"created": rfc3339(input.epoch), "creators": [concat!("Tool: dinv-build-", env!("CARGO_PKG_VERSION"))]},
        "packages": packages,
        "relationships": relationships,
    });
    if !extracted.is_empty() {
        let mut by_id: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
        for (id, text) in extracted {
            by_id.entry(id).or_insert(text);
        }
        doc["hasExtractedLicensingInfos"] = Value::Array(
            by_id
                .into_iter()
                .map(|(id, text)| json!({"licenseId": id, "extractedText": format!("Declared by the package as: {text}")}))
                .collect(),
        );
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licenses_become_valid_expressions() {
        assert_eq!(license_expression("MIT").0, "MIT");
        assert_eq!(license_expression("GPL-2.0-only AND LGPL-2.1-or-later").0, "GPL-2.0-only AND LGPL-2.1-or-later");
        assert_eq!(license_expression("MIT BSD-3-Clause").0, "MIT AND BSD-3-Clause");
        let (e, refs) = license_expression("GPL-2.0-or-later AND custom:foo");
        assert_eq!(e, "GPL-2.0-or-later AND LicenseRef-custom-foo");
        assert_eq!(refs.len(), 1);
        assert_eq!(license_expression("(MIT OR Apache-2.0)").0, "(MIT OR Apache-2.0)");
        assert_eq!(license_expression("").0, "NOASSERTION");
        assert_eq!(license_expression("GPL-2.0-or-later WITH Classpath-exception-2.0").0, "GPL-2.0-or-later WITH Classpath-exception-2.0");
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    fn pkg(name: &str, license: Option<&str>) -> ResolvedPackage {
        ResolvedPackage {
            source: "alpine".into(),
            name: name.into(),
            version: "1.2.3-r0".into(),
            arch: "x86_64".into(),
            url: format!("https://mirror.example.invalid/main/x86_64/{name}-1.2.3-r0.apk"),
            checksum: "Q1abc".into(),
            size: 10,
            installed_size: 20,
            license: license.map(str::to_string),
            origin: Some(name.into()),
            maintainer: Some("Jane Doe <jane@example.invalid>".into()),
            homepage: Some("https://example.invalid/".into()),
            description: Some("a package".into()),
            build_time: Some(1_700_000_000),
            reasons: vec![],
            suite: None,
        }
    }

    /// The document passes the reference validator (pyspdxtools, from
    /// PyPI's spdx-tools; scripts/setup installs it).
    #[test]
    fn validates_with_pyspdxtools() {
        let pkgs = [pkg("musl", Some("MIT")), pkg("busybox", Some("GPL-2.0-only")), pkg("oddball", Some("custom:weird & BSD")), pkg("nolicense", None)];
        let input = SbomInput {
            name: "dinv",
            tag: "latest",
            epoch: 1_700_000_000,
            image_digest: Some("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            kernel_package: Some("busybox"),
            packages: pkgs
                .iter()
                .map(|p| SbomPackage { set: "guest", kind: "apk", package: p, file_sha256: hex::encode(Sha256::digest(p.name.as_bytes())) })
                .collect(),
        };
        let doc = spdx(&input);
        assert_eq!(doc, spdx(&input), "deterministic");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sbom.spdx.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
        let out = std::process::Command::new("pyspdxtools")
            .arg("-i")
            .arg(&path)
            .output()
            .expect("pyspdxtools not found: run scripts/setup (pip install spdx-tools)");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && !text.contains("nvalid"), "pyspdxtools rejected the SBOM:\n{text}");
    }
}
