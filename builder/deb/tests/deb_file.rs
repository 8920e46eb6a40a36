//! `.deb` files built here from scratch (ar + control.tar.gz + data.tar.xz):
//! reading, verification, and unpacking into a merged-/usr tree.

use std::io::{Cursor, Read, Write};
use std::sync::Arc;

use dinv_deb::{create_merged_usr_links, merged_usr, open_deb, verify_blob, Compression, DebError};
use dinv_fstree::tar::{unpack_in_memory, Header, TarBuilder, UnpackOptions};
use dinv_fstree::{NodeKind, Replace, Tree, TreePath};
use sha2::{Digest, Sha256};

fn tar(members: &[(&str, u8, &str, &[u8])]) -> Vec<u8> {
    let mut b = TarBuilder::new(Vec::new());
    for (path, typeflag, link, data) in members {
        let mut h = Header::new(path, *typeflag);
        h.link = link.to_string();
        h.size = data.len() as u64;
        h.mode = if *typeflag == b'5' || path.ends_with(".sh") || path.contains("bin/") { 0o755 } else { 0o644 };
        b.append(&h, &mut &data[..]).unwrap();
    }
    b.finish().unwrap()
}

/// An `ar` archive; `gnu_names` ends member names with `/` as GNU ar does.
fn ar(members: &[(&str, Vec<u8>)], gnu_names: bool) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        let name = if gnu_names { format!("{name}/") } else { name.to_string() };
        writeln!(out, "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`", name, 0, 0, 0, "100644", data.len()).unwrap();
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

