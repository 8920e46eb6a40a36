//! End to end: `recipes/debian.toml` becomes a DinV appliance that boots,
//! runs docker, and stops without losing data.
//!
//! 1. A local Debian mirror of trixie, trixie-updates and trixie-security
//!    from a private apt's lists (tests/support/apt.rs) plus
//!    `apt-get download` of exactly the resolved packages, served on
//!    127.0.0.1 (kept under target/tmp between runs).
//! 2. `dinv-build build recipes/debian.toml`.
//! 3. Direct boot with the launcher on the host (TCG when KVM is unusable):
//!    docker version, import + run, build, a published port through
//!    DINV_TCP_PORTS, a 9p mount through DINV_MOUNTS, the 172.19/16 bridge,
//!    data written, SIGTERM, graceful shutdown, e2fsck of the data disk,
//!    restart with the data still there, several cycles.
//! 4. As users run it: `docker load` into the host's dockerd and `docker
//!    run` without --privileged; the default command's output in `docker
//!    logs`; `docker stop` exits 0 and the data survives `docker start`.
//! 5. TLS, docker:dind style: `DOCKER_TLS_CERTDIR` on a volume, `docker
//!    --tlsverify` from a second container sharing it, plain 2375 and plain
//!    HTTP refused, the command's TLS variables, `dinv-launcher health`,
//!    and the same certificates after `docker restart`.
//!
//! Needs qemu-system-x86, e2fsprogs, docker.io (scripts/setup). Takes a few
//! minutes under TCG.

use dinv_test_support as support;
use support::cli::{text, Cli};

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use support::appliance::{launcher_config, ping, spawn_launcher, tiny_rootfs_tar};
use support::docker::{docker, docker_ok, host_docker_available, wait_until, workspace};
use support::debian_mirror::{release_suites, Mirror};

/// How often a wait polls.
const POLL: Duration = Duration::from_millis(250);
const DOCKER_PORT: u16 = 2375;
/// The guest's dockerd: trixie's docker.io.
const SERVER: &str = "26.";
const WEB_PORT: u16 = 18081;

fn tmp_root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-debian")
}


fn step(msg: &str) {
    eprintln!("e2e: {msg}");
}

fn dinv_build(args: &[&str], mirror: &Mirror) -> Output {
    Cli::new(env!("CARGO_BIN_EXE_dinv-build"), &workspace()).cache(tmp_root().join("cache")).env("DINV_DEBIAN_MIRROR", mirror.url()).run(args)
}

/// The launcher on the host, booting the built artifacts.
struct Launcher {
    child: Child,
    console: PathBuf,
}

impl Launcher {
    fn start(out: &Path, work: &Path, share: &Path) -> Launcher {
        let launcher = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap()
            .join("static/x86_64-unknown-linux-gnu/release/dinv-launcher");
        assert!(launcher.is_file(), "{} missing (built by dinv-build's build.rs)", launcher.display());
        let config = launcher_config(out, work);
        let console = work.join("console.txt");
        let child = spawn_launcher(&launcher, &config, &console, &[("DINV_TCP_PORTS", &WEB_PORT.to_string()), ("DINV_MOUNTS", share.to_str().unwrap())]);
        Launcher { child, console }
    }

    fn console(&self) -> String {
        fs::read_to_string(&self.console).unwrap_or_default()
    }

