//! The Alpine path end to end through the CLI: a repository generated at
//! test time (real formats: signed APKINDEX.tar.gz, signed .apk files) is
//! resolved, fetched, verified and unpacked.

use std::fs;
use std::path::PathBuf;
use std::process::Output;

use dinv_test_support as support;
use support::cli::{text, Cli};
use support::ext4::{ext4_read, ext4_stat};

use dinv_apk::testkit::{build_apk, build_index, write_repository, ApkOptions, IndexOptions, PackageSpec, TestKey};

struct Fixture {
    dir: tempfile::TempDir,
    key: TestKey,
}

fn specs() -> Vec<PackageSpec> {
    vec![
        PackageSpec::new("musl", "1.2.5-r0").provide("so:libc.musl-x86_64.so.1=1").file("lib/ld-musl-x86_64.so.1", b"musl".to_vec(), 0o755),
        PackageSpec::new("busybox", "1.36.1-r2")
            .depend("so:libc.musl-x86_64.so.1")
            .provide("cmd:sh")
            .file("bin/busybox", b"#!busybox".to_vec(), 0o755)
            .file("etc/busybox-paths.d/busybox", b"bin/sh\nbin/ls\n".to_vec(), 0o644),
        PackageSpec::new("libseccomp", "2.5.5-r0").provide("so:libseccomp.so.2=2.5.5").file("usr/lib/libseccomp.so.2", b"seccomp".to_vec(), 0o755),
        PackageSpec::new("containerd", "1.7.13-r0").depend("so:libseccomp.so.2").file("usr/bin/containerd", b"containerd".to_vec(), 0o755),
        PackageSpec::new("docker-engine", "25.0.3-r0")
            .depend("containerd")
            .depend("busybox")
            .file("usr/bin/dockerd", b"dockerd".to_vec(), 0o755),
        PackageSpec::new("docker", "25.0.3-r0").depend("docker-engine").dir("etc/docker", 0o755),
        PackageSpec::new("openrc", "0.52-r0").file("sbin/openrc", b"openrc".to_vec(), 0o755),
        PackageSpec::new("docker-openrc", "25.0.3-r0")
            .install_if("docker=25.0.3-r0")
            .install_if("openrc")
            .file("etc/init.d/docker", b"#!/sbin/openrc-run\n".to_vec(), 0o755),
    ]
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let key = TestKey::generate("test-signer@dinv.invalid-5e1f0001.rsa.pub", 1024, 7);
        let f = Fixture { dir, key };
        write_repository(&f.repo_root(), "main", "x86_64", &specs(), &f.key).unwrap();
        fs::create_dir_all(f.keys_dir()).unwrap();
        fs::write(f.keys_dir().join(&f.key.name), f.key.public_pem()).unwrap();
        f
    }

    fn repo_root(&self) -> PathBuf {
        self.dir.path().join("mirror")
    }

    fn keys_dir(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    fn recipe(&self, packages: &[&str]) -> PathBuf {
        let pk: Vec<String> = packages.iter().map(|p| format!("{p:?}")).collect();
        let text = format!(
            r#"[image]
name = "apk-test"

[sources.alpine]
type = "apk"
repositories = [{{ url = "file://{root}/main" }}]
keys = ["keys"]

[guest]
source = "alpine"
packages = [{pk}]

[[groups]]
name = "docker"
gid = 101
"#,
            root = self.repo_root().display(),
            pk = pk.join(", ")
        );
        let p = self.dir.path().join("recipe.toml");
        fs::write(&p, text).unwrap();
        p
    }

    fn run(&self, args: &[&str]) -> Output {
        Cli::new(env!("CARGO_BIN_EXE_dinv-build"), self.dir.path()).run(args)
    }
}


