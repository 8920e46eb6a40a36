//! Writes the seed corpus of every fuzz target: valid inputs, generated
//! here (nothing binary is committed). `seeds [DIR]` writes
//! `DIR/<target>/<name>` (default `corpus/` beside this crate's
//! Cargo.toml); existing seed files are overwritten, other corpus files
//! (found by the fuzzer) are left alone.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use dinv_apk::index::format_text;
use dinv_apk::sign::SigAlgo;
use dinv_apk::testkit::{build_apk, build_index, gzip, ApkOptions, BuiltApk, IndexOptions, PackageSpec, SpecKind, StyledTar, TarStyle};
use dinv_fstree::tar::{header_block, write_tree, Header, Magic, TarBuilder, TreeTarOptions};
use dinv_fstree::{Meta, Node, NodeKind, Replace, Tree, TreePath};
use dinv_fuzz::{apk_key, pgp_public_key_bytes, pgp_secret_key, APK_NAME, APK_VERSION};
use pgp::composed::{CleartextSignedMessage, DetachedSignature, SignedPublicKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::ser::Serialize;
use pgp::types::Password;
use rand::rngs::StdRng;
use rand::SeedableRng;

struct Corpus {
    root: PathBuf,
    counts: BTreeMap<&'static str, usize>,
}

impl Corpus {
    fn put(&mut self, target: &'static str, name: &str, bytes: impl AsRef<[u8]>) {
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let path = dir.join(format!("seed-{name}"));
        std::fs::write(&path, bytes.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        *self.counts.entry(target).or_default() += 1;
    }
}

fn style_name(s: TarStyle) -> &'static str {
    match s {
        TarStyle::Ustar => "ustar",
        TarStyle::Pax => "pax",
        TarStyle::Gnu => "gnu",
    }
}

// ---------------------------------------------------------------- apk

fn package_spec() -> PackageSpec {
    let mut xattr = Meta::root(0o755);
    xattr.xattrs.insert("security.capability".into(), vec![1, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    PackageSpec::new(APK_NAME, APK_VERSION)
        .depend("so:libc.musl-x86_64.so.1")
        .depend("busybox>=1.36")
        .depend("!fuzz-legacy")
        .provide("cmd:fuzz=1.0-r0")
        .provide("so:libfuzz.so.1=1")
        .install_if("fuzz-base openrc")
        .dir("usr", 0o755)
        .dir("usr/bin", 0o755)
        .entry("usr/bin/fuzz", SpecKind::File(b"#!/bin/sh\necho fuzz\n".to_vec()), xattr)
        .symlink("usr/bin/fz", "fuzz")
        .hardlink("usr/bin/fuzz2", "usr/bin/fuzz")
        .file(&format!("usr/share/{}/long-name", "d".repeat(110)), "long path\n", 0o644)
        .symlink("usr/lib/long-link", &format!("../share/{}/long-name", "d".repeat(110)))
        .entry("dev/null", SpecKind::CharDevice { major: 1, minor: 3 }, Meta::root(0o666))
        .entry("dev/loop0", SpecKind::BlockDevice { major: 7, minor: 0 }, Meta::root(0o660))
        .entry("run/fifo", SpecKind::Fifo, Meta::root(0o600))
        .script("post-install", "#!/bin/sh\nexit 0\n")
        .script("trigger", "#!/bin/sh\n:\n")
}

fn apk_seeds(c: &mut Corpus) {
    let key = apk_key();
    let spec = package_spec();
    let mut built: Vec<BuiltApk> = Vec::new();
    for style in TarStyle::ALL {
        for (algo, omit_datahash) in [(SigAlgo::RsaSha1, false), (SigAlgo::RsaSha256, true), (SigAlgo::RsaSha512, false)] {
            let opts = ApkOptions { algo, omit_datahash, style, compression: 9, ..ApkOptions::signed(key) };
            let apk = build_apk(&spec, &opts);
            let name = format!("{}-{}{}", style_name(style), algo.tag(), if omit_datahash { "-nodatahash" } else { "" });
            c.put("apk_package", &name, &apk.bytes);
            c.put("apk_segments", &format!("apk-{name}"), &apk.bytes);
            built.push(apk);
        }
        // Unsigned (the checksum path) and a small package with no files.
        let unsigned = build_apk(&spec, &ApkOptions { key: None, style, ..ApkOptions::signed(key) });
        c.put("apk_package", &format!("{}-unsigned", style_name(style)), &unsigned.bytes);
        let small = build_apk(&PackageSpec::new(APK_NAME, APK_VERSION).file("a", "b", 0o644), &ApkOptions { style, ..ApkOptions::signed(key) });
        c.put("apk_package", &format!("{}-small", style_name(style)), &small.bytes);

        // Old-style (no datahash: the checksum covers everything) as its
        // uncompressed member tars, for the structured target.
        // (Small packages: the target re-compresses every input.)
        let small_spec = PackageSpec::new(APK_NAME, APK_VERSION).depend("so:libc.musl-x86_64.so.1").file("usr/bin/a", "b", 0o755).symlink("usr/bin/c", "a").script("post-install", "#!/bin/sh\n");
        let old = build_apk(&small_spec, &ApkOptions { omit_datahash: true, style, ..ApkOptions::signed(key) });
        let ranges = dinv_apk::segments::split(&old.bytes).expect("own apk");
        let tars: Vec<Vec<u8>> = ranges.iter().map(|r| dinv_apk::segments::read_member(&old.bytes, r.start).unwrap().0).collect();
        c.put("apk_members", &format!("{}-signed", style_name(style)), tars.join(dinv_fuzz::PART_MARKER));
        c.put("apk_members", &format!("{}-unsigned", style_name(style)), tars[1..].join(dinv_fuzz::PART_MARKER));
        // The members' tar streams on their own, for the tar reader.
        for (what, range) in [("control", &small.control_range), ("data", &small.data_range)] {
            let (tar, _) = dinv_apk::segments::read_member(&small.bytes, range.start).expect("own member");
            c.put("tar_reader", &format!("apk-{what}-{}", style_name(style)), tar);
        }
    }
    let mut entries: Vec<_> = built.iter().map(|b| b.index_entry()).collect();
    let mut other = PackageSpec::new("other", "2.3.4_rc1-r2").depend("fuzz>=1.0").depend("so:libfuzz.so.1");
    other.provider_priority = Some(100);
    entries.push(build_apk(&other, &ApkOptions::signed(key)).index_entry());
    for style in TarStyle::ALL {
        for algo in [SigAlgo::RsaSha1, SigAlgo::RsaSha256] {
            let idx = build_index(&entries[..2], &IndexOptions { style, algo, ..IndexOptions::signed(key) });
            c.put("apk_segments", &format!("index-{}-{}", style_name(style), algo.tag()), idx);
        }
    }
    let unsigned = build_index(&entries[..1], &IndexOptions { key: None, description: None, ..IndexOptions::signed(key) });
    c.put("apk_segments", "index-unsigned", unsigned);
    c.put("apk_segments", "gzip-members", [gzip(b"", 6), gzip(b"one", 1), gzip(&[7u8; 300], 9)].concat());

    let mut text = format_text(&entries);
    c.put("apk_index_text", "generated", &text);
    text.push_str(
        "C:Q1EfatjsUqKYSrqv18O1FlA3hcIHI=\nP:docker\nV:24.0.7-r0\nA:x86_64\nS:123\nI:456\nT:Pack, ship and run\n\
U:https://www.docker.io/\nL:Apache-2.0\no:docker\nm:Someone <s@example.org>\nt:1700000000\nc:abc\nk:10\n\
D:containerd !docker-legacy so:libc.musl-x86_64.so.1 tini-static>=0.19\np:cmd:docker=24.0.7-r0 docker-engine\n\
i:docker-cli bash-completion\nz:future-lowercase\n\nP:b\nV:1\nX:new-feature\n\nP:c\nV:2\nF:usr\nC:X10123456789abcdef0123456789abcdef01234567\n\n\
P:d\nV:3\nC:0123456789abcdef0123456789abcdef\nD:e><Q1abcdefghijklmnopqrstuvwxyzAB= f<~2 g>~1\n",
    );
    c.put("apk_index_text", "fields", &text);

    for (i, b) in built.iter().take(2).enumerate() {
        c.put("apk_pkginfo", &format!("generated-{i}"), b.pkginfo.to_text());
    }
    c.put(
        "apk_pkginfo",
        "abuild",
        "# Generated by abuild 3.12.0-r0\n# using fakeroot version 1.32\npkgname = docker\npkgver = 24.0.7-r0\n\
pkgdesc = Pack, ship and run any application as a lightweight container\nurl = https://www.docker.io/\n\
builddate = 1700000000\npackager = Buildozer <alpine-devel@lists.alpinelinux.org>\nsize = 123456\narch = x86_64\n\
origin = docker\ncommit = abc123\nmaintainer = Someone <s@example.org>\nlicense = Apache-2.0\nreplaces = docker-cli<24\n\
replaces_priority = 10\nprovider_priority = 5\ndepend = containerd\ndepend = so:libc.musl-x86_64.so.1\n\
provides = cmd:docker=24.0.7-r0\ninstall_if = docker-engine openrc\ntriggers = /usr/lib/modules/* /etc/x\n\
futurekey = something\ndatahash = 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
    );

    for (name, text) in [
        ("atoms", "so:libc.musl-x86_64.so.1 !foo@edge>=1.2-r0 cmd:sh=1 bar~1.2 baz<~2 qux>~3.0_rc1 pc:x<=4 y=~5\n1.2.3_rc1-r0\n1.2.3-r1"),
        ("checksum", "musl><Q1abcdefghijklmnopqrstuvwxyzAB= a<1 b>1\n1.0.005a_alpha2_p3-r4\n1.0.5_git20240101"),
        ("fuzzy", "linux-lts~6.6\n6.6.30-r0\n6.6"),
        ("suffixes", "a>=1_pre1\n2.0_beta3_cvs1\n2.0_svn_hg_p1"),
    ] {
        c.put("apk_deps", name, text);
    }
}

// ---------------------------------------------------------------- tar

fn tar_seeds(c: &mut Corpus) {
    let mut pax_extra = BTreeMap::new();
    pax_extra.insert("SCHILY.xattr.user.test".to_string(), b"value".to_vec());
    pax_extra.insert("APK-TOOLS.checksum.SHA1".to_string(), b"0123456789abcdef0123456789abcdef01234567".to_vec());
    let long = format!("usr/share/{}/file", "n".repeat(120));
    for style in TarStyle::ALL {
        let mut t = StyledTar::new(style);
        t.append(&Header { mtime: 1_700_000_000, ..Header::new("etc/", b'5') }, b"");
        t.append(&Header { size: 6, mtime: 1_700_000_000, pax: pax_extra.clone(), ..Header::new("etc/motd", b'0') }, b"hello\n");
        t.append(&Header { size: 3, ..Header::new(&long, b'0') }, b"abc");
        t.append(&Header { link: long.clone(), ..Header::new("link", b'2') }, b"");
        t.append(&Header { link: "etc/motd".into(), ..Header::new("hard", b'1') }, b"");
        t.append(&Header { dev_major: 1, dev_minor: 5, mode: 0o666, ..Header::new("dev/zero", b'3') }, b"");
        t.append(&Header { dev_major: 8, dev_minor: 0, ..Header::new("dev/sda", b'4') }, b"");
        t.append(&Header { ..Header::new("fifo", b'6') }, b"");
        t.append(&Header { size: 600, uid: 1000, gid: 1000, mode: 0o4755, ..Header::new("big", b'0') }, &[0x5a; 600]);
        c.put("tar_reader", &format!("{}-finished", style_name(style)), t.finish());
        let mut t = StyledTar::new(style);
        t.extension(b'g', "pax_global_header", b"22 comment=any global\n");
        t.append(&Header { size: 2, ..Header::new("a", b'0') }, b"hi");
        c.put("tar_reader", &format!("{}-global-cut", style_name(style)), t.cut());
    }
    // GNU long name and link records placed by hand.
    let mut t = StyledTar::new(TarStyle::Gnu);
    t.extension(b'L', "././@LongLink", b"./renamed\0");
    t.extension(b'K', "././@LongLink", b"target\0");
    t.append(&Header { link: "x".into(), ..Header::new("short", b'2') }, b"");
    c.put("tar_reader", "gnu-L-K", t.finish());
    // A header whose size is GNU base-256.
    let mut block = header_block(b"b256", &Header::new("b256", b'0'), b'0', 0, Magic::Gnu);
    block[124..136].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]);
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&b| b as u32).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut b256 = block.to_vec();
    b256.extend_from_slice(b"12345");
    b256.resize(1024, 0);
    b256.extend_from_slice(&[0; 1024]);
    c.put("tar_reader", "gnu-base256", b256);
    // The deterministic tree writer's output (ustar + PAX where needed).
    let mut tree = Tree::new();
    let mut m = Meta::root(0o755);
    m.xattrs.insert("security.capability".into(), vec![1, 0, 0, 2]);
    tree.write_file(&TreePath::new("usr/bin/ping"), "ping", m).unwrap();
    tree.write_file(&TreePath::new(&long), "long", Meta::root(0o644)).unwrap();
    tree.insert(TreePath::new("dev/null"), Node::new(NodeKind::CharDevice { major: 1, minor: 3 }, Meta::root(0o666)), Replace::Deny)
        .unwrap();
    tree.symlink(&TreePath::new("bin"), "usr/bin").unwrap();
    let mut b = TarBuilder::new(Vec::new());
    write_tree(&tree, &mut b, &TreeTarOptions { skip_root: true, ..Default::default() }).unwrap();
    c.put("tar_reader", "tree-writer", b.finish().unwrap());
}

