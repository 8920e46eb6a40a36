//! Signed index reading against generated fixtures.

use dinv_apk::index::{read_index, read_index_unverified};
use dinv_apk::sign::SigAlgo;
use dinv_apk::testkit::{build_apk, build_index, shared_key, ApkOptions, IndexOptions, PackageSpec, TarStyle, TestKey};
use dinv_apk::{ApkDep, IndexEntry, IndexError, Keyring, SignatureError};

fn entries() -> Vec<IndexEntry> {
    let key = shared_key(0);
    let specs = [
        PackageSpec::new("docker", "24.0.7-r0")
            .depend("containerd>=1.7")
            .depend("!docker-legacy")
            .depend("so:libc.musl-x86_64.so.1")
            .provide("cmd:docker=24.0.7-r0")
            .file("usr/bin/docker", b"ELF".to_vec(), 0o755),
        PackageSpec::new("docker-openrc", "24.0.7-r0")
            .install_if("docker=24.0.7-r0")
            .install_if("openrc"),
        PackageSpec::new("musl", "1.2.4-r2").provide("so:libc.musl-x86_64.so.1=1"),
    ];
    let mut e: Vec<IndexEntry> = specs.iter().map(|s| build_apk(s, &ApkOptions::signed(key)).index_entry()).collect();
    e[2].provider_priority = Some(100);
    e
}

/// The signing key for a style: GNU long-name records only appear for
/// names over 100 bytes, so that style signs with a key whose
/// `.SIGN.RSA.<name>` is that long (custom repositories' keys can be).
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

#[test]
fn round_trip_every_field_sha1_and_sha256() {
    let mut want = entries();
    want[0].extra.push(('z', "a future lower-case field".into()));
    for style in TarStyle::ALL {
        let key = &key_for(style, 0);
        for algo in [SigAlgo::RsaSha1, SigAlgo::RsaSha256, SigAlgo::RsaSha512] {
            let bytes = build_index(
                &want,
                &IndexOptions {
                    algo,
                    style,
                    ..IndexOptions::signed(key)
                },
            );
            let idx = read_index(&bytes, &key.keyring()).unwrap_or_else(|e| panic!("{style:?} {algo}: {e}"));
            assert_eq!(idx.signed_by, Some((key.name.clone(), algo)));
            assert_eq!(idx.description.as_deref(), Some("v0.0.0-test"));
            assert_eq!(idx.entries, want);
        }
    }
    let d = &want[0];
    assert!(d.checksum.is_some() && d.size > 0 && d.installed_size == 3 && d.build_time.is_some());
    assert_eq!(d.depends[1], ApkDep::parse("!docker-legacy").unwrap());
}