    fn wait_ready(&mut self) -> Duration {
        let start = Instant::now();
        wait_until("dockerd in the guest", Duration::from_secs(420), POLL, || {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("launcher exited early ({st}):\n{}", self.console());
            }
            ping(&format!("127.0.0.1:{DOCKER_PORT}"))
        });
        start.elapsed()
    }

    /// SIGTERM, then the exit code.
    fn stop(mut self) -> (i32, Duration, String) {
        let start = Instant::now();
        unsafe { libc_kill(self.child.id() as i32, 15) };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return (st.code().unwrap_or(-1), start.elapsed(), self.console());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("launcher did not stop within 120 s:\n{}", self.console());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

fn fsck_clean(image: &Path) {
    let out = Command::new("/sbin/e2fsck").arg("-fn").arg(image).output().unwrap();
    assert!(out.status.success(), "e2fsck -fn {}: {}", image.display(), text(&out));
}


#[test]
fn debian_appliance_end_to_end() {
    let started = Instant::now();
    fs::create_dir_all(tmp_root()).unwrap();
    // 1. The mirror: real metadata, then exactly the resolved packages.
    step("local Debian mirror");
    let mirror = Mirror::of_suites(&tmp_root().join("mirror"), &tmp_root().join("apt"), &release_suites("trixie"));
    let recipe = workspace().join("recipes/debian.toml");
    let out = dinv_build(&["resolve", "--json", recipe.to_str().unwrap()], &mirror);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut wanted = Vec::new();
    for set in v["sets"].as_array().unwrap() {
        for p in set["packages"].as_array().unwrap() {
            wanted.push((p["name"].as_str().unwrap().to_string(), p["version"].as_str().unwrap().to_string()));
        }
    }
    wanted.sort();
    wanted.dedup();
    mirror.ensure_packages(&wanted);

    // 2. Build.
    step("dinv-build build recipes/debian.toml");
    let work = tempfile::tempdir_in(tmp_root()).unwrap();
    let outdir = work.path().join("out");
    let t = Instant::now();
    let out = dinv_build(&["build", "--json", recipe.to_str().unwrap(), "--out", outdir.to_str().unwrap()], &mirror);
    assert!(out.status.success(), "{}", text(&out));
    step(&format!("built in {:.1} s", t.elapsed().as_secs_f64()));
    for f in [
        "vmlinuz",
        "initramfs",
        "rootfs.ext4",
        "image.tar",
        "oci/index.json",
        "report.json",
        "sbom.spdx.json",
        "packages.json",
    ] {
        assert!(outdir.join(f).is_file(), "{f} missing from the build output");
    }
    fsck_clean(&outdir.join("rootfs.ext4"));
    // The guest keeps Debian's own modprobe (kmod), which reads the binary
    // indexes the builder wrote; the initramfs loads only what reaching the
    // root disk needs.
    let modprobe = support::ext4::ext4_stat(&outdir.join("rootfs.ext4"), "/usr/sbin/modprobe");
    assert!(modprobe.contains("/bin/kmod"), "/usr/sbin/modprobe is not kmod's:\n{modprobe}");
    let report: serde_json::Value = serde_json::from_slice(&fs::read(outdir.join("report.json")).unwrap()).unwrap();
    let release = report["kernel"]["release"].as_str().unwrap().to_string();
    assert!(support::ext4::ext4_read(&outdir.join("rootfs.ext4"), &format!("/usr/lib/modules/{release}/modules.dep.bin")).is_some());
    let initramfs_modules: Vec<&str> = report["kernel"]["initramfs_modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    for m in ["nf_nat", "dummy", "br_netfilter"] {
        assert!(!initramfs_modules.contains(&m), "{m} is in the initramfs: {initramfs_modules:?}");
    }

    // 3. Direct boot.
    let share = work.path().join("share");
    fs::create_dir_all(&share).unwrap();
    fs::write(share.join("hello.txt"), "shared over 9p\n").unwrap();
    let vmdir = work.path().join("vm");
    fs::create_dir_all(&vmdir).unwrap();
    step("direct boot");
    let mut vm = Launcher::start(&outdir, &vmdir, &share);
    let ready = vm.wait_ready();
    step(&format!("dockerd ready after {:.1} s", ready.as_secs_f64()));
    let h = Some("tcp://127.0.0.1:2375");
    let version = docker_ok(h, &["version", "--format", "{{.Server.Version}}"]);
    assert!(version.trim().starts_with(SERVER), "guest server version: {version}");

    let tar = tiny_rootfs_tar(&tmp_root());
    docker_ok(h, &["import", tar.to_str().unwrap(), "tiny:1"]);
    let hello = docker_ok(h, &["run", "--rm", "tiny:1", "/bin/busybox", "echo", "hello from the inner container"]);
    assert_eq!(hello.trim(), "hello from the inner container");
    let ctx = work.path().join("build-ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("msg.txt"), "copied by docker build\n").unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM tiny:1\nCOPY msg.txt /msg.txt\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"cat /msg.txt > /built.txt\"]\n",
    )
    .unwrap();
    docker_ok(h, &["build", "-t", "built:1", ctx.to_str().unwrap()]);
    let built = docker_ok(h, &["run", "--rm", "built:1", "/bin/busybox", "cat", "/built.txt"]);
    assert_eq!(built, "copied by docker build\n");

    docker_ok(
        h,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            &format!("{WEB_PORT}:8080"),
            "tiny:1",
            "/bin/busybox",
            "sh",
            "-c",
            "mkdir -p /www && echo served-from-the-guest > /www/index.html && exec /bin/busybox httpd -f -p 8080 -h /www",
        ],
    );
    let mut body = String::new();
    wait_until("the published port", Duration::from_secs(60), POLL, || {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", WEB_PORT)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n");
        body.clear();
        let _ = s.read_to_string(&mut body);
        body.contains("served-from-the-guest")
    });

    let shared = docker_ok(
        h,
        &[
            "run",
            "--rm",
            "-v",
            &format!("{}:/m", share.display()),
            "tiny:1",
            "/bin/busybox",
            "cat",
            "/m/hello.txt",
        ],
    );
    assert_eq!(shared, "shared over 9p\n");
    let subnet = docker_ok(h, &["network", "inspect", "bridge", "--format", "{{range .IPAM.Config}}{{.Subnet}}{{end}}"]);
    assert_eq!(subnet.trim(), "172.19.0.0/16");
    // Modules load on demand through the guest's kmod: the kernel asks
    // modprobe for `rtnl-link-dummy`, an alias found in modules.alias.bin;
    // dockerd's NAT (the published port above) needed nf_nat.
    docker_ok(
        h,
        &[
            "run",
            "--rm",
            "--privileged",
            "tiny:1",
            "/bin/busybox",
            "sh",
            "-c",
            "ip link add dinv0 type dummy && ip link del dinv0",
        ],
    );
    let loaded = docker_ok(h, &["run", "--rm", "tiny:1", "/bin/busybox", "cat", "/proc/modules"]);
    for m in ["dummy", "nf_nat", "br_netfilter"] {
        assert!(
            loaded.lines().any(|l| l.split(' ').next() == Some(m)),
            "{m} is not loaded in the guest:\n{loaded}"
        );
    }

    docker_ok(h, &["volume", "create", "keep"]);
    docker_ok(
        h,
        &[
            "run",
            "--rm",
            "-v",
            "keep:/data",
            "tiny:1",
            "/bin/busybox",
            "sh",
            "-c",
            "echo persisted > /data/f",
        ],
    );

    // Graceful stop, then start again: several cycles.
    for cycle in 1..=3 {
        let (code, took, console) = vm.stop();
        step(&format!("cycle {cycle}: stopped in {:.1} s with exit code {code}", took.as_secs_f64()));
        assert_eq!(code, 0, "launcher exit code after SIGTERM:\n{console}");
        for line in [
            "asked the guest to power off via the guest agent",
            "dinv-guest: stopping dockerd",
            "dinv-guest: dockerd stopped",
            "dinv-guest: powering off",
        ] {
            assert!(console.contains(line), "console lacks {line:?}:\n{console}");
        }
        fsck_clean(&vmdir.join("docker.img"));
        vm = Launcher::start(&outdir, &vmdir, &share);
        let ready = vm.wait_ready();
        step(&format!("cycle {cycle}: ready again after {:.1} s", ready.as_secs_f64()));
        let kept = docker_ok(h, &["run", "--rm", "-v", "keep:/data", "tiny:1", "/bin/busybox", "cat", "/data/f"]);
        assert_eq!(kept, "persisted\n", "cycle {cycle}");
        docker_ok(h, &["image", "inspect", "built:1"]);
    }
    let (code, _, console) = vm.stop();
    assert_eq!(code, 0, "{console}");

    // 4. As users run it.
    if !host_docker_available() {
        eprintln!("notice: no host dockerd; skipped the docker-load half (DINV_REQUIRE_DOCKER=1 makes this fail)");
        return;
    }
    step("docker load + docker run");
    let load = docker_ok(None, &["load", "-i", outdir.join("image.tar").to_str().unwrap()]);
    assert!(load.contains("dinv-debian:latest"), "{load}");
    let _ = docker(None, &["rm", "-f", "-v", "dinv-e2e-info", "dinv-e2e"]);
    // The default command (`docker info`) runs once dockerd answers; its output is the container's.
    docker_ok(None, &["run", "--name", "dinv-e2e-info", "dinv-debian:latest"]);
    let logs = text(&docker(None, &["logs", "dinv-e2e-info"]));
    assert!(
        logs.contains(&format!("Server Version: {SERVER}")),
        "default command output missing from docker logs:\n{logs}"
    );
    let code = docker_ok(None, &["inspect", "--format", "{{.State.ExitCode}}", "dinv-e2e-info"]);
    assert_eq!(code.trim(), "0");
    let _ = docker(None, &["rm", "-f", "-v", "dinv-e2e-info"]);

    let share_arg = format!("{}:{}", share.display(), share.display());
    docker_ok(
        None,
        &[
            "run",
            "-d",
            "--name",
            "dinv-e2e",
            "-p",
            "127.0.0.1:12375:2375",
            "-v",
            &share_arg,
            "-e",
            &format!("DINV_MOUNTS={}", share.display()),
            "dinv-debian:latest",
            "sleep",
            "infinity",
        ],
    );
    let h2 = Some("tcp://127.0.0.1:12375");
    wait_until("dockerd inside the container", Duration::from_secs(420), POLL, || ping("127.0.0.1:12375"));
    let version = docker_ok(h2, &["version", "--format", "{{.Server.Version}}"]);
    assert!(version.trim().starts_with(SERVER), "{version}");
    docker_ok(h2, &["import", tar.to_str().unwrap(), "tiny:1"]);
    docker_ok(h2, &["volume", "create", "keep"]);
    docker_ok(
        h2,
        &[
            "run",
            "--rm",
            "-v",
            "keep:/data",
            "tiny:1",
            "/bin/busybox",
            "sh",
            "-c",
            "echo kept-in-container > /data/f",
        ],
    );
    let shared = docker_ok(
        h2,
        &[
            "run",
            "--rm",
            "-v",
            &format!("{}:/m", share.display()),
            "tiny:1",
            "/bin/busybox",
            "cat",
            "/m/hello.txt",
        ],
    );
    assert_eq!(shared, "shared over 9p\n");
    for cycle in 1..=2 {
        let t = Instant::now();
        docker_ok(None, &["stop", "-t", "60", "dinv-e2e"]);
        step(&format!("docker stop {cycle}: {:.1} s", t.elapsed().as_secs_f64()));
        let code = docker_ok(None, &["inspect", "--format", "{{.State.ExitCode}}", "dinv-e2e"]);
        let logs = text(&docker(None, &["logs", "dinv-e2e"]));
        assert_eq!(code.trim(), "0", "exit code after docker stop:\n{logs}");
        assert!(logs.contains("dinv-guest: dockerd stopped"), "{logs}");
        docker_ok(None, &["start", "dinv-e2e"]);
        wait_until("dockerd after docker start", Duration::from_secs(420), POLL, || ping("127.0.0.1:12375"));
        let kept = docker_ok(h2, &["run", "--rm", "-v", "keep:/data", "tiny:1", "/bin/busybox", "cat", "/data/f"]);
        assert_eq!(kept, "kept-in-container\n");
    }
    docker_ok(None, &["stop", "-t", "60", "dinv-e2e"]);
    let _ = docker(None, &["rm", "-f", "-v", "dinv-e2e"]);
    tls_socket(&tar);
    let _ = docker(None, &["rmi", "dinv-debian:latest"]);
    step(&format!("end to end in {:.0} s", started.elapsed().as_secs_f64()));
}

