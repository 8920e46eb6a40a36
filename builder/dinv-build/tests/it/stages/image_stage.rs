//! The image stage end to end on synthetic inputs: both formats written and
//! consistent, the config and layers hold what the launcher needs, builds
//! are bit-for-bit repeatable, and skopeo and a real dockerd accept the
//! result (docker also runs the embedded launcher against its launcher.json).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use dinv_build::recipe::{load, LoadedRecipe};
use dinv_build::{build_image, ImageInputs, ImageOutputs};
use dinv_fstree::tar::{EntryType, TarEntry, TarReader};
use dinv_fstree::{Meta, Tree, TreePath};
use dinv_contract::launcher::LauncherConfig;
use dinv_contract::settings::{self as table, check_relations, setting, Value as Setting, SETTINGS};
use serde_json::{json, Value};

const EPOCH: i64 = 1_700_000_000;

const RECIPE: &str = r#"
[image]
name = "dinv-image-stage-test"
tag = "1.2.3"
cmd = ["docker", "version"]
source_url = "https://example.invalid/dinv"
labels = { "com.example.team" = "infra" }

[sources.local]
type = "apk"
repositories = [{ url = "file:///nonexistent", allow_untrusted = true }]

[guest]
source = "local"
packages = ["alpine-base"]

[runtime]
source = "local"
packages = ["qemu-system-x86_64"]

[kernel]
cmdline = "loglevel=3"

[docker]
shutdown_timeout = 7

[vm]
cpus = 2
memory = "1G"
docker_disk_size = "32G"
machine = "q35"
stop_timeout = 15
"#;

/// Synthetic inputs in their own directory.
struct Fixture {
    _dir: tempfile::TempDir,
    recipe: LoadedRecipe,
    runtime: Tree,
    vmlinuz: PathBuf,
    initramfs: PathBuf,
    rootfs: PathBuf,
}

/// Compressible noise: random bytes from a small alphabet.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e3779b97f4a7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b"dinv-layer "[(x % 11) as usize]
        })
        .collect()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8).collect()
}

fn fixture() -> Fixture {
    fixture_with(RECIPE, 4 << 20)
}

/// A fixture from recipe text, with a root filesystem image of `rootfs_len`
/// bytes (its first 300 kB patterned, the rest zeros, except in large
/// images, which hold patterned data throughout so they span many pieces).
fn fixture_with(recipe_text: &str, rootfs_len: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let recipe_path = dir.path().join("recipe.toml");
    std::fs::write(&recipe_path, recipe_text).unwrap();
    let recipe = load(&recipe_path).unwrap();
    let mut runtime = Tree::new();
    let mut file = |p: &str, bytes: &[u8], mode: u32| {
        let mut m = Meta::root(mode);
        m.mtime = 1_234_567; // replaced by the epoch in the layer
        runtime.write_file(&TreePath::new(p), bytes.to_vec(), m).unwrap();
    };
    file("usr/bin/qemu-system-x86_64", b"#!/bin/sh\necho fake qemu\n", 0o755);
    file("usr/bin/docker", b"fake docker cli", 0o755);
    file("usr/lib/libfake.so.1", &pattern(20_000, 1), 0o644);
    file("etc/os-release", b"ID=test\n", 0o644);
    runtime.symlink(&TreePath::new("bin"), "usr/bin").unwrap();
    // What the configure stage does to every runtime tree.
    dinv_build::configure::runtime::container_basics(&mut runtime).unwrap();
    let vmlinuz = dir.path().join("vmlinuz");
    std::fs::write(&vmlinuz, pattern(70_000, 2)).unwrap();
    let initramfs = dir.path().join("initramfs");
    std::fs::write(&initramfs, pattern(30_000, 3)).unwrap();
    let rootfs = dir.path().join("rootfs.ext4");
    let mut fs = if rootfs_len > 4 << 20 { noise(rootfs_len, 4) } else { pattern(300_000, 4) };
    fs.resize(rootfs_len, 0); // mostly empty, like a real filesystem image
    std::fs::write(&rootfs, fs).unwrap();
    Fixture { _dir: dir, recipe, runtime, vmlinuz, initramfs, rootfs }
}

