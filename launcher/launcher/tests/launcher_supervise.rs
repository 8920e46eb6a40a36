//! Runs the real launcher binary against a fake QEMU (a shell script) and
//! fake guest agent / QMP / dockerd endpoints served by the test, and checks
//! the order of actions and the exit codes.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Like QEMU, writes the console to stdout and to the chardev's logfile.
/// With FAKE_BOOT it prints a boot's markers, stamped as the guest would,
/// spaced by sleeps at least as long as the stamps say. With FAKE_KVM_HANG,
/// under `-accel kvm` it hangs as a guest does on some nested hosts: the
/// kernel's real-mode setup prints its EDD line, then nothing.
const FAKE_QEMU: &str = r#"#!/bin/sh
LOG=/dev/null
for a in "$@"; do case "$a" in stdio,*logfile=*) LOG="${a##*logfile=}";; esac; done
: > "$LOG"
say() { echo "$1"; echo "$1" >> "$LOG"; }
echo "$@" > "$FAKE_DIR/qemu.args"
echo qemu-start >> "$FAKE_DIR/events"
say console-line
case " $* " in *" -incoming defer "*)
    echo qemu-restore >> "$FAKE_DIR/events"
    [ -n "$FAKE_RESTORE_FAIL" ] && { echo "load of migration failed" >&2; exit 1; }
    : > "$FAKE_DIR/loaded";;
esac
case " $* " in *" -accel kvm "*) if [ -n "$FAKE_KVM_HANG" ]; then
    echo kvm-hang >> "$FAKE_DIR/events"
    echo $$ > "$FAKE_DIR/hung.pid"
    say "Probing EDD (edd=off to disable)... ok"
    [ "$FAKE_KVM_HANG" = error ] && printf 'KVM internal error. Suberror: 1\nemulation failure\n' >&2
    while :; do sleep 0.05; done
fi;; esac
if [ -n "$FAKE_BOOT" ]; then
    sleep 0.1
    say "[    0.000000] Linux version 6.1.0-fake (fake@dinv) #1 SMP PREEMPT_DYNAMIC"
    sleep 0.3
    say "[    0.300] dinv-init: starting"
    sleep 0.2
    say "[    0.500] dinv-init: switched root; executing /sbin/init"
    sleep 0.1
    say "[    0.600] dinv-guest: init starting"
    sleep 0.3
    say "[    0.900] dinv-guest: started dockerd (pid 42)"
    sleep "${FAKE_DOCKERD_SECS:-0.2}"
fi
if [ -n "$FAKE_EXIT" ]; then exit "$FAKE_EXIT"; fi
[ -n "$FAKE_LATE_KVM_ERROR" ] && (sleep "$FAKE_LATE_KVM_ERROR"; echo 'KVM internal error. Suberror: 1' >&2) &
trap 'echo qemu-exit >> "$FAKE_DIR/events"; exit 0' USR1
echo $$ > "$FAKE_DIR/qemu.pid"
while :; do sleep 0.05; done
"#;

struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("dinv-launcher-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("run")).unwrap();
        std::fs::write(dir.join("vmlinuz"), b"kernel").unwrap();
        std::fs::write(dir.join("rootfs.img"), b"rootfs").unwrap();
        let qemu = dir.join("fake-qemu");
        std::fs::write(&qemu, FAKE_QEMU).unwrap();
        std::fs::set_permissions(&qemu, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let config = serde_json::json!({
            "kernel": dir.join("vmlinuz"), "rootfs": dir.join("rootfs.img"), "qemu": qemu,
            "docker_disk": dir.join("docker/docker.img"), "volume_disk": dir.join("volume/volume.img"),
            "run_dir": dir.join("run"), "defaults": {"DINV_DOCKER_SIZE": "64M"},
        });
        std::fs::write(dir.join("launcher.json"), config.to_string()).unwrap();
        Fixture { dir }
    }

    fn events(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("events")).unwrap_or_default().lines().map(String::from).collect()
    }

    fn log(dir: &Path, line: &str) {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("events")).unwrap();
        // One write: the fake QEMU appends to the same file.
        f.write_all(format!("{line}\n").as_bytes()).unwrap();
    }

    fn stop_fake_qemu(dir: &Path) {
        // The script writes its pid once its USR1 trap is set.
        let t = Instant::now();
        while !dir.join("qemu.pid").exists() && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        // Written by `echo`: it may exist a moment before it holds the pid.
        let pid: i32 = loop {
            match std::fs::read_to_string(dir.join("qemu.pid")).ok().and_then(|p| p.trim().parse().ok()) {
                Some(pid) => break pid,
                None if t.elapsed() < Duration::from_secs(5) => std::thread::sleep(Duration::from_millis(10)),
                None => panic!("no pid in {}", dir.join("qemu.pid").display()),
            }
        };
        unsafe { libc::kill(pid, libc::SIGUSR1) };
    }

    /// Serves the unix socket `run/NAME` on a thread: `handle` gets each
    /// connection and the fake's directory.
    fn serve_unix(&self, name: &str, handle: impl Fn(UnixStream, &Path) + Send + 'static) {
        let listener = UnixListener::bind(self.dir.join("run").join(name)).unwrap();
        let dir = self.dir.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                handle(conn.unwrap(), &dir);
            }
        });
    }

    /// Fake guest agent: answers guest-sync, powers the fake QEMU off on guest-shutdown.
    fn serve_qga(&self) {
        self.serve_unix("qga.sock", |conn, dir| {
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                let cmd = v["execute"].as_str().unwrap().to_string();
                Self::log(dir, &format!("qga {cmd}"));
                match cmd.as_str() {
                    "guest-sync" => (&conn).write_all(format!("{}\n", serde_json::json!({"return": v["arguments"]["id"]})).as_bytes()).unwrap(),
                    "guest-shutdown" => Self::stop_fake_qemu(dir),
                    _ => {}
                }
                line.clear();
            }
        });
    }

    /// Fake restore port: takes the request line (kept in
    /// restore-request.json) and answers as `dinv-guest restore --listen`.
    fn serve_restore(&self) {
        self.serve_unix("restore.sock", |mut conn, dir| {
            let mut line = String::new();
            if BufReader::new(conn.try_clone().unwrap()).read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            Self::log(dir, "restore request");
            std::fs::write(dir.join("restore-request.json"), &line).unwrap();
            let _ = conn.write_all(b"[    9.100] dinv-guest: restore: reseeded the random generator\ndinv-restore-done 0\n");
        });
    }

    /// Fake QMP: records commands; `quit` makes the fake QEMU exit.
    fn serve_qmp(&self) {
        self.serve_unix("qmp.sock", |mut conn, dir| {
            conn.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n").unwrap();
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                let cmd = v["execute"].as_str().unwrap().to_string();
                Self::log(dir, &format!("qmp {cmd}"));
                if cmd == "migrate-incoming" {
                    std::fs::write(dir.join("incoming.json"), v["arguments"].to_string()).unwrap();
                }
                if cmd == "human-monitor-command" {
                    Self::log(dir, v["arguments"]["command-line"].as_str().unwrap());
                }
                if cmd == "query-status" {
                    // A restoring QEMU is `inmigrate` until it has read the state.
                    let status = if dir.join("loaded").exists() { "paused" } else { "inmigrate" };
                    let _ = conn.write_all(format!("{{\"return\": {{\"status\": \"{status}\", \"running\": false}}}}\r\n").as_bytes());
                } else {
                    let _ = conn.write_all(b"{\"return\": {}}\r\n");
                }
                if cmd == "quit" {
                    Self::stop_fake_qemu(dir);
                }
                line.clear();
            }
        });
    }

    /// A fake dockerd /_ping answering OK once the fake QEMU runs (like
    /// SLIRP, it closes connections without an answer before); returns its
    /// address.
    fn serve_ping(&self) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let booted = self.dir.join("qemu.pid");
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let mut conn = conn.unwrap();
                let _ = std::io::Read::read(&mut conn, &mut [0u8; 1024]);
                if booted.exists() {
                    let _ = conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nOK");
                }
            }
        });
        addr
    }

    /// An address where nothing listens (dockerd never becomes ready).
    fn dead_addr() -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    }

    fn launcher(&self, ping: &str, extra_env: &[(&str, &str)], args: &[&str]) -> Child {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dinv-launcher"));
        c.args(args)
            .env("DINV_LAUNCHER_CONFIG", self.dir.join("launcher.json"))
            .env("DINV_PING_ADDR", ping)
            .env("DINV_ACCEL", "tcg")
            .env("FAKE_DIR", &self.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            c.env(k, v);
        }
        c.spawn().unwrap()
    }

    fn wait_for_qemu(&self) {
        let t = Instant::now();
        while !self.dir.join("qemu.pid").exists() {
            assert!(t.elapsed() < Duration::from_secs(10), "fake QEMU never started");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // A fake QEMU a failed test left hanging (the launcher, killed by
        // `finish`, could not reap it).
        // Only a process that still is this fixture's fake (a pid may be reused).
        let fake = self.dir.join("fake-qemu").to_string_lossy().into_owned();
        for file in ["hung.pid", "qemu.pid"] {
            let Some(pid) = std::fs::read_to_string(self.dir.join(file)).ok().and_then(|p| p.trim().parse::<i32>().ok()).filter(|p| *p > 0) else { continue };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&fake) {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits for the launcher with a bound; returns (code, stdout, stderr).
fn finish(child: Child) -> (i32, String, String) {
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output().unwrap());
    });
    let out = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| {
        unsafe { libc::kill(pid, libc::SIGKILL) };
        panic!("launcher did not exit in time");
    });
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn sigterm_shuts_the_guest_down_through_the_agent() {
    let f = Fixture::new("sigterm");
    f.serve_qga();
    f.serve_qmp();
    let child = f.launcher(&Fixture::dead_addr(), &[], &[]);
    f.wait_for_qemu();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let (code, stdout, stderr) = finish(child);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(f.events(), ["qemu-start", "qga guest-sync", "qga guest-shutdown", "qemu-exit"], "{stderr}");
    assert!(stdout.contains("console-line"), "without a command the console goes to stdout");
    assert!(stderr.contains("received SIGTERM") && stderr.contains("shut down cleanly"), "{stderr}");
    let args = std::fs::read_to_string(f.dir.join("qemu.args")).unwrap();
    assert!(args.starts_with("-M microvm,pic=off -accel tcg -cpu max"), "{args}");
    assert!(args.contains(&format!("path={},server=on,wait=off", f.dir.join("run/qga.sock").display())), "{args}");
    // The docker disk was created sparse at the default from launcher.json.
    assert_eq!(std::fs::metadata(f.dir.join("docker/docker.img")).unwrap().len(), 64 << 20);
}

