//! Against the real bookworm metadata apt keeps on this machine (CI runs
//! `apt-get update` first): signature checks, the Release SHA256 list, and
//! the full main/amd64 Packages index through to solver candidates.

use std::path::PathBuf;
use std::time::Instant;

use dinv_deb::{
    parse_packages_bytes, to_candidate, verify_clearsigned, verify_detached, DebError, DebVersions, Keyring, Release,
};
use dinv_solver::VersionScheme;

const LISTS: &str = "/var/lib/apt/lists";
const KEYRINGS: &str = "/usr/share/keyrings";
/// The bookworm automatic signing key's RSA signing subkey and its primary.
const BOOKWORM_AUTO_SUBKEY: &str = "4CB50190207B4758A3F73A796ED0E7B82643E131";
const BOOKWORM_AUTO_PRIMARY: &str = "B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8";
/// The bookworm stable release key (Ed25519, signs with its primary key).
const BOOKWORM_STABLE_EDDSA: &str = "4D64FEC119C2029067D6E791F8D2585B8783D481";

/// The apt list file whose name ends with `suffix` (the mirror's host name
/// is its prefix, which we do not write down).
fn list(suffix: &str) -> PathBuf {
    let found = std::fs::read_dir(LISTS)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(suffix)));
    found.unwrap_or_else(|| panic!("no {LISTS}/*{suffix}: run `apt-get update` (with bookworm in the sources) first"))
}

