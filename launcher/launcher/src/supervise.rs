//! Runs QEMU as a child and supervises it: readiness, the container's
//! command, graceful shutdown on SIGTERM/SIGINT/SIGHUP (guest agent, then
//! ACPI power button, then QMP quit, then SIGKILL), and reaping of every
//! child (the launcher is usually PID 1).
//!
//! Exit code: the command's, if one ran; else 0 after a clean guest
//! shutdown, 1 if the guest had to be stopped by force or QEMU failed, or
//! QEMU's own status if the guest powered off by itself.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::accel::Accel;
use super::config::Paths;
use super::console_watch::Follower;
use super::certs::CertDir;
use super::ready::{self, NotReady, Probe};
use super::restore::{self, Snapshot};
use super::settings::Settings;
use super::start::DataDisk;
use super::{disks, qga, qmp, signals, timeline, LauncherError};

/// How the guest starts.
#[derive(Clone, Debug)]
pub enum Launch {
    /// Boot with these QEMU arguments.
    Boot(Vec<String>),
    /// Restore the image's snapshot (see `restore.rs`).
    Restore(Box<Snapshot>),
}

/// Everything needed to run the guest.
pub struct Plan {
    pub qemu: PathBuf,
    /// The accelerator `launch` uses (reported in timeline.json).
    pub accel: Accel,
    pub launch: Launch,
    /// How to start under TCG when QEMU fails early under KVM: a last
    /// resort, as the KVM probe already sends hosts where QEMU would abort
    /// at vCPU init (a refused MSR) straight to TCG.
    pub tcg_fallback: Option<Launch>,
    /// TCG boot arguments for when a restore fails before the command
    /// ran; None with `DINV_START=snapshot`, which then fails.
    pub boot_after_restore: Option<Vec<String>>,
    /// Why an image with a snapshot boots (timeline.json).
    pub boot_reason: Option<String>,
    /// Run once dockerd is ready; empty keeps the VM up until signalled.
    pub command: Vec<String>,
    pub settings: Settings,
    pub paths: Paths,
    /// How readiness is polled (TLS with `DOCKER_TLS_CERTDIR`).
    pub probe: Probe,
    /// When the launcher started (the container's start, to within its
    /// exec): the ready line counts from here.
    pub started: Instant,
}

/// The docker client variables the command gets with `DOCKER_TLS_CERTDIR`
/// (docker:dind's client setup), or none.
pub fn command_env(s: &Settings) -> Vec<(&'static str, String)> {
    let Some(dir) = &s.tls_certdir else { return Vec::new() };
    vec![
        ("DOCKER_HOST", format!("tcp://localhost:{}", s.docker_port())),
        ("DOCKER_TLS_VERIFY", "1".into()),
        ("DOCKER_CERT_PATH", CertDir(dir.clone()).client_dir().to_string_lossy().into_owned()),
    ]
}

enum Event {
    Signal(libc::c_int),
    Ready(Result<Duration, NotReady>),
    /// Outcome of the graceful shutdown request (which channel worked).
    Graceful(Result<&'static str, String>),
    /// QEMU (this pid) printed that KVM stopped the guest.
    KvmFailed(libc::pid_t, String),
    /// A restore ended: the guest is ready (when each step ended), or why not.
    Restored(Result<restore::Steps, String>),
}

/// A restore under way.
struct Restoring {
    /// Boot arguments if it fails.
    fallback: Option<Vec<String>>,
    /// Bytes of the docker disk written out before QEMU started.
    disk_bytes: u64,
    /// Why it failed (QEMU is then killed and the reaper boots).
    failed: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    Running,
    Graceful(Instant),
    Quitting(Instant),
    Killed,
}

/// How long QEMU gets to exit after `quit` before SIGKILL.
const QUIT_GRACE: Duration = Duration::from_secs(5);
/// A KVM failure within this time of starting triggers the TCG retry.
const EARLY_FAILURE: Duration = Duration::from_secs(30);

fn log(msg: impl AsRef<str>) {
    eprintln!("dinv-launcher: {}", msg.as_ref());
}

/// Exit code of a waitpid status: the code, or 128 + signal.
fn status_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    }
}

/// Reaps every exited child; returns (pid, exit code) pairs.
fn reap() -> Vec<(libc::pid_t, i32)> {
    let mut out = Vec::new();
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid out pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return out;
        }
        out.push((pid, status_code(status)));
    }
}

fn kill(pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(pid, sig) };
}