/// The certificate files in the `dinv-e2e-certs` volume: one line per
/// `.pem` with its SHA-256 (as `sha256sum` prints it), then the keys'
/// modes (as `stat -c '%a %n'`), copied out of a container that is
/// never started (the image's slim runtime layer has no coreutils).
fn cert_listing() -> String {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::PermissionsExt;
    let id = docker_ok(None, &["create", "-v", "dinv-e2e-certs:/certs:ro", "dinv-debian:latest"]).trim().to_string();
    let dir = tempfile::tempdir().unwrap();
    let copied = docker(None, &["cp", &format!("{id}:/certs"), &dir.path().display().to_string()]);
    let _ = docker(None, &["rm", "-f", "-v", &id]);
    assert!(copied.status.success(), "docker cp the certificates: {}", text(&copied));
    let mut lines = Vec::new();
    for sub in ["ca", "server", "client"] {
        let mut files: Vec<PathBuf> = fs::read_dir(dir.path().join("certs").join(sub)).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "pem")).collect();
        files.sort();
        for f in files {
            lines.push(format!("{}  {sub}/{}", hex::encode(Sha256::digest(fs::read(&f).unwrap())), f.file_name().unwrap().to_string_lossy()));
        }
    }
    for key in ["ca/key.pem", "server/key.pem", "client/key.pem"] {
        let mode = fs::metadata(dir.path().join("certs").join(key)).unwrap().permissions().mode() & 0o777;
        lines.push(format!("{mode:o} {key}"));
    }
    lines.join("\n")
}

