//! Writes a small image both ways and checks the result with our own tar
//! reader, with skopeo and with a real docker daemon.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use dinv_fstree::tar::TarReader;
use dinv_fstree::{Meta, Tree, TreePath};
use dinv_image::*;
use serde_json::Value;

const EPOCH: i64 = 1_700_000_000;

fn tree() -> Tree {
    let mut t = Tree::new();
    t.write_file(&TreePath::new("usr/bin/dinv-launcher"), b"#!/bin/sh\necho launcher\n".to_vec(), Meta::root(0o755)).unwrap();
    t.write_file(&TreePath::new("etc/dinv/launcher.json"), br#"{"kernel":"/boot/vmlinuz"}"#.to_vec(), Meta::root(0o644)).unwrap();
    t.write_file(&TreePath::new("boot/rootfs.img"), vec![0x55u8; 300_000], Meta::root(0o644)).unwrap();
    t.mkdir_p(&TreePath::new("docker"), Meta::root(0o755)).unwrap();
    t.mkdir_p(&TreePath::new("volume"), Meta::root(0o755)).unwrap();
    t.symlink(&TreePath::new("usr/bin/launcher"), "dinv-launcher").unwrap();
    t
}

fn spec(name: &str, tag: &str) -> ImageSpec {
    let mut s = ImageSpec::new(name, tag, EPOCH);
    s.entrypoint = vec!["/usr/bin/dinv-launcher".into()];
    s.cmd = vec!["docker".into(), "info".into()];
    s.env = vec!["DOCKER_HOST=tcp://127.0.0.1:2375".into(), "PATH=/usr/local/bin:/usr/bin:/bin".into()];
    s.exposed_ports = vec!["2375/tcp".into()];
    s.volumes = vec!["/docker".into(), "/volume".into()];
    s.stop_signal = Some("SIGTERM".into());
    s.labels = BTreeMap::from([("org.opencontainers.image.title".to_string(), "dinv".to_string())]);
    s.working_dir = Some("/".into());
    s.healthcheck = Some(Healthcheck {
        test: vec!["CMD".into(), "/usr/bin/dinv-launcher".into(), "health".into()],
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(3),
        start_period: Duration::from_secs(60),
        retries: 3,
    });
    s
}

fn layer(dir: &Path) -> Layer {
    let mut o = LayerOptions::new(dir, "dinv-build: appliance layer");
    o.mtime = Some(EPOCH);
    LayerBuilder::from_tree(&tree(), &o).unwrap()
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b).read_to_end(&mut out).unwrap();
    out
}

/// Checks an image's blobs against each other: every name is its digest,
/// the manifest names the config and layers, diff_ids match the tars.
fn check_consistent(blobs: &BTreeMap<String, Vec<u8>>, index: &Value, tag: &str) -> (String, Value) {
    for (name, bytes) in blobs {
        assert_eq!(&sha256_digest(bytes)[7..], name.as_str(), "blob name is its digest");
    }
    let entry = &index["manifests"].as_array().unwrap().iter().find(|m| m["annotations"][ANNOTATION_REF_NAME] == tag).unwrap().clone();
    let mdigest = entry["digest"].as_str().unwrap().to_string();
    let manifest = json(&blobs[&mdigest[7..]]);
    assert_eq!(entry["size"].as_u64().unwrap(), blobs[&mdigest[7..]].len() as u64);
    assert_eq!(manifest["mediaType"], MEDIA_TYPE_MANIFEST);
    let cdigest = manifest["config"]["digest"].as_str().unwrap();
    let config = json(&blobs[&cdigest[7..]]);
    let diff_ids: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let b = &blobs[&l["digest"].as_str().unwrap()[7..]];
            assert_eq!(l["size"].as_u64().unwrap(), b.len() as u64);
            assert_eq!(l["mediaType"], MEDIA_TYPE_LAYER_GZIP);
            sha256_digest(&gunzip(b))
        })
        .collect();
    assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!(diff_ids));
    (mdigest, config)
}

