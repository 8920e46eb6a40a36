//! Attestations bound to a pushed image's digest: in-toto Statements (v1)
//! wrapped in DSSE envelopes signed with the push key. Two statements:
//!
//! - the SPDX SBOM the build wrote (`predicateType` `https://spdx.dev/Document`);
//! - SLSA provenance v1: the builder (id, version), the recipe, its inputs
//!   and lock digests, SOURCE_DATE_EPOCH, and every installed package as a
//!   resolved dependency with its checksums.
//!
//! `push --attest` stores the envelopes as layers of cosign's attachment
//! manifest `sha256-<hex>.att` (media type `application/vnd.dsse.envelope.v1+json`,
//! annotation `predicateType`), where `cosign verify-attestation` and
//! `cosign download attestation` look for them.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

use super::key::{PrivateKey, PublicKey};

/// The DSSE payload type of an in-toto Statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The media type of a DSSE envelope layer.
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The predicate types written.
pub const SPDX_PREDICATE: &str = "https://spdx.dev/Document";
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// Who built: this tool (the id), with its version in `builder.version`.
const BUILDER_ID: &str = "https://github.com/dinv-build/dinv-build";
const BUILD_TYPE: &str = "https://github.com/dinv-build/dinv-build/recipe/v1";

/// What the statements are made from: the pushed image and the files the
/// build wrote (`report.json`, `sbom.spdx.json`, `packages.json`).
pub struct AttestInputs<'a> {
    /// `REGISTRY/REPOSITORY` the image was pushed to (the subject's name).
    pub repository: &'a str,
    /// `sha256:<hex>` of the pushed manifest (the subject's digest).
    pub manifest_digest: &'a str,
    pub report: &'a Value,
    pub sbom: &'a Value,
    pub packages: &'a Value,
}

fn statement(i: &AttestInputs, predicate_type: &str, predicate: Value) -> Vec<u8> {
    let hex = i.manifest_digest.strip_prefix("sha256:").unwrap_or(i.manifest_digest);
    let v = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": i.repository, "digest": {"sha256": hex}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    });
    serde_json::to_vec(&v).expect("statement serialises")
}

/// The SBOM statement.
pub fn sbom_statement(i: &AttestInputs) -> (String, Vec<u8>) {
    (SPDX_PREDICATE.to_string(), statement(i, SPDX_PREDICATE, i.sbom.clone()))
}

/// apk's `Q1<base64 SHA-1>` as hex SHA-1; a deb's hex SHA-256 as is.
fn index_digest(checksum: &str) -> Option<(&'static str, String)> {
    if let Some(b) = checksum.strip_prefix("Q1") {
        return B64.decode(b).ok().filter(|d| d.len() == 20).map(|d| ("sha1", hex::encode(d)));
    }
    (checksum.len() == 64 && checksum.bytes().all(|c| c.is_ascii_hexdigit())).then(|| ("sha256", checksum.to_ascii_lowercase()))
}

