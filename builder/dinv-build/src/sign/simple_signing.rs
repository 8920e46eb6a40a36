//! Image signatures in the sigstore (cosign) format that containers/image
//! (skopeo, podman) verifies with a `sigstoreSigned` policy:
//!
//! - the payload is the "simple signing" JSON naming the image's
//!   `docker-reference` and its `docker-manifest-digest`;
//! - the signature is ECDSA P-256 over SHA-256 of the payload bytes, in
//!   ASN.1 DER, base64 in the layer annotation
//!   `dev.cosignproject.cosign/signature`;
//! - the payload is a layer (`application/vnd.dev.cosign.simplesigning.v1+json`)
//!   of an OCI manifest stored in the image's repository under the tag
//!   `sha256-<hex>.sig` (cosign's "attachment" tag for the digest).

use serde_json::{json, Value};

/// The media type containers/image and cosign write for the payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// `critical.type` of every sigstore payload.
pub const PAYLOAD_TYPE: &str = "cosign container image signature";

/// The payload bytes for `reference` (`registry/repo:tag`) at `digest`.
pub fn payload(reference: &str, digest: &str) -> Vec<u8> {
    let v = json!({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": PAYLOAD_TYPE,
        },
        "optional": null,
    });
    serde_json::to_vec(&v).expect("payload serialises")
}

/// What a payload claims: (docker-reference, manifest digest), or why it is no payload.
pub fn parse_payload(bytes: &[u8]) -> Result<(String, String), String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("payload is not JSON: {e}"))?;
    let c = &v["critical"];
    if c["type"] != PAYLOAD_TYPE {
        return Err(format!("payload type {} is not {PAYLOAD_TYPE:?}", c["type"]));
    }
    let reference = c["identity"]["docker-reference"].as_str().ok_or("payload has no critical.identity.docker-reference")?;
    let digest = c["image"]["docker-manifest-digest"].as_str().ok_or("payload has no critical.image.docker-manifest-digest")?;
    Ok((reference.to_string(), digest.to_string()))
}

/// cosign's attachment tag for a manifest digest and suffix (`sig`, `att`):
/// `sha256:abc…` → `sha256-abc….sig`.
pub fn attachment_tag(digest: &str, suffix: &str) -> String {
    format!("{}.{suffix}", digest.replacen(':', "-", 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_the_reference_and_digest_in_the_shape_containers_image_reads() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let p = payload("127.0.0.1:5000/team/app:1.0", &d);
        let v: Value = serde_json::from_slice(&p).unwrap();
        // containers/image accepts exactly these keys (unknown ones are refused).
        assert_eq!(v.as_object().unwrap().keys().collect::<Vec<_>>(), ["critical", "optional"]);
        assert_eq!(v["critical"].as_object().unwrap().keys().collect::<Vec<_>>(), ["identity", "image", "type"]);
        assert_eq!(parse_payload(&p).unwrap(), ("127.0.0.1:5000/team/app:1.0".to_string(), d.clone()));
        assert!(parse_payload(br#"{"critical":{"type":"other"}}"#).is_err());
        assert_eq!(attachment_tag(&d, "sig"), format!("sha256-{}.sig", "ab".repeat(32)));
    }
}