// ---------------------------------------------------------------- deb

const RELEASE: &str = "Origin: Debian
Label: Debian
Suite: stable
Version: 12.5
Codename: bookworm
Changelogs: https://metadata.ftp-master.debian.org/changelogs/@CHANGEPATH@_changelog
Date: Sat, 10 Jun 2023 08:52:43 UTC
Valid-Until: Sat, 17 Jun 2023 08:52:43 +0100
Acquire-By-Hash: yes
No-Support-for-Architecture-all: Packages
Architectures: all amd64 arm64
Components: main contrib non-free-firmware
Description: Debian 12.5 Released 10 February 2024
MD5Sum:
 0ed6d4c8891eb86358b94bb35d9e4da4  1484322 main/binary-amd64/Packages
SHA256:
 515e692f2c4121c6fcec444ef100cc18f79a991910615f3a88c8b7becfc94d2f 50060337 main/binary-amd64/Packages
 6777ea16514725f9427f48c240d92e0a6b8496138e37a1491d8597e66774e309 12084798 main/binary-amd64/Packages.gz
 9E0B5AABB2465B3D2E7A7FE27F9913846277833F7A2826E7767ACCCFF5B588C5  8790396 main/binary-amd64/Packages.xz
 1111111111111111111111111111111111111111111111111111111111111111      123 contrib/binary-arm64/Packages