#[test]
fn resolve_prints_the_set_with_reasons() {
    let f = Fixture::new();
    let recipe = f.recipe(&["docker", "openrc"]);
    let out = f.run(&["resolve", recipe.to_str().unwrap()]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for line in [
        "docker-engine",
        "docker depends on docker-engine",
        "containerd depends on so:libseccomp.so.2",
        "requested (guest.packages)",
        "install_if",
    ] {
        assert!(t.contains(line), "missing {line:?} in:\n{t}");
    }
    // JSON output is machine-readable and lists all eight packages.
    let out = f.run(&["resolve", "--json", recipe.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v["sets"][0]["packages"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 8, "{names:?}");
    // Dependencies come before their dependents.
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(pos("musl") < pos("busybox") && pos("libseccomp") < pos("containerd") && pos("containerd") < pos("docker-engine"));
}

#[test]
fn unsatisfiable_recipe_exits_3_with_the_chain() {
    let f = Fixture::new();
    // Remove libseccomp from the repository: containerd cannot be satisfied.
    let specs: Vec<PackageSpec> = specs().into_iter().filter(|s| s.name != "libseccomp").collect();
    write_repository(&f.repo_root(), "main", "x86_64", &specs, &f.key).unwrap();
    let recipe = f.recipe(&["docker"]);
    let out = f.run(&["resolve", recipe.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("docker → docker-engine → containerd → so:libseccomp.so.2"), "{t}");
    assert!(t.contains("no provider"), "{t}");
}

fn rewrite_index(f: &Fixture, opts: &IndexOptions) {
    let dir = f.repo_root().join("main/x86_64");
    let entries: Vec<_> = specs().iter().map(|s| build_apk(s, &ApkOptions::signed(&f.key)).index_entry()).collect();
    fs::write(dir.join("APKINDEX.tar.gz"), build_index(&entries, opts)).unwrap();
}

#[test]
fn untrusted_indexes_are_refused_with_the_check_named() {
    let f = Fixture::new();
    let recipe = f.recipe(&["busybox"]);
    let index = f.repo_root().join("main/x86_64/APKINDEX.tar.gz");

    // Unsigned.
    rewrite_index(&f, &IndexOptions { key: None, ..IndexOptions::signed(&f.key) });
    let out = f.run(&["resolve", recipe.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("APKINDEX.tar.gz"), "{}", text(&out));

    // Signed by a key the recipe does not trust.
    let stranger = TestKey::generate("stranger@dinv.invalid-00000bad.rsa.pub", 1024, 99);
    rewrite_index(&f, &IndexOptions::signed(&stranger));
    let out = f.run(&["resolve", recipe.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("stranger@dinv.invalid-00000bad.rsa.pub"), "{}", text(&out));

    // Tampered after signing.
    rewrite_index(&f, &IndexOptions { tamper: true, ..IndexOptions::signed(&f.key) });
    let out = f.run(&["resolve", recipe.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(index.exists());
}

#[test]
fn build_unpacks_verified_packages_and_refuses_a_tampered_one() {
    let f = Fixture::new();
    let recipe = f.recipe(&["docker", "openrc"]);
    let out = f.run(&["build", recipe.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let outdir = f.dir.path().join("out/apk-test");
    let report: serde_json::Value = serde_json::from_slice(&fs::read(outdir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["packages"]["guest"], 8);
    let img = outdir.join("rootfs.ext4");
    assert_eq!(ext4_read(&img, "/usr/bin/dockerd").unwrap(), b"dockerd");
    assert_eq!(ext4_read(&img, "/etc/init.d/docker").unwrap(), b"#!/sbin/openrc-run\n");
    let dockerd = ext4_stat(&img, "/usr/bin/dockerd");
    assert!(dockerd.contains("Type: regular") && dockerd.contains("Mode:  0755"), "{dockerd}");
    // Script effects produced declaratively: busybox applets and the docker group.
    let sh = ext4_stat(&img, "/bin/sh");
    assert!(sh.contains("Type: symlink") && sh.contains("Fast link dest: \"/bin/busybox\""), "{sh}");
    assert_eq!(ext4_read(&img, "/etc/group").unwrap(), b"docker:x:101:\n");

    // Replace one package in the repository by a copy with a flipped data
    // byte: the index (signed, with the original checksum) no longer
    // matches, and the build must refuse it, naming the package.
    let cache = f.dir.path().join("cache");
    fs::remove_dir_all(&cache).unwrap();
    let apk = f.repo_root().join("main/x86_64/containerd-1.7.13-r0.apk");
    let mut bytes = fs::read(&apk).unwrap();
    let last = bytes.len() - 40;
    bytes[last] ^= 0xff;
    fs::write(&apk, bytes).unwrap();
    let before = fs::read(outdir.join("rootfs.ext4")).unwrap();
    let out = f.run(&["build", recipe.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("containerd-1.7.13-r0"), "{}", text(&out));
    // The previous output is untouched.
    assert!(fs::read(outdir.join("rootfs.ext4")).unwrap() == before, "rootfs.ext4 changed after a failed build");
}

#[test]
fn recipe_errors_point_at_file_line_and_key() {
    let f = Fixture::new();
    let recipe = f.recipe(&["busybox"]);
    let mut text_ = fs::read_to_string(&recipe).unwrap();
    text_.push_str("\n[docker]\nbip = \"172.17.3.1/24\"\n");
    fs::write(&recipe, &text_).unwrap();
    let out = f.run(&["check", recipe.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let t = text(&out);
    let line = text_.lines().position(|l| l.starts_with("bip")).unwrap() + 1;
    assert!(t.contains(&format!("recipe.toml:{line}: docker.bip")), "{t}");
    assert!(t.contains("overlaps the host's docker network"), "{t}");

    fs::write(&recipe, fs::read_to_string(&recipe).unwrap().replace("bip =", "bipp =")).unwrap();
    let out = f.run(&["check", recipe.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains(&format!("recipe.toml:{line}: docker.bipp")) && t.contains("unknown field"), "{t}");

    // A signature is cut off a plain ELF only.
    let mut text_ = fs::read_to_string(&recipe).unwrap().replace("bipp =", "bip =").replace("172.17.3.1/24", "172.19.0.1/16");
    text_.push_str("\n[kernel]\nmodules = { decompress = false, strip_signatures = true }\n");
    fs::write(&recipe, &text_).unwrap();
    let out = f.run(&["check", recipe.to_str().unwrap()]);
    let t = text(&out);
    let line = text_.lines().position(|l| l.starts_with("modules =")).unwrap() + 1;
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains(&format!("recipe.toml:{line}: kernel.modules.strip_signatures")) && t.contains("needs decompress = true"), "{t}");
}


/// Over HTTP, a warm resolve asks whether the cached APKINDEX is current
/// (If-None-Match with the ETag the server gave) and uses the cached copy
/// on `304`, still verifying its signature; a changed index is fetched
/// again, and a changed one that fails verification is refused.
#[test]
fn a_warm_resolve_revalidates_the_index_and_refetches_a_changed_one() {
    let f = Fixture::new();
    let server = support::http::Server::start(f.repo_root());
    let recipe = f.recipe(&["docker"]);
    let text_of = fs::read_to_string(&recipe).unwrap().replace(&format!("file://{}", f.repo_root().display()), &server.url());
    fs::write(&recipe, text_of).unwrap();
    let resolve = || {
        let out = f.run(&["resolve", "--json", "-v", recipe.to_str().unwrap()]);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, cold, _) = resolve();
    assert_eq!(code, Some(0), "{cold}");
    let (code, warm, log) = resolve();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(server.statuses("APKINDEX.tar.gz"), [200, 304]);
    assert!(log.contains("not modified"), "{log}");
    let names = |json: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        v["sets"][0]["packages"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(names(&warm), names(&cold));

    // A new index with one more package: fetched whole, and used.
    let dir = f.repo_root().join("main/x86_64");
    let mut more = specs();
    more.push(PackageSpec::new("docker-cli-buildx", "0.12.1-r0").file("usr/libexec/docker/cli-plugins/docker-buildx", b"buildx".to_vec(), 0o755));
    let entries: Vec<_> = more.iter().map(|s| build_apk(s, &ApkOptions::signed(&f.key)).index_entry()).collect();
    fs::write(dir.join("APKINDEX.tar.gz"), build_index(&entries, &IndexOptions::signed(&f.key))).unwrap();
    fs::write(&recipe, fs::read_to_string(&recipe).unwrap().replace("packages = [\"docker\"]", "packages = [\"docker\", \"docker-cli-buildx\"]")).unwrap();
    let (code, newer, log) = resolve();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(server.statuses("APKINDEX.tar.gz"), [200, 304, 200]);
    assert!(names(&newer).contains(&"docker-cli-buildx".to_string()), "{newer}");

    // A changed index nobody signed: fetched, fetched once more (a copy
    // damaged on the way would pass the second time), refused, exit 4.
    rewrite_index(&f, &IndexOptions { key: None, ..IndexOptions::signed(&f.key) });
    let (code, _, log) = resolve();
    assert_eq!(code, Some(4), "{log}");
    assert!(log.contains("downloading it once more"), "{log}");
    assert_eq!(server.statuses("APKINDEX.tar.gz"), [200, 304, 200, 200, 200]);
}

/// Every file under the cache's entry directories, with its bytes.
fn cache_entries(cache: &std::path::Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    for bucket in ["blobs", "unpacked", "indexes", "layers", "pieces"] {
        let mut stack = vec![cache.join(bucket)];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap().flatten() {
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else {
                    out.insert(e.path().strip_prefix(cache).unwrap().to_path_buf(), fs::read(e.path()).unwrap());
                }
            }
        }
    }
    out
}

/// `cache prune` removes what no recorded build uses any more (a package
/// the recipe dropped) and keeps exactly what the last build needs: an
/// `--offline` rebuild afterwards succeeds and adds nothing to the cache.
#[test]
fn cache_prune_keeps_what_the_last_build_used() {
    let f = Fixture::new();
    let cache = f.dir.path().join("cache");
    let recipe = f.recipe(&["docker", "openrc"]);
    let out = f.run(&["build", recipe.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let full = cache_entries(&cache);
    // The recipe drops docker and what only it pulled in.
    let recipe = f.recipe(&["busybox"]);
    let out = f.run(&["build", recipe.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(cache_entries(&cache), full, "a rebuild from the cache changes no entry");

    let du: serde_json::Value = serde_json::from_slice(&f.run(&["cache", "du", "--json"]).stdout).unwrap();
    assert_eq!(du["files"].as_u64(), Some(full.len() as u64), "{du}");
    assert_eq!(du["bytes"].as_u64(), Some(full.values().map(|v| v.len() as u64).sum()), "{du}");
    assert_eq!(du["roots"], 1, "one output directory, one record: {du}");

    let dry: serde_json::Value = serde_json::from_slice(&f.run(&["cache", "prune", "--dry-run", "--json"]).stdout).unwrap();
    assert_eq!(cache_entries(&cache), full, "--dry-run removed something");
    let out = f.run(&["cache", "prune", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let pruned: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pruned["removed_files"], dry["removed_files"], "{pruned} vs {dry}");
    let kept = cache_entries(&cache);
    // Six packages went (docker, docker-engine, containerd, libseccomp,
    // docker-openrc, openrc): each one's .apk and its unpacked archive.
    let gone: Vec<_> = full.keys().filter(|k| !kept.contains_key(*k)).collect();
    assert_eq!(pruned["removed_files"].as_u64(), Some(gone.len() as u64), "{pruned}");
    assert_eq!(gone.iter().filter(|p| p.starts_with("blobs")).count(), 6, "{gone:?}");
    assert_eq!(gone.iter().filter(|p| p.starts_with("unpacked")).count(), 6, "{gone:?}");

    // An offline rebuild takes everything from what was kept: anything it
    // needed that the prune removed would have been made again.
    let out = f.run(&["build", "--offline", recipe.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(cache_entries(&cache), kept, "the offline rebuild needed something the prune removed");

    // A build holding the cache: prune waits for it, or with --no-wait
    // says so (exit 1, the cache named).
    let mut paused = Cli::new(env!("CARGO_BIN_EXE_dinv-build"), f.dir.path())
        .env("DINV_TEST_PAUSE_AT", "publish")
        .command(&["build", "--offline", recipe.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(paused.stderr.take().unwrap());
    let mut line = String::new();
    while std::io::BufRead::read_line(&mut err, &mut line).unwrap() > 0 && !line.contains("paused at stage publish") {
        line.clear();
    }
    let busy = f.run(&["cache", "prune", "--no-wait"]);
    assert_eq!(busy.status.code(), Some(1), "{}", text(&busy));
    assert!(text(&busy).contains("a build is using the cache") && text(&busy).contains(&cache.display().to_string()), "{}", text(&busy));
    paused.kill().unwrap();
    paused.wait().unwrap();

    // Forgetting every record empties the cache.
    let all: serde_json::Value = serde_json::from_slice(&f.run(&["cache", "prune", "--older-than", "0", "--json"]).stdout).unwrap();
    assert_eq!((all["roots_removed"].as_u64(), all["kept_files"].as_u64()), (Some(1), Some(0)), "{all}");
    assert!(cache_entries(&cache).is_empty());
    let bad = f.run(&["cache", "prune", "--older-than", "-1"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
}
