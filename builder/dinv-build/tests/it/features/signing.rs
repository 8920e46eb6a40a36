//! Signed pushes, checked against containers/image (skopeo): keys from
//! `dinv-build keygen` sign with skopeo and our verifier accepts the
//! result; images pushed with `--sign-key` pass `skopeo copy` under a
//! policy requiring `sigstoreSigned` with our public key, and an unsigned
//! tag, a signature by another key and a signature over another manifest
//! are refused.
//!
//! The judge is containers/image itself: the host's skopeo, or, where
//! the host's is Debian bookworm's 1.9 with sigstore patched out, Debian
//! trixie's skopeo 1.18 fetched from the archive (support::skopeo). The key
//! format is also checked both ways with `hashlib.scrypt` and PyNaCl
//! (libsodium's secretbox, which Go's nacl/secretbox matches).

use dinv_test_support as support;
use support::cli::{text, Cli};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dinv_build::sign::PublicKey;
use dinv_build::Reference;
use dinv_fstree::{Meta, Tree, TreePath};
use dinv_image::{write_oci_layout, ImageSpec, LayerBuilder, LayerOptions};
use support::registry::{start_registry, tool_available};
use support::skopeo::{sigstore_skopeo, Skopeo};

const PASSPHRASE: &str = "correct horse battery staple";

/// Decrypts a cosign private key with scrypt + libsodium's secretbox and
/// prints its public key PEM (argv: key file, passphrase); or, with
/// `write`, writes a new key as cosign generate-key-pair does (argv:
/// `write`, private file, public file, passphrase).
const COSIGN_KEYS: &str = r#"
import base64, hashlib, json, os, sys
import nacl.secret
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
def pem(label, data):
    b = base64.b64encode(data).decode()
    return f"-----BEGIN {label}-----\n" + "\n".join(b[i:i+64] for i in range(0, len(b), 64)) + f"\n-----END {label}-----\n"
