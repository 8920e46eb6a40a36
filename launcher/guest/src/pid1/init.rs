//! `dinv-guest init`: PID 1 for guests without OpenRC (boot, supervise services, shut down).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::pid1::boot;
use crate::log::say;
use crate::pid1::power::PowerAction;
use crate::pid1::power_button;
use crate::pid1::services::{self, ServicesFile, SERVICES_JSON};
use crate::pid1::shutdown;
use crate::pid1::spawn::{self, describe_status, reap_all};
use crate::pid1::supervisor::Supervisor;

/// How often the loop wakes without a signal: readiness paths and restart delays are polled.
const TICK: Duration = Duration::from_millis(250);

/// The tick while a started service is not ready yet: dockerd waits for
/// containerd's socket, and every tick of delay is boot time.
const READY_TICK: Duration = Duration::from_millis(20);

/// Signals init waits for synchronously; blocked so they queue for `sigtimedwait`.
const SIGNALS: &[libc::c_int] = &[libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGHUP];

/// Runs PID 1 to the end: boot, services, and on a shutdown signal power off or reboot.
pub fn init() -> i32 {
    // SAFETY: getpid has no preconditions.
    if unsafe { libc::getpid() } != 1 {
        say("error: init must run as PID 1 (the kernel's init= or /sbin/init)");
        return 1;
    }
    // Before any thread exists: children and PATH lookups see a usable PATH.
    std::env::set_var("PATH", spawn::PATH);
    block_signals();
    // The launcher takes this first line as the start of the guest init phase.
    say(dinv_contract::console::markers::GUEST_INIT_STARTING);
    // Ctrl-Alt-Del then arrives as SIGINT instead of an immediate reboot.
    // SAFETY: reboot(RB_DISABLE_CAD) only changes the kernel's Ctrl-Alt-Del behaviour.
    unsafe { libc::reboot(libc::RB_DISABLE_CAD) };
    let settings = boot::boot();
    // The launcher's fallback when the guest agent does not answer.
    power_button::spawn();
    let file = services::load(Path::new(SERVICES_JSON)).unwrap_or_else(|e| {
        say(format_args!("error: {e}; no services will run"));
        ServicesFile { services: Vec::new() }
    });
    let mut sup = Supervisor::new(file);
    let action = supervise(&mut sup);
    // A restored guest booted with the snapshot's settings; `dinv-guest
    // restore` leaves this run's timeout.
    let timeout = crate::restore::shutdown_timeout_override().unwrap_or(settings.shutdown_timeout);
    shutdown::shutdown(&mut sup, timeout, action);
    // PID 1 must never exit (the kernel would panic); if reboot(2) failed, idle.
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Blocks init's signals in the calling thread (and threads it creates later).
pub fn block_signals() {
    let set = signal_set();
    // SAFETY: `set` is an initialised sigset_t.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Starts, restarts and reaps services until a shutdown signal arrives; returns what it asked for.
pub fn supervise(sup: &mut Supervisor) -> PowerAction {
    let set = signal_set();
    loop {
        start_due(sup);
        let tick = if sup.awaiting_ready() { READY_TICK } else { TICK };
        let timeout = libc::timespec { tv_sec: 0, tv_nsec: tick.as_nanos() as libc::c_long };
        // SAFETY: `set` and `timeout` are initialised; siginfo may be null.
        let sig = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &timeout) };
        if let Some(action) = PowerAction::for_signal(sig) {
            say(format_args!("received signal {sig}: {}", action.verb()));
            return action;
        }
        for (pid, status) in reap_all() {
            if let Some((i, pause)) = sup.exited(pid, Instant::now()) {
                let again = pause.map(|p| format!("; restarting in {} s", p.as_secs())).unwrap_or_default();
                say(format_args!("{} exited ({}){again}", sup.service(i).name, describe_status(status)));
            }
        }
    }
}

