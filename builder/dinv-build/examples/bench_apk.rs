//! Benchmark of the Alpine path (not a test): prints index parse time for
//! 20,000 generated entries, resolve time, and unpack throughput for a
//! ~100 MB generated package set beside `gzip -dc` of the same data members.
//!
//! Run: `cargo run --release -p dinv-build --example bench_apk`

use std::fs;
use std::process::Command;
use std::time::Instant;

use dinv_apk::testkit::{build_index, shared_key, write_repository, IndexOptions, PackageSpec};
use dinv_build::recipe::LoadedRecipe;
use dinv_build::sources::{self, PackageSource};
use dinv_build::{BuildEnv, Context};
use dinv_fstree::Tree;

/// A small deterministic generator (no extra dependencies).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn index_text(n: usize) -> String {
    let mut rng = Lcg(42);
    let mut s = String::with_capacity(n * 400);
    for i in 0..n {
        let mut deps = Vec::new();
        if i > 0 {
            for _ in 0..(rng.next() % 4) {
                deps.push(format!("pkg{}", rng.next() as usize % i));
            }
            if i % 7 == 0 {
                deps.push(format!("so:libp{}.so.1", rng.next() as usize % i));
            }
        }
        let sum: Vec<u8> = (0..20).map(|_| rng.next() as u8).collect();
        s.push_str(&format!(
            "C:Q1{}\nP:pkg{i}\nV:1.{}.{}-r{}\nA:x86_64\nS:{}\nI:{}\nT:generated package {i}\nU:https://example.invalid/\nL:MIT\no:pkg{i}\nm:Bench <b@example.invalid>\nt:1700000000\nc:0123456789abcdef0123456789abcdef01234567\n",
            base64_encode(&sum),
            i % 13,
            i % 7,
            i % 3,
            10_000 + i,
            40_000 + i
        ));
        if !deps.is_empty() {
            s.push_str(&format!("D:{}\n", deps.join(" ")));
        }
        s.push_str(&format!("p:so:libp{i}.so.1=1.0 cmd:pkg{i}\n\n"));
    }
    s
}

fn base64_encode(b: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A recipe whose source `name` is the one repository at `url`.
fn recipe(dir: &std::path::Path, name: &str, url: &str, keys: &std::path::Path) -> LoadedRecipe {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        "[image]\nname = \"bench\"\n[sources.{name}]\ntype = \"apk\"\nrepositories = [{{ url = \"{url}\" }}]\nkeys = [{keys:?}]\n[guest]\nsource = \"{name}\"\npackages = []\n"
    );
    fs::write(&path, text).unwrap();
    dinv_build::recipe::load(&path).unwrap()
}