#[test]
fn command_runs_once_ready_and_its_code_is_the_exit_code() {
    let f = Fixture::new("command");
    f.serve_qga();
    let ping = f.serve_ping();
    let child = f.launcher(&ping, &[], &["sh", "-c", "echo cmd-ran >> \"$FAKE_DIR/events\"; echo hello; exit 7"]);
    let (code, stdout, stderr) = finish(child);
    assert_eq!(code, 7, "{stderr}");
    assert_eq!(f.events(), ["qemu-start", "cmd-ran", "qga guest-sync", "qga guest-shutdown", "qemu-exit"], "{stderr}");
    assert_eq!(stdout, "hello\n", "the command's stdout stays clean");
    assert!(stderr.contains("console-line"), "with a command the console goes to stderr: {stderr}");
}

#[test]
fn docker_stop_during_a_command_is_a_clean_exit() {
    // `docker run IMAGE sleep infinity` then `docker stop`: the command is
    // interrupted on purpose, the guest shuts down cleanly, exit code 0.
    let f = Fixture::new("stopcmd");
    f.serve_qga();
    let ping = f.serve_ping();
    let child = f.launcher(&ping, &[], &["sh", "-c", "echo cmd-ran >> \"$FAKE_DIR/events\"; exec sleep 30"]);
    let t = Instant::now();
    while !f.events().iter().any(|e| e == "cmd-ran") {
        assert!(t.elapsed() < Duration::from_secs(10), "command never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let (code, _, stderr) = finish(child);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("shut down cleanly"), "{stderr}");
}

#[test]
fn unresponsive_guest_gets_the_power_button_then_quit() {
    let f = Fixture::new("fallback");
    f.serve_qmp(); // no guest agent socket at all
    let child = f.launcher(&Fixture::dead_addr(), &[("DINV_STOP_TIMEOUT", "0.5"), ("DINV_SHUTDOWN_TIMEOUT", "0")], &[]);
    f.wait_for_qemu();
    let t = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let (code, _, stderr) = finish(child);
    assert_eq!(code, 1, "forced stop: {stderr}");
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(
        f.events(),
        ["qemu-start", "qmp qmp_capabilities", "qmp system_powerdown", "qmp qmp_capabilities", "qmp quit", "qemu-exit"],
        "{stderr}"
    );
    assert!(stderr.contains("did not power off within"), "{stderr}");
}

#[test]
fn bad_settings_fail_before_qemu_starts() {
    let f = Fixture::new("bad");
    let child = f.launcher(&Fixture::dead_addr(), &[("DINV_MEMORY", "lots")], &[]);
    let (code, _, stderr) = finish(child);
    assert_eq!(code, 2);
    assert!(stderr.contains("DINV_MEMORY=\"lots\""), "{stderr}");
    assert!(f.events().is_empty(), "QEMU must not start");

    let child = f.launcher(&Fixture::dead_addr(), &[("DINV_MOUNTS", "/nonexistent-dinv-share")], &[]);
    let (code, _, stderr) = finish(child);
    assert_eq!(code, 2);
    assert!(stderr.contains("DINV_MOUNTS") && stderr.contains("/nonexistent-dinv-share"), "{stderr}");
    assert!(f.events().is_empty(), "QEMU must not start");
}

#[test]
fn qemu_failing_early_is_reported() {
    let f = Fixture::new("early");
    let child = f.launcher(&Fixture::dead_addr(), &[("FAKE_EXIT", "3")], &[]);
    let (code, _, stderr) = finish(child);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("QEMU exited with status 3"), "{stderr}");
}

#[test]
fn health_and_print_qemu_args() {
    let f = Fixture::new("health");
    std::fs::write(f.dir.join("qemu.pid"), "0").unwrap(); // the fake dockerd answers
    let ping = f.serve_ping();
    let (code, stdout, _) = finish(f.launcher(&ping, &[], &["health"]));
    assert_eq!((code, stdout.as_str()), (0, "OK\n"));
    let (code, _, stderr) = finish(f.launcher(&Fixture::dead_addr(), &[], &["health"]));
    assert_eq!(code, 1, "{stderr}");
    let (code, stdout, _) = finish(f.launcher(&ping, &[("DINV_MACHINE", "q35")], &["print-qemu-args"]));
    assert_eq!(code, 0);
    assert!(stdout.starts_with(&format!("{} -M q35 -accel tcg -cpu max", f.dir.join("fake-qemu").display())), "{stdout}");
    assert!(stdout.contains("virtio-blk-pci,drive=root"), "{stdout}");
}

#[test]
fn boot_timeline_is_printed_and_written_at_readiness() {
    let f = Fixture::new("timeline");
    f.serve_qga();
    let ping = f.serve_ping(); // answers once the fake boot is over
    let child = f.launcher(&ping, &[("FAKE_BOOT", "1")], &["true"]);
    let (code, _, stderr) = finish(child);
    assert_eq!(code, 0, "{stderr}");
    let ready = stderr.lines().find(|l| l.starts_with("dinv-launcher: ready in ")).unwrap_or_else(|| panic!("no ready line:\n{stderr}"));
    // Phases between stamped lines are exact; the others depend on the host.
    for part in ["qemu ", ", kernel 0.", ", initramfs 0.2, guest init 0.4, dockerd "] {
        assert!(ready.contains(part), "{part:?} not in {ready:?}");
    }
    assert!(stderr.contains("console-line"), "the console still reaches the container's output: {stderr}");

    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(f.dir.join("run/timeline.json")).unwrap()).unwrap();
    assert_eq!(json["accel"], "tcg");
    let phases = json["phases"].as_array().unwrap();
    let names: Vec<&str> = phases.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["qemu", "kernel", "initramfs", "guest init", "dockerd"], "{json:#}");
    let secs = |i: usize| phases[i]["seconds"].as_f64().unwrap();
    assert_eq!((secs(2), secs(3)), (0.2, 0.4), "{json:#}");
    // The kernel phase starts when its banner (stamped 0.000000) was read,
    // and ends at dinv-init's stamp: 0.3 s of sleep plus the fake's own pace.
    assert!(secs(1) >= 0.29 && secs(1) < 0.5, "{json:#}");
    // The fake starts printing 0.1 s in; readiness comes after its last sleep.
    assert!(secs(0) >= 0.1 && secs(0) < 1.0, "{json:#}");
    assert!(secs(4) >= 0.2, "{json:#}");
    let total: f64 = (0..5).map(secs).sum();
    let ready_s = json["ready_s"].as_f64().unwrap();
    assert!((total - ready_s).abs() < 0.01, "phases add up to {total}, ready at {ready_s}");
    // The printed time counts from the launcher's start, so it holds the
    // QEMU phases and whatever the launcher did first.
    let printed: f64 = ready["dinv-launcher: ready in ".len()..].split(' ').next().unwrap().parse().unwrap();
    let since_start = json["since_start_s"].as_f64().unwrap();
    assert!((printed - since_start).abs() <= 0.051 && since_start >= ready_s, "{ready} vs {since_start} and {ready_s}");
    assert_eq!(json["kvm_attempt_s"], serde_json::Value::Null);
    eprintln!("{ready}\n{json:#}");
    let markers: Vec<&str> = json["markers"].as_array().unwrap().iter().map(|m| m["marker"].as_str().unwrap()).collect();
    assert_eq!(markers, ["kernel", "initramfs", "switch_root", "guest_init", "dockerd"]);
}