struct Supervisor {
    plan: Plan,
    tx: Sender<Event>,
    qemu: libc::pid_t,
    qemu_started: Instant,
    qemu_gone: Arc<AtomicBool>,
    /// Follows the console log for the boot timeline until readiness.
    console: Option<Follower>,
    qemu_status: Option<i32>,
    ready: bool,
    cmd: Option<libc::pid_t>,
    cmd_status: Option<i32>,
    /// A stop signal (SIGTERM/SIGINT) arrived: the container is being stopped.
    signalled: bool,
    stop: Stop,
    /// QEMU was killed because KVM does not run the guest (see
    /// [`Supervisor::give_up_on_kvm`]); the reaper starts it under TCG.
    kvm_given_up: bool,
    /// Seconds a failed KVM attempt cost before the TCG start.
    kvm_attempt: Option<f64>,
    restoring: Option<Restoring>,
    /// When the restore steps ended, once restored.
    restored: Option<restore::Steps>,
}

impl Supervisor {
    fn begin_graceful(&mut self) {
        if self.stop != Stop::Running {
            return;
        }
        self.stop = Stop::Graceful(Instant::now());
        let (qga_sock, qmp_sock, tx) = (self.plan.paths.qga_socket(), self.plan.paths.qmp_socket(), self.tx.clone());
        let sync_timeout = self.plan.settings.stop_timeout.clamp(Duration::from_millis(100), Duration::from_secs(5));
        log("shutting the guest down");
        std::thread::spawn(move || {
            let r = match qga::shutdown(&qga_sock, sync_timeout) {
                Ok(()) => Ok("guest agent"),
                Err(e1) => match qmp::system_powerdown(&qmp_sock, Duration::from_secs(2)) {
                    Ok(()) => {
                        log(format!("{e1}; sent the ACPI power button instead"));
                        Ok("ACPI power button")
                    }
                    Err(e2) => Err(format!("{e1}; {e2}")),
                },
            };
            let _ = tx.send(Event::Graceful(r));
        });
    }

    fn quit(&mut self, why: &str) {
        if matches!(self.stop, Stop::Quitting(_) | Stop::Killed) {
            return;
        }
        log(format!("{why}; stopping QEMU"));
        if let Err(e) = qmp::quit(&self.plan.paths.qmp_socket(), Duration::from_secs(2)) {
            log(format!("{e}; killing QEMU"));
            kill(self.qemu, libc::SIGKILL);
            self.stop = Stop::Killed;
            return;
        }
        self.stop = Stop::Quitting(Instant::now());
    }

    fn on_signal(&mut self, sig: libc::c_int) {
        if sig == libc::SIGCHLD {
            return;
        }
        log(format!("received {}", signals::name(sig)));
        self.signalled = true;
        if let (Some(pid), None) = (self.cmd, self.cmd_status) {
            kill(pid, sig);
        }
        match self.stop {
            Stop::Running => self.begin_graceful(),
            Stop::Graceful(_) => self.quit("second signal"),
            _ => {}
        }
    }