";

const PACKAGES: &str = "Package: docker.io
Version: 20.10.24+dfsg1-1+b3
Installed-Size: 121180
Maintainer: Debian Go Packaging Team <team@example.org>
Architecture: amd64
Source: docker.io (20.10.24+dfsg1-1)
Depends: adduser, containerd (>= 1.2.6-2~), iptables, libc6 (>= 2.34), init-system-helpers (>= 1.52) | systemd-sysv:any
Pre-Depends: dpkg (>= 1.17.14)
Recommends: apparmor, ca-certificates
Suggests: aufs-tools [amd64] <!nocheck>, btrfs-progs
Breaks: docker (<< 1.5~)
Conflicts: docker (<< 1.5~), docker-engine [!arm64]
Replaces: docker (<< 1.5~)
Provides: docker-engine (= 20.10.24), container-runtime
Description: Linux container runtime
 Docker complements kernel namespacing.
 .
 More text.
Homepage: https://example.org/moby
Multi-Arch: foreign
Section: admin
Priority: optional
Filename: pool/main/d/docker.io/docker.io_20.10.24+dfsg1-1+b3_amd64.deb
Size: 28539668
SHA256: 6E9A1D4C2A1F0B7E3A2C9D8E7F6A5B4C3D2E1F0A9B8C7D6E5F4A3B2C1D0E9F8A