fn gz(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn xz(b: &[u8]) -> Vec<u8> {
    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

const CONTROL: &[u8] = b"Package: hello\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: Nobody <nobody@example.org>\nDepends: libc6 (>= 2.34)\nDescription: says hello\n a test package\n";

fn control_tar() -> Vec<u8> {
    tar(&[
        ("./", b'5', "", b""),
        ("./control", b'0', "", CONTROL),
        ("./conffiles", b'0', "", b"/etc/hello.conf\nremove-on-upgrade /etc/old.conf\n"),
        ("./postinst", b'0', "", b"#!/bin/sh\nexit 0\n"),
        ("./md5sums", b'0', "", b"0123  bin/hello\n"),
    ])
}

fn data_tar() -> Vec<u8> {
    tar(&[
        ("./", b'5', "", b""),
        ("./bin/", b'5', "", b""),
        ("./bin/hello", b'0', "", b"\x7fELF hello"),
        ("./etc/", b'5', "", b""),
        ("./etc/hello.conf", b'0', "", b"greeting=hi\n"),
        ("./lib/", b'5', "", b""),
        ("./lib/x86_64-linux-gnu/", b'5', "", b""),
        ("./lib/x86_64-linux-gnu/libhello.so.1.0", b'0', "", b"lib"),
        ("./lib/x86_64-linux-gnu/libhello.so.1", b'2', "libhello.so.1.0", b""),
        ("./usr/", b'5', "", b""),
        ("./usr/bin/", b'5', "", b""),
        ("./usr/bin/hi", b'1', "./bin/hello", b""),
        ("./sbin/", b'5', "", b""),
        ("./sbin/hello-admin", b'2', "/bin/hello", b""),
    ])
}

fn deb(data_member: (&str, Vec<u8>)) -> Vec<u8> {
    ar(&[("debian-binary", b"2.0\n".to_vec()), ("control.tar.gz", gz(&control_tar())), data_member], false)
}

#[test]
fn reads_control_and_unpacks_data_merged_usr() {
    let bytes = deb(("data.tar.xz", xz(&data_tar())));
    let sha = hex::encode(Sha256::digest(&bytes));
    verify_blob(&bytes, &sha, bytes.len() as u64, "hello").unwrap();

    let mut d = open_deb(Cursor::new(&bytes), "hello").unwrap();
    assert_eq!(d.control().field("package"), Some("hello"));
    assert_eq!(d.control().field("Description"), Some("says hello\n a test package"));
    assert_eq!(d.control().conffiles, ["/etc/hello.conf", "/etc/old.conf"]);
    assert_eq!(d.control().scripts, ["postinst"]);
    assert_eq!(d.control().files["postinst"], b"#!/bin/sh\nexit 0\n");
    assert!(d.control().files.contains_key("md5sums"));
    assert_eq!((d.data_member(), d.data_compression()), ("data.tar.xz", Compression::Xz));
    let control = d.take_control();
    assert_eq!(control.field("Version"), Some("1.0-1"));

    let mut tree = Tree::new();
    create_merged_usr_links(&mut tree, "amd64").unwrap();
    let opts = UnpackOptions { origin: Arc::from("hello"), replace: Replace::Deny, rewrite: Some(&merged_usr) };
    let n = unpack_in_memory(d.into_data().unwrap(), &mut tree, &opts).unwrap();
    assert_eq!(n, 14);
    let get = |p: &str| tree.get(&TreePath::new(p)).map(|n| n.kind.clone());
    assert!(matches!(get("bin"), Some(NodeKind::Symlink(t)) if t == "usr/bin"));
    assert!(matches!(get("usr/bin/hello"), Some(NodeKind::File(_))));
    assert_eq!(tree.get(&TreePath::new("usr/bin/hello")).unwrap().meta.mode, 0o755);
    assert_eq!(tree.get(&TreePath::new("usr/bin/hello")).unwrap().origin.as_deref(), Some("hello"));
    assert_eq!(tree.read_file(&TreePath::new("bin/hello")).unwrap(), b"\x7fELF hello");
    assert!(matches!(get("usr/bin/hi"), Some(NodeKind::Hardlink(t)) if t.as_str() == "usr/bin/hello"));
    assert_eq!(tree.read_file(&TreePath::new("lib/x86_64-linux-gnu/libhello.so.1")).unwrap(), b"lib");
    assert_eq!(tree.read_file(&TreePath::new("sbin/hello-admin")).unwrap(), b"\x7fELF hello");
    assert_eq!(tree.read_file(&TreePath::new("etc/hello.conf")).unwrap(), b"greeting=hi\n");
    assert!(matches!(get("usr/lib/x86_64-linux-gnu"), Some(NodeKind::Dir)));

    // Without the rewrite the same archive runs into the /bin symlink.
    let mut plain = Tree::new();
    create_merged_usr_links(&mut plain, "amd64").unwrap();
    let d = open_deb(Cursor::new(&bytes), "hello").unwrap();
    let opts = UnpackOptions { origin: Arc::from("hello"), replace: Replace::Deny, rewrite: None };
    assert!(unpack_in_memory(d.into_data().unwrap(), &mut plain, &opts).is_err());
}

#[test]
fn one_changed_byte_fails_verification() {
    let bytes = deb(("data.tar.xz", xz(&data_tar())));
    let sha = hex::encode(Sha256::digest(&bytes));
    let mut bad = bytes.clone();
    let i = bad.len() - 10;
    bad[i] ^= 0x20;
    let e = verify_blob(&bad, &sha, bytes.len() as u64, "hello 1.0-1").unwrap_err();
    assert!(matches!(e, DebError::Checksum { .. }) && e.to_string().contains("hello 1.0-1"), "{e}");
    let e = verify_blob(&bytes[1..], &sha, bytes.len() as u64, "hello").unwrap_err();
    assert!(matches!(e, DebError::Size { .. }), "{e}");
    // The altered archive still opens (ar does not checksum); only the
    // decompression notices, which is why verify_blob comes first.
    let d = open_deb(Cursor::new(&bad), "hello").unwrap();
    let mut out = Vec::new();
    assert!(d.into_data().unwrap().read_to_end(&mut out).is_err());
}

#[test]
fn other_compressions_and_layouts() {
    let data = data_tar();
    for (name, member) in [
        ("data.tar", data.clone()),
        ("data.tar.gz", gz(&data)),
        ("data.tar.zst", zstd::encode_all(&data[..], 3).unwrap()),
    ] {
        let bytes = deb((name, member));
        let d = open_deb(&bytes[..], "hello").unwrap();
        let mut out = Vec::new();
        d.into_data().unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, data, "{name}");
    }
    // GNU ar names, uncompressed control, an ignored `_` member, odd sizes.
    let bytes = ar(
        &[
            ("debian-binary", b"2.0\n".to_vec()),
            ("_gpgorigin", b"sig".to_vec()),
            ("control.tar", control_tar()),
            ("data.tar.xz", xz(&data)),
        ],
        true,
    );
    let d = open_deb(&bytes[..], "hello").unwrap();
    assert_eq!(d.control().field("Architecture"), Some("amd64"));
}

#[test]
fn malformed_archives_name_the_package() {
    let data = xz(&data_tar());
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"PK\x03\x04 not a deb".to_vec(), "ar archive"),
        (ar(&[("control.tar.gz", gz(&control_tar()))], false), "debian-binary"),
        (ar(&[("debian-binary", b"3.0\n".to_vec()), ("control.tar.gz", gz(&control_tar()))], false), "format version"),
        (ar(&[("debian-binary", b"2.0\n".to_vec()), ("data.tar.xz", data.clone())], false), "before control"),
        (
            ar(
                &[
                    ("debian-binary", b"2.0\n".to_vec()),
                    ("control.tar.gz", gz(&control_tar())),
                    ("data.tar.bz2", b"BZh".to_vec()),
                ],
                false,
            ),
            "bz2",
        ),
        (
            ar(
                &[
                    ("debian-binary", b"2.0\n".to_vec()),
                    ("control.tar.gz", gz(&tar(&[("./postinst", b'0', "", b"x")]))),
                ],
                false,
            ),
            "no control",
        ),
        (ar(&[("debian-binary", b"2.0\n".to_vec()), ("control.tar.gz", gz(&control_tar()))], false), "no data.tar"),
        (ar(&[("debian-binary", b"2.0\n".to_vec()), ("evil", b"x".to_vec())], false), "unexpected member"),
    ];
    for (bytes, want) in cases {
        let e = match open_deb(&bytes[..], "hello") {
            Ok(_) => panic!("{want}: accepted"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("hello.deb") && e.contains(want), "{want}: {e}");
    }
    // Truncated in the middle of the control member.
    let full = deb(("data.tar.xz", data));
    let e = open_deb(&full[..100], "hello").err().expect("truncated accepted").to_string();
    assert!(e.contains("hello.deb"), "{e}");
}