    /// Once dockerd answers: the container's command.
    fn run_command(&mut self) {
        if self.plan.command.is_empty() || self.stop != Stop::Running {
            return;
        }
        let mut c = Command::new(&self.plan.command[0]);
        c.args(&self.plan.command[1..]).envs(command_env(&self.plan.settings));
        signals::unblock_in_child(&mut c);
        match c.spawn() {
            Ok(child) => self.cmd = Some(child.id() as libc::pid_t),
            Err(e) => {
                log(format!("cannot run {:?}: {e}", self.plan.command[0]));
                self.cmd_status = Some(if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 });
                self.begin_graceful();
            }
        }
    }

    fn on_restored(&mut self, r: Result<restore::Steps, String>) {
        let Some(restoring) = self.restoring.as_mut() else { return };
        match r {
            Ok(steps) => {
                self.ready = true;
                self.restored = Some(steps);
                self.report_timeline();
                self.run_command();
            }
            // A signal may have stopped it on purpose; the reaper handles QEMU's exit.
            Err(_) if self.stop != Stop::Running => {}
            Err(why) => {
                restoring.failed = Some(why);
                kill(self.qemu, libc::SIGKILL);
            }
        }
    }

    /// QEMU exited while restoring, before the command ran: boot instead
    /// (the docker disk holds nothing of the user's yet), unless
    /// `DINV_START=snapshot`; true if a boot started.
    fn boot_after_failed_restore(&mut self, status: i32) -> bool {
        let Some(r) = self.restoring.take() else { return false };
        if self.ready || self.stop != Stop::Running {
            return false;
        }
        let why = r.failed.unwrap_or_else(|| format!("QEMU exited with status {status} while restoring"));
        let Some(args) = r.fallback else {
            log(format!("restoring the snapshot failed: {why}"));
            self.cmd_status.get_or_insert(1);
            return false;
        };
        log(format!("restoring the snapshot failed: {why}; booting instead"));
        let disk = &self.plan.paths.docker_disk;
        let removed = match std::fs::remove_file(disk) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LauncherError::io(disk, "removing the restored docker disk")(e)),
            _ => Ok(()),
        };
        if let Err(e) = removed.and_then(|()| disks::prepare(&self.plan.settings, &self.plan.paths)) {
            log(e.to_string());
            self.cmd_status.get_or_insert(1);
            return false;
        }
        self.plan.boot_reason = Some(format!("the restore failed: {why}"));
        match self.start_qemu(&args) {
            Ok(()) => true,
            Err(e) => {
                log(e.to_string());
                false
            }
        }
    }

    fn on_ready(&mut self, r: Result<Duration, NotReady>) {
        match r {
            Ok(_) => {
                self.ready = true;
                self.report_timeline();
                self.run_command();
            }
            Err(NotReady::Timeout { after, last }) => {
                drop(self.console.take());
                log(format!("dockerd did not answer /_ping within {:.0} s (last: {last}); see {}", after.as_secs_f64(), self.plan.paths.console_log().display()));
                self.cmd_status.get_or_insert(1);
                self.begin_graceful();
            }
            Err(NotReady::Stopped) => {}
        }
    }

    /// The final exit code once QEMU has exited.
    fn exit_code(&self, qemu: i32) -> i32 {
        // When the container is stopped (`docker stop`), the command is
        // interrupted on purpose: a clean guest shutdown is success.
        let stopped_cleanly = self.signalled && matches!(self.stop, Stop::Graceful(_)) && qemu == 0;
        if let Some(c) = self.cmd_status {
            if !stopped_cleanly {
                return c;
            }
        }
        match self.stop {
            Stop::Graceful(_) if qemu == 0 => {
                log("the guest shut down cleanly");
                0
            }
            Stop::Graceful(_) | Stop::Running if qemu != 0 => {
                log(format!("QEMU exited with status {qemu}; see {}", self.plan.paths.console_log().display()));
                qemu
            }
            Stop::Running if !self.ready => {
                log("QEMU exited before dockerd was ready");
                1
            }
            Stop::Running => {
                log("the guest powered off");
                0
            }
            _ => {
                log("the guest was stopped by force");
                1
            }
        }
    }

    /// At readiness: prints the `ready in` (or `restored in`) line and
    /// writes timeline.json.
    fn report_timeline(&mut self) {
        let ms = |s: f64| (s * 1000.0).round() / 1000.0;
        let since = |i: Instant| i.duration_since(self.plan.started).as_secs_f64();
        let json = if let (Some(st), Some(r)) = (self.restored, self.restoring.as_ref()) {
            let restored = timeline::Restored {
                qemu_started: since(self.qemu_started),
                loaded: since(st.loaded),
                resumed: since(st.resumed),
                guest_done: since(st.guest_done),
                ready: since(st.ready),
                kvm_attempt: self.kvm_attempt,
                docker_disk_bytes: r.disk_bytes,
            };
            log(restored.summary());
            restored.to_json()
        } else {
            // QEMU start and readiness are host times; the phases in between
            // come from the console (see timeline.rs for how each is measured).
            let ready = self.qemu_started.elapsed().as_secs_f64();
            let total = self.plan.started.elapsed().as_secs_f64();
            let t = self.console.take().map(Follower::finish).unwrap_or_default();
            // What came before this QEMU: a failed KVM attempt, and the
            // launcher's own set-up (disks, certificates).
            let before = timeline::before_qemu(total - ready, self.kvm_attempt);
            log(timeline::summary(total, &[before.clone(), t.phases(ready)].concat()));
            let mut json = t.to_json(ready, self.plan.accel);
            json["start"] = serde_json::json!("boot");
            json["boot_reason"] = serde_json::json!(self.plan.boot_reason);
            json["since_start_s"] = serde_json::json!(ms(total));
            json["kvm_attempt_s"] = serde_json::json!(self.kvm_attempt.map(ms));
            json
        };
        let path = self.plan.paths.timeline_json();
        let tmp = path.with_extension("json.tmp");
        let json = format!("{json:#}\n");
        if let Err(e) = std::fs::write(&tmp, json).and_then(|()| std::fs::rename(&tmp, &path)) {
            log(format!("cannot write {}: {e}", path.display()));
        }
    }

    /// Starts QEMU with `args`, a console follower and a readiness poller.
    fn start_qemu(&mut self, args: &[String]) -> Result<(), LauncherError> {
        // A previous run's console log and timeline must not be mistaken
        // for this one's (QEMU truncates the log, but only once it opens it).
        drop(self.console.take());
        let log_path = self.plan.paths.console_log();
        let _ = std::fs::remove_file(&log_path);
        let _ = std::fs::remove_file(self.plan.paths.timeline_json());
        self.qemu_started = Instant::now();
        self.qemu = spawn_qemu(&self.plan, args, &self.tx)?;
        self.restoring = None;
        self.console = Some(Follower::start(log_path, self.qemu_started));
        self.qemu_status = None;
        self.qemu_gone = Arc::new(AtomicBool::new(false));
        let (gone, tx, addr, total) = (self.qemu_gone.clone(), self.tx.clone(), self.plan.settings.ping_addr, self.plan.settings.ready_timeout);
        let probe = self.plan.probe.clone();
        std::thread::spawn(move || {
            let r = ready::wait_ready(&addr, &probe, total, &|| gone.load(Ordering::SeqCst));
            let _ = tx.send(Event::Ready(r));
        });
        Ok(())
    }

    /// Starts the guest as `launch` says.
    fn start_launch(&mut self, launch: Launch) -> Result<(), LauncherError> {
        match launch {
            Launch::Boot(args) => self.start_qemu(&args),
            Launch::Restore(s) => self.start_restore(&s),
        }
    }

    /// Restores `snap`: the docker disk written out, QEMU started on the
    /// saved state, and a thread that resumes the guest, fixes it up and
    /// waits for dockerd (`Event::Restored`). If the disk cannot be
    /// prepared, boots instead (or fails with `DINV_START=snapshot`).
    fn start_restore(&mut self, snap: &Snapshot) -> Result<(), LauncherError> {
        let prepared = restore::prepare(snap, &self.plan.paths)
            .and_then(|bytes| Ok((bytes, restore::request(&self.plan.settings, &restore::host_entropy().map_err(LauncherError::io("/dev/urandom", "reading"))?)?)));
        let (disk_bytes, request) = match (prepared, self.plan.boot_after_restore.clone()) {
            (Ok(p), _) => p,
            (Err(e), None) => return Err(e),
            (Err(e), Some(args)) => {
                log(format!("cannot restore the snapshot ({e}); booting instead"));
                self.plan.boot_reason = Some(e.to_string());
                let _ = disks::prepare(&self.plan.settings, &self.plan.paths);
                return self.start_qemu(&args);
            }
        };
        drop(self.console.take());
        let _ = std::fs::remove_file(self.plan.paths.console_log());
        let _ = std::fs::remove_file(self.plan.paths.timeline_json());
        let args = restore::qemu_args(snap, &self.plan.settings, &self.plan.paths);
        self.qemu_started = Instant::now();
        self.qemu = spawn_qemu(&self.plan, &args, &self.tx)?;
        self.qemu_status = None;
        self.qemu_gone = Arc::new(AtomicBool::new(false));
        self.restoring = Some(Restoring { fallback: self.plan.boot_after_restore.clone(), disk_bytes, failed: None });
        let (gone, tx, paths, settings, probe, dir) = (self.qemu_gone.clone(), self.tx.clone(), self.plan.paths.clone(), self.plan.settings.clone(), self.plan.probe.clone(), snap.dir.clone());
        std::thread::spawn(move || {
            let r = restore::resume(&dir, &paths, &settings, &probe, &request, &|| gone.load(Ordering::SeqCst));
            let _ = tx.send(Event::Restored(r));
        });
        Ok(())
    }

    /// Under a KVM the launcher chose itself, a guest whose kernel shows no
    /// sign of life on the console within `DINV_KVM_WATCHDOG` is killed (it
    /// has not touched its disks yet) and started again under TCG: some
    /// nested hosts pass every KVM check, then hang the guest in real-mode
    /// setup or stop it with a KVM internal error, and QEMU stays up.
    fn check_kvm_watchdog(&mut self) {
        let limit = self.plan.settings.kvm_watchdog;
        if self.plan.accel != Accel::Kvm
            || self.plan.tcg_fallback.is_none()
            || limit.is_zero()
            || self.kvm_given_up
            || self.ready
            || self.stop != Stop::Running
            || self.qemu_status.is_some()
            || self.qemu_started.elapsed() < limit
        {
            return;
        }
        if self.console.as_ref().is_none_or(Follower::kernel_running) {
            return;
        }
        self.give_up_on_kvm(&format!("no sign of the guest's kernel on the console {:.0} s after starting QEMU under KVM", limit.as_secs_f64()));
    }

    /// Kills a QEMU whose guest KVM cannot run, so that the reaper starts
    /// it again under TCG.
    fn give_up_on_kvm(&mut self, why: &str) {
        log(format!("{why}; this host's KVM seems not to run the guest: killing QEMU (DINV_ACCEL=kvm keeps KVM, DINV_KVM_WATCHDOG sets the wait)"));
        self.kvm_given_up = true;
        kill(self.qemu, libc::SIGKILL);
    }

    /// QEMU printed a KVM internal error: the guest is stopped for good
    /// (QEMU itself stays up). Before readiness, TCG takes over as for the
    /// watchdog; after it, QEMU is stopped so the container does not hang.
    fn on_kvm_failed(&mut self, pid: libc::pid_t, line: &str) {
        if pid != self.qemu || self.qemu_status.is_some() || self.kvm_given_up {
            return;
        }
        if !self.ready && self.stop == Stop::Running && self.plan.tcg_fallback.is_some() {
            self.give_up_on_kvm(&format!("QEMU reported {line:?}"));
        } else {
            self.cmd_status.get_or_insert(1);
            self.quit(&format!("QEMU reported {line:?}: the guest is stopped"));
        }
    }

    /// After an early KVM failure, or the KVM watchdog, retries once with
    /// TCG; true if it did.
    fn retry_with_tcg(&mut self, status: i32) -> bool {
        let early_failure = status != 0 && self.qemu_started.elapsed() <= EARLY_FAILURE;
        if self.ready || self.stop != Stop::Running || !(early_failure || self.kvm_given_up) {
            return false;
        }
        let Some(mut launch) = self.plan.tcg_fallback.take() else { return false };
        if self.kvm_given_up {
            log("starting QEMU again under TCG emulation, which is much slower");
        } else {
            log(format!("QEMU failed under KVM (status {status}); retrying with TCG emulation, which is much slower"));
        }
        // The KVM guest may have got as far as the docker disk: a restore
        // never replaces what it wrote.
        if matches!(launch, Launch::Restore(_)) && restore::data_disk(&self.plan.paths.docker_disk) == DataDisk::HoldsData {
            if let Some(args) = self.plan.boot_after_restore.clone() {
                log("booting instead of restoring the snapshot: the KVM attempt wrote to the docker disk");
                self.plan.boot_reason = Some("the KVM attempt wrote to the docker disk".into());
                launch = Launch::Boot(args);
            }
        }
        self.plan.accel = Accel::Tcg;
        self.kvm_attempt = Some(self.qemu_started.elapsed().as_secs_f64());
        match self.start_launch(launch) {
            Ok(()) => true,
            Err(e) => {
                log(e.to_string());
                false
            }
        }
    }

    fn run(&mut self, rx: mpsc::Receiver<Event>) -> i32 {
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Event::Signal(sig)) => self.on_signal(sig),
                Ok(Event::Ready(r)) => self.on_ready(r),
                Ok(Event::KvmFailed(pid, line)) => self.on_kvm_failed(pid, &line),
                Ok(Event::Restored(r)) => self.on_restored(r),
                Ok(Event::Graceful(Ok(how))) => log(format!("asked the guest to power off via the {how}")),
                Ok(Event::Graceful(Err(e))) => {
                    if self.qemu_status.is_none() {
                        self.quit(&format!("cannot reach the guest ({e})"));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => unreachable!("the supervisor holds a sender"),
            }
            for (pid, code) in reap() {
                if pid == self.qemu {
                    self.qemu_gone.store(true, Ordering::SeqCst);
                    if !self.boot_after_failed_restore(code) && !self.retry_with_tcg(code) {
                        self.qemu_status = Some(code);
                    }
                } else if Some(pid) == self.cmd {
                    self.cmd_status = Some(code);
                    log(format!("command exited with status {code}"));
                    self.begin_graceful();
                }
            }
            self.check_kvm_watchdog();
            if let Some(q) = self.qemu_status {
                drop(self.console.take());
                if let (Some(pid), None) = (self.cmd, self.cmd_status) {
                    log("QEMU is gone; stopping the command");
                    kill(pid, libc::SIGTERM);
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while self.cmd_status.is_none() && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(50));
                        if let Some((_, c)) = reap().into_iter().find(|(p, _)| *p == pid) {
                            self.cmd_status = Some(c);
                        }
                    }
                    if self.cmd_status.is_none() {
                        kill(pid, libc::SIGKILL);
                        self.cmd_status = Some(137);
                    }
                }
                return self.exit_code(q);
            }
            match self.stop {
                Stop::Graceful(since) if since.elapsed() >= self.plan.settings.stop_timeout => {
                    self.quit(&format!("the guest did not power off within {:.0} s", self.plan.settings.stop_timeout.as_secs_f64()))
                }
                Stop::Quitting(since) if since.elapsed() >= QUIT_GRACE => {
                    log("QEMU did not quit; killing it");
                    kill(self.qemu, libc::SIGKILL);
                    self.stop = Stop::Killed;
                }
                _ => {}
            }
        }
    }
}