impl Fixture {
    fn inputs(&self) -> ImageInputs<'_> {
        ImageInputs {
            recipe: &self.recipe,
            runtime: &self.runtime,
            vmlinuz: &self.vmlinuz,
            pvh: false,
            initramfs: Some(&self.initramfs),
            rootfs: &self.rootfs,
            epoch: EPOCH,
            revision: Some("0123abcd".into()),
            cache: None,
            progress: None,
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    dinv_image::sha256_digest(bytes)
}

fn blob(oci: &Path, digest: &str) -> Vec<u8> {
    let bytes = std::fs::read(oci.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))).unwrap();
    assert_eq!(sha256(&bytes), digest, "blob content matches its name");
    bytes
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// Every member of a gzip tar layer with its data.
fn layer_members(gz: &[u8]) -> BTreeMap<String, (TarEntry, Vec<u8>)> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(gz).read_to_end(&mut tar).unwrap();
    let mut r = TarReader::new(&tar[..]);
    let mut out = BTreeMap::new();
    while let Some(e) = r.next_entry().unwrap() {
        let data = r.read_data(&e).unwrap();
        out.insert(e.path.clone(), (e, data));
    }
    out
}

struct Built {
    out: ImageOutputs,
    manifest: Value,
    config: Value,
    layers: Vec<BTreeMap<String, (TarEntry, Vec<u8>)>>,
}

fn build(fx: &Fixture, out_dir: &Path) -> Built {
    let out = build_image(&fx.inputs(), out_dir).unwrap();
    let oci = &out.oci_layout;
    let index = json(&std::fs::read(oci.join("index.json")).unwrap());
    assert_eq!(index["manifests"][0]["digest"], out.digests.manifest);
    assert_eq!(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], "1.2.3");
    let manifest = json(&blob(oci, &out.digests.manifest));
    assert_eq!(manifest["config"]["digest"], out.digests.config);
    let config = json(&blob(oci, &out.digests.config));
    let mut layers = Vec::new();
    for (i, l) in out.layers.iter().enumerate() {
        assert_eq!(manifest["layers"][i]["digest"], l.digest);
        assert_eq!(manifest["layers"][i]["size"], l.size);
        assert_eq!(config["rootfs"]["diff_ids"][i], l.diff_id);
        let gz = blob(oci, &l.digest);
        assert_eq!(gz.len() as u64, l.size);
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut tar).unwrap();
        assert_eq!(tar.len() as u64, l.uncompressed_size);
        assert_eq!(sha256(&tar), l.diff_id);
        layers.push(layer_members(&gz));
    }
    Built { out, manifest, config, layers }
}

#[test]
fn writes_both_formats_with_matching_digests_and_sizes() {
    let fx = fixture();
    let d = tempfile::tempdir().unwrap();
    let b = build(&fx, d.path());
    assert_eq!(b.out.reference, "dinv-image-stage-test:1.2.3");
    assert_eq!(b.out.docker_archive, d.path().join("image.tar"));
    assert_eq!(b.manifest["layers"].as_array().unwrap().len(), 2);
    assert_eq!(b.out.layers.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["runtime", "dinv"]);
    // Only the two outputs are left behind (the layer staging dir is gone).
    let mut names: Vec<String> = std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["image.tar", "oci"]);

    // image.tar: docker's manifest.json plus the same OCI layout.
    let archive = std::fs::read(&b.out.docker_archive).unwrap();
    let mut r = TarReader::new(&archive[..]);
    let mut members = BTreeMap::new();
    while let Some(e) = r.next_entry().unwrap() {
        let data = r.read_data(&e).unwrap();
        members.insert(e.path.clone(), data);
    }
    let dm = json(&members["manifest.json"]);
    assert_eq!(dm[0]["RepoTags"], json!(["dinv-image-stage-test:1.2.3"]));
    assert_eq!(dm[0]["Config"], format!("blobs/sha256/{}", b.out.digests.config.trim_start_matches("sha256:")));
    assert_eq!(json(&members["index.json"])["manifests"][0]["digest"], b.out.digests.manifest);
    for (name, data) in &members {
        if let Some(hex) = name.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            assert_eq!(sha256(data), format!("sha256:{hex}"), "{name}");
        }
    }

    for l in &b.out.layers {
        println!("layer {:8} compressed {:>10} bytes, uncompressed {:>10} bytes  {}", l.name, l.size, l.uncompressed_size, l.digest);
    }
}

