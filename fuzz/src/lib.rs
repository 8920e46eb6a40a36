//! Shared by the fuzz targets and the seed generator (`src/bin/seeds.rs`):
//! keys both sides must agree on, and small input-splitting helpers.
//!
//! Keys are generated deterministically (seeded RNG, fixed creation time),
//! so a signature the seed generator makes verifies inside a fuzz target
//! that regenerated the same key in its own process.

use std::io::Read;
use std::sync::OnceLock;

use dinv_fstree::tar::TarReader;
use pgp::composed::{EncryptionCaps, KeyType, SecretKeyParamsBuilder, SignedPublicKey, SignedSecretKey, SubkeyParamsBuilder};
use pgp::ser::Serialize;
use pgp::types::Timestamp;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Name and version of the generated `.apk` seeds (what the package target
/// checks them against).
pub const APK_NAME: &str = "fuzz";
pub const APK_VERSION: &str = "1.0-r0";

/// The kernel release of the fake module tree in the module target.
pub const KERNEL_RELEASE: &str = "6.1.0-fuzz";

/// The apk signing key of the seeds and the keyring the targets trust
/// (the testkit's first shared key: 2048-bit RSA, deterministic).
pub fn apk_key() -> &'static dinv_apk::testkit::TestKey {
    dinv_apk::testkit::shared_key(0)
}

/// A keyring trusting only [`apk_key`].
pub fn apk_keyring() -> &'static dinv_apk::Keyring {
    static K: OnceLock<dinv_apk::Keyring> = OnceLock::new();
    K.get_or_init(|| apk_key().keyring())
}

/// The OpenPGP secret key of the seeds: an Ed25519 primary key that signs
/// and certifies, with one Ed25519 signing subkey.
pub fn pgp_secret_key() -> &'static SignedSecretKey {
    static K: OnceLock<SignedSecretKey> = OnceLock::new();
    K.get_or_init(|| {
        let created = Timestamp::from_secs(1_700_000_000);
        let mut sub = SubkeyParamsBuilder::default();
        sub.key_type(KeyType::Ed25519Legacy)
            .can_sign(true)
            .can_encrypt(EncryptionCaps::None)
            .can_authenticate(false)
            .created_at(created);
        let mut params = SecretKeyParamsBuilder::default();
        params
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .can_encrypt(EncryptionCaps::None)
            .created_at(created)
            .primary_user_id("dinv-build fuzz archive key <fuzz@dinv.invalid>".into())
            .subkeys(vec![sub.build().expect("subkey params")]);
        params
            .build()
            .expect("key params")
            .generate(StdRng::seed_from_u64(0xd1f))
            .expect("OpenPGP key generation")
    })
}

/// The public half of [`pgp_secret_key`], as binary OpenPGP data.
pub fn pgp_public_key_bytes() -> Vec<u8> {
    let public = SignedPublicKey::from(pgp_secret_key().clone());
    let mut out = Vec::new();
    public.to_writer(&mut out).expect("serialising a public key");
    out
}

/// A keyring trusting only [`pgp_secret_key`].
pub fn deb_keyring() -> &'static dinv_deb::Keyring {
    static K: OnceLock<dinv_deb::Keyring> = OnceLock::new();
    K.get_or_init(|| dinv_deb::Keyring::from_bytes(&pgp_public_key_bytes()).expect("own public key"))
}

/// Splits fuzz input at the first `sep` (the second part empty when there
/// is none).
pub fn split_at_byte(data: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == sep) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// Reads every member of a tar stream, with its data, as an unpacker
/// would; returns how many members were read before the end or an error.
pub fn drain_tar<R: Read>(reader: R) -> usize {
    let mut tar = TarReader::new(reader);
    let mut n = 0;
    while let Ok(Some(e)) = tar.next_entry() {
        n += 1;
        // Alternate between reading the data and letting next_entry skip it.
        if n % 2 == 1 && tar.read_data(&e).is_err() {
            break;
        }
    }
    n
}

/// Recomputes the header checksum of every non-zero 512-byte block, so
/// mutated tar headers get past the checksum check and into the parser
/// (data blocks change too, which does no harm). A fuzzer would hardly
/// ever find an octal checksum matching its own mutation.
pub fn fix_tar_checksums(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    for block in out.chunks_exact_mut(512) {
        if block.iter().all(|&b| b == 0) {
            continue;
        }
        block[148..156].copy_from_slice(b"        ");
        let sum: u32 = block.iter().map(|&b| b as u32).sum();
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }
    out
}

/// Separates the parts of a structured input (one tar stream each).
pub const PART_MARKER: &[u8] = b"\n~~PART~~\n";

/// Splits a structured input at [`PART_MARKER`].
pub fn split_parts(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(PART_MARKER.len()).position(|w| w == PART_MARKER) {
        parts.push(&rest[..i]);
        rest = &rest[i + PART_MARKER.len()..];
    }
    parts.push(rest);
    parts
}

/// One gzip member of `data`, fast.
pub fn gzip_fast(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("writing to memory");
    e.finish().expect("writing to memory")
}

/// An `ar` archive of `members` as dpkg-deb writes it.
pub fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        writeln!(out, "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`", name, 0, 0, 0, "100644", data.len()).expect("writing to memory");
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}