/// Starts QEMU and supervises it until it exits; returns the exit code.
pub fn run(plan: Plan) -> Result<i32, LauncherError> {
    let blocked = signals::block(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGCHLD])
        .map_err(|e| LauncherError::Runtime(format!("blocking signals: {e}")))?;
    let (tx, rx) = mpsc::channel();
    signals::forward(blocked, tx.clone(), Event::Signal);

    let mut s = Supervisor {
        plan,
        tx,
        qemu: 0,
        qemu_started: Instant::now(),
        qemu_gone: Arc::new(AtomicBool::new(false)),
        console: None,
        qemu_status: None,
        ready: false,
        cmd: None,
        cmd_status: None,
        signalled: false,
        stop: Stop::Running,
        kvm_given_up: false,
        kvm_attempt: None,
        restoring: None,
        restored: None,
    };
    let launch = s.plan.launch.clone();
    s.start_launch(launch)?;
    Ok(s.run(rx))
}

/// Spawns QEMU; it is reaped by waitpid(-1) with every other child.
/// What QEMU prints on stderr when KVM stops the guest (`kvm_handle_internal_error`,
/// `kvm_arch_handle_exit` in accel/kvm and target/i386/kvm); QEMU then
/// pauses the VM and keeps running.
const KVM_FAILURES: [&str; 2] = ["KVM internal error", "KVM: entry failed"];

