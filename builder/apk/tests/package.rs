//! `.apk` verification and unpacking against generated fixtures.

use std::sync::Arc;

use dinv_apk::package::{verify, ApkCheck};
use dinv_apk::sign::SigAlgo;
use dinv_apk::testkit::{build_apk, shared_key, ApkOptions, PackageSpec, SpecKind, Tamper, TarStyle, TestKey};
use dinv_apk::{Checksum, Keyring, PackageProblem, SignatureError};
use dinv_fstree::tar::{unpack_in_memory, UnpackOptions};
use dinv_fstree::{Meta, NodeKind, Replace, Tree, TreePath};

fn spec() -> PackageSpec {
    let mut cap = Meta::root(0o755);
    cap.xattrs.insert(
        "security.capability".into(),
        vec![1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    );
    let owned = Meta {
        mode: 0o2750,
        uid: 101,
        gid: 102,
        mtime: 1_650_000_000,
        xattrs: Default::default(),
    };
    PackageSpec::new("docker", "24.0.7-r0")
        .depend("containerd")
        .provide("cmd:docker=24.0.7-r0")
        .dir("usr", 0o755)
        .dir("usr/bin", 0o755)
        .entry("usr/bin/dockerd", SpecKind::File(b"\x7fELF dockerd".to_vec()), cap)
        .file("usr/bin/docker", vec![7u8; 300_000], 0o755)
        .hardlink("usr/bin/docker-hl", "usr/bin/docker")
        .symlink("usr/bin/dkr", "docker")
        .entry("var/lib/docker", SpecKind::Dir, owned)
        .entry("dev/null", SpecKind::CharDevice { major: 1, minor: 3 }, Meta::root(0o666))
        .entry("dev/loop0", SpecKind::BlockDevice { major: 7, minor: 0 }, Meta::root(0o660))
        .entry("run/fifo", SpecKind::Fifo, Meta::root(0o600))
        // Over 100 bytes: a PAX `path` record, or a GNU `L` record.
        .file(LONG_PATH, b"long".to_vec(), 0o644)
        .symlink("usr/bin/long-link", LONG_PATH)
        .script("pre-install", "#!/bin/sh\naddgroup -S docker\n")
        .script("post-install", "#!/bin/sh\nexit 0\n")
}

const LONG_PATH: &str = "usr/share/docker/contrib/a-directory-name-long-enough-to-overflow-ustar/and-another-one-to-be-sure/file.txt";

/// The signing key for a style; see tests/index.rs: under GNU tar's
/// format only names over 100 bytes get `L` records, so that style signs
/// with a long key name.
fn key_for(style: TarStyle, slot: usize) -> TestKey {
    let k = shared_key(slot);
    match style {
        TarStyle::Gnu => TestKey {
            name: format!(
                "ci-builder-{slot}@packages.build-farm.example-organisation.invalid-{:08x}.rsa.pub",
                0x5e1f_0000 + slot
            ),
            private: k.private.clone(),
        },
        _ => k.clone(),
    }
}

fn opts(key: &TestKey, style: TarStyle) -> ApkOptions<'_> {
    ApkOptions {
        style,
        ..ApkOptions::signed(key)
    }
}

fn check<'a>(checksum: Option<&'a Checksum>, keys: Option<&'a Keyring>) -> ApkCheck<'a> {
    ApkCheck {
        name: "docker",
        version: "24.0.7-r0",
        checksum,
        keys,
    }
}

