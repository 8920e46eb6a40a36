//! Sizes the lead benchmarks: a 20,000-entry signed index and a large
//! package, generated and read back (timings printed with --nocapture).

use std::time::Instant;

use dinv_apk::index::read_index;
use dinv_apk::package::{verify, ApkCheck};
use dinv_apk::testkit::{build_apk, build_index, shared_key, ApkOptions, IndexOptions, PackageSpec};
use dinv_apk::IndexEntry;

#[test]
fn twenty_thousand_entry_index() {
    let key = shared_key(0);
    let t = Instant::now();
    let template = build_apk(
        &PackageSpec::new("pkg", "1.0-r0").depend("so:libc.musl-x86_64.so.1").depend("busybox>=1.36").provide("cmd:pkg=1.0-r0"),
        &ApkOptions::signed(key),
    )
    .index_entry();
    let entries: Vec<IndexEntry> = (0..20_000)
        .map(|i| {
            let mut e = template.clone();
            e.name = format!("pkg{i}");
            e.version = format!("1.{}.{}-r{}", i % 50, i % 7, i % 3);
            e.description = format!("package number {i} of the benchmark index, with a realistic description length");
            e
        })
        .collect();
    let bytes = build_index(&entries, &IndexOptions::signed(key));
    let built = t.elapsed();
    let t = Instant::now();
    let idx = read_index(&bytes, &key.keyring()).unwrap();
    let parsed = t.elapsed();
    let t = Instant::now();
    let cands = idx.entries.iter().map(|e| e.to_candidate(0, None)).collect::<Result<Vec<_>, _>>().unwrap();
    let converted = t.elapsed();
    eprintln!("20k index: {} bytes, built {built:?}, read+verified {parsed:?}, to candidates {converted:?}", bytes.len());
    assert_eq!(idx.entries, entries);
    assert_eq!(cands.len(), 20_000);
}

#[test]
fn large_package() {
    let key = shared_key(0);
    let mut spec = PackageSpec::new("big", "1.0-r0");
    // Mildly compressible content, 16 files of 2 MiB.
    for i in 0..16u32 {
        let body: Vec<u8> = (0..2u32 << 20).map(|j| (j.wrapping_mul(2654435761).wrapping_add(i) >> 13) as u8 & 0x3f).collect();
        spec = spec.file(&format!("usr/lib/big/f{i}"), body, 0o644);
    }
    let t = Instant::now();
    let built = build_apk(&spec, &ApkOptions { compression: 1, ..ApkOptions::signed(key) });
    let b = t.elapsed();
    let t = Instant::now();
    let check = ApkCheck { name: "big", version: "1.0-r0", checksum: Some(&built.checksum), keys: Some(&key.keyring()) };
    let v = verify(&built.bytes, &check).unwrap();
    let n = std::io::copy(&mut v.data_reader(&built.bytes), &mut std::io::sink()).unwrap();
    eprintln!("32 MiB package: {} bytes compressed, built {b:?}, verified+decompressed {:?}", built.bytes.len(), t.elapsed());
    assert!(n > 32 << 20);
}