Package: base-files
Essential: yes
Priority: required
Multi-Arch: same
Version: 1:12.4+deb12u5
Architecture: amd64
Filename: pool/main/b/base-files/base-files_12.4+deb12u5_amd64.deb
Size: 70000
SHA256: 0000000000000000000000000000000000000000000000000000000000000000
";

fn ar(members: &[(&str, &[u8])], gnu_names: bool) -> Vec<u8> {
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

fn plain_tar(members: &[(&str, u8, &str, &[u8])]) -> Vec<u8> {
    let mut b = TarBuilder::new(Vec::new());
    for (path, typeflag, link, data) in members {
        let h = Header { link: link.to_string(), size: data.len() as u64, mode: 0o755, ..Header::new(path, *typeflag) };
        b.append(&h, &mut &data[..]).unwrap();
    }
    b.finish().unwrap()
}

fn xz(b: &[u8]) -> Vec<u8> {
    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn deb_seeds(c: &mut Corpus) {
    let control = b"Package: hello\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: Nobody <nobody@example.org>\n\
Depends: libc6 (>= 2.34)\nDescription: says hello\n a test package\n";
    let control_tar = plain_tar(&[
        ("./", b'5', "", b""),
        ("./control", b'0', "", control),
        ("./conffiles", b'0', "", b"/etc/hello.conf\nremove-on-upgrade /etc/old.conf\n"),
        ("./postinst", b'0', "", b"#!/bin/sh\nexit 0\n"),
        ("./md5sums", b'0', "", b"0123  bin/hello\n"),
    ]);
    let data_tar = plain_tar(&[
        ("./", b'5', "", b""),
        ("./usr/bin/", b'5', "", b""),
        ("./usr/bin/hello", b'0', "", b"\x7fELF hello"),
        ("./etc/hello.conf", b'0', "", b"greeting=hi\n"),
        ("./usr/bin/hi", b'1', "./usr/bin/hello", b""),
        ("./sbin/hello-admin", b'2', "/usr/bin/hello", b""),
    ]);
    let variants: [(&str, (&str, Vec<u8>), (&str, Vec<u8>), bool); 4] = [
        ("gz-xz", ("control.tar.gz", gzip(&control_tar, 6)), ("data.tar.xz", xz(&data_tar)), false),
        ("xz-zst-gnu", ("control.tar.xz", xz(&control_tar)), ("data.tar.zst", zstd::encode_all(&data_tar[..], 3).unwrap()), true),
        ("plain", ("control.tar", control_tar.clone()), ("data.tar", data_tar.clone()), false),
        ("zst-gz", ("control.tar.zst", zstd::encode_all(&control_tar[..], 3).unwrap()), ("data.tar.gz", gzip(&data_tar, 6)), false),
    ];
    for (name, (cn, cb), (dn, db), gnu) in &variants {
        let mut members: Vec<(&str, &[u8])> = vec![("debian-binary", b"2.0\n")];
        if *name == "plain" {
            members.push(("_gpgorigin", b"x"));
        }
        members.push((cn, cb));
        members.push((dn, db));
        c.put("deb_archive", name, ar(&members, *gnu));
    }
    c.put("tar_reader", "deb-control", &control_tar);
    c.put("deb_archive", "parts", [&control_tar[..], dinv_fuzz::PART_MARKER, &data_tar[..]].concat());

    c.put("deb_release", "bookworm", RELEASE);
    c.put("deb_packages", "packages", PACKAGES);
    c.put("deb_packages", "control", control);
    c.put("deb_packages", "deb822", "Types: deb\nURIs: http://deb.example.org/debian\nSuites: bookworm\n\t bookworm-updates\nComponents: main\r\n\n\n \nPackage: b\r\nversion: 1\n");

    for (name, text) in [
        ("full", "a (>= 1.0) | b:any, c [amd64] <!nocheck>, d (<< 2:1.0-1~) [!i386] <stage1 cross> <!nodoc>, e:amd64,\n1:2.3-4\n1:2.3-4~rc1"),
        ("operators", "a (<< 1), b (<= 1), c (= 1), d (>= 1), e (>> 1), f (< 1), g (> 1), h(>=1)\n1.0+dfsg-1+b2\n1.0~beta"),
        ("multiline", "libc6 (>= 2.34),\n libseccomp2\n (>= 2.5.0)\n2.5.0-3\n02.05.0-3"),
        ("provides", "mail-transport-agent, libfoo-abi (= 1.2-3), x\n0:1.0\n1.0-0"),
    ] {
        c.put("deb_relations", name, text);
    }
    // Shapes of fixed bugs, kept as seeds (regression tests cover them too).
    c.put("deb_relations", "unicode-whitespace", "a\u{a0}(>= 1),\u{2003}b\u{3000}|\u{85}c\n1\u{a0}\n2");
    c.put("deb_release", "huge-year", RELEASE.replace("2023 08:52:43 UTC", "99999999999999999 08:52:43 UTC"));

    // OpenPGP: the same Release text, clear-signed and detached, by the
    // primary key and by its signing subkey.
    let key = pgp_secret_key();
    let sub = &key.secret_subkeys[0].key;
    let pw = Password::empty();
    let mut rng = StdRng::seed_from_u64(7);
    let clear_primary = CleartextSignedMessage::sign(&mut rng, RELEASE, &key.primary_key, &pw).unwrap();
    let clear_sub = CleartextSignedMessage::sign(&mut rng, RELEASE, sub, &pw).unwrap();
    c.put("deb_inrelease", "primary", clear_primary.to_armored_bytes(Default::default()).unwrap());
    c.put("deb_inrelease", "subkey", clear_sub.to_armored_bytes(Default::default()).unwrap());
    for (name, signer) in [("primary", &key.primary_key as &dyn pgp::types::SigningKey), ("subkey", sub)] {
        let sig = DetachedSignature::sign_binary_data(&mut rng, &Box::new(signer), &pw, HashAlgorithm::Sha256, RELEASE.as_bytes()).unwrap();
        let mut armored = sig.to_armored_bytes(Default::default()).unwrap();
        armored.push(0);
        armored.extend_from_slice(RELEASE.as_bytes());
        c.put("deb_detached", &format!("armored-{name}"), armored);
        let mut binary = Vec::new();
        sig.to_writer(&mut binary).unwrap();
        c.put("deb_detached", &format!("binary-{name}"), &binary);
    }
    let public = pgp_public_key_bytes();
    c.put("deb_keyring", "binary", &public);
    let armored = SignedPublicKey::from(key.clone()).to_armored_bytes(Default::default()).unwrap();
    c.put("deb_keyring", "armored", armored);
}

// ---------------------------------------------------------------- kernel

fn kernel_seeds(c: &mut Corpus) {
    let fragment = "# Docker needs overlayfs for its storage driver.\nCONFIG_OVERLAY_FS=y\n\n# bridge networking\n# for docker0\nCONFIG_BRIDGE=m\n# CONFIG_DEBUG_INFO is not set\nCONFIG_NR_CPUS=64\nCONFIG_CMDLINE=\"console=ttyS0\"\nCONFIG_VIRTIO_BLK=n\n";
    let config = "#\n# Automatically generated file; DO NOT EDIT.\n# Linux/x86 6.1.0 Kernel Configuration\n#\nCONFIG_OVERLAY_FS=m\nCONFIG_BRIDGE=m\n# CONFIG_DEBUG_INFO is not set\nCONFIG_NR_CPUS=64\nCONFIG_CMDLINE=\"console=ttyS0 quiet\"\nCONFIG_VIRTIO_BLK=y\n";
    c.put("kconfig", "fragment-config", format!("{fragment}\0{config}"));
    c.put("kconfig", "fragment-only", fragment);

    let full = FakeSymbols {
        ksymtab: Some(&["", "", "fuzz_export", "", "other_export"]),
        crcs: &["fuzz_export"],
        needs: &["printk", "kmalloc"],
        versions: &["module_layout", "printk", "only_versioned"],
        symtab: true,
    };
    let info = "license=GPL\ndepends=jbd2,mbcache\nalias=fs-fuzz\nalias=pci:v00001AF4d*sv*sd*bc*sc*i*\nsoftdep=pre: crc32c post: foo\nname=fuzz\nvermagic=6.1.0-fuzz SMP mod_unload";
    for (is64, le) in [(true, true), (false, true), (true, false), (false, false)] {
        let name = format!("elf{}-{}", if is64 { 64 } else { 32 }, if le { "le" } else { "be" });
        c.put("kernel_module", &format!("{name}-full"), fake_module(info, full, is64, le));
        c.put("kernel_module", &format!("{name}-ksymtab"), fake_module("name=fuzz\nalias=fuzz-alias", FakeSymbols { ksymtab: Some(&["x", "y"]), ..Default::default() }, is64, le));
    }
    c.put("kernel_module", "elf64-le-bare", fake_module("name=fuzz", FakeSymbols::default(), true, true));
}

// ---------------------------------------------------------------- recipes and launcher

/// Every recipe in the repository, in the recipe target's three modes (see
/// fuzz_targets/recipe.rs): `recipes/*.toml` as themselves and as the
/// parent of the fixed child, `recipes/examples/*.toml` as themselves.
fn recipe_seeds(c: &mut Corpus) {
    let recipes = Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes");
    for (dir, modes) in [(recipes.clone(), &[0u8, 2][..]), (recipes.join("examples"), &[1u8][..])] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read(&f).unwrap();
            let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
            for &mode in modes {
                c.put("recipe", &format!("{mode}-{stem}"), [&[mode][..], &text].concat());
            }
        }
    }
}