#[test]
fn config_has_every_field() {
    let fx = fixture();
    let d = tempfile::tempdir().unwrap();
    let b = build(&fx, d.path());
    let c = &b.config["config"];
    assert_eq!(b.config["created"], "2023-11-14T22:13:20Z");
    assert_eq!((&b.config["architecture"], &b.config["os"]), (&json!("amd64"), &json!("linux")));
    assert_eq!(c["Entrypoint"], json!(["/usr/bin/dinv-launcher"]));
    assert_eq!(c["Cmd"], json!(["docker", "version"]));
    let env: Vec<&str> = c["Env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(
        env,
        [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "DOCKER_HOST=tcp://127.0.0.1:2375",
            "DINV_CPUS=2",
            "DINV_MEMORY=1G",
            "DINV_TCP_PORTS=",
            "DINV_UDP_PORTS=",
            "DINV_MOUNTS=",
            "DINV_DOCKER_SIZE=32G",
            "DINV_VOLUME_PATH=",
            "DINV_VOLUME_SIZE=64G",
            "DINV_VOLUME_UID=0",
            "DINV_VOLUME_GID=0",
            "DINV_DOCKER_SOCK_UID=0",
            "DINV_DOCKER_SOCK_GID=0",
            "DINV_SHUTDOWN_TIMEOUT=7",
            "DINV_MACHINE=q35",
        ]
    );
    // The launcher accepts the image's environment as it is.
    let vars: BTreeMap<String, String> = env.iter().filter_map(|e| e.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect();
    let get = |k: &str| vars.get(k).cloned();
    let s = read_all(&get);
    assert_eq!(
        (&s[table::CPUS], &s[table::MEMORY], &s[table::DOCKER_SIZE], &s[table::MACHINE], &s[table::SHUTDOWN_TIMEOUT]),
        (&Setting::Count(2), &Setting::Bytes(1 << 30), &Setting::Bytes(32 << 30), &Setting::Choice("q35"), &Setting::Seconds(std::time::Duration::from_secs(7)))
    );
    for var in [table::TCP_PORTS, table::UDP_PORTS, table::MOUNTS, table::VOLUME_PATH] {
        assert_eq!(s[var], Setting::Unset, "{var}");
    }

    assert_eq!(c["ExposedPorts"], json!({"2375/tcp": {}}));
    assert_eq!(c["Volumes"], json!({"/docker": {}, "/volume": {}}));
    assert_eq!(c["StopSignal"], "SIGTERM");
    let h = &c["Healthcheck"];
    assert_eq!(h["Test"], json!(["CMD", "/usr/bin/dinv-launcher", "health"]));
    assert_eq!((h["Interval"].as_u64(), h["Timeout"].as_u64(), h["Retries"].as_u64()), (Some(10_000_000_000), Some(5_000_000_000), Some(3)));
    assert!(h["StartPeriod"].as_u64().unwrap() >= 60_000_000_000, "boot needs a start period");
    assert_eq!(
        c["Labels"],
        json!({
            "com.example.team": "infra",
            "org.opencontainers.image.created": "2023-11-14T22:13:20Z",
            "org.opencontainers.image.revision": "0123abcd",
            "org.opencontainers.image.source": "https://example.invalid/dinv",
            "org.opencontainers.image.title": "dinv-image-stage-test",
            "org.opencontainers.image.version": "1.2.3",
        })
    );
}

#[test]
fn layers_hold_the_runtime_and_dinv() {
    let fx = fixture();
    let d = tempfile::tempdir().unwrap();
    let b = build(&fx, d.path());
    for layer in &b.layers {
        for (name, (e, _)) in layer {
            assert_eq!(e.mtime, EPOCH, "{name}");
            assert_eq!((e.uid, e.gid), (0, 0), "{name}");
        }
    }

    let rt = &b.layers[0];
    assert_eq!(rt["usr/bin/qemu-system-x86_64"].1, b"#!/bin/sh\necho fake qemu\n");
    assert_eq!(rt["usr/lib/libfake.so.1"].1, pattern(20_000, 1));
    assert_eq!((rt["bin"].0.entry_type, rt["bin"].0.link.as_str()), (EntryType::Symlink, "usr/bin"));
    for (dir, mode) in [("tmp/", 0o1777), ("var/tmp/", 0o1777), ("run/", 0o755), ("root/", 0o700)] {
        assert_eq!((rt[dir].0.entry_type, rt[dir].0.mode), (EntryType::Dir, mode), "{dir}");
    }
    assert!(String::from_utf8_lossy(&rt["etc/passwd"].1).starts_with("root:x:0:0:"));
    assert!(String::from_utf8_lossy(&rt["etc/group"].1).starts_with("root:x:0:"));
    assert!(!rt.keys().any(|k| k.starts_with("usr/share/dinv") || k.contains("launcher")));

    let dinv = &b.layers[1];
    let launcher = &dinv["usr/bin/dinv-launcher"];
    assert_eq!(launcher.0.mode, 0o755);
    assert_eq!(&launcher.1[..4], b"\x7fELF");
    assert_eq!(launcher.1, dinv_build::launcher_binary());
    assert_eq!(dinv["usr/share/dinv/vmlinuz"].1, std::fs::read(&fx.vmlinuz).unwrap());
    assert_eq!(dinv["usr/share/dinv/initramfs"].1, std::fs::read(&fx.initramfs).unwrap());
    assert_eq!(dinv["usr/share/dinv/rootfs.ext4"].1, std::fs::read(&fx.rootfs).unwrap());
    for dir in ["docker/", "volume/", "run/dinv/", "etc/dinv/"] {
        assert_eq!(dinv[dir].0.entry_type, EntryType::Dir, "{dir}");
    }

    // launcher.json as the launcher itself reads it.
    let cfg = LauncherConfig::parse(&dinv["etc/dinv/launcher.json"].1).unwrap();
    assert_eq!(cfg.kernel.as_deref(), Some(Path::new("/usr/share/dinv/vmlinuz")));
    assert_eq!(cfg.initrd.as_deref(), Some(Path::new("/usr/share/dinv/initramfs")));
    assert_eq!(cfg.rootfs.as_deref(), Some(Path::new("/usr/share/dinv/rootfs.ext4")));
    assert_eq!(cfg.qemu.as_deref(), Some(Path::new("/usr/bin/qemu-system-x86_64")));
    assert_eq!(cfg.append.as_deref(), Some("console=ttyS0 root=SERIAL=dinv-root rw quiet loglevel=3"));
    let none = |_: &str| None;
    let s = read_all(&cfg.lookup(&none));
    assert_eq!((&s[table::CPUS], &s[table::MEMORY], &s[table::MACHINE]), (&Setting::Count(2), &Setting::Bytes(1 << 30), &Setting::Choice("q35")));
    let secs = |v: &Setting| v.seconds().unwrap().as_secs();
    assert_eq!((secs(&s[table::SHUTDOWN_TIMEOUT]), secs(&s[table::STOP_TIMEOUT])), (7, 15));
}

/// Every setting read as the launcher reads it (the contract's table), and
/// the checks between them; panics on a value the launcher would refuse.
fn read_all(get: &dyn Fn(&str) -> Option<String>) -> BTreeMap<&'static str, Setting> {
    check_relations(get).unwrap();
    SETTINGS.iter().map(|st| (st.var, setting(st.var).read(get).unwrap_or_else(|e| panic!("{e}")))).collect()
}

