//! End to end: the Debian appliance's snapshot image (`dinv-build
//! snapshot`) as users run it, through the host's dockerd and the real
//! docker client, without /dev/kvm.
//!
//! 1. Build `recipes/debian.toml` (warm: the mirror and cache are the ones
//!    `e2e_debian` fills), then `dinv-build snapshot OUT`: the report names
//!    the base image, the snapshot image's labels too.
//! 2. A container restores (its log says `restored in`): docker version, an
//!    inner run and build, a 9p share through DINV_MOUNTS, the guest's clock
//!    within a second of the host's; a second container from the same image
//!    reads other bytes from the guest's /dev/urandom.
//! 3. TLS (DOCKER_TLS_CERTDIR) restores too, and a second container
//!    reaches dockerd with `--tlsverify`; plain 2375 does not answer.
//! 4. `-e DINV_MEMORY=1G` boots, and says why.
//! 5. `docker stop` of the first container is graceful (exit 0); `docker
//!    start` finds its data volume holding data, so it boots, and the
//!    images, a volume and a file written before the stop are all there.
//!
//! Needs docker.io and e2fsprogs (scripts/setup); no host QEMU (the image's
//! own runs). Honours DINV_REQUIRE_DOCKER like e2e_debian. A few minutes
//! under TCG.

use dinv_test_support as support;
use support::cli::{text, Cli};

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime};

use support::appliance::{ping, tiny_rootfs_tar};
use support::docker::{host_docker_available, wait_until, workspace};
use support::debian_mirror::{release_suites, Mirror};

/// How often a wait polls.
const POLL: Duration = Duration::from_millis(100);
const IMAGE: &str = "dinv-debian:latest-snapshot";
const A: &str = "dinv-e2e-snap-a";
const B: &str = "dinv-e2e-snap-b";
const TLS: &str = "dinv-e2e-snap-tls";
const MEM: &str = "dinv-e2e-snap-mem";
const VOLUME: &str = "dinv-e2e-snap-data";
const CERTS: &str = "dinv-e2e-snap-certs";
const NET: &str = "dinv-e2e-snap-net";
const PORT_A: u16 = 12395;
const PORT_B: u16 = 12396;

/// Shared with e2e_debian: its mirror and package cache.
fn tmp_root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-debian")
}

fn step(msg: &str) {
    eprintln!("e2e-snapshot: {msg}");
}

fn dinv_build(args: &[&str], mirror: &Mirror) -> Output {
    Cli::new(env!("CARGO_BIN_EXE_dinv-build"), &workspace()).cache(tmp_root().join("cache")).env("DINV_DEBIAN_MIRROR", mirror.url()).run(args)
}

fn docker(args: &[&str]) -> Output {
    support::docker::docker(None, args)
}

fn docker_ok(args: &[&str]) -> String {
    support::docker::docker_ok(None, args)
}

/// `docker -H tcp://127.0.0.1:PORT ...`: the guest's dockerd.
fn inner(port: u16, args: &[&str]) -> String {
    docker_ok(&[&["-H", &format!("tcp://127.0.0.1:{port}")][..], args].concat())
}

fn logs(name: &str) -> String {
    text(&docker(&["logs", name]))
}

/// Waits for the guest's dockerd behind `port` and for the launcher's
/// line about it (the last one: a started container's log keeps the
/// earlier runs'); returns that line.
fn wait_ready(name: &str, port: u16) -> String {
    let before = logs(name).lines().filter(|l| is_ready_line(l)).count();
    wait_until(&format!("dockerd in {name}"), Duration::from_secs(420), POLL, || {
        let running = docker_ok(&["inspect", "--format", "{{.State.Running}}", name]);
        assert_eq!(running.trim(), "true", "{name} stopped:\n{}", logs(name));
        ping(&format!("127.0.0.1:{port}"))
    });
    let mut line = None;
    wait_until("the launcher's ready line", Duration::from_secs(30), POLL, || {
        line = logs(name).lines().filter(|l| is_ready_line(l)).nth(before).map(String::from);
        line.is_some()
    });
    line.unwrap()
}