/// launcher.json files as `dinv-build` writes them (emit/image.rs), with
/// environments from the launcher's settings tests.
fn launcher_seeds(c: &mut Corpus) {
    let built = r#"{"kernel":"/usr/share/dinv/vmlinuz","initrd":"/usr/share/dinv/initramfs","rootfs":"/usr/share/dinv/rootfs.ext4","qemu":"/usr/bin/qemu-system-x86_64","append":"console=ttyS0 root=SERIAL=dinv-root rw quiet","defaults":{"DINV_CPUS":"1","DINV_DOCKER_SIZE":"64G","DINV_MACHINE":"microvm","DINV_MEMORY":"512M","DINV_SHUTDOWN_TIMEOUT":"5","DINV_STOP_TIMEOUT":"10"}}"#;
    let full = r#"{"kernel":"/k","rootfs":"/r.ext4","append":"console=ttyS0 root=/dev/vda rw","docker_disk":"/docker/docker.img","volume_disk":"/volume/volume.img","run_dir":"/run/dinv","defaults":{"DINV_MEMORY":"1G","DINV_MACHINE":"q35"}}"#;
    let envs = [
        ("none", ""),
        ("ports", "DINV_TCP_PORTS=80; 8443:443;\nDINV_UDP_PORTS=53;5353:53\nDINV_ACCEL=tcg\n"),
        ("mounts", "DINV_MOUNTS=/data;/srv/a b/;/x//y/./z\nDINV_CPUS=4\nDINV_MEMORY=3GiB\nDINV_DOCKER_SIZE=10G\n"),
        (
            "volume",
            "DINV_VOLUME_PATH=/work/\nDINV_VOLUME_SIZE=1G\nDINV_VOLUME_UID=1000\nDINV_VOLUME_GID=100\nDINV_DOCKER_SOCK_UID=1000\nDINV_DOCKER_SOCK_GID=999\n",
        ),
        (
            "timeouts",
            "DINV_SHUTDOWN_TIMEOUT=30\nDINV_STOP_TIMEOUT=2.5\nDINV_READY_TIMEOUT=60\nDINV_KVM_WATCHDOG=12.5\nDINV_MACHINE=q35\nDINV_PING_ADDR=127.0.0.1:9\nDINV_KERNEL=/tmp/x\nDINV_RUN_DIR=/tmp/x\nDINV_ACCEL=kvm\n",
        ),
    ];
    for (config, json) in [("built", built), ("full", full)] {
        for (env, vars) in envs {
            c.put("launcher_settings", &format!("{config}-{env}"), format!("{json}\0{vars}"));
        }
    }
}

