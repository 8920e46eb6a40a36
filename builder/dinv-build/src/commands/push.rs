//! `push`: upload a built image to a registry; with `--sign-key`, sign it
//! (cosign's `.sig` attachment), and with `--attest`, attach its SBOM and
//! SLSA provenance (cosign's `.att` attachment).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::outcome::{object, Outcome};
use crate::push::{AttachmentLayer, PushReport, Reference, Signing};
use crate::sign::{self, PrivateKey};
use crate::{Error, Result};

/// How to push.
#[derive(Clone, Debug, Default)]
pub struct PushOptions {
    /// Plain HTTP even for a non-loopback registry.
    pub plain_http: bool,
    /// Sign with this private key (cosign's encrypted PEM, or PKCS#8).
    pub sign_key: Option<PathBuf>,
    /// Read the key's passphrase from this file (else DINV_SIGN_PASSPHRASE).
    pub passphrase_file: Option<PathBuf>,
    /// Attach the SBOM and the provenance, signed with the same key.
    pub attest: bool,
}

struct Pushed(PushReport);

impl Outcome for Pushed {
    fn text(&self) -> String {
        let r = &self.0;
        let mut t = format!("pushed {}@{} ({} blobs uploaded, {} already there)\n", r.reference, r.manifest_digest, r.blobs_uploaded, r.blobs_present);
        if let Some(s) = &r.signature {
            t.push_str(&format!("signed: {}@{}\n", s.reference, s.digest));
        }
        if let Some(a) = &r.attestations {
            t.push_str(&format!("attested ({} statements): {}@{}\n", a.layers.len(), a.reference, a.digest));
        }
        for p in &r.platforms {
            t.push_str(&format!("  {}: {}\n", p.platform, p.manifest_digest));
            if let Some(a) = &p.attestations {
                t.push_str(&format!("  {} attested ({} statements): {}@{}\n", p.platform, a.layers.len(), a.reference, a.digest));
            }
        }
        t
    }

    fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        object(json!({"push": self.0}))
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).map_err(Error::io(path))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Usage(format!("{}: not JSON: {e}", path.display())))
}

/// The signed attestation layers for the build output `out`.
fn attestations(out: &Path, reference: &Reference, digest: &str, key: &PrivateKey) -> Result<Vec<AttachmentLayer>> {
    let report = read_json(&out.join("report.json"))?;
    let sbom = read_json(&out.join("sbom.spdx.json"))?;
    let packages = read_json(&out.join("packages.json"))?;
    let repository = format!("{}/{}", reference.registry, reference.repository);
    let inputs = sign::AttestInputs { repository: &repository, manifest_digest: digest, report: &report, sbom: &sbom, packages: &packages };
    let provenance = sign::provenance_statement(&inputs).map_err(|e| Error::Usage(format!("{}: {e}", out.display())))?;
    let mut layers = Vec::new();
    for (predicate_type, statement) in [sign::sbom_statement(&inputs), provenance] {
        let mut annotations = serde_json::Map::new();
        annotations.insert("predicateType".into(), json!(predicate_type));
        // cosign writes an empty signature annotation on attestation layers.
        annotations.insert(sign::SIGNATURE_ANNOTATION.into(), json!(""));
        let bytes = sign::dsse_envelope(key, sign::IN_TOTO_PAYLOAD_TYPE, &statement);
        layers.push(AttachmentLayer { bytes, media_type: sign::DSSE_MEDIA_TYPE.into(), annotations });
    }
    Ok(layers)
}

/// Records what was pushed in the build output's report.json (`pushed`,
/// one entry per push, the newest last).
fn record(out: &Path, r: &PushReport) -> Result<()> {
    let path = out.join("report.json");
    let mut report = read_json(&path)?;
    let entry = json!({
        "reference": r.reference,
        "manifest_digest": r.manifest_digest,
        "signature_digest": r.signature.as_ref().map(|s| &s.digest),
        "attestations_digest": r.attestations.as_ref().map(|a| &a.digest),
        "attestation_layers": r.attestations.as_ref().map(|a| &a.layers),
    });
    match report.get_mut("pushed").and_then(Value::as_array_mut) {
        Some(list) => list.push(entry),
        None => report["pushed"] = json!([entry]),
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&report).expect("json")).map_err(Error::io(&path))
}

/// The platforms of a multi-platform build output (its report's
/// `image.manifests`): platform, manifest digest, directory. `None` for a
/// single-platform output.
fn platform_dirs(out: &Path) -> Result<Option<Vec<(String, String, PathBuf)>>> {
    let report = read_json(&out.join("report.json"))?;
    let Some(manifests) = report["image"]["manifests"].as_array() else { return Ok(None) };
    Ok(Some(
        manifests
            .iter()
            .map(|m| (m["platform"].as_str().unwrap_or("").to_string(), m["manifest_digest"].as_str().unwrap_or("").to_string(), out.join(m["dir"].as_str().unwrap_or(""))))
            .collect(),
    ))
}

pub fn run(image: &Path, reference: &str, opts: &PushOptions) -> Result<Box<dyn Outcome>> {
    let r = Reference::parse(reference)?;
    if opts.sign_key.is_none() && (opts.attest || opts.passphrase_file.is_some()) {
        let flag = if opts.attest { "--attest" } else { "--sign-passphrase-file" };
        return Err(Error::Usage(format!("{flag} needs --sign-key KEY")));
    }
    // A build output directory holds report.json beside oci/.
    let out = image.join("report.json").is_file().then_some(image);
    if opts.attest && out.is_none() {
        return Err(Error::Usage(format!("--attest: {} is not a build output directory (report.json, sbom.spdx.json and packages.json go into the attestations)", image.display())));
    }
    let key = match &opts.sign_key {
        Some(path) => Some(PrivateKey::read(path, sign::passphrase(opts.passphrase_file.as_deref())?.as_deref())?),
        None => None,
    };
    let signing = match &key {
        Some(key) => {
            let mut signing = Signing { key, attestations: Vec::new(), platform_attestations: Vec::new() };
            if let (true, Some(out)) = (opts.attest, out) {
                match platform_dirs(out)? {
                    // A multi-platform output: each platform's manifest is
                    // attested with its own SBOM and provenance.
                    Some(platforms) => {
                        for (platform, digest, dir) in platforms {
                            let layers = attestations(&dir, &r, &digest, key)?;
                            signing.platform_attestations.push((platform, digest, layers));
                        }
                    }
                    None => signing.attestations = attestations(out, &r, &crate::push::layout_digest(image)?, key)?,
                }
            }
            Some(signing)
        }
        None => None,
    };
    let report = crate::push::push(image, &r, opts.plain_http, signing)?;
    if let Some(out) = out {
        record(out, &report)?;
    }
    Ok(Box::new(Pushed(report)))
}