#[test]
fn without_initramfs_or_qemu_the_config_leaves_them_out() {
    let mut fx = fixture();
    fx.runtime.remove(&TreePath::new("usr/bin/qemu-system-x86_64"));
    let mut inputs = fx.inputs();
    inputs.initramfs = None;
    inputs.revision = None;
    let d = tempfile::tempdir().unwrap();
    let out = build_image(&inputs, d.path()).unwrap();
    let oci = &out.oci_layout;
    let config = json(&blob(oci, &out.digests.config));
    assert!(config["config"]["Labels"].get("org.opencontainers.image.revision").is_none());
    let dinv = layer_members(&blob(oci, &out.layers[1].digest));
    assert!(!dinv.contains_key("usr/share/dinv/initramfs"));
    let cfg = json(&dinv["etc/dinv/launcher.json"].1);
    assert!(cfg.get("initrd").is_none() && cfg.get("qemu").is_none(), "{cfg}");
}

#[test]
fn missing_kernel_file_is_named_in_the_error() {
    let fx = fixture();
    let missing = fx.vmlinuz.with_file_name("no-such-vmlinuz");
    let mut inputs = fx.inputs();
    inputs.vmlinuz = &missing;
    let d = tempfile::tempdir().unwrap();
    let err = build_image(&inputs, d.path()).unwrap_err().to_string();
    assert!(err.contains("no-such-vmlinuz"), "{err}");
}