#[test]
fn verifies_and_unpacks_with_modes_owners_devices_xattrs() {
    for (style, algo) in TarStyle::ALL.into_iter().flat_map(|s| [(s, SigAlgo::RsaSha1), (s, SigAlgo::RsaSha256)]) {
        let key = &key_for(style, 0);
        let ring = key.keyring();
        let built = build_apk(&spec(), &ApkOptions { algo, ..opts(key, style) });
        let v = verify(&built.bytes, &check(Some(&built.checksum), Some(&ring))).unwrap();
        assert_eq!(v.signed_by, Some((key.name.clone(), algo)));
        assert_eq!(v.checksum, built.checksum);
        assert_eq!(v.checksum, built.index_entry().checksum.unwrap());
        assert_eq!(v.pkginfo.depends[0].name, "containerd");
        assert_eq!(v.pkginfo.provides[0].to_string(), "cmd:docker=24.0.7-r0");
        assert_eq!(v.control_range, built.control_range.start as u64..built.control_range.end as u64);
        assert_eq!(v.data_range, built.data_range.start as u64..built.data_range.end as u64);
        let names: Vec<_> = v.scripts.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["pre-install", "post-install"]);
        assert_eq!(v.scripts[0].bytes, b"#!/bin/sh\naddgroup -S docker\n");

        let mut tree = Tree::new();
        let opts = UnpackOptions {
            origin: Arc::from("docker"),
            replace: Replace::Deny,
            rewrite: None,
        };
        unpack_in_memory(v.data_reader(&built.bytes), &mut tree, &opts).unwrap();
        let get = |p: &str| tree.get(&TreePath::new(p)).unwrap_or_else(|| panic!("{p} missing"));
        assert_eq!(tree.read_file(&TreePath::new("usr/bin/docker")).unwrap(), vec![7u8; 300_000]);
        let dockerd = get("usr/bin/dockerd");
        assert_eq!(dockerd.meta.mode, 0o755);
        // GNU tar's own format has no place for xattrs.
        if style != TarStyle::Gnu {
            assert_eq!(dockerd.meta.xattrs["security.capability"][5], 0x20);
        }
        let var = get("var/lib/docker");
        assert!(var.is_dir());
        assert_eq!((var.meta.mode, var.meta.uid, var.meta.gid, var.meta.mtime), (0o2750, 101, 102, 1_650_000_000));
        assert!(matches!(get("dev/null").kind, NodeKind::CharDevice { major: 1, minor: 3 }));
        assert_eq!(get("dev/null").meta.mode, 0o666);
        assert!(matches!(get("dev/loop0").kind, NodeKind::BlockDevice { major: 7, minor: 0 }));
        assert!(matches!(get("run/fifo").kind, NodeKind::Fifo));
        assert!(matches!(&get("usr/bin/dkr").kind, NodeKind::Symlink(t) if t == "docker"));
        assert!(matches!(&get("usr/bin/docker-hl").kind, NodeKind::Hardlink(t) if t.as_str() == "usr/bin/docker"));
        assert_eq!(get("usr/bin/docker").origin.as_deref(), Some("docker"));
        assert_eq!(tree.read_file(&TreePath::new(LONG_PATH)).unwrap(), b"long");
        assert!(matches!(&get("usr/bin/long-link").kind, NodeKind::Symlink(t) if t == LONG_PATH));
    }
}

#[test]
fn data_member_carries_apk_checksums() {
    use dinv_fstree::tar::TarReader;
    // abuild-tar --hash adds them to PAX headers; GNU-format archives have none.
    for style in [TarStyle::Ustar, TarStyle::Pax] {
        let built = build_apk(&spec(), &opts(shared_key(0), style));
        let v = verify(&built.bytes, &check(Some(&built.checksum), None)).unwrap();
        assert_eq!(v.signed_by, None);
        let mut r = TarReader::new(v.data_reader(&built.bytes));
        let mut files = 0;
        while let Some(e) = r.next_entry().unwrap() {
            if e.path == "usr/bin/docker" {
                let got = String::from_utf8(e.pax["APK-TOOLS.checksum.SHA1"].clone()).unwrap();
                use sha1::Digest;
                assert_eq!(got, hex::encode(sha1::Sha1::digest(vec![7u8; 300_000])));
                files += 1;
            }
        }
        assert_eq!(files, 1);
    }
}