/// The SLSA provenance v1 statement; Err names what the build output lacks.
pub fn provenance_statement(i: &AttestInputs) -> Result<(String, Vec<u8>), String> {
    let inputs = &i.report["build_inputs"];
    if !inputs.is_object() {
        return Err("report.json has no build_inputs (built by an older dinv-build: build again)".into());
    }
    // The SBOM holds the SHA-256 of every installed package file.
    let mut file_sha256 = std::collections::BTreeMap::new();
    for p in i.sbom["packages"].as_array().into_iter().flatten() {
        let sha = p["checksums"].as_array().into_iter().flatten().find(|c| c["algorithm"] == "SHA256").and_then(|c| c["checksumValue"].as_str());
        if let (Some(n), Some(v), Some(sha)) = (p["name"].as_str(), p["versionInfo"].as_str(), sha) {
            file_sha256.insert((n.to_string(), v.to_string()), sha.to_string());
        }
    }
    let mut deps = Vec::new();
    for set in i.packages.as_array().ok_or("packages.json is not a list of package sets")? {
        let set_name = set["set"].as_str().unwrap_or("");
        for p in set["packages"].as_array().into_iter().flatten() {
            let (name, version) = (p["name"].as_str().unwrap_or(""), p["version"].as_str().unwrap_or(""));
            let mut digest = serde_json::Map::new();
            if let Some((alg, hex)) = p["checksum"].as_str().and_then(index_digest) {
                digest.insert(alg.into(), json!(hex));
            }
            if let Some(sha) = file_sha256.get(&(name.to_string(), version.to_string())) {
                digest.insert("sha256".into(), json!(sha));
            }
            deps.push(json!({
                "name": name,
                "uri": p["url"],
                "digest": digest,
                "annotations": {"set": set_name, "version": version, "source": p["source"]},
            }));
        }
    }
    let predicate = json!({
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "recipe": {"path": i.report["recipe"], "sha256": inputs["recipe_sha256"]},
                "inputs_sha256": inputs["inputs_sha256"],
                "lock": i.report["lock_sha256"].as_str().map(|l| json!({"sha256": l})),
            },
            "internalParameters": {"SOURCE_DATE_EPOCH": inputs["source_date_epoch"]},
            "resolvedDependencies": deps,
        },
        "runDetails": {
            "builder": {"id": BUILDER_ID, "version": {"dinv-build": env!("CARGO_PKG_VERSION")}},
            "metadata": {},
        },
    });
    Ok((SLSA_PROVENANCE_V1.to_string(), statement(i, SLSA_PROVENANCE_V1, predicate)))
}

/// DSSE's pre-authentication encoding: what the signature covers.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A DSSE envelope (JSON) over `payload`, signed with `key`.
pub fn dsse_envelope(key: &PrivateKey, payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let sig = key.sign(&pae(payload_type, payload));
    let v = json!({
        "payloadType": payload_type,
        "payload": B64.encode(payload),
        "signatures": [{"keyid": "", "sig": B64.encode(sig)}],
    });
    serde_json::to_vec(&v).expect("envelope serialises")
}

/// The payload type and payload of an envelope one of whose signatures
/// `key` verifies.
pub fn dsse_verify(key: &PublicKey, envelope: &[u8]) -> Result<(String, Vec<u8>), String> {
    let v: Value = serde_json::from_slice(envelope).map_err(|e| format!("not a DSSE envelope: {e}"))?;
    let payload_type = v["payloadType"].as_str().ok_or("no payloadType")?;
    let payload = B64.decode(v["payload"].as_str().ok_or("no payload")?).map_err(|e| format!("payload: {e}"))?;
    let signed = pae(payload_type, &payload);
    let ok = v["signatures"].as_array().into_iter().flatten().filter_map(|s| s["sig"].as_str()).filter_map(|s| B64.decode(s).ok()).any(|s| key.verify(&signed, &s));
    if !ok {
        return Err("no signature of the envelope verifies under the key".into());
    }
    Ok((payload_type.to_string(), payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_the_dsse_v1_encoding() {
        assert_eq!(pae("http://example.com/HelloWorld", b"hello world"), b"DSSEv1 29 http://example.com/HelloWorld 11 hello world");
    }

    #[test]
    fn envelopes_verify_only_under_their_key() {
        let k = PrivateKey::generate();
        let env = dsse_envelope(&k, IN_TOTO_PAYLOAD_TYPE, b"{}");
        assert_eq!(dsse_verify(&k.public(), &env).unwrap(), (IN_TOTO_PAYLOAD_TYPE.to_string(), b"{}".to_vec()));
        assert!(dsse_verify(&PrivateKey::generate().public(), &env).is_err());
        let mut v: Value = serde_json::from_slice(&env).unwrap();
        v["payload"] = json!(B64.encode(b"{\"x\":1}"));
        assert!(dsse_verify(&k.public(), &serde_json::to_vec(&v).unwrap()).is_err());
    }

    #[test]
    fn apk_and_deb_checksums_become_in_toto_digests() {
        assert_eq!(index_digest("Q1AAECAwQFBgcICQoLDA0ODxAREhM="), Some(("sha1", "000102030405060708090a0b0c0d0e0f10111213".into())));
        assert_eq!(index_digest(&"AB".repeat(32)), Some(("sha256", "ab".repeat(32))));
        assert_eq!(index_digest("xyz"), None);
    }
}