fn open_source(env: &BuildEnv, l: &LoadedRecipe, name: &str) -> Box<dyn PackageSource> {
    sources::open(env, l, name, false).unwrap()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let key = shared_key(0);
    let keys = dir.path().join("keys");
    fs::create_dir_all(&keys).unwrap();
    fs::write(keys.join(&key.name), key.public_pem()).unwrap();
    let env = Context { quiet: true, cache_dir: Some(dir.path().join("cache")), ..Context::default() }.env(false).unwrap();

    // 1. Index parse: 20,000 entries, signed.
    let n = 20_000;
    let entries = dinv_apk::index::parse_text(&index_text(n)).unwrap();
    let index = build_index(&entries, &IndexOptions::signed(key));
    let repo = dir.path().join("big/x86_64");
    fs::create_dir_all(&repo).unwrap();
    fs::write(repo.join("APKINDEX.tar.gz"), &index).unwrap();
    let mut ring = dinv_apk::Keyring::new();
    ring.load_dir(&keys).unwrap();
    let t = Instant::now();
    let parsed = dinv_apk::index::read_index(&index, &ring).unwrap();
    let parse = t.elapsed();
    assert_eq!(parsed.entries.len(), n);
    println!("index: {n} entries, {} KiB signed APKINDEX.tar.gz", index.len() / 1024);
    println!("  verify + parse:                 {:8.1} ms", parse.as_secs_f64() * 1e3);

    // 2. Resolve through the source (open = fetch + verify + parse + candidates).
    let t = Instant::now();
    let l = recipe(dir.path(), "bench", &format!("file://{}", dir.path().join("big").display()), &keys);
    let set = open_source(&env, &l, "bench");
    let open = t.elapsed();
    let world: Vec<String> = (0..10).map(|i| format!("pkg{}", n - 1 - i * 97)).collect();
    let t = Instant::now();
    let resolved = set.resolve(&world, "requested", "bench").unwrap();
    let resolve = t.elapsed();
    println!("  open source (read, verify, parse, to candidates): {:8.1} ms", open.as_secs_f64() * 1e3);
    println!("  resolve 10 names -> {} packages:  {:8.1} ms", resolved.len(), resolve.as_secs_f64() * 1e3);

    // 3. Unpack: ~100 MB of package data in 50 packages.
    let mut rng = Lcg(7);
    let specs: Vec<PackageSpec> = (0..50)
        .map(|p| {
            let mut s = PackageSpec::new(&format!("data{p}"), "1.0-r0");
            for f in 0..40 {
                // Half-compressible content, like binaries.
                let len = 50_000 + (rng.next() % 2000) as usize;
                let mut bytes = Vec::with_capacity(len);
                while bytes.len() < len {
                    let r = rng.next();
                    if r % 2 == 0 {
                        bytes.extend_from_slice(&r.to_le_bytes());
                    } else {
                        bytes.extend_from_slice(b"\0\0\0\0ELF.text");
                    }
                }
                s = s.file(&format!("usr/lib/data{p}/f{f}"), bytes, 0o644);
            }
            s
        })
        .collect();
    let written = write_repository(&dir.path().join("data"), "main", "x86_64", &specs, key).unwrap();
    let l = recipe(dir.path(), "data", &format!("file://{}", dir.path().join("data/main").display()), &keys);
    let set = open_source(&env, &l, "data");
    let world: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let pkgs = set.resolve(&world, "requested", "bench").unwrap();
    set.fetch(&pkgs, &env).unwrap();
    let mut tree = Tree::new();
    let t = Instant::now();
    let stats = set.unpack(&pkgs, &env, &mut tree).unwrap();
    let cold = t.elapsed();
    let mut tree2 = Tree::new();
    let t = Instant::now();
    set.unpack(&pkgs, &env, &mut tree2).unwrap();
    let warm = t.elapsed();

    // The lower bound: gzip -dc of the same data members.
    let members = dir.path().join("members.gz");
    let mut all = Vec::new();
    for (_, path) in &written.packages {
        let bytes = fs::read(path).unwrap();
        let ranges = dinv_apk::segments::split(&bytes).unwrap();
        all.extend_from_slice(&bytes[ranges[2].start..]);
    }
    fs::write(&members, &all).unwrap();
    let t = Instant::now();
    let st = Command::new("sh").arg("-c").arg(format!("gzip -dc {} > /dev/null", members.display())).status().unwrap();
    let gz = t.elapsed();
    assert!(st.success());
    let mb = stats.bytes as f64 / 1e6;
    println!("unpack: {} packages, {} entries, {:.1} MB uncompressed ({:.1} MB compressed)", stats.packages, stats.entries, mb, all.len() as f64 / 1e6);
    println!("  cold (verify, gunzip, cache, tree): {:7.0} ms  {:7.1} MB/s", cold.as_secs_f64() * 1e3, mb / cold.as_secs_f64());
    println!("  warm (verify, headers from cache):  {:7.0} ms  {:7.1} MB/s", warm.as_secs_f64() * 1e3, mb / warm.as_secs_f64());
    println!("  gzip -dc of the same data members:  {:7.0} ms  {:7.1} MB/s", gz.as_secs_f64() * 1e3, mb / gz.as_secs_f64());
}