fn is_ready_line(l: &str) -> bool {
    l.starts_with("dinv-launcher: restored in") || l.starts_with("dinv-launcher: ready in")
}


fn cleanup() {
    let _ = docker(&["rm", "-f", "-v", A, B, TLS, MEM]);
    let _ = docker(&["volume", "rm", VOLUME, CERTS]);
    let _ = docker(&["network", "rm", NET]);
}

/// 16 bytes of the guest's /dev/urandom, read in an inner container.
fn guest_random(port: u16) -> String {
    inner(port, &["run", "--rm", "tiny:1", "/bin/busybox", "sh", "-c", "/bin/busybox head -c 16 /dev/urandom | /bin/busybox od -An -tx1"]).split_whitespace().collect()
}

#[test]
fn debian_snapshot_image_end_to_end() {
    if !host_docker_available() {
        eprintln!("notice: no host dockerd; skipped (DINV_REQUIRE_DOCKER=1 makes this fail)");
        return;
    }
    let started = Instant::now();
    fs::create_dir_all(tmp_root()).unwrap();
    // 1. Mirror, build, snapshot.
    step("local Debian mirror");
    let mirror = Mirror::of_suites(&tmp_root().join("mirror"), &tmp_root().join("apt"), &release_suites("trixie"));
    let recipe = workspace().join("recipes/debian.toml");
    let out = dinv_build(&["resolve", "--json", recipe.to_str().unwrap()], &mirror);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut wanted: Vec<(String, String)> = v["sets"].as_array().unwrap().iter().flat_map(|s| s["packages"].as_array().unwrap().iter()).map(|p| (p["name"].as_str().unwrap().to_string(), p["version"].as_str().unwrap().to_string())).collect();
    wanted.sort();
    wanted.dedup();
    mirror.ensure_packages(&wanted);
    let work = tempfile::tempdir_in(tmp_root()).unwrap();
    let outdir = work.path().join("out");
    let t = Instant::now();
    let o = dinv_build(&["build", "--json", recipe.to_str().unwrap(), "--out", outdir.to_str().unwrap()], &mirror);
    assert!(o.status.success(), "{}", text(&o));
    step(&format!("built in {:.1} s", t.elapsed().as_secs_f64()));
    let t = Instant::now();
    let o = dinv_build(&["snapshot", "--json", outdir.to_str().unwrap()], &mirror);
    assert!(o.status.success(), "{}", text(&o));
    step(&format!("dinv-build snapshot in {:.1} s", t.elapsed().as_secs_f64()));
    let base: serde_json::Value = serde_json::from_slice(&fs::read(outdir.join("report.json")).unwrap()).unwrap();
    let report: serde_json::Value = serde_json::from_slice(&fs::read(outdir.join("snapshot/report.json")).unwrap()).unwrap();
    eprintln!("{:#}", report["sizes"]);
    let base_digest = base["image"]["manifest_digest"].as_str().unwrap();
    assert_eq!(report["base_image"]["manifest_digest"], base_digest, "{report:#}");
    assert_eq!(report["image"]["reference"], IMAGE);
    assert_eq!(report["settings"]["accel"], "tcg");
    for f in ["image.tar", "oci/index.json", "report.json"] {
        assert!(outdir.join("snapshot").join(f).is_file(), "{f}");
    }

    cleanup();
    let load = docker_ok(&["load", "-i", outdir.join("snapshot/image.tar").to_str().unwrap()]);
    assert!(load.contains(IMAGE), "{load}");
    let digest = docker_ok(&["image", "inspect", "--format", "{{index .Config.Labels \"org.opencontainers.image.base.digest\"}}", IMAGE]);
    assert_eq!(digest.trim(), base_digest);
    let tar = tiny_rootfs_tar(&tmp_root());
    let share = work.path().join("share");
    fs::create_dir_all(&share).unwrap();
    fs::write(share.join("hello.txt"), "shared over 9p\n").unwrap();

    // 2. Restores: docker, 9p, clock, entropy.
    step("docker run: restore");
    let share_arg = format!("{}:{}", share.display(), share.display());
    docker_ok(&[
        "run", "-d", "--name", A, "-p", &format!("127.0.0.1:{PORT_A}:2375"), "-v", &format!("{VOLUME}:/docker"), "-v", &share_arg,
        "-e", &format!("DINV_MOUNTS={}", share.display()), IMAGE, "sleep", "infinity",
    ]);
    let line = wait_ready(A, PORT_A);
    step(&line);
    assert!(line.starts_with("dinv-launcher: restored in"), "{}", logs(A));
    let log = logs(A);
    assert!(log.contains("dinv-guest: restore: reseeded the random generator with 64 bytes from the host"), "{log}");
    let version = inner(PORT_A, &["version", "--format", "{{.Server.Version}}"]);
    assert!(version.trim().starts_with("26."), "{version}"); // trixie's docker.io
    // The guest's clock: dockerd's SystemTime, between the host's before and after.
    let now = || SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64();
    let before = now();
    let guest = inner(PORT_A, &["info", "--format", "{{.SystemTime}}"]);
    let after = now();
    let o = Command::new("date").args(["-d", guest.trim(), "+%s.%N"]).output().unwrap();
    let guest_s: f64 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap_or_else(|_| panic!("guest time {guest:?}"));
    assert!(guest_s > before - 1.0 && guest_s < after + 1.0, "guest clock {guest_s:.3}, host {before:.3}..{after:.3}");
    step(&format!("guest clock off by at most {:.3} s", (guest_s - before).abs().max((guest_s - after).abs())));
    inner(PORT_A, &["import", tar.to_str().unwrap(), "tiny:1"]);
    let hello = inner(PORT_A, &["run", "--rm", "tiny:1", "/bin/busybox", "echo", "hello from a restored guest"]);
    assert_eq!(hello.trim(), "hello from a restored guest");
    let ctx = work.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM tiny:1\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo built > /built.txt\"]\n").unwrap();
    inner(PORT_A, &["build", "-t", "built:1", ctx.to_str().unwrap()]);
    assert_eq!(inner(PORT_A, &["run", "--rm", "built:1", "/bin/busybox", "cat", "/built.txt"]), "built\n");
    let shared = inner(PORT_A, &["run", "--rm", "-v", &format!("{}:/m", share.display()), "tiny:1", "/bin/busybox", "cat", "/m/hello.txt"]);
    assert_eq!(shared, "shared over 9p\n");
    inner(PORT_A, &["volume", "create", "keep"]);
    inner(PORT_A, &["run", "--rm", "-v", "keep:/data", "tiny:1", "/bin/busybox", "sh", "-c", "echo before-stop > /data/f"]);
    let random_a = guest_random(PORT_A);

    step("a second container from the same snapshot");
    docker_ok(&["run", "-d", "--name", B, "-p", &format!("127.0.0.1:{PORT_B}:2375"), IMAGE, "sleep", "infinity"]);
    assert!(wait_ready(B, PORT_B).starts_with("dinv-launcher: restored in"), "{}", logs(B));
    inner(PORT_B, &["import", tar.to_str().unwrap(), "tiny:1"]);
    let random_b = guest_random(PORT_B);
    assert_eq!((random_a.len(), random_b.len()), (32, 32), "{random_a} {random_b}");
    assert_ne!(random_a, random_b, "two restored guests read the same bytes from /dev/urandom");
    let _ = docker(&["rm", "-f", "-v", B]);

    // 3. TLS.
    step("TLS: DOCKER_TLS_CERTDIR");
    docker_ok(&["network", "create", "--subnet", "172.31.242.0/24", NET]);
    docker_ok(&["run", "-d", "--name", TLS, "--network", NET, "--network-alias", "docker", "-e", "DOCKER_TLS_CERTDIR=/certs", "-v", &format!("{CERTS}:/certs"), IMAGE, "sleep", "infinity"]);
    let t = Instant::now();
    wait_until("dockerd over TLS", Duration::from_secs(420), POLL, || {
        let running = docker_ok(&["inspect", "--format", "{{.State.Running}}", TLS]);
        assert_eq!(running.trim(), "true", "{}", logs(TLS));
        let o = docker(&["exec", TLS, "/usr/bin/dinv-launcher", "health"]);
        o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "OK"
    });
    let health = t.elapsed().as_secs_f64();
    // The health check may get in before the launcher's own poll.
    wait_until("the launcher's restored line", Duration::from_secs(30), POLL, || logs(TLS).contains("dinv-launcher: restored in"));
    let log = logs(TLS);
    let line = log.lines().find(|l| l.starts_with("dinv-launcher: restored in")).unwrap();
    step(&format!("{line} (health OK after {health:.1} s)"));
    assert!(log.contains("dinv-guest: restore: restarting dockerd for TLS"), "{log}");
    let certs = format!("{CERTS}:/certs:ro");
    let client = |env: &[&str], args: &[&str]| {
        let mut all: Vec<&str> = vec!["run", "--rm", "--network", NET, "-v", &certs];
        all.extend(env);
        all.extend(["--entrypoint", "docker", IMAGE]);
        all.extend(args);
        docker(&all)
    };
    let o = client(&["-e", "DOCKER_CERT_PATH=/certs/client"], &["--tlsverify", "-H", "tcp://docker:2376", "version", "--format", "{{.Server.Version}}"]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).starts_with("26."), "{}", text(&o));
    let plain = client(&[], &["-H", "tcp://docker:2375", "version"]);
    assert!(!plain.status.success(), "plain 2375 answered: {}", text(&plain));
    let _ = docker(&["rm", "-f", "-v", TLS]);

    // 4. What the snapshot fixed, changed: a boot, with the reason.
    step("DINV_MEMORY=1G boots");
    let o = docker(&["run", "--name", MEM, "-e", "DINV_MEMORY=1G", IMAGE, "docker", "version", "--format", "server {{.Server.Version}}"]);
    let log = logs(MEM);
    assert!(o.status.success(), "{log}");
    assert!(log.contains("booting instead of restoring the snapshot: DINV_MEMORY is 1G, the snapshot has 512M"), "{log}");
    assert!(log.contains("dinv-launcher: ready in") && log.contains("server 26."), "{log}");
    let _ = docker(&["rm", "-f", "-v", MEM]);

    // 5. docker stop is graceful; the data volume is never replaced.
    step("docker stop, docker start");
    docker_ok(&["stop", "-t", "60", A]);
    let code = docker_ok(&["inspect", "--format", "{{.State.ExitCode}}", A]);
    let log = logs(A);
    assert_eq!(code.trim(), "0", "{log}");
    assert!(log.contains("dinv-guest: dockerd stopped") && log.contains("the guest shut down cleanly"), "{log}");
    docker_ok(&["start", A]);
    let line = wait_ready(A, PORT_A);
    let log = logs(A);
    assert!(log.contains("booting instead of restoring the snapshot: the docker data disk holds data from an earlier run"), "{log}");
    assert!(line.starts_with("dinv-launcher: ready in"), "{line}");
    step(&line);
    assert_eq!(inner(PORT_A, &["run", "--rm", "-v", "keep:/data", "tiny:1", "/bin/busybox", "cat", "/data/f"]), "before-stop\n");
    inner(PORT_A, &["image", "inspect", "built:1"]);
    docker_ok(&["stop", "-t", "60", A]);
    cleanup();
    let _ = docker(&["rmi", IMAGE]);
    // e2e_debian built from the same cache before; nothing after this uses it.
    support::discard_cache(&tmp_root().join("cache"));
    step(&format!("end to end in {:.0} s", started.elapsed().as_secs_f64()));
}