/// What a fake module holds besides its `.modinfo` (as in
/// builder/kernel/src/modinfo.rs's tests).
#[derive(Clone, Copy, Default)]
struct FakeSymbols<'a> {
    ksymtab: Option<&'a [&'a str]>,
    crcs: &'a [&'a str],
    needs: &'a [&'a str],
    versions: &'a [&'a str],
    symtab: bool,
}

/// A minimal relocatable ELF (32- or 64-bit, either byte order) with the
/// sections kmod reads: `.modinfo`, `__ksymtab_strings`, `__versions`,
/// `.symtab`/`.strtab`, `.shstrtab`. The layout of the kernel crate's
/// `fake_module_with`, generalised.
fn fake_module(modinfo: &str, syms: FakeSymbols, is64: bool, le: bool) -> Vec<u8> {
    let put = |out: &mut Vec<u8>, at: usize, v: u64, n: usize| {
        for i in 0..n {
            let byte = (v >> (8 * i)) as u8;
            out[at + if le { i } else { n - 1 - i }] = byte;
        }
    };
    let word = if is64 { 8 } else { 4 };
    let mut info = modinfo.replace('\n', "\0").into_bytes();
    info.push(0);
    // (name, sh_type, bytes, sh_link, sh_info, sh_entsize)
    let mut sections: Vec<(&str, u32, Vec<u8>, u32, u32, u64)> = vec![(".modinfo", 1, info, 0, 0, 0)];
    if let Some(exports) = syms.ksymtab {
        let b: Vec<u8> = exports.iter().flat_map(|e| e.bytes().chain([0])).collect();
        sections.push(("__ksymtab_strings", 1, b, 0, 0, 1));
    }
    if !syms.versions.is_empty() {
        let mut b = Vec::new();
        for (i, v) in syms.versions.iter().enumerate() {
            let mut e = vec![0u8; 64];
            put(&mut e, 0, 0xc0de_0000 + i as u64, word);
            e[word..word + v.len()].copy_from_slice(v.as_bytes());
            b.extend_from_slice(&e);
        }
        sections.push(("__versions", 1, b, 0, 0, 0));
    }
    if syms.symtab || !syms.crcs.is_empty() || !syms.needs.is_empty() {
        let entsize = if is64 { 24 } else { 16 };
        let mut strtab = vec![0u8];
        let mut symtab = vec![0u8; entsize];
        let mut sym = |name: &str, info: u8, shndx: u16, value: u64| {
            let mut e = vec![0u8; entsize];
            put(&mut e, 0, strtab.len() as u64, 4);
            if is64 {
                e[4] = info;
                put(&mut e, 6, shndx as u64, 2);
                put(&mut e, 8, value, 8);
            } else {
                put(&mut e, 4, value, 4);
                e[12] = info;
                put(&mut e, 14, shndx as u64, 2);
            }
            strtab.extend_from_slice(name.as_bytes());
            strtab.push(0);
            symtab.extend_from_slice(&e);
        };
        sym("fake.c", 0x04, 0xfff1, 0);
        for (i, c) in syms.crcs.iter().enumerate() {
            sym(&format!("__crc_{c}"), 0x10, 0xfff1, 0x1234_5678 + i as u64);
        }
        for n in syms.needs {
            sym(n, 0x10, 0, 0);
        }
        let symtab_index = sections.len() as u32 + 1;
        sections.push((".symtab", 2, symtab, symtab_index + 1, 2, entsize as u64));
        sections.push((".strtab", 3, strtab, 0, 0, 0));
    }
    let mut names = vec![0u8];
    let mut name_offs = Vec::new();
    for (name, ..) in &sections {
        name_offs.push(names.len() as u64);
        names.extend_from_slice(name.as_bytes());
        names.push(0);
    }
    name_offs.push(names.len() as u64);
    names.extend_from_slice(b".shstrtab\0");
    sections.push((".shstrtab", 3, names, 0, 0, 0));

    let (ehsize, shentsize) = if is64 { (64, 64) } else { (52, 40) };
    let mut f = vec![0u8; ehsize];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = if is64 { 2 } else { 1 };
    f[5] = if le { 1 } else { 2 };
    f[6] = 1;
    put(&mut f, 16, 1, 2); // ET_REL
    put(&mut f, 18, if is64 { 62 } else { 3 }, 2); // EM_X86_64 / EM_386
    put(&mut f, 20, 1, 4);
    let mut placed = Vec::new();
    for (_, _, bytes, ..) in &sections {
        f.resize(f.len().next_multiple_of(8), 0);
        placed.push(f.len() as u64);
        f.extend_from_slice(bytes);
    }
    f.resize(f.len().next_multiple_of(8), 0);
    let shoff = f.len();
    f.resize(shoff + shentsize * (sections.len() + 1), 0);
    for (i, (_, typ, bytes, link, info, entsize)) in sections.iter().enumerate() {
        let h = shoff + shentsize * (i + 1);
        put(&mut f, h, name_offs[i], 4);
        put(&mut f, h + 4, *typ as u64, 4);
        if is64 {
            put(&mut f, h + 24, placed[i], 8);
            put(&mut f, h + 32, bytes.len() as u64, 8);
            put(&mut f, h + 40, *link as u64, 4);
            put(&mut f, h + 44, *info as u64, 4);
            put(&mut f, h + 48, 1, 8);
            put(&mut f, h + 56, *entsize, 8);
        } else {
            put(&mut f, h + 16, placed[i], 4);
            put(&mut f, h + 20, bytes.len() as u64, 4);
            put(&mut f, h + 24, *link as u64, 4);
            put(&mut f, h + 28, *info as u64, 4);
            put(&mut f, h + 32, 1, 4);
            put(&mut f, h + 36, *entsize, 4);
        }
    }
    let shnum = sections.len() as u64 + 1;
    if is64 {
        put(&mut f, 0x28, shoff as u64, 8);
        put(&mut f, 0x34, ehsize as u64, 2);
        put(&mut f, 0x3A, shentsize as u64, 2);
        put(&mut f, 0x3C, shnum, 2);
        put(&mut f, 0x3E, shnum - 1, 2);
    } else {
        put(&mut f, 0x20, shoff as u64, 4);
        put(&mut f, 0x28, ehsize as u64, 2);
        put(&mut f, 0x2E, shentsize as u64, 2);
        put(&mut f, 0x30, shnum, 2);
        put(&mut f, 0x32, shnum - 1, 2);
    }
    f
}