fn read(p: &PathBuf) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn keyring(name: &str) -> Keyring {
    Keyring::from_bytes(&std::fs::read(format!("{KEYRINGS}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))).unwrap()
}

fn inrelease() -> Vec<u8> {
    read(&list("_dists_bookworm_InRelease"))
}

#[test]
fn real_inrelease_verifies_with_rsa_subkeys_and_eddsa() {
    let data = inrelease();
    let t = Instant::now();
    let v = verify_clearsigned(&data, &keyring("debian-archive-keyring.gpg"), "bookworm InRelease").unwrap();
    eprintln!("InRelease verified in {:?} by {:?}", t.elapsed(), v.signers);
    let fprs: Vec<&str> = v.signers.iter().map(|s| s.fingerprint.as_str()).collect();
    assert!(fprs.contains(&BOOKWORM_AUTO_SUBKEY), "{fprs:?}");
    assert!(fprs.contains(&BOOKWORM_STABLE_EDDSA), "{fprs:?}");
    let sub = v.signers.iter().find(|s| s.fingerprint == BOOKWORM_AUTO_SUBKEY).unwrap();
    assert_eq!(sub.primary_fingerprint, BOOKWORM_AUTO_PRIMARY);
    assert!(sub.user_id.contains("bookworm"), "{}", sub.user_id);
    assert!(v.text.starts_with("Origin: ") || v.text.contains("\nCodename: bookworm\n"));
    assert!(!v.text.contains("BEGIN PGP"));

    // Keyrings holding one key each: the EdDSA key alone, the RSA subkey alone.
    let only = verify_clearsigned(&data, &keyring("debian-archive-bookworm-stable.gpg"), "InRelease").unwrap();
    assert_eq!(only.signers.iter().map(|s| s.fingerprint.as_str()).collect::<Vec<_>>(), [BOOKWORM_STABLE_EDDSA]);
    let only = verify_clearsigned(&data, &keyring("debian-archive-bookworm-automatic.gpg"), "InRelease").unwrap();
    assert_eq!(only.signers.iter().map(|s| s.fingerprint.as_str()).collect::<Vec<_>>(), [BOOKWORM_AUTO_SUBKEY]);
    assert_eq!(only.text, v.text);
}

#[test]
fn armored_keys_work_too() {
    let armored = keyring("debian-archive-bookworm-automatic.gpg").to_armored().unwrap();
    assert!(armored.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    let k = Keyring::from_bytes(armored.as_bytes()).unwrap();
    assert_eq!(k.fingerprints(), [BOOKWORM_AUTO_PRIMARY]);
    verify_clearsigned(&inrelease(), &k, "InRelease").unwrap();
    assert!(matches!(Keyring::from_bytes(b"hello"), Err(DebError::Keyring { .. })));
}

#[test]
fn one_changed_byte_in_the_text_is_refused() {
    let mut data = inrelease();
    let text = String::from_utf8(data.clone()).unwrap();
    let at = text.find("main/binary-amd64/Packages\n").unwrap();
    // Change one hex digit of the MD5/SHA line just before the path.
    let i = at - 20;
    data[i] = if data[i] == b'0' { b'1' } else { b'0' };
    let e = verify_clearsigned(&data, &keyring("debian-archive-keyring.gpg"), "bookworm InRelease").unwrap_err();
    assert!(matches!(e, DebError::BadSignature { .. }), "{e}");
    assert!(e.to_string().contains("bookworm InRelease"), "{e}");
}

#[test]
fn tampered_signature_block_is_refused() {
    let text = String::from_utf8(inrelease()).unwrap();
    let start = text.find("-----BEGIN PGP SIGNATURE-----").unwrap();
    // A base64 character deep inside the first signature's key material.
    let i = start + 200;
    let mut bytes = text.clone().into_bytes();
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let kr = keyring("debian-archive-keyring.gpg");
    let e = verify_clearsigned(&bytes, &kr, "InRelease").unwrap_err();
    eprintln!("tampered signature (armor checksum kept): {e}");
    // Without the armor checksum line, the packet parses and the maths must fail.
    let no_crc: String = String::from_utf8(bytes)
        .unwrap()
        .lines()
        .filter(|l| !(l.starts_with('=') && l.len() == 5))
        .map(|l| format!("{l}\n"))
        .collect();
    let e = verify_clearsigned(no_crc.as_bytes(), &kr, "InRelease").unwrap_err();
    eprintln!("tampered signature (no checksum): {e}");
    assert!(matches!(e, DebError::BadSignature { .. } | DebError::NotSigned { .. }), "{e}");
    // Stripping the signature entirely.
    let e = verify_clearsigned(&text.as_bytes()[..start], &kr, "InRelease").unwrap_err();
    assert!(matches!(e, DebError::NotSigned { .. }), "{e}");
    let body = text.split_once("\n\n").unwrap().1;
    let e = verify_clearsigned(body.as_bytes(), &kr, "InRelease").unwrap_err();
    assert!(matches!(e, DebError::NotSigned { .. }) && e.to_string().contains("BEGIN PGP SIGNED MESSAGE"), "{e}");
}

#[test]
fn wrong_keyring_is_an_unknown_key() {
    let e = verify_clearsigned(&inrelease(), &keyring("debian-archive-bullseye-stable.gpg"), "bookworm InRelease")
        .unwrap_err();
    match &e {
        DebError::UnknownKey { issuers, .. } => {
            assert!(issuers.iter().any(|i| i.contains(BOOKWORM_AUTO_SUBKEY)), "{issuers:?}");
            assert!(e.to_string().contains(BOOKWORM_STABLE_EDDSA), "{e}");
        }
        other => panic!("expected UnknownKey, got {other}"),
    }
}

#[test]
fn detached_signature_over_release_text() {
    // An InRelease's signatures are text-mode (type 0x01) signatures over
    // the Release text, so the same text and signature block form a valid
    // Release + Release.gpg pair.
    let text = String::from_utf8(inrelease()).unwrap();
    let start = text.find("-----BEGIN PGP SIGNATURE-----").unwrap();
    let kr = keyring("debian-archive-keyring.gpg");
    let signed = verify_clearsigned(text.as_bytes(), &kr, "InRelease").unwrap().text;
    let sig = &text.as_bytes()[start..];
    let v = verify_detached(signed.as_bytes(), sig, &kr, "Release").unwrap();
    assert_eq!(v.signers.len(), 3);
    let mut altered = signed.clone().into_bytes();
    altered[100] ^= 1;
    assert!(matches!(verify_detached(&altered, sig, &kr, "Release"), Err(DebError::BadSignature { .. })));
    assert!(matches!(verify_detached(signed.as_bytes(), b"", &kr, "Release"), Err(DebError::NotSigned { .. })));
}

#[test]
fn full_packages_index_to_candidates() {
    let kr = keyring("debian-archive-keyring.gpg");
    let release = Release::parse(&verify_clearsigned(&inrelease(), &kr, "InRelease").unwrap().text).unwrap();
    assert_eq!(release.codename, "bookworm");
    assert!(release.components.iter().any(|c| c == "main"));
    assert!(release.architectures.iter().any(|c| c == "amd64"));
    release.check_valid_at(0).unwrap();
    let entry = release.file("main/binary-amd64/Packages").expect("plain Packages listed").clone();

    let lz4 = read(&list("_dists_bookworm_main_binary-amd64_Packages.lz4"));
    let mut bytes = Vec::new();
    std::io::copy(&mut lz4_flex::frame::FrameDecoder::new(&lz4[..]), &mut bytes).unwrap();
    entry.verify(&bytes).unwrap();
    let mut bad = bytes.clone();
    bad[1000] ^= 1;
    assert!(matches!(entry.verify(&bad), Err(DebError::Checksum { .. })));

    let t = Instant::now();
    let records = parse_packages_bytes(&bytes, "main/binary-amd64/Packages").unwrap();
    let parse = t.elapsed();
    let t = Instant::now();
    let candidates: Vec<_> = records.iter().map(|r| to_candidate(r, 0, "amd64")).collect::<Result<_, _>>().unwrap();
    eprintln!(
        "{} paragraphs ({} bytes) parsed in {parse:?}, converted in {:?}",
        records.len(),
        bytes.len(),
        t.elapsed()
    );
    assert!(records.len() > 50_000, "{}", records.len());
    assert_eq!(candidates.len(), records.len());

    let docker = candidates.iter().find(|c| c.name == "docker.io").expect("docker.io in bookworm main");
    assert!(
        docker.depends.iter().any(|d| d.alternatives.iter().any(|a| a.name == "containerd")),
        "{:?}",
        docker.depends
    );
    let essential: Vec<&str> = candidates.iter().filter(|c| c.essential).map(|c| c.name.as_str()).collect();
    for e in ["base-files", "dpkg", "libc-bin", "bash", "coreutils"] {
        assert!(essential.contains(&e), "{e} not essential: {essential:?}");
    }
    assert!(candidates.iter().all(|c| c.arch == "amd64" || c.arch == "all"));
    // Every version in the index is valid Debian syntax and orders consistently.
    for r in &records {
        dinv_deb::validate_version(&r.version).unwrap_or_else(|e| panic!("{}: {e}", r.package));
    }
    let libc = records.iter().find(|r| r.package == "libc6").unwrap();
    assert_eq!(DebVersions.compare(&libc.version, "2.36"), std::cmp::Ordering::Greater);
}