/// Copies QEMU's stderr to ours line by line, and reports a KVM failure.
fn watch_stderr(pid: libc::pid_t, from: std::process::ChildStderr, tx: Sender<Event>) {
    use std::io::{BufRead, Write};
    std::thread::spawn(move || {
        let mut r = std::io::BufReader::new(from);
        let mut line = Vec::new();
        while matches!(r.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            let _ = std::io::stderr().write_all(&line);
            let text = String::from_utf8_lossy(&line);
            if KVM_FAILURES.iter().any(|f| text.starts_with(f)) {
                let _ = tx.send(Event::KvmFailed(pid, text.trim_end().chars().take(120).collect()));
            }
            line.clear();
        }
    });
}

/// QEMU with `args`.
fn spawn_qemu(plan: &Plan, args: &[String], tx: &Sender<Event>) -> Result<libc::pid_t, LauncherError> {
    let mut cmd = Command::new(&plan.qemu);
    cmd.args(args).env("TMPDIR", &plan.paths.run_dir);
    if !plan.command.is_empty() {
        // Keep the command's stdin and stdout to itself: the console goes
        // to stderr, and QEMU leaves the terminal's process group so a ^C
        // meant for the command does not kill the VM.
        let stderr = std::io::stderr().as_fd().try_clone_to_owned().map_err(|e| LauncherError::Runtime(format!("dup stderr: {e}")))?;
        cmd.stdin(Stdio::null()).stdout(Stdio::from(stderr));
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    }
    // Under a KVM that may fail (one the launcher chose), QEMU's stderr
    // passes through us to catch a KVM internal error.
    if plan.accel == Accel::Kvm && plan.tcg_fallback.is_some() {
        cmd.stderr(Stdio::piped());
    }
    signals::unblock_in_child(&mut cmd);
    let mut child = cmd.spawn().map_err(LauncherError::io(&plan.qemu, "starting QEMU"))?;
    let pid = child.id() as libc::pid_t;
    if let Some(err) = child.stderr.take() {
        watch_stderr(pid, err, tx.clone());
    }
    Ok(pid)
}