fn read_dir_blobs(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

fn read_tar(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let mut r = TarReader::new(Cursor::new(bytes));
    let mut out = BTreeMap::new();
    while let Some(e) = r.next_entry().unwrap() {
        let data = r.read_data(&e).unwrap();
        out.insert(e.path.clone(), data);
    }
    out
}

#[test]
fn oci_layout_is_consistent_and_deterministic() {
    let d = tempfile::tempdir().unwrap();
    let l = layer(&d.path().join("layers"));
    let a = write_oci_layout(&d.path().join("a"), &spec("dinv", "latest"), std::slice::from_ref(&l)).unwrap();
    let l2 = layer(&d.path().join("layers2"));
    assert_eq!(l.digest, l2.digest);
    let b = write_oci_layout(&d.path().join("b"), &spec("dinv", "latest"), &[l2]).unwrap();
    assert_eq!(a, b);

    let dir = d.path().join("a");
    assert_eq!(std::fs::read(dir.join("oci-layout")).unwrap(), br#"{"imageLayoutVersion":"1.0.0"}"#);
    let index = json(&std::fs::read(dir.join("index.json")).unwrap());
    assert_eq!(index["schemaVersion"], 2);
    let (mdigest, config) = check_consistent(&read_dir_blobs(&dir), &index, "latest");
    assert_eq!(mdigest, a.manifest);
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["config"]["Healthcheck"]["Interval"], 10_000_000_000u64);
    assert_eq!(config["history"][0]["created_by"], "dinv-build: appliance layer");
    // Config bytes are canonical: sorted keys, no whitespace.
    let cbytes = std::fs::read(dir.join("blobs/sha256").join(&a.config[7..])).unwrap();
    assert_eq!(cbytes, to_canonical_json(&json(&cbytes)));

    // A second tag is added; rewriting the first keeps one entry for it.
    let mut other = spec("dinv", "v2");
    other.cmd = vec!["sh".into()];
    write_oci_layout(&dir, &other, std::slice::from_ref(&l)).unwrap();
    write_oci_layout(&dir, &spec("dinv", "latest"), &[l]).unwrap();
    let index = json(&std::fs::read(dir.join("index.json")).unwrap());
    let tags: Vec<&str> = index["manifests"].as_array().unwrap().iter().map(|m| m["annotations"][ANNOTATION_REF_NAME].as_str().unwrap()).collect();
    assert_eq!(tags.len(), 2);
    assert!(tags.contains(&"latest") && tags.contains(&"v2"));
}

#[test]
fn docker_archive_is_consistent_and_deterministic() {
    let d = tempfile::tempdir().unwrap();
    let l = layer(&d.path().join("layers"));
    let p1 = d.path().join("one.tar");
    let p2 = d.path().join("two.tar");
    let a = write_docker_archive(&p1, &spec("dinv", "latest"), std::slice::from_ref(&l)).unwrap();
    let b = write_docker_archive(&p2, &spec("dinv", "latest"), std::slice::from_ref(&l)).unwrap();
    assert_eq!(a, b);
    assert_eq!(std::fs::read(&p1).unwrap(), std::fs::read(&p2).unwrap(), "same inputs, same archive bytes");
    // Same digests as the OCI layout writer.
    assert_eq!(write_oci_layout(&d.path().join("oci"), &spec("dinv", "latest"), std::slice::from_ref(&l)).unwrap(), a);

    let members = read_tar(&p1);
    let names: Vec<&String> = members.keys().collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let blobs: BTreeMap<String, Vec<u8>> = members
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()).map(|h| (h.to_string(), v.clone())))
        .collect();
    assert_eq!(blobs.len(), 3, "config, manifest, one layer");
    let (mdigest, _) = check_consistent(&blobs, &json(&members["index.json"]), "latest");
    assert_eq!(mdigest, a.manifest);
    let dm = json(&members["manifest.json"]);
    assert_eq!(dm[0]["RepoTags"], serde_json::json!(["dinv:latest"]));
    assert_eq!(dm[0]["Config"], format!("blobs/sha256/{}", &a.config[7..]));
    assert_eq!(dm[0]["Layers"], serde_json::json!([format!("blobs/sha256/{}", &l.digest[7..])]));
    assert!(members.contains_key("oci-layout"));
}

#[test]
fn bad_reference_is_refused_before_writing() {
    let d = tempfile::tempdir().unwrap();
    let l = layer(&d.path().join("layers"));
    let err = write_docker_archive(&d.path().join("x.tar"), &spec("DinV", "latest"), &[l]).unwrap_err();
    assert!(err.to_string().contains("DinV:latest"), "{err}");
    assert!(!d.path().join("x.tar").exists());
}

fn tool(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e} (install it: apt-get install -y docker.io skopeo)"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn skopeo_reads_both_formats() {
    let d = tempfile::tempdir().unwrap();
    let l = layer(&d.path().join("layers"));
    let oci = d.path().join("oci");
    let digests = write_oci_layout(&oci, &spec("dinv", "1.0"), std::slice::from_ref(&l)).unwrap();
    let out = tool(Command::new("skopeo").arg("inspect").arg(format!("oci:{}:1.0", oci.display())));
    let v = json(&out.stdout);
    assert_eq!(v["Digest"], digests.manifest);
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Layers"], serde_json::json!([l.digest]));
    assert!(v["Env"].as_array().unwrap().iter().any(|e| e == "DOCKER_HOST=tcp://127.0.0.1:2375"));

    let tar = d.path().join("dinv.tar");
    write_docker_archive(&tar, &spec("dinv", "1.0"), &[l]).unwrap();
    let out = tool(Command::new("skopeo").args(["inspect", "--config"]).arg(format!("docker-archive:{}", tar.display())));
    let v = json(&out.stdout);
    assert_eq!(v["config"]["Entrypoint"], serde_json::json!(["/usr/bin/dinv-launcher"]));
    // The archive is also an OCI layout.
    let x = d.path().join("x");
    std::fs::create_dir(&x).unwrap();
    tool(Command::new("tar").arg("-xf").arg(&tar).arg("-C").arg(&x));
    let out = tool(Command::new("skopeo").arg("inspect").arg(format!("oci:{}:1.0", x.display())));
    assert_eq!(json(&out.stdout)["Digest"], digests.manifest);
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