#[test]
fn refuses_tampered_wrong_key_unknown_key_and_unsigned() {
    let e = entries();
    for style in TarStyle::ALL {
        let (key, other) = (&key_for(style, 0), &key_for(style, 1));
        fn styled(k: &TestKey, style: TarStyle) -> IndexOptions<'_> {
            IndexOptions {
                style,
                ..IndexOptions::signed(k)
            }
        }
        let signed = |k| styled(k, style);
        let tampered = build_index(&e, &IndexOptions { tamper: true, ..signed(key) });
        let err = read_index(&tampered, &key.keyring()).unwrap_err();
        assert!(matches!(err, IndexError::Signature(SignatureError::BadSignature { .. })), "{style:?}: {err}");
        // Unverified reading shows what the attacker added.
        assert!(read_index_unverified(&tampered).unwrap().entries.iter().any(|x| x.name == "evil"));

        // Signed by another key under the trusted key's name.
        let impostor = TestKey {
            name: key.name.clone(),
            private: other.private.clone(),
        };
        let forged = build_index(&e, &signed(&impostor));
        let err = read_index(&forged, &key.keyring()).unwrap_err();
        assert!(
            matches!(&err, IndexError::Signature(SignatureError::BadSignature { key: k, .. }) if *k == key.name),
            "{style:?}: {err}"
        );

        // Signed by a key we do not have (and by any key, with none trusted).
        let by_other = build_index(&e, &signed(other));
        let err = read_index(&by_other, &key.keyring()).unwrap_err();
        assert!(
            matches!(&err, IndexError::Signature(SignatureError::UnknownKey { keys }) if keys == std::slice::from_ref(&other.name)),
            "{style:?}: {err}"
        );
        assert!(err.to_string().contains(&other.name), "{err}");
        let err = read_index(&by_other, &Keyring::new()).unwrap_err();
        assert!(matches!(err, IndexError::Signature(SignatureError::UnknownKey { .. })), "{style:?}: {err}");

        let unsigned = build_index(&e, &IndexOptions { key: None, ..signed(key) });
        let err = read_index(&unsigned, &key.keyring()).unwrap_err();
        assert!(matches!(err, IndexError::Signature(SignatureError::Unsigned)), "{style:?}: {err}");
        assert_eq!(err.to_string(), "APKINDEX signature: not signed (no .SIGN.* member)");
        assert_eq!(read_index_unverified(&unsigned).unwrap().entries, e);

        // Flipped bits anywhere never panic and never pass.
        let good = build_index(&e, &signed(key));
        read_index(&good, &key.keyring()).unwrap();
        for pos in (0..good.len()).step_by(good.len() / 40 + 1) {
            let mut b = good.clone();
            b[pos] ^= 0x20;
            assert!(read_index(&b, &key.keyring()).is_err(), "{style:?}: flip at {pos} accepted");
        }
    }
}

#[test]
fn unknown_upper_case_field_makes_entry_uninstallable() {
    let key = shared_key(0);
    let mut e = entries();
    e[1].extra.push(('Y', "feature from apk-tools 4".into()));
    let idx = read_index(&build_index(&e, &IndexOptions::signed(key)), &key.keyring()).unwrap();
    assert!(idx.entries[0].is_installable());
    assert!(!idx.entries[1].is_installable());
    assert!(
        idx.entries[1].uninstallable[0].contains("unknown field Y"),
        "{:?}",
        idx.entries[1].uninstallable
    );
    assert_eq!(idx.entries[1].extra, [('Y', "feature from apk-tools 4".to_string())]);
}

#[test]
fn keys_load_from_a_directory_in_both_pem_forms() {
    use rsa::pkcs1::EncodeRsaPublicKey;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (shared_key(0), shared_key(1));
    std::fs::write(dir.path().join(&a.name), a.public_pem()).unwrap();
    let pkcs1 = b.public().to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    assert!(pkcs1.contains("BEGIN RSA PUBLIC KEY"));
    std::fs::write(dir.path().join(&b.name), pkcs1).unwrap();
    let mut ring = Keyring::new();
    assert_eq!(ring.load_dir(dir.path()).unwrap(), 2);
    assert_eq!(ring.names().collect::<Vec<_>>(), [a.name.as_str(), b.name.as_str()]);
    // Both verify real signatures.
    for k in [a, b] {
        let idx = build_index(&entries(), &IndexOptions::signed(k));
        assert_eq!(read_index(&idx, &ring).unwrap().signed_by.unwrap().0, k.name);
    }
    std::fs::write(dir.path().join("README"), "not a key").unwrap();
    let err = Keyring::new().load_dir(dir.path()).unwrap_err();
    assert!(err.to_string().contains("README"), "{err}");
}