/// On a host whose KVM passes every check but hangs the guest before its
/// kernel prints, the watchdog kills QEMU and starts it again under TCG.
#[test]
fn a_guest_hung_under_kvm_is_restarted_under_tcg() {
    let f = Fixture::new("kvmhang");
    f.serve_qga();
    let ping = f.serve_ping();
    let env = [("DINV_ACCEL", ""), ("DINV_TEST_KVM_PROBE", "works"), ("DINV_KVM_WATCHDOG", "1"), ("FAKE_KVM_HANG", "1"), ("FAKE_BOOT", "1")];
    let t = Instant::now();
    let (code, _, stderr) = finish(f.launcher(&ping, &env, &["sh", "-c", "echo cmd-ran >> \"$FAKE_DIR/events\""]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        f.events(),
        ["qemu-start", "kvm-hang", "qemu-start", "cmd-ran", "qga guest-sync", "qga guest-shutdown", "qemu-exit"],
        "{stderr}"
    );
    assert!(t.elapsed() >= Duration::from_secs(1), "killed before the watchdog's second");
    assert!(stderr.contains("no sign of the guest's kernel on the console 1 s after starting QEMU under KVM"), "{stderr}");
    assert!(stderr.contains("starting QEMU again under TCG"), "{stderr}");
    let args = std::fs::read_to_string(f.dir.join("qemu.args")).unwrap();
    assert!(args.starts_with("-M microvm,pic=off -accel tcg -cpu max"), "{args}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(f.dir.join("run/timeline.json")).unwrap()).unwrap();
    assert_eq!(json["accel"], "tcg", "{json:#}");
}

/// A KVM internal error on QEMU's stderr (QEMU then pauses the guest and
/// stays up) sends the launcher to TCG at once, without the watchdog's wait.
#[test]
fn a_kvm_internal_error_restarts_under_tcg_at_once() {
    let f = Fixture::new("kvmerror");
    f.serve_qga();
    let ping = f.serve_ping();
    let env = [("DINV_ACCEL", ""), ("DINV_TEST_KVM_PROBE", "works"), ("FAKE_KVM_HANG", "error"), ("FAKE_BOOT", "1")];
    let t = Instant::now();
    let (code, _, stderr) = finish(f.launcher(&ping, &env, &["true"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(t.elapsed() < Duration::from_secs(15), "waited for the 20 s watchdog: {stderr}");
    assert_eq!(f.events(), ["qemu-start", "kvm-hang", "qemu-start", "qga guest-sync", "qga guest-shutdown", "qemu-exit"], "{stderr}");
    // QEMU's stderr still reaches ours, line by line (the launcher's own
    // lines may come in between).
    for line in ["KVM internal error. Suberror: 1", "emulation failure"] {
        assert!(stderr.lines().any(|l| l == line), "{line:?} not in {stderr}");
    }
    assert!(stderr.contains("QEMU reported \"KVM internal error. Suberror: 1\"; this host's KVM seems not to run the guest"), "{stderr}");
    assert!(std::fs::read_to_string(f.dir.join("qemu.args")).unwrap().starts_with("-M microvm,pic=off -accel tcg"));
    // The ready line counts the failed attempt, and names it.
    let ready = stderr.lines().find(|l| l.starts_with("dinv-launcher: ready in ")).unwrap_or_else(|| panic!("no ready line:\n{stderr}"));
    assert!(ready.contains("(kvm attempt "), "{ready}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(f.dir.join("run/timeline.json")).unwrap()).unwrap();
    let (attempt, total) = (json["kvm_attempt_s"].as_f64().unwrap(), json["since_start_s"].as_f64().unwrap());
    assert!(attempt > 0.0 && total >= attempt + json["ready_s"].as_f64().unwrap() - 0.01, "{json:#}");
}

/// A KVM internal error once the guest runs: QEMU has paused the guest for
/// good, so the launcher stops it and exits 1 instead of hanging.
#[test]
fn a_kvm_internal_error_after_readiness_stops_the_container() {
    let f = Fixture::new("kvmlate");
    f.serve_qmp();
    let ping = f.serve_ping();
    let env = [("DINV_ACCEL", ""), ("DINV_TEST_KVM_PROBE", "works"), ("FAKE_LATE_KVM_ERROR", "1")];
    let (code, _, stderr) = finish(f.launcher(&ping, &env, &[]));
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(f.events(), ["qemu-start", "qmp qmp_capabilities", "qmp quit", "qemu-exit"], "{stderr}");
    assert!(stderr.contains("ready in"), "{stderr}");
    assert!(stderr.contains("QEMU reported \"KVM internal error. Suberror: 1\": the guest is stopped; stopping QEMU"), "{stderr}");
}

/// A guest whose kernel prints in time keeps KVM, however long dockerd
/// then takes; and a KVM the user forced is never traded for TCG.
#[test]
fn a_kvm_guest_that_boots_keeps_kvm() {
    let f = Fixture::new("kvmok");
    f.serve_qga();
    let ping = f.serve_ping();
    // The kernel banner comes 0.1 s in, dockerd answers after about 4 s.
    let env = [("DINV_ACCEL", ""), ("DINV_TEST_KVM_PROBE", "works"), ("DINV_KVM_WATCHDOG", "1.5"), ("FAKE_BOOT", "1"), ("FAKE_DOCKERD_SECS", "3")];
    let (code, _, stderr) = finish(f.launcher(&ping, &env, &["true"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(f.events(), ["qemu-start", "qga guest-sync", "qga guest-shutdown", "qemu-exit"], "{stderr}");
    assert!(!stderr.contains("no sign of the guest's kernel"), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(f.dir.join("run/timeline.json")).unwrap()).unwrap();
    assert_eq!(json["accel"], "kvm", "{json:#}");

    // Forced: the hung guest is left alone until dockerd's own timeout.
    // No agent or QMP socket: once dockerd's wait is over, QEMU is killed.
    let f = Fixture::new("kvmforced");
    let env = [("DINV_ACCEL", "kvm"), ("DINV_KVM_WATCHDOG", "0.3"), ("FAKE_KVM_HANG", "1"), ("DINV_READY_TIMEOUT", "1.5"), ("DINV_STOP_TIMEOUT", "0.3"), ("DINV_SHUTDOWN_TIMEOUT", "0")];
    let (code, _, stderr) = finish(f.launcher(&Fixture::dead_addr(), &env, &[]));
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(f.events().iter().filter(|e| *e == "qemu-start").count(), 1, "{stderr}");
    assert!(!stderr.contains("no sign of the guest's kernel"), "{stderr}");
    assert!(stderr.contains("did not answer /_ping within"), "{stderr}");
}

/// The saved state the fake snapshot holds.
const STATE: &[u8] = b"QEVM saved state of a fake guest";

impl Fixture {
    /// Gives the fixture's image a snapshot that fits its launcher.json (a
    /// manifest as `save-snapshot` writes it, the memory, state and disks).
    fn with_snapshot(&self) {
        use dinv_contract::snapshot as snap;
        let dir = self.dir.join("snapshot");
        std::fs::create_dir_all(&dir).unwrap();
        let settings = dinv_launcher::settings::Settings::from_lookup(&|k| (k == "DINV_DOCKER_SIZE").then(|| "64M".to_string())).unwrap();
        let tsc = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| dinv_launcher::qemu::tsc_khz(&t));
        let profile = dinv_launcher::save::profile(&settings, &dinv_contract::launcher::base_append(), None, 2, tsc);
        let manifest = snap::Manifest {
            format: snap::FORMAT,
            command_line: dinv_launcher::snapshot_vm::signature(&profile),
            profile,
            base: snap::BaseFiles { kernel: 6, initrd: None, rootfs: 6 },
            base_image: None,
            state_bytes: STATE.len() as u64,
            memory_data_bytes: 0,
        };
        std::fs::write(dir.join(snap::MANIFEST), serde_json::to_vec(&manifest).unwrap()).unwrap();
        std::fs::write(dir.join(snap::STATE), STATE).unwrap();
        std::fs::File::create(dir.join(snap::MEMORY)).unwrap().set_len(512 << 20).unwrap();
        dinv_contract::qcow2::create(&dir.join(snap::DOCKER_DISK), 64 << 20, None).unwrap();
        dinv_contract::qcow2::create(&dir.join(snap::ROOT_OVERLAY), 6, Some(("../rootfs.img", "raw"))).unwrap();
        let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(self.dir.join("launcher.json")).unwrap()).unwrap();
        config["snapshot"] = serde_json::json!(dir);
        std::fs::write(self.dir.join("launcher.json"), config.to_string()).unwrap();
    }
}

#[test]
fn a_snapshot_is_restored_and_fixed_up_before_the_command() {
    let f = Fixture::new("restore");
    f.with_snapshot();
    f.serve_qga();
    f.serve_restore();
    f.serve_qmp();
    let ping = f.serve_ping();
    let share = f.dir.join("share");
    std::fs::create_dir_all(&share).unwrap();
    let env = [("DINV_MOUNTS", share.to_str().unwrap()), ("DINV_DOCKER_SOCK_GID", "999"), ("DINV_TCP_PORTS", "8080:80")];
    let (code, _, stderr) = finish(f.launcher(&ping, &env, &["sh", "-c", "echo cmd-ran >> \"$FAKE_DIR/events\""]));
    assert_eq!(code, 0, "{stderr}");
    // The launcher may ask QMP before the fake QEMU logs its start, and
    // asks until the fake has read the state; from `cont` on, the order is fixed.
    let events = f.events();
    let pos = |e: &str| events.iter().position(|x| x == e).unwrap_or_else(|| panic!("no {e} in {events:?}"));
    assert!(pos("qemu-start") < pos("qemu-restore") && pos("qemu-restore") < pos("qmp cont"), "{events:?}");
    assert_eq!(
        events[pos("qmp cont")..],
        ["qmp cont", "qmp human-monitor-command", "hostfwd_add net0 tcp::2375-:2375", "qmp human-monitor-command", "hostfwd_add net0 tcp::8080-:80", "restore request", "cmd-ran", "qga guest-sync", "qga guest-shutdown", "qemu-exit"],
        "{stderr}"
    );
    let incoming: serde_json::Value = serde_json::from_slice(&std::fs::read(f.dir.join("incoming.json")).unwrap()).unwrap();
    assert_eq!(incoming["uri"].as_str().unwrap(), format!("file:{}", f.dir.join("snapshot/state").display()));
    let args = std::fs::read_to_string(f.dir.join("qemu.args")).unwrap();
    assert!(args.contains(&format!("file={},format=qcow2,if=none,id=root,snapshot=on", f.dir.join("snapshot/root.qcow2").display())), "{args}");
    assert!(args.contains(&format!("path={} ", share.display())) && args.contains("run/empty-share -device virtio-9p-device,fsdev=fs1,mount_tag=dinv1"), "a share and an unused slot: {args}");
    assert!(args.ends_with("-incoming defer\n"), "{args}");
    assert!(args.contains("-netdev user,id=net0 -device") && !args.contains("hostfwd"), "forwards come after `cont`: {args}");
    assert!(pos("qmp migrate-set-capabilities") < pos("qmp migrate-incoming") && pos("qmp migrate-incoming") < pos("qmp cont"), "{events:?}");
    assert!(args.contains(&format!("mem-path={},share=off,readonly=on,rom=off", f.dir.join("snapshot/memory").display())), "{args}");
    // The docker disk was written out from the snapshot's (all holes here).
    assert_eq!(std::fs::metadata(f.dir.join("docker/docker.img")).unwrap().len(), 64 << 20);
    let req: serde_json::Value = serde_json::from_slice(&std::fs::read(f.dir.join("restore-request.json")).unwrap()).unwrap();
    assert_eq!(req["entropy"].as_str().unwrap().len(), 128, "{req}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as f64;
    assert!((now - req["clock_ns"].as_f64().unwrap()).abs() < 30e9, "the host's clock: {req}");
    assert_eq!(req["shares"], serde_json::json!([{"tag": "dinv0", "path": share}]));
    assert_eq!((req["sock_gid"].as_u64(), req["tls"].is_null()), (Some(999), true));
    assert!(stderr.contains("dinv-launcher: guest: [    9.100] dinv-guest: restore: reseeded"), "{stderr}");
    let line = stderr.lines().find(|l| l.starts_with("dinv-launcher: restored in ")).unwrap_or_else(|| panic!("no restored line:\n{stderr}"));
    assert!(line.contains("(load ") && line.contains(", resume ") && line.contains(", fixups "), "{line}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(f.dir.join("run/timeline.json")).unwrap()).unwrap();
    assert_eq!((json["start"].as_str(), json["phases"].as_array().map(Vec::len)), (Some("restore"), Some(3)), "{json:#}");

    // Two restores never get the same entropy.
    let first = req["entropy"].clone();
    std::fs::remove_file(f.dir.join("docker/docker.img")).unwrap();
    let (code, _, stderr) = finish(f.launcher(&ping, &[], &["true"]));
    assert_eq!(code, 0, "{stderr}");
    let again: serde_json::Value = serde_json::from_slice(&std::fs::read(f.dir.join("restore-request.json")).unwrap()).unwrap();
    assert_ne!(again["entropy"], first);
}

#[test]
fn a_failed_restore_boots_instead_unless_a_snapshot_was_required() {
    let f = Fixture::new("restorefail");
    f.with_snapshot();
    f.serve_qga();
    f.serve_restore();
    f.serve_qmp();
    let ping = f.serve_ping();
    let (code, _, stderr) = finish(f.launcher(&ping, &[("FAKE_RESTORE_FAIL", "1")], &["true"]));
    assert_eq!(code, 0, "{stderr}");
    let events = f.events();
    assert!(events.contains(&"qemu-restore".to_string()) && !events.contains(&"qmp cont".to_string()), "{events:?}");
    assert!(events.iter().filter(|e| *e == "qemu-start").count() == 2, "{events:?}");
    assert!(stderr.contains("restoring the snapshot failed: QEMU exited with status 1 while restoring; booting instead"), "{stderr}");
    assert!(!std::fs::read_to_string(f.dir.join("qemu.args")).unwrap().contains("-incoming"));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(f.dir.join("run/timeline.json")).unwrap()).unwrap();
    assert_eq!(json["start"], "boot");
    assert!(json["boot_reason"].as_str().unwrap().starts_with("the restore failed"), "{json:#}");

    let f = Fixture::new("restorefail2");
    f.with_snapshot();
    f.serve_qmp();
    let (code, _, stderr) = finish(f.launcher(&Fixture::dead_addr(), &[("FAKE_RESTORE_FAIL", "1"), ("DINV_START", "snapshot")], &["true"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("restoring the snapshot failed: QEMU exited with status 1 while restoring"), "{stderr}");
    assert_eq!(f.events().iter().filter(|e| *e == "qemu-start").count(), 1, "{stderr}");
}

#[test]
fn what_the_snapshot_fixed_forces_a_boot_and_is_named() {
    let f = Fixture::new("restoreboot");
    f.with_snapshot();
    f.serve_qga();
    let ping = f.serve_ping();
    let (code, _, stderr) = finish(f.launcher(&ping, &[("DINV_MEMORY", "1G")], &["true"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("dinv-launcher: booting instead of restoring the snapshot: DINV_MEMORY is 1G, the snapshot has 512M"), "{stderr}");
    assert!(!std::fs::read_to_string(f.dir.join("qemu.args")).unwrap().contains("-incoming"));
    assert!(!f.events().contains(&"qemu-restore".to_string()));

    // A docker disk from an earlier run is never replaced.
    let disk = f.dir.join("docker/docker.img");
    std::fs::write(&disk, b"data of an earlier run").unwrap();
    let (code, _, stderr) = finish(f.launcher(&ping, &[], &["true"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("booting instead of restoring the snapshot: the docker data disk holds data from an earlier run"), "{stderr}");
    assert_eq!(std::fs::read(&disk).unwrap(), b"data of an earlier run");

    // DINV_START=snapshot fails with the reason, before QEMU starts; =boot boots quietly about it.
    std::fs::remove_file(&disk).unwrap();
    let before = f.events().len();
    let (code, _, stderr) = finish(f.launcher(&ping, &[("DINV_START", "snapshot"), ("DINV_CPUS", "2")], &["true"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("error: DINV_START=snapshot, but DINV_CPUS is 2, the snapshot has 1"), "{stderr}");
    assert_eq!(f.events().len(), before, "QEMU must not start");
    let (code, _, stderr) = finish(f.launcher(&ping, &[("DINV_START", "boot")], &["true"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("booting instead of restoring the snapshot: DINV_START=boot"), "{stderr}");
    let (code, _, stderr) = finish(f.launcher(&ping, &[("DINV_START", "later")], &["true"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("DINV_START=\"later\""), "{stderr}");
}