#[test]
fn docker_loads_the_archive() {
    if !docker_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let l = layer(&d.path().join("layers"));
    let tag = format!("test-{}", std::process::id());
    let reference = format!("dinv-image-test:{tag}");
    let tar = d.path().join("dinv.tar");
    let digests = write_docker_archive(&tar, &spec("dinv-image-test", &tag), &[l]).unwrap();
    let out = tool(Command::new("docker").arg("load").arg("-i").arg(&tar));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&reference), "docker load said: {text}");

    let inspected = tool(Command::new("docker").args(["image", "inspect", &reference]));
    let created = Command::new("docker").args(["create", &reference]).output().unwrap();
    let _ = Command::new("docker").args(["image", "rm", "-f", &reference]).output();
    let v = &json(&inspected.stdout)[0];
    assert_eq!(v["Id"], digests.config, "docker's image ID is the config digest");
    let c = &v["Config"];
    assert_eq!(c["Entrypoint"], serde_json::json!(["/usr/bin/dinv-launcher"]));
    assert_eq!(c["Cmd"], serde_json::json!(["docker", "info"]));
    assert_eq!(c["Env"], serde_json::json!(["DOCKER_HOST=tcp://127.0.0.1:2375", "PATH=/usr/local/bin:/usr/bin:/bin"]));
    assert_eq!(c["ExposedPorts"], serde_json::json!({"2375/tcp": {}}));
    assert_eq!(c["Volumes"], serde_json::json!({"/docker": {}, "/volume": {}}));
    assert_eq!(c["StopSignal"], "SIGTERM");
    assert_eq!(c["Labels"]["org.opencontainers.image.title"], "dinv");
    assert_eq!(c["Healthcheck"]["Test"], serde_json::json!(["CMD", "/usr/bin/dinv-launcher", "health"]));
    assert_eq!(c["Healthcheck"]["Retries"], 3);
    assert_eq!(v["Created"], "2023-11-14T22:13:20Z");
    assert!(created.status.success(), "docker create failed: {}", String::from_utf8_lossy(&created.stderr));
    let id = String::from_utf8_lossy(&created.stdout).trim().to_string();
    let _ = Command::new("docker").args(["rm", "-f", &id]).output();
}

/// Two platforms' layouts joined into one: index.json names one tagged
/// image index, which lists each manifest with its platform, in order, and
/// every blob of both is there.
#[test]
fn an_index_layout_lists_each_platform_and_holds_their_blobs() {
    let d = tempfile::tempdir().unwrap();
    let l = layer(&d.path().join("layers"));
    let mut arm = spec("dinv", "latest");
    arm.architecture = "arm64".into();
    let a = write_oci_layout(&d.path().join("amd64"), &spec("dinv", "latest"), std::slice::from_ref(&l)).unwrap();
    let b = write_oci_layout(&d.path().join("arm64"), &arm, std::slice::from_ref(&l)).unwrap();
    assert_ne!(a.manifest, b.manifest);
    let (pa, pb) = (d.path().join("amd64"), d.path().join("arm64"));
    let platforms = [
        PlatformImage { architecture: "amd64", os: "linux", layout: &pa, manifest_digest: &a.manifest },
        PlatformImage { architecture: "arm64", os: "linux", layout: &pb, manifest_digest: &b.manifest },
    ];
    let dir = d.path().join("multi");
    let blob = write_oci_index_layout(&dir, &spec("dinv", "1"), &platforms).unwrap();
    let top = json(&std::fs::read(dir.join("index.json")).unwrap());
    let entries = top["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0]["mediaType"].as_str(), entries[0]["digest"].as_str()), (Some(MEDIA_TYPE_INDEX), Some(blob.digest.as_str())));
    assert_eq!(entries[0]["annotations"][ANNOTATION_REF_NAME], "1");
    let blobs = read_dir_blobs(&dir);
    let index = json(&blobs[&blob.digest[7..]]);
    assert_eq!(index["mediaType"], MEDIA_TYPE_INDEX);
    let listed: Vec<(&str, &str, u64)> = index["manifests"].as_array().unwrap().iter().map(|m| (m["platform"]["architecture"].as_str().unwrap(), m["digest"].as_str().unwrap(), m["size"].as_u64().unwrap())).collect();
    assert_eq!(listed, [("amd64", a.manifest.as_str(), a.manifest_size), ("arm64", b.manifest.as_str(), b.manifest_size)]);
    assert_eq!(index["manifests"][1]["platform"]["os"], "linux");
    for (name, bytes) in read_dir_blobs(&pa).into_iter().chain(read_dir_blobs(&pb)) {
        assert_eq!(blobs.get(&name), Some(&bytes), "{name}");
    }
    assert_eq!(std::fs::read(dir.join("oci-layout")).unwrap(), br#"{"imageLayoutVersion":"1.0.0"}"#);
}