// ---------------------------------------------------------------- elf

fn elf_seeds(c: &mut Corpus) {
    use dinv_elf::testkit::ElfSpec;
    use dinv_elf::Class;
    let exe = ElfSpec { rpath: vec!["$ORIGIN/../lib".into()], runpath: vec!["/opt/lib".into()], ..ElfSpec::executable(&["libglib-2.0.so.0", "libc.so.6"]) };
    c.put("elf_dynamic", "exe64-le", exe.bytes());
    c.put("elf_dynamic", "lib64-le", ElfSpec::library("libglib-2.0.so.0", &["libc.so.6"]).bytes());
    c.put("elf_dynamic", "static", ElfSpec { dynamic: false, ..ElfSpec::default() }.bytes());
    for (class, big_endian, name) in [(Class::Elf32, false, "exe32-le"), (Class::Elf32, true, "exe32-be"), (Class::Elf64, true, "exe64-be")] {
        c.put("elf_dynamic", name, ElfSpec { class, big_endian, ..exe.clone() }.bytes());
    }
}

fn main() {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    let mut c = Corpus { root, counts: BTreeMap::new() };
    apk_seeds(&mut c);
    tar_seeds(&mut c);
    deb_seeds(&mut c);
    kernel_seeds(&mut c);
    recipe_seeds(&mut c);
    launcher_seeds(&mut c);
    elf_seeds(&mut c);
    check_seeds(&c);
    for (target, n) in &c.counts {
        println!("{target}: {n} seeds");
    }
}

