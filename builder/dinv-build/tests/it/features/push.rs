//! `dinv-build push` against a real registry (Debian's docker-registry)
//! on 127.0.0.1, then `docker pull` through the host's dockerd: the pulled
//! image has the digest we pushed.

use std::process::{Command, Stdio};

use dinv_fstree::{Meta, Tree, TreePath};
use dinv_image::{write_oci_layout, ImageSpec, LayerBuilder, LayerOptions};
use dinv_test_support::cli::{text, Cli};
use dinv_test_support::registry::start_registry;

fn docker_available() -> bool {
    let ok = Command::new("docker").arg("info").stdout(Stdio::null()).stderr(Stdio::null()).status().map(|s| s.success()).unwrap_or(false);
    if !ok && std::env::var("DINV_REQUIRE_DOCKER").as_deref() == Ok("1") {
        panic!("DINV_REQUIRE_DOCKER=1 but `docker info` fails: start dockerd (scripts/setup --start-dockerd)");
    }
    ok
}

#[test]
fn push_round_trip_gives_the_same_digest() {
    // A small image, written by the same writer the builder uses.
    let work = tempfile::tempdir().unwrap();
    let mut tree = Tree::new();
    tree.write_file(&TreePath::new("etc/dinv-push-test"), format!("pushed {}\n", std::process::id()), Meta::root(0o644)).unwrap();
    let layer = LayerBuilder::from_tree(&tree, &LayerOptions::new(work.path(), "push test")).unwrap();
    let mut spec = ImageSpec::new("dinv-push-test", "v1", 1_700_000_000);
    spec.cmd = vec!["/bin/true".into()];
    let layout = work.path().join("oci");
    let digests = write_oci_layout(&layout, &spec, &[layer]).unwrap();

    let reg = start_registry();
    let reference = format!("127.0.0.1:{}/team/dinv-push-test:v1", reg.port);
    let cli = Cli::new(env!("CARGO_BIN_EXE_dinv-build"), work.path());
    let out = cli.run(&["push", "--json", layout.to_str().unwrap(), &reference]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["push"]["manifest_digest"], digests.manifest.as_str());
    assert_eq!(v["push"]["blobs_uploaded"], 2);

    // Pushing again uploads nothing new.
    let out = cli.run(&["push", "--json", layout.to_str().unwrap(), &reference]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["push"]["blobs_present"], 2);

    // The registry serves the manifest under the digest we computed.
    let resp = Command::new("curl")
        .args(["-sf", "-H", "Accept: application/vnd.oci.image.manifest.v1+json", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://127.0.0.1:{}/v2/team/dinv-push-test/manifests/{}", reg.port, digests.manifest))
        .output();
    if let Ok(r) = resp {
        assert_eq!(String::from_utf8_lossy(&r.stdout), "200");
    }

    if docker_available() {
        let pull = Command::new("docker").args(["pull", &reference]).output().unwrap();
        assert!(pull.status.success(), "docker pull: {}", String::from_utf8_lossy(&pull.stderr));
        let inspect = Command::new("docker").args(["image", "inspect", "--format", "{{json .RepoDigests}}", &reference]).output().unwrap();
        let digests_seen = String::from_utf8_lossy(&inspect.stdout).to_string();
        let _ = Command::new("docker").args(["rmi", "-f", &reference]).output();
        assert!(digests_seen.contains(&digests.manifest), "pulled {digests_seen}, pushed {}", digests.manifest);
    } else {
        eprintln!("notice: no docker daemon; skipped the docker pull half (set DINV_REQUIRE_DOCKER=1 to require it)");
    }
}