#[test]
fn repository_layout_verifies_end_to_end() {
    use dinv_apk::package::{verify, ApkCheck};
    use dinv_apk::testkit::write_repository_styled;
    for style in TarStyle::ALL {
        let key = &key_for(style, 2);
        let root = tempfile::tempdir().unwrap();
        let specs = [
            PackageSpec::new("busybox", "1.36.1-r15")
                .file("bin/busybox", b"bb".to_vec(), 0o755)
                .symlink("bin/sh", "busybox"),
            PackageSpec::new("alpine-baselayout", "3.4.3-r2")
                .dir("etc", 0o755)
                .file("etc/motd", b"hi\n".to_vec(), 0o644),
        ];
        let repo = write_repository_styled(root.path(), "main", "x86_64", &specs, key, style).unwrap();
        assert_eq!(repo.index_path, root.path().join("main/x86_64/APKINDEX.tar.gz"));
        let mut ring = Keyring::new();
        std::fs::write(root.path().join(&key.name), key.public_pem()).unwrap();
        ring.load_file(&root.path().join(&key.name)).unwrap();
        let idx = read_index(&std::fs::read(&repo.index_path).unwrap(), &ring).unwrap();
        assert_eq!(idx.entries.len(), 2);
        for e in &idx.entries {
            let path = repo.dir.join(e.file_name());
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(bytes.len() as u64, e.size);
            let check = ApkCheck {
                name: &e.name,
                version: &e.version,
                checksum: e.checksum.as_ref(),
                keys: Some(&ring),
            };
            let v = verify(&bytes, &check).unwrap_or_else(|err| panic!("{style:?}: {err}"));
            assert_eq!(v.pkginfo.size, e.installed_size);
        }
    }
}

/// Regression (fuzzing, issue 16): an untrusted mirror's index could make
/// `read_index_unverified` inflate a member of any size into memory; a
/// member over the limit is refused from its header, before any of its
/// data is read.
#[test]
fn refuses_members_larger_than_any_real_index() {
    use dinv_apk::index::{MAX_DESCRIPTION_BYTES, MAX_INDEX_TEXT_BYTES};
    use dinv_apk::testkit::gzip;
    use dinv_fstree::tar::{header_block, Header, Magic};

    let member = |name: &str, size: u64, data: &[u8]| {
        let mut t = header_block(name.as_bytes(), &Header::new(name, b'0'), b'0', size, Magic::Ustar).to_vec();
        t.extend_from_slice(data);
        t
    };
    // An APKINDEX that claims 1 byte over the limit, with its data cut.
    let claimed = gzip(&member("APKINDEX", MAX_INDEX_TEXT_BYTES + 1, b"P:a\nV:1\n"), 6);
    let err = read_index_unverified(&claimed).unwrap_err();
    assert!(matches!(err, IndexError::TooLarge { member: "APKINDEX", .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!("APKINDEX.tar.gz: member APKINDEX of {} bytes is over the limit of {MAX_INDEX_TEXT_BYTES} bytes", MAX_INDEX_TEXT_BYTES + 1)
    );
    // A DESCRIPTION really that long (it compresses to almost nothing).
    let size = MAX_DESCRIPTION_BYTES + 1;
    let mut tar = member("DESCRIPTION", size, &vec![b'v'; size as usize]);
    tar.resize(tar.len().next_multiple_of(512), 0);
    tar.extend(member("APKINDEX", 8, b"P:a\nV:1\n"));
    tar.resize(tar.len().next_multiple_of(512) + 1024, 0);
    let err = read_index_unverified(&gzip(&tar, 6)).unwrap_err();
    assert!(matches!(err, IndexError::TooLarge { member: "DESCRIPTION", size: s, .. } if s == size), "{err}");
    // At the limit it is read.
    let mut tar = member("DESCRIPTION", size - 1, &vec![b'v'; size as usize - 1]);
    tar.resize(tar.len().next_multiple_of(512), 0);
    tar.extend(member("APKINDEX", 8, b"P:a\nV:1\n"));
    tar.resize(tar.len().next_multiple_of(512) + 1024, 0);
    let idx = read_index_unverified(&gzip(&tar, 6)).unwrap();
    assert_eq!((idx.description.map(|d| d.len()), idx.entries.len()), (Some(size as usize - 1), 1));
}