/// The generated seeds are valid: each parses with its target's main
/// function (a seed that does not is a broken generator, not a find).
fn check_seeds(c: &Corpus) {
    let read = |target: &str, name: &str| std::fs::read(c.root.join(target).join(format!("seed-{name}"))).unwrap();
    let pkg = read("apk_package", "pax-RSA");
    let check = dinv_apk::ApkCheck { name: APK_NAME, version: APK_VERSION, checksum: None, keys: Some(dinv_fuzz::apk_keyring()) };
    dinv_apk::package::verify(&pkg, &check).expect("apk seed verifies");
    dinv_apk::index::read_index(&read("apk_segments", "index-gnu-RSA256"), dinv_fuzz::apk_keyring()).expect("index seed verifies");
    let v = dinv_deb::verify_clearsigned(&read("deb_inrelease", "subkey"), dinv_fuzz::deb_keyring(), "seed").expect("InRelease seed verifies");
    dinv_deb::Release::parse(&v.text).expect("Release seed parses");
    let det = read("deb_detached", "binary-primary");
    dinv_deb::verify_detached(RELEASE.as_bytes(), &det, dinv_fuzz::deb_keyring(), "seed").expect("detached seed verifies");
    let deb = read("deb_archive", "xz-zst-gnu");
    dinv_deb::open_deb(&deb[..], "seed").expect("deb seed opens");
    dinv_deb::parse_packages(PACKAGES, "seed").expect("Packages seed parses");
    let m = dinv_kernel::ModInfo::from_elf(&read("kernel_module", "elf32-be-full")).expect("module seed parses");
    assert_eq!(m.name.as_deref(), Some("fuzz"));
    for name in ["built-none", "full-timeouts"] {
        let data = read("launcher_settings", name);
        let (json, env) = dinv_fuzz::split_at_byte(&data, 0);
        let cfg = dinv_launcher::config::parse(Path::new(name), json).expect("launcher.json seed parses");
        let env = String::from_utf8_lossy(env);
        let vars: BTreeMap<&str, &str> = env.lines().filter_map(|l| l.split_once('=')).collect();
        let env = |k: &str| vars.get(k).map(|v| v.to_string());
        dinv_launcher::settings::Settings::from_lookup(&cfg.lookup(&env)).expect("launcher settings seed is valid");
    }
    let elf = dinv_elf::parse(&read("elf_dynamic", "exe32-be")).expect("ELF seed parses");
    assert_eq!(elf.needed, ["libglib-2.0.so.0", "libc.so.6"]);
}
