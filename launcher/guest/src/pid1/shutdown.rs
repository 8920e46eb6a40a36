//! PID 1's shutdown: stop services in reverse order, end stragglers, unmount, power off or reboot.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::log::say;
use crate::setup::mounts;
use crate::pid1::power::PowerAction;
use crate::pid1::spawn::reap_all;
use crate::pid1::supervisor::Supervisor;

/// Grace period for processes that are not services (container shims, strays) after SIGTERM.
const STRAGGLER_GRACE: Duration = Duration::from_secs(3);

/// How long to wait for a process after SIGKILL before giving up on it.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// Stops everything and ends the machine with `action`; returns only if reboot(2) fails.
pub fn shutdown(sup: &mut Supervisor, shutdown_timeout: u64, action: PowerAction) {
    say(format_args!("shutting down ({})", action.verb()));
    stop_services(sup, shutdown_timeout);
    end_stragglers(sup);
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    unmount_all();
    if let Err(e) = mounts::mount(&mounts::MountRequest::new("", Path::new("/"), "", libc::MS_REMOUNT | libc::MS_RDONLY, "")) {
        say(format_args!("error: remounting / read-only: {e}"));
    }
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    say(action.verb());
    // SAFETY: reboot only acts when we are PID 1 with CAP_SYS_BOOT; otherwise it fails and we report.
    if unsafe { libc::reboot(action.reboot_cmd()) } != 0 {
        say(format_args!("error: reboot(2): {}", std::io::Error::last_os_error()));
    }
}

/// Stops running services in reverse start order: SIGTERM, then SIGKILL after each one's stop timeout.
pub fn stop_services(sup: &mut Supervisor, shutdown_timeout: u64) {
    for (i, pid) in sup.stop_order() {
        let name = sup.service(i).name.clone();
        let grace = sup.service(i).stop_timeout.resolve(shutdown_timeout);
        say(format_args!("stopping {name}"));
        signal(pid, libc::SIGTERM);
        if !wait_for(sup, pid, grace) {
            say(format_args!("{name} did not stop within {} s; killing it", grace.as_secs()));
            signal(pid, libc::SIGKILL);
            wait_for(sup, pid, KILL_GRACE);
        }
        say(format_args!("{name} stopped"));
    }
}

/// Reaps every exited child, recording services; true if `pid` was among them.
fn reap(sup: &mut Supervisor, pid: i32) -> bool {
    let mut found = false;
    for (reaped, _) in reap_all() {
        found |= reaped == pid;
        sup.exited(reaped, Instant::now());
    }
    found
}

fn wait_for(sup: &mut Supervisor, pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        // A pid that is gone already (reaped by an earlier loop) counts as stopped.
        if reap(sup, pid) || !alive(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM, then SIGKILL, to every process left but PID 1 (kill(-1) spares the caller).
fn end_stragglers(sup: &mut Supervisor) {
    signal(-1, libc::SIGTERM);
    let deadline = Instant::now() + STRAGGLER_GRACE;
    while has_children() && Instant::now() < deadline {
        reap(sup, 0);
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(-1, libc::SIGKILL);
    std::thread::sleep(Duration::from_millis(100));
    reap(sup, 0);
}

fn unmount_all() {
    let table = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    for target in mounts::unmount_order(&mounts::parse_mounts_table(&table)) {
        if mounts::unmount(&target, false).is_err() {
            if let Err(e) = mounts::unmount(&target, true) {
                say(format_args!("error: unmounting {}: {e}", target.display()));
            }
        }
    }
}

fn signal(pid: i32, sig: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) };
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn has_children() -> bool {
    // SAFETY: waitid with WNOWAIT only inspects; the zeroed siginfo is plain data.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) };
    rc == 0
}
