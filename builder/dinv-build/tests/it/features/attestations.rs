//! `push --sign-key --attest`: the SBOM and SLSA provenance of a real
//! build (locked, from the generated mirror) pushed as DSSE-signed in-toto
//! Statements under cosign's `sha256-<hex>.att` tag, fetched back by the
//! image digest and checked: signature, subject digest, predicate, the
//! provenance's dependencies against packages.json, and, in Python, the
//! envelopes' signatures (`cryptography`) and the Statements against the
//! reference in-toto-attestation bindings.

use dinv_test_support as support;
use support::cli::{text, Cli};

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use dinv_build::sign::{dsse_verify, PublicKey, IN_TOTO_PAYLOAD_TYPE};
use dinv_build::Reference;
use serde_json::Value;
use support::alpine_repo::{repo_root, AlpineMirror};
use support::registry::{start_registry, tool_available};

fn json(p: &Path) -> Value {
    serde_json::from_slice(&fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// Checks DSSE envelopes (files) on its own: the signature over DSSE's
/// PAE with the public key (argv[1]), with the `cryptography` package;
/// then the Statement with the reference bindings: the Statement, every
/// subject and dependency as a ResourceDescriptor, and the SLSA provenance
/// predicate parsed strictly into its protobuf.
const VALIDATE: &str = r#"
import base64, json, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2, resource_descriptor_pb2
from in_toto_attestation.v1.statement import Statement
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
key = serialization.load_pem_public_key(open(sys.argv[1], "rb").read())
for path in sys.argv[2:]:
    env = json.load(open(path))
    body = base64.b64decode(env["payload"])
    t = env["payloadType"].encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)
    key.verify(base64.b64decode(env["signatures"][0]["sig"]), pae, ec.ECDSA(hashes.SHA256()))
    doc = json.loads(body)
    pb = json_format.ParseDict(doc, statement_pb2.Statement())
    Statement.copy_from_pb(pb).validate()
    if pb.predicate_type == "https://slsa.dev/provenance/v1":
        prov = json_format.ParseDict(doc["predicate"], provenance_pb2.Provenance())
        assert prov.build_definition.build_type, "buildType"
        assert prov.run_details.builder.id, "builder.id"
        for dep in prov.build_definition.resolved_dependencies:
            ResourceDescriptor.copy_from_pb(dep).validate()
        print(path, "provenance", len(prov.build_definition.resolved_dependencies))
    else:
        print(path, pb.predicate_type)
"#;

#[test]
fn attestations_are_bound_to_the_pushed_digest_and_validate() {
    let test = "attestations_are_bound_to_the_pushed_digest_and_validate";
    if !tool_available("docker-registry", &["--version"], test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mirror = AlpineMirror::write(dir.path());
    let recipe = dir.path().join("app.toml");
    fs::write(&recipe, mirror.child_recipe(&repo_root().join("recipes/default.toml"), "[image]\nname = \"app\"\n")).unwrap();
    fs::write(dir.path().join("passphrase"), "attest me\n").unwrap();
    let cli = Cli::new(env!("CARGO_BIN_EXE_dinv-build"), dir.path());
    cli.ok(&["lock", "app.toml"]);
    cli.ok(&["build", "--locked", "--quiet", "--out", "out/app", "app.toml"]);
    cli.ok(&["keygen", "--output-prefix", "release", "--sign-passphrase-file", "passphrase"]);

    let reg = start_registry();
    let reference = format!("{}/team/app:1.0", reg.host());
    let o = cli.run(&["push", "--json", "--sign-key", "release.private", "--sign-passphrase-file", "passphrase", "--attest", "out/app", &reference]);
    assert!(o.status.success(), "{}", text(&o));
    let pushed: Value = serde_json::from_slice(&o.stdout).unwrap();
    let digest = pushed["push"]["manifest_digest"].as_str().unwrap().to_string();
    assert_eq!(pushed["push"]["attestations"]["reference"], format!("{}/team/app:{}.att", reg.host(), digest.replace(':', "-")));

    // report.json records what was pushed.
    let report = json(&dir.path().join("out/app/report.json"));
    let entry = &report["pushed"][0];
    assert_eq!(entry["manifest_digest"], digest.as_str());
    assert_eq!(entry["signature_digest"], pushed["push"]["signature"]["digest"]);
    assert_eq!(entry["attestations_digest"], pushed["push"]["attestations"]["digest"]);

    // Fetched back by the image digest, each envelope verifies under the key.
    let key = PublicKey::read(&dir.path().join("release.pub")).unwrap();
    let envelopes = dinv_build::fetch_attestations(&Reference::parse(&reference).unwrap(), false, &digest).unwrap();
    assert_eq!(envelopes.len(), 2);
    let mut statements = BTreeMap::new();
    for env in &envelopes {
        let (payload_type, payload) = dsse_verify(&key, env).unwrap();
        assert_eq!(payload_type, IN_TOTO_PAYLOAD_TYPE);
        let st: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(st["subject"][0]["digest"]["sha256"], digest.trim_start_matches("sha256:"), "subject digest == pushed manifest digest");
        assert_eq!(st["subject"][0]["name"], format!("{}/team/app", reg.host()));
        statements.insert(st["predicateType"].as_str().unwrap().to_string(), st);
    }
    // Another key verifies none.
    let other = dinv_build::sign::PrivateKey::generate().public();
    assert!(envelopes.iter().all(|e| dsse_verify(&other, e).is_err()));

    let sbom = &statements["https://spdx.dev/Document"]["predicate"];
    assert_eq!(*sbom, json(&dir.path().join("out/app/sbom.spdx.json")));
    let prov = &statements["https://slsa.dev/provenance/v1"]["predicate"];
    let def = &prov["buildDefinition"];
    let packages = json(&dir.path().join("out/app/packages.json"));
    let mut want: Vec<String> = packages.as_array().unwrap().iter().flat_map(|s| s["packages"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string())).collect();
    let mut got: Vec<String> = def["resolvedDependencies"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap().to_string()).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "materials == packages.json names");
    assert!(def["resolvedDependencies"].as_array().unwrap().iter().all(|d| d["digest"]["sha256"].as_str().is_some_and(|s| s.len() == 64)), "every dependency has its file's sha256");
    assert_eq!(def["internalParameters"]["SOURCE_DATE_EPOCH"], 1_750_000_000);
    assert_eq!(def["externalParameters"]["lock"]["sha256"], support::sha256_hex(&fs::read(dir.path().join("app.toml.lock")).unwrap()));
    assert_eq!(def["externalParameters"]["recipe"]["sha256"], support::sha256_hex(&fs::read(&recipe).unwrap()));
    assert_eq!(prov["runDetails"]["builder"]["version"]["dinv-build"], env!("CARGO_PKG_VERSION"));

    // Pushing again attaches nothing new (deterministic statements and signatures).
    let o = cli.run(&["push", "--json", "--sign-key", "release.private", "--sign-passphrase-file", "passphrase", "--attest", "out/app", &reference]);
    let again: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(again["push"]["attestations"]["total_layers"], 2, "{again}");

    // The reference bindings accept both Statements.
    let py = support::python::python_with(Path::new(env!("CARGO_TARGET_TMPDIR")), &[("in_toto_attestation.v1.statement", "in-toto-attestation"), ("cryptography", "cryptography")]);
    if let Some(py) = py {
        let mut args = vec!["-c".to_string(), VALIDATE.to_string(), dir.path().join("release.pub").display().to_string()];
        for (i, env) in envelopes.iter().enumerate() {
            let p = dir.path().join(format!("envelope-{i}.json"));
            fs::write(&p, env).unwrap();
            args.push(p.display().to_string());
        }
        let o = Command::new(&py).args(&args).output().unwrap();
        assert!(o.status.success(), "in-toto-attestation refused a Statement: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("provenance {}", want.len())), "{}", text(&o));
    }
}