#[test]
fn two_builds_are_identical() {
    // Separate fixtures too: where the inputs live must not matter.
    let (fa, fb) = (fixture(), fixture());
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = build_image(&fa.inputs(), da.path()).unwrap();
    let b = build_image(&fb.inputs(), db.path()).unwrap();
    assert_eq!(a.digests, b.digests);
    assert_eq!(a.layers, b.layers);
    assert!(std::fs::read(&a.docker_archive).unwrap() == std::fs::read(&b.docker_archive).unwrap(), "image.tar differs");
    // A changed input changes the image.
    let mut inputs = fb.inputs();
    inputs.epoch += 1;
    let dc = tempfile::tempdir().unwrap();
    assert_ne!(build_image(&inputs, dc.path()).unwrap().digests.manifest, a.digests.manifest);
}

fn tool(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e} (install it: apt-get install -y docker.io skopeo)"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn skopeo_accepts_the_oci_layout() {
    let fx = fixture();
    let d = tempfile::tempdir().unwrap();
    let out = build_image(&fx.inputs(), d.path()).unwrap();
    let v = json(&tool(Command::new("skopeo").arg("inspect").arg(format!("oci:{}:1.2.3", out.oci_layout.display()))).stdout);
    assert_eq!(v["Digest"], out.digests.manifest);
    assert_eq!(v["Layers"], json!(out.layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>()));
    assert_eq!(v["Labels"]["org.opencontainers.image.version"], "1.2.3");
    let v = json(&tool(Command::new("skopeo").args(["inspect", "--config"]).arg(format!("docker-archive:{}", out.docker_archive.display()))).stdout);
    assert_eq!(v["config"]["Entrypoint"], json!(["/usr/bin/dinv-launcher"]));
}

fn docker_available() -> bool {
    let ok = Command::new("docker").arg("info").output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        if std::env::var("DINV_REQUIRE_DOCKER").as_deref() == Ok("1") {
            panic!("DINV_REQUIRE_DOCKER=1 but `docker info` fails: start dockerd");
        }
        eprintln!("NOTICE: skipping the docker load test: `docker info` fails (set DINV_REQUIRE_DOCKER=1 to make this an error)");
    }
    ok
}

/// Removes the loaded image even when an assertion fails.
struct RemoveImage(String);

impl Drop for RemoveImage {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["image", "rm", "-f", &self.0]).output();
    }
}

#[test]
fn docker_loads_inspects_and_runs_the_launcher() {
    if !docker_available() {
        return;
    }
    let fx = fixture();
    let d = tempfile::tempdir().unwrap();
    let out = build_image(&fx.inputs(), d.path()).unwrap();
    let reference = out.reference.clone();
    let _ = Command::new("docker").args(["image", "rm", "-f", &reference]).output();
    let loaded = tool(Command::new("docker").arg("load").arg("-i").arg(&out.docker_archive));
    let _cleanup = RemoveImage(reference.clone());
    assert!(String::from_utf8_lossy(&loaded.stdout).contains(&reference), "docker load said: {}", String::from_utf8_lossy(&loaded.stdout));

    let v = &json(&tool(Command::new("docker").args(["image", "inspect", &reference])).stdout)[0];
    assert_eq!(v["Id"], out.digests.config, "docker's image ID is the config digest");
    let c = &v["Config"];
    assert_eq!(c["Entrypoint"], json!(["/usr/bin/dinv-launcher"]));
    assert_eq!(c["Cmd"], json!(["docker", "version"]));
    let env = c["Env"].as_array().unwrap();
    for e in ["DOCKER_HOST=tcp://127.0.0.1:2375", "DINV_CPUS=2", "DINV_MEMORY=1G", "DINV_MACHINE=q35", "DINV_TCP_PORTS="] {
        assert!(env.iter().any(|v| v == e), "{e} missing from {env:?}");
    }
    assert_eq!(c["ExposedPorts"], json!({"2375/tcp": {}}));
    assert_eq!(c["Volumes"], json!({"/docker": {}, "/volume": {}}));
    assert_eq!(c["StopSignal"], "SIGTERM");
    assert_eq!(c["Labels"]["org.opencontainers.image.title"], "dinv-image-stage-test");
    assert_eq!(c["Labels"]["com.example.team"], "infra");
    assert_eq!(c["Healthcheck"]["Test"], json!(["CMD", "/usr/bin/dinv-launcher", "health"]));
    assert_eq!(v["Created"], "2023-11-14T22:13:20Z");

    // The static launcher runs in the image and reads its launcher.json
    // and the image's environment.
    let run = tool(Command::new("docker").args(["run", "--rm", "--network", "none", &reference, "print-qemu-args"]));
    let args = String::from_utf8_lossy(&run.stdout);
    for want in [
        "/usr/bin/qemu-system-x86_64",
        "-kernel /usr/share/dinv/vmlinuz",
        "-initrd /usr/share/dinv/initramfs",
        "/usr/share/dinv/rootfs.ext4",
        "loglevel=3",
        "-smp 2 -m 1024M",
        "q35",
    ] {
        assert!(args.contains(want), "{want:?} not in the launcher's QEMU command: {args}");
    }
}