/// Spawns every service that is due, repeating while starts make further services ready.
fn start_due(sup: &mut Supervisor) {
    loop {
        for i in sup.check_ready(&|p| Path::new(p).exists()) {
            if sup.service(i).ready_path.is_some() {
                say(format_args!("{} ready", sup.service(i).name));
            }
        }
        let due = sup.due(Instant::now());
        if due.is_empty() {
            return;
        }
        for i in due {
            match spawn::spawn(sup.service(i)) {
                Ok(pid) => {
                    // For the containerd and dockerd services this is the launcher's "dockerd started"
                    // marker (console::markers::CONTAINERD_SPAWNED, DOCKERD_SPAWNED): keep the wording.
                    say(format_args!("started {} (pid {pid})", sup.service(i).name));
                    sup.started(i, pid, Instant::now());
                }
                Err(e) => {
                    let (name, program) = (sup.service(i).name.clone(), sup.service(i).argv[0].clone());
                    let again = sup.exited_at(i, Instant::now()).map(|p| format!("; retrying in {} s", p.as_secs())).unwrap_or_default();
                    say(format_args!("error: starting {name} ({program}): {e}{again}"));
                }
            }
        }
    }
}

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the zeroed set; sigaddset only sets bits.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &sig in SIGNALS {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::process::Command;

    const HELPER_ENV: &str = "DINV_GUEST_SUPERVISE_DIR";

    /// Runs the supervisor for real in a child test process, where reaping every child is safe.
    #[test]
    fn supervises_restarts_and_stops_in_reverse_order() {
        let dir = TempDir::new("supervise");
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "pid1::init::tests::supervise_helper", "--ignored", "--nocapture", "--test-threads=1"])
            .env(HELPER_ENV, dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "helper failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let pos = |needle: &str| stdout.find(needle).unwrap_or_else(|| panic!("{needle:?} missing from:\n{stdout}"));
        pos("[a] hello from a");
        assert!(pos("dinv-guest: a ready") < pos("dinv-guest: started b"), "b waits for a's ready_path");
        pos("dinv-guest: flaky exited (exit status 3); restarting in 1 s");
        pos("dinv-guest: received signal");
        assert!(pos("dinv-guest: stopping b") < pos("dinv-guest: b did not stop within 1 s; killing it"));
        assert!(pos("dinv-guest: b did not stop within 1 s; killing it") < pos("dinv-guest: b stopped"));
        assert!(pos("dinv-guest: b stopped") < pos("dinv-guest: stopping a"));
        assert!(pos("dinv-guest: stopping a") < pos("dinv-guest: a stopped"));
        let runs = std::fs::read_to_string(dir.path().join("flaky-runs")).unwrap();
        assert!(runs.lines().count() >= 2, "flaky was restarted: {runs:?}");
    }

    #[test]
    #[ignore = "run by supervises_restarts_and_stops_in_reverse_order in its own process"]
    fn supervise_helper() {
        let Some(dir) = std::env::var_os(HELPER_ENV).map(std::path::PathBuf::from) else { return };
        let d = dir.display();
        let json = format!(
            r#"{{"services": [
                {{"name": "a", "argv": ["/bin/sh", "-c", "echo hello from a; touch {d}/a-ready; exec sleep 30"], "ready_path": "{d}/a-ready"}},
                {{"name": "flaky", "argv": ["/bin/sh", "-c", "echo run >> {d}/flaky-runs; exit 3"], "restart": true}},
                {{"name": "b", "argv": ["/bin/sh", "-c", "trap '' TERM; exec sleep 30"], "after_ready_of": "a", "stop_timeout": {{"seconds": 1}}}}
            ]}}"#
        );
        let mut sup = Supervisor::new(ServicesFile::parse(&json).unwrap());
        block_signals();
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(2500));
            // Thread-directed, so only the supervising thread (which blocks it) receives it.
            // SAFETY: tgkill has no memory-safety preconditions.
            unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGUSR2) };
        });
        assert_eq!(supervise(&mut sup), PowerAction::PowerOff);
        shutdown::stop_services(&mut sup, 5);
        assert!(sup.stop_order().is_empty(), "everything stopped");
    }
}