/// `docker` from a second container on the same network as the appliance
/// (alias `docker`), sharing its certificate volume; `env` is `-e` pairs.
fn tls_client(tar: &Path, env: &[&str], args: &[&str]) -> Output {
    let tar_arg = format!("{}:/tiny.tar:ro", tar.display());
    let mut all = vec!["run", "--rm", "--network", "dinv-e2e-net", "-v", "dinv-e2e-certs:/certs:ro", "-v", &tar_arg];
    all.extend(env);
    all.extend(["--entrypoint", "docker", "dinv-debian:latest"]);
    all.extend(args);
    docker(None, &all)
}

/// `docker --tlsverify` with the client certificates from the shared volume.
fn tls_ok(tar: &Path, args: &[&str]) -> String {
    let all = [&["--tlsverify", "-H", "tcp://docker:2376"][..], args].concat();
    let o = tls_client(tar, &["-e", "DOCKER_CERT_PATH=/certs/client"], &all);
    assert!(o.status.success(), "docker --tlsverify {}: {}", args.join(" "), text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Waits for the TLS appliance: `dinv-launcher health` (the HEALTHCHECK)
/// answers OK over TLS inside the container.
fn wait_tls_ready(what: &str) {
    wait_until(what, Duration::from_secs(420), POLL, || {
        let running = docker_ok(None, &["inspect", "--format", "{{.State.Running}}", "dinv-e2e-tls"]);
        assert_eq!(running.trim(), "true", "the TLS appliance stopped:\n{}", text(&docker(None, &["logs", "dinv-e2e-tls"])));
        let o = docker(None, &["exec", "dinv-e2e-tls", "/usr/bin/dinv-launcher", "health"]);
        o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "OK"
    });
}

fn tls_socket(tar: &Path) {
    step("TLS: DOCKER_TLS_CERTDIR");
    let _ = docker(None, &["rm", "-f", "-v", "dinv-e2e-tls"]);
    let _ = docker(None, &["volume", "rm", "dinv-e2e-certs"]);
    let _ = docker(None, &["network", "rm", "dinv-e2e-net"]);
    // A subnet away from the guest's bip (172.19.0.0/16): QEMU's user
    // networking hands the guest each client's own address, and a client in
    // the bip's range would get its answers routed to the guest's docker0.
    docker_ok(None, &["network", "create", "--subnet", "172.31.240.0/24", "dinv-e2e-net"]);
    // The command prints the variables it got, then talks to the guest's dockerd with them.
    docker_ok(
        None,
        &[
            "run", "-d", "--name", "dinv-e2e-tls", "--network", "dinv-e2e-net", "--network-alias", "docker",
            "-e", "DOCKER_TLS_CERTDIR=/certs", "-v", "dinv-e2e-certs:/certs", "dinv-debian:latest", "sh", "-c",
            "echo \"command env: $DOCKER_HOST $DOCKER_TLS_VERIFY $DOCKER_CERT_PATH\"; docker version --format 'command server: {{.Server.Version}}' && exec sleep infinity",
        ],
    );
    let t = Instant::now();
    wait_tls_ready("dockerd over TLS");
    step(&format!("TLS appliance ready after {:.1} s", t.elapsed().as_secs_f64()));
    let logs = text(&docker(None, &["logs", "dinv-e2e-tls"]));
    assert!(logs.contains("dinv-launcher: TLS: wrote ca/key.pem, ca/cert.pem,"), "{logs}");
    wait_until("the command's docker version", Duration::from_secs(60), POLL, || {
        text(&docker(None, &["logs", "dinv-e2e-tls"])).contains(&format!("command server: {SERVER}"))
    });
    let logs = text(&docker(None, &["logs", "dinv-e2e-tls"]));
    assert!(logs.contains("command env: tcp://localhost:2376 1 /certs/client"), "{logs}");

    let version = tls_ok(tar, &["version", "--format", "{{.Server.Version}}"]);
    assert!(version.trim().starts_with(SERVER), "{version}");
    tls_ok(tar, &["import", "/tiny.tar", "tiny:1"]);
    let hello = tls_ok(tar, &["run", "--rm", "-v", "keep:/data", "tiny:1", "/bin/busybox", "sh", "-c", "echo over-tls > /data/f && cat /data/f"]);
    assert_eq!(hello, "over-tls\n");
    // Nothing answers on 2375, and 2376 wants TLS with a client certificate.
    let plain = tls_client(tar, &[], &["-H", "tcp://docker:2375", "version"]);
    assert!(!plain.status.success(), "plain 2375 answered: {}", text(&plain));
    let http = tls_client(tar, &[], &["-H", "tcp://docker:2376", "version", "--format", "{{.Server.Version}}"]);
    assert!(!http.status.success() && !String::from_utf8_lossy(&http.stdout).contains(SERVER), "plain HTTP on 2376 answered: {}", text(&http));

    let certs = cert_listing();
    assert_eq!(certs.lines().filter(|l| l.ends_with(".pem") && l.len() > 64).count(), 8, "{certs}");
    for mode in ["600 ca/key.pem", "600 server/key.pem", "644 client/key.pem"] {
        assert!(certs.lines().any(|l| l == mode), "{mode} in {certs}");
    }
    let t = Instant::now();
    docker_ok(None, &["restart", "-t", "60", "dinv-e2e-tls"]);
    wait_tls_ready("dockerd over TLS after docker restart");
    step(&format!("TLS appliance restarted and ready in {:.1} s", t.elapsed().as_secs_f64()));
    assert_eq!(cert_listing(), certs, "the certificates changed across docker restart");
    let logs = text(&docker(None, &["logs", "dinv-e2e-tls"]));
    assert!(logs.contains("dinv-launcher: TLS: keeping the certificates in /certs"), "{logs}");
    assert!(logs.contains("dinv-guest: dockerd stopped"), "{logs}");
    let kept = tls_ok(tar, &["run", "--rm", "-v", "keep:/data", "tiny:1", "/bin/busybox", "cat", "/data/f"]);
    assert_eq!(kept, "over-tls\n");
    docker_ok(None, &["stop", "-t", "60", "dinv-e2e-tls"]);
    let _ = docker(None, &["rm", "-f", "-v", "dinv-e2e-tls"]);
    let _ = docker(None, &["volume", "rm", "dinv-e2e-certs"]);
    let _ = docker(None, &["network", "rm", "dinv-e2e-net"]);
}