if sys.argv[1] == "write":
    _, _, priv, pub, pw = sys.argv
    k = ec.generate_private_key(ec.SECP256R1())
    der = k.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    salt, nonce = os.urandom(32), os.urandom(24)
    box = nacl.secret.SecretBox(hashlib.scrypt(pw.encode(), salt=salt, n=32768, r=8, p=1, maxmem=2**26, dklen=32))
    ct = box.encrypt(der, nonce).ciphertext
    env = {"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1}, "salt": base64.b64encode(salt).decode()},
           "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()}, "ciphertext": base64.b64encode(ct).decode()}
    open(priv, "w").write(pem("ENCRYPTED COSIGN PRIVATE KEY", json.dumps(env).encode()))
    open(pub, "wb").write(k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
else:
    path, pw = sys.argv[1:3]
    lines = open(path).read().strip().splitlines()
    assert lines[0] == "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----", lines[0]
    env = json.loads(base64.b64decode("".join(lines[1:-1])))
    assert env["kdf"]["name"] == "scrypt" and env["cipher"]["name"] == "nacl/secretbox", env
    p = env["kdf"]["params"]
    key = hashlib.scrypt(pw.encode(), salt=base64.b64decode(env["kdf"]["salt"]), n=p["N"], r=p["r"], p=p["p"], maxmem=2**26, dklen=32)
    der = nacl.secret.SecretBox(key).decrypt(base64.b64decode(env["ciphertext"]), base64.b64decode(env["cipher"]["nonce"]))
    k = serialization.load_der_private_key(der, None)
    sys.stdout.write(k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())
"#;

/// Python with `cryptography` and PyNaCl (see support::python).
fn python() -> Option<PathBuf> {
    support::python::python_with(Path::new(env!("CARGO_TARGET_TMPDIR")), &[("cryptography", "cryptography"), ("nacl.secret", "pynacl")])
}

/// A work directory with a passphrase file.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Work {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("passphrase"), format!("{PASSPHRASE}\n")).unwrap();
        Work { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn cli(&self) -> Cli {
        Cli::new(env!("CARGO_BIN_EXE_dinv-build"), self.dir.path())
    }

    /// `dinv-build keygen --output-prefix NAME` (passphrase from the file).
    fn keygen(&self, name: &str) -> (PathBuf, PathBuf) {
        let o = self.cli().run(&["keygen", "--output-prefix", name, "--sign-passphrase-file", "passphrase"]);
        assert!(o.status.success(), "{}", text(&o));
        (self.path(&format!("{name}.private")), self.path(&format!("{name}.pub")))
    }

    /// A one-layer OCI layout whose file holds `content`.
    fn layout(&self, name: &str, content: &str) -> PathBuf {
        let mut tree = Tree::new();
        tree.write_file(&TreePath::new("etc/dinv-signing-test"), format!("{content}\n"), Meta::root(0o644)).unwrap();
        let scratch = self.path(&format!("{name}-scratch"));
        fs::create_dir_all(&scratch).unwrap();
        let layer = LayerBuilder::from_tree(&tree, &LayerOptions::new(&scratch, "signing test")).unwrap();
        let mut spec = ImageSpec::new("dinv-signing-test", "v1", 1_700_000_000);
        spec.cmd = vec!["/bin/true".into()];
        let layout = self.path(name);
        write_oci_layout(&layout, &spec, &[layer]).unwrap();
        layout
    }

    /// registries.d: the registry's signatures are sigstore attachments.
    fn registries_d(&self, host: &str) -> PathBuf {
        let d = self.path("registries.d");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("local.yaml"), format!("docker:\n  {host}:\n    use-sigstore-attachments: true\n")).unwrap();
        d
    }

    /// policy.json: everything from `host` must carry a sigstore signature by `public`.
    fn policy(&self, host: &str, public: &Path) -> PathBuf {
        let p = self.path("policy.json");
        let v = serde_json::json!({
            "default": [{"type": "reject"}],
            "transports": {
                "docker": {host: [{"type": "sigstoreSigned", "keyPath": public, "signedIdentity": {"type": "matchRepoDigestOrExact"}}]},
                "oci": {"": [{"type": "insecureAcceptAnything"}]},
                "dir": {"": [{"type": "insecureAcceptAnything"}]},
            },
        });
        fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
        p
    }

    /// `skopeo copy docker://REFERENCE dir:…` under the policy.
    fn skopeo_pull(&self, skopeo: &Skopeo, host: &str, public: &Path, reference: &str) -> Output {
        let dest = self.path(&format!("pulled-{}", reference.replace(['/', ':'], "_")));
        let _ = fs::remove_dir_all(&dest);
        skopeo
            .command()
            .arg("--policy")
            .arg(self.policy(host, public))
            .arg("--registries.d")
            .arg(self.registries_d(host))
            .args(["copy", "--src-tls-verify=false", &format!("docker://{reference}"), &format!("dir:{}", dest.display())])
            .output()
            .unwrap()
    }
}

impl Work {
    /// Is `reference` (`host/repo:tag` or `host/repo@digest`) accepted by
    /// skopeo under a policy requiring a signature by `public`?
    fn accepted(&self, skopeo: &Skopeo, host: &str, public: &Path, reference: &str) -> bool {
        let o = self.skopeo_pull(skopeo, host, public, reference);
        eprintln!("skopeo copy {reference}: {}", if o.status.success() { "accepted".to_string() } else { text(&o).trim().to_string() });
        o.status.success()
    }
}

/// skopeo with sigstore support and docker-registry, or None (skipped with
/// a notice; a failure under DINV_REQUIRE_DOCKER=1).
fn judge(test: &str) -> Option<Skopeo> {
    if !skopeo_and_registry(test) {
        return None;
    }
    match sigstore_skopeo(Path::new(env!("CARGO_TARGET_TMPDIR"))) {
        Ok(s) => {
            eprintln!("judge: {} ({})", s.version, s.command().get_program().to_string_lossy());
            Some(s)
        }
        Err(e) if std::env::var("DINV_REQUIRE_DOCKER").as_deref() == Ok("1") => panic!("DINV_REQUIRE_DOCKER=1 but no skopeo with sigstore support: {e}"),
        Err(e) => {
            eprintln!("notice: {test}: skipped, no skopeo with sigstore support: {e}");
            None
        }
    }
}

fn skopeo_and_registry(test: &str) -> bool {
    tool_available("skopeo", &["--version"], test) && tool_available("docker-registry", &["--version"], test)
}

fn manifest_digest(layout: &Path) -> String {
    let index: serde_json::Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_string()
}

fn curl(args: &[&str]) -> Output {
    Command::new("curl").args(["-sf"]).args(args).output().expect("curl")
}

#[test]
fn keygen_keys_sign_with_skopeo_and_our_verifier_accepts_them() {
    let Some(skopeo) = judge("keygen_keys_sign_with_skopeo_and_our_verifier_accepts_them") else { return };
    let w = Work::new();
    let (private, public) = w.keygen("team");
    let pem = fs::read_to_string(&private).unwrap();
    assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"), "{pem}");
    assert!(fs::read_to_string(&public).unwrap().starts_with("-----BEGIN PUBLIC KEY-----"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o600);
    // No overwrite.
    let o = w.cli().run(&["keygen", "--output-prefix", "team", "--sign-passphrase-file", "passphrase"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // The key format, both ways, with libsodium's secretbox and scrypt.
    if let Some(py) = python() {
        let o = Command::new(&py).args(["-c", COSIGN_KEYS]).arg(&private).arg(PASSPHRASE).output().unwrap();
        assert!(o.status.success(), "Python could not open our key: {}", text(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), fs::read_to_string(&public).unwrap().trim());
        let (theirs, theirs_pub) = (w.path("cosign.key"), w.path("cosign.pub"));
        let o = Command::new(&py).args(["-c", COSIGN_KEYS, "write"]).arg(&theirs).arg(&theirs_pub).arg(PASSPHRASE).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let k = dinv_build::sign::PrivateKey::read(&theirs, Some(PASSPHRASE)).unwrap();
        assert_eq!(k.public().to_pem().trim(), fs::read_to_string(&theirs_pub).unwrap().trim());
    }

    let reg = start_registry();
    let layout = w.layout("image", "signed by skopeo");
    let reference = format!("{}/team/by-skopeo:v1", reg.host());
    let o = skopeo
        .command()
        .arg("--registries.d")
        .arg(w.registries_d(&reg.host()))
        .args(["copy", "--dest-tls-verify=false", "--sign-by-sigstore-private-key"])
        .arg(&private)
        .arg("--sign-passphrase-file")
        .arg(w.path("passphrase"))
        .arg(format!("oci:{}", layout.display()))
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "skopeo could not sign with our key: {}", text(&o));

    let key = PublicKey::read(&public).unwrap();
    let (digest, signed) = dinv_build::verify_signatures(&Reference::parse(&reference).unwrap(), false, &key).unwrap();
    assert_eq!(signed, [reference.clone()], "{digest}");
    let (_, other) = w.keygen("other");
    let (_, none) = dinv_build::verify_signatures(&Reference::parse(&reference).unwrap(), false, &PublicKey::read(&other).unwrap()).unwrap();
    assert!(none.is_empty(), "another key verified: {none:?}");
}

#[test]
fn a_signed_push_passes_a_sigstore_policy_and_the_rest_is_refused() {
    let Some(skopeo) = judge("a_signed_push_passes_a_sigstore_policy_and_the_rest_is_refused") else { return };
    let w = Work::new();
    let (private, public) = w.keygen("release");
    let (other_private, _) = w.keygen("other");
    let reg = start_registry();
    let host = reg.host();
    let one = w.layout("one", "image one");
    let two = w.layout("two", "image two");
    let cli = w.cli().env("DINV_SIGN_PASSPHRASE", PASSPHRASE);

    // Signed with our key: skopeo accepts it under the policy.
    let signed = format!("{host}/team/app:signed");
    let o = cli.run(&["push", "--json", "--sign-key", private.to_str().unwrap(), one.to_str().unwrap(), &signed]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let d1 = manifest_digest(&one);
    assert_eq!(v["push"]["manifest_digest"], d1.as_str());
    assert_eq!(v["push"]["signature"]["reference"], format!("{host}/team/app:{}.sig", d1.replace(':', "-")));
    let verdict = |reference: &str| w.accepted(&skopeo, &host, &public, reference);
    assert!(verdict(&signed), "our signature was refused");
    // By digest too.
    assert!(verdict(&format!("{host}/team/app@{d1}")), "our signature was refused by digest");
    // Our verifier agrees.
    let (_, good) = dinv_build::verify_signatures(&Reference::parse(&signed).unwrap(), false, &PublicKey::read(&public).unwrap()).unwrap();
    assert_eq!(good, [signed.clone()]);
    // Signing again adds nothing (deterministic signatures); still accepted.
    let o = cli.run(&["push", "--json", "--sign-key", private.to_str().unwrap(), one.to_str().unwrap(), &signed]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["push"]["signature"]["total_layers"], 1, "{v}");

    // An unsigned tag.
    let unsigned = format!("{host}/team/app:unsigned");
    let o = cli.run(&["push", two.to_str().unwrap(), &unsigned]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!verdict(&unsigned), "an unsigned image was accepted");

    // Signed by another key (passphrase from a file this time).
    let other = format!("{host}/team/other:v1");
    let o = w.cli().run(&["push", "--sign-key", other_private.to_str().unwrap(), "--sign-passphrase-file", "passphrase", two.to_str().unwrap(), &other]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!verdict(&other), "another key's signature was accepted");

    // The tag now names another manifest, and image one's signature is put
    // where image two's would be: the payload names the wrong digest.
    let changed = format!("{host}/team/app:changed");
    let o = cli.run(&["push", "--sign-key", private.to_str().unwrap(), one.to_str().unwrap(), &changed]);
    assert!(o.status.success(), "{}", text(&o));
    let o = cli.run(&["push", two.to_str().unwrap(), &changed]);
    assert!(o.status.success(), "{}", text(&o));
    let d2 = manifest_digest(&two);
    let base = format!("http://{host}/v2/team/app/manifests");
    let accept = "Accept: application/vnd.oci.image.manifest.v1+json";
    let sig = curl(&["-H", accept, &format!("{base}/{}.sig", d1.replace(':', "-"))]);
    assert!(sig.status.success());
    let sig_file = w.path("sig.json");
    fs::write(&sig_file, &sig.stdout).unwrap();
    let put = curl(&["-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json", "--data-binary", &format!("@{}", sig_file.display()), &format!("{base}/{}.sig", d2.replace(':', "-"))]);
    assert!(put.status.success(), "{}", text(&put));
    assert!(!verdict(&changed), "a signature over another manifest was accepted");
    // Our verifier agrees.
    let (digest, good) = dinv_build::verify_signatures(&Reference::parse(&changed).unwrap(), false, &PublicKey::read(&public).unwrap()).unwrap();
    assert_eq!((digest, good.len()), (d2, 0));
}

#[test]
fn signing_errors_name_the_key_and_the_flag() {
    let w = Work::new();
    let (private, _) = w.keygen("k");
    let layout = w.layout("image", "x");
    let reference = "127.0.0.1:9/team/app:v1";
    // A wrong passphrase: exit 2, naming the key file, before any network.
    let o = w.cli().env("DINV_SIGN_PASSPHRASE", "wrong").run(&["push", "--sign-key", private.to_str().unwrap(), layout.to_str().unwrap(), reference]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("k.private") && text(&o).contains("wrong passphrase"), "{}", text(&o));
    // No passphrase at all.
    let o = w.cli().run(&["push", "--sign-key", private.to_str().unwrap(), layout.to_str().unwrap(), reference]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("DINV_SIGN_PASSPHRASE"), "{}", text(&o));
    // --attest needs a key, and a build output directory.
    let o = w.cli().run(&["push", "--attest", layout.to_str().unwrap(), reference]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--attest needs --sign-key"), "{}", text(&o));
    let o = w.cli().env("DINV_SIGN_PASSPHRASE", PASSPHRASE).run(&["push", "--attest", "--sign-key", private.to_str().unwrap(), layout.to_str().unwrap(), reference]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("not a build output directory"), "{}", text(&o));
    // keygen wants a passphrase.
    let o = w.cli().run(&["keygen", "--output-prefix", "nopass"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // A passphrase is never an argument.
    let o = w.cli().run(&["keygen", "--output-prefix", "x", "--passphrase", "p"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