/// The docker daemon's major version (0 when unknown).
fn docker_server_major() -> u32 {
    let out = Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]).output();
    out.ok().and_then(|o| String::from_utf8_lossy(&o.stdout).trim().split('.').next().and_then(|m| m.parse().ok())).unwrap_or(0)
}

/// Layers of many pieces, gzip (one member of sync-flushed pieces) and zstd
/// (one frame per piece): an independent decoder (`gzip`, `zstd`) gives
/// back the tar our diff_id names; docker decompresses them on load,
/// computes the same diff_ids, and the image runs. Docker reads zstd layers
/// from 23 on; with an older daemon only the zstd tool checks them.
#[test]
fn docker_loads_multi_piece_gzip_and_zstd_layers() {
    if !docker_available() {
        return;
    }
    for compression in ["gzip", "zstd"] {
        // A tag of its own: the other docker test loads and removes 1.2.3 at the same time.
        let recipe = RECIPE.replace("source_url =", &format!("compression = \"{compression}\"\nsource_url =")).replace("tag = \"1.2.3\"", &format!("tag = \"multi-piece-{compression}\""));
        let fx = fixture_with(&recipe, 14 << 20);
        let d = tempfile::tempdir().unwrap();
        let out = build_image(&fx.inputs(), d.path()).unwrap();
        let dinv = &out.layers[1];
        assert!(dinv.uncompressed_size > 3 * dinv_image::MAX_PIECE as u64, "the dinv layer spans several pieces");
        assert!(dinv.media_type.ends_with(compression), "{}", dinv.media_type);
        for l in &out.layers {
            let blob = out.oci_layout.join("blobs/sha256").join(l.digest.trim_start_matches("sha256:"));
            let tool_name = if compression == "gzip" { "gzip" } else { "zstd" };
            let plain = tool(Command::new(tool_name).arg("-dc").arg(&blob)).stdout;
            assert_eq!(sha256(&plain), l.diff_id, "{tool_name} -dc of the {} layer", l.name);
        }
        if compression == "zstd" && docker_server_major() < 23 {
            eprintln!("NOTICE: docker {} reads no zstd layers: the zstd image is checked with the zstd tool only", docker_server_major());
            continue;
        }
        let reference = out.reference.clone();
        let _ = Command::new("docker").args(["image", "rm", "-f", &reference]).output();
        tool(Command::new("docker").arg("load").arg("-i").arg(&out.docker_archive));
        let _cleanup = RemoveImage(reference.clone());
        let v = &json(&tool(Command::new("docker").args(["image", "inspect", &reference])).stdout)[0];
        let ours: Vec<&str> = out.layers.iter().map(|l| l.diff_id.as_str()).collect();
        assert_eq!(v["RootFS"]["Layers"], json!(ours), "{compression}: docker's diff_ids are ours");
        let run = tool(Command::new("docker").args(["run", "--rm", "--network", "none", &reference, "print-qemu-args"]));
        assert!(String::from_utf8_lossy(&run.stdout).contains("/usr/share/dinv/rootfs.ext4"), "{compression}");
    }
}