#[test]
fn tampered_control_member_is_refused() {
    for style in TarStyle::ALL {
        let key = &key_for(style, 0);
        let ring = key.keyring();
        let built = build_apk(
            &spec(),
            &ApkOptions {
                tamper: Tamper::ControlAfterSigning,
                ..opts(key, style)
            },
        );
        let err = verify(&built.bytes, &check(Some(&built.checksum), Some(&ring))).unwrap_err();
        assert!(matches!(err.problem, PackageProblem::ChecksumMismatch { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.starts_with("docker-24.0.7-r0: control checksum (C:) mismatch: index says Q1"), "{msg}");
        assert!(msg.contains(&built.checksum.to_string()), "{msg}");
        // Without the index checksum, the signature catches it.
        let err = verify(&built.bytes, &check(None, Some(&ring))).unwrap_err();
        assert!(
            matches!(err.problem, PackageProblem::Signature(SignatureError::BadSignature { .. })),
            "{style:?}: {err}"
        );
    }
}

#[test]
fn tampered_data_member_is_refused() {
    for style in TarStyle::ALL {
        let key = &key_for(style, 0);
        let built = build_apk(
            &spec(),
            &ApkOptions {
                tamper: Tamper::DataAfterHashing,
                ..opts(key, style)
            },
        );
        let err = verify(&built.bytes, &check(Some(&built.checksum), Some(&key.keyring()))).unwrap_err();
        assert!(matches!(err.problem, PackageProblem::DataHashMismatch { .. }), "{style:?}: {err}");
        assert!(err.to_string().starts_with("docker-24.0.7-r0: data hash mismatch"), "{err}");
    }
}

#[test]
fn checksum_mismatch_wrong_key_unknown_key_unsigned() {
    for style in TarStyle::ALL {
        let (key, other) = (&key_for(style, 0), &key_for(style, 1));
        let built = build_apk(&spec(), &opts(key, style));
        let wrong = Checksum::sha1_of(b"something else");
        let err = verify(&built.bytes, &check(Some(&wrong), None)).unwrap_err();
        assert!(matches!(err.problem, PackageProblem::ChecksumMismatch { expected, actual } if expected == wrong && actual == built.checksum));

        let err = verify(&built.bytes, &check(None, Some(&other.keyring()))).unwrap_err();
        assert!(
            matches!(&err.problem, PackageProblem::Signature(SignatureError::UnknownKey { keys }) if keys == std::slice::from_ref(&key.name)),
            "{err}"
        );

        let err = verify(&built.bytes, &check(None, Some(&Keyring::new()))).unwrap_err();
        assert!(
            matches!(&err.problem, PackageProblem::Signature(SignatureError::UnknownKey { .. })),
            "{style:?}: {err}"
        );

        let impostor = TestKey {
            name: key.name.clone(),
            private: other.private.clone(),
        };
        let forged = build_apk(&spec(), &opts(&impostor, style));
        let err = verify(&forged.bytes, &check(None, Some(&key.keyring()))).unwrap_err();
        assert!(matches!(err.problem, PackageProblem::Signature(SignatureError::BadSignature { .. })), "{err}");

        let unsigned = build_apk(&spec(), &ApkOptions { key: None, ..opts(key, style) });
        let err = verify(&unsigned.bytes, &check(None, Some(&key.keyring()))).unwrap_err();
        assert!(matches!(err.problem, PackageProblem::Signature(SignatureError::Unsigned)), "{err}");
        // An unsigned package is still acceptable on a signed index's word.
        verify(&unsigned.bytes, &check(Some(&unsigned.checksum), None)).unwrap();

        let err = verify(&built.bytes, &check(None, None)).unwrap_err();
        assert!(matches!(err.problem, PackageProblem::Untrusted));
        let err = verify(
            &built.bytes,
            &ApkCheck {
                name: "docker",
                version: "25.0.0-r0",
                checksum: Some(&built.checksum),
                keys: None,
            },
        )
        .unwrap_err();
        assert!(matches!(err.problem, PackageProblem::WrongPackage { .. }), "{err}");
    }
}

#[test]
fn old_packages_without_datahash_sign_everything() {
    let key = shared_key(0);
    let built = build_apk(
        &spec(),
        &ApkOptions {
            omit_datahash: true,
            ..ApkOptions::signed(key)
        },
    );
    let v = verify(&built.bytes, &check(Some(&built.checksum), Some(&key.keyring()))).unwrap();
    assert!(v.pkginfo.datahash.is_none());
    // The identity now covers the data too: a changed data byte is a
    // checksum mismatch (and a bad signature).
    let mut b = built.bytes.clone();
    b[built.data_range.start + 20] ^= 1;
    let err = verify(&b, &check(Some(&built.checksum), None)).unwrap_err();
    assert!(matches!(err.problem, PackageProblem::ChecksumMismatch { .. }), "{err}");
    let err = verify(&b, &check(None, Some(&key.keyring()))).unwrap_err();
    assert!(matches!(err.problem, PackageProblem::Signature(SignatureError::BadSignature { .. })), "{err}");
}

#[test]
fn flipped_bits_never_pass() {
    for style in TarStyle::ALL {
        let key = &key_for(style, 0);
        let built = build_apk(&spec(), &opts(key, style));
        let ring = key.keyring();
        for pos in (0..built.bytes.len()).step_by(built.bytes.len() / 60 + 1) {
            let mut b = built.bytes.clone();
            b[pos] ^= 0x04;
            for c in [check(Some(&built.checksum), None), check(None, Some(&ring))] {
                assert!(verify(&b, &c).is_err(), "{style:?}: flip at {pos} accepted");
            }
        }
    }
}
