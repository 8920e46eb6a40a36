//! Signing what `push` uploads, in the sigstore (cosign) formats that
//! containers/image verifies: keys (`key`), image signatures
//! (`simple_signing`) and DSSE-wrapped in-toto attestations (`attest`).
//! No registry access here: `push` stores what these functions make.

mod attest;
mod key;
mod simple_signing;

pub use attest::{dsse_envelope, dsse_verify, provenance_statement, sbom_statement, AttestInputs, DSSE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE};
pub use key::{passphrase, PrivateKey, PublicKey, ENCRYPTED_LABEL, LEGACY_ENCRYPTED_LABEL};
pub use simple_signing::{attachment_tag, parse_payload, payload, PAYLOAD_TYPE, SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE};
