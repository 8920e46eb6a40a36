//! dinv-init: the first-stage init in the initramfs.
//!
//! Mounts /proc, /sys and devtmpfs; loads the modules listed in
//! `/etc/dinv/modules` with finit_module; waits for the root device; mounts
//! it on /newroot; moves the API mounts over; switches root and execs the
//! guest init. No shell and no busybox: on any error it prints one line and
//! powers the machine off (QEMU exits with `-no-reboot`).

pub mod cmdline;
pub mod config;
mod root_wait;
mod switch_root;
mod sys;

pub use root_wait::{find_by_serial, poll_until};

use std::path::Path;
use std::time::Duration;

use dinv_contract::console::{
    self,
    markers::{INIT_EXECUTING, INIT_PREFIX, INIT_STARTING},
};
use cmdline::parse_cmdline;
use config::{parse_module_list, InitramfsConfig, Plan, CONFIG_PATH, MODULES_PATH};

/// Prints a message on the console, time-stamped like the kernel's lines
/// (`[    1.234] dinv-init: ...`): the one place dinv-init writes output.
fn say(msg: &str) {
    eprintln!("{}", console::stamped(format_args!("{INIT_PREFIX}{msg}")));
}

/// Prints the error and powers off; never returns.
fn fatal(msg: &str) -> ! {
    say(&format!("FATAL: {msg}"));
    say("powering off");
    let e = sys::power_off();
    say(&format!("power off failed ({e}); halting here"));
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Entry point of the dinv-init binary.
pub fn run() -> ! {
    if sys::pid() != 1 {
        say("must run as PID 1 (the initramfs /init); refusing to touch this system's mounts");
        std::process::exit(2);
    }
    // First, so the launcher's boot timeline sees the initramfs start.
    say(INIT_STARTING);
    let api_mounts = [
        ("proc", "/proc", libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_NODEV),
        ("sysfs", "/sys", libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_NODEV),
        ("devtmpfs", "/dev", libc::MS_NOSUID),
    ];
    for (fstype, dir, flags) in api_mounts {
        let _ = std::fs::create_dir_all(dir);
        if let Err(e) = sys::mount(Some(fstype), Path::new(dir), Some(fstype), flags, None) {
            if e.raw_os_error() != Some(libc::EBUSY) {
                fatal(&format!("cannot mount {fstype} on {dir}: {e}"));
            }
        }
    }
    let args = parse_cmdline(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default());
    let cfg = match std::fs::read_to_string(CONFIG_PATH) {
        Ok(text) => InitramfsConfig::parse(&text).unwrap_or_else(|e| fatal(&e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => InitramfsConfig::default(),
        Err(e) => fatal(&format!("cannot read {CONFIG_PATH}: {e}")),
    };
    let plan = Plan::new(&cfg, &args).unwrap_or_else(|e| fatal(&e));
    let debug = |msg: &str| {
        if plan.debug {
            say(msg);
        }
    };
    debug(&format!("{plan:?}"));

    let modules = match std::fs::read_to_string(MODULES_PATH) {
        Ok(text) => parse_module_list(&text).unwrap_or_else(|e| fatal(&e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => fatal(&format!("cannot read {MODULES_PATH}: {e}")),
    };
    for m in &modules {
        say(&format!("loading {}", m.name));
        match sys::finit_module(Path::new(&m.path), &m.params) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => debug(&format!("{} already loaded", m.name)),
            // Keep going: an optional module (e.g. a CPU-specific crc32c)
            // may refuse, and the root wait below says what is missing.
            Err(e) => say(&format!("cannot load {} ({}): {e}", m.name, m.path)),
        }
    }

    // `root=SERIAL=name` finds the disk by its virtio serial.
    let found = |spec: &str| root_wait::resolve_root(spec).filter(|p| root_wait::is_block_device(p));
    if found(&plan.root).is_none() {
        say(&format!("waiting for {} (up to {} s)", plan.root, plan.root_timeout.as_secs()));
    }
    let root_dev = match poll_until(plan.root_timeout, Duration::from_millis(10), || found(&plan.root).is_some()) {
        Ok(t) => {
            debug(&format!("{} present after {} ms", plan.root, t.as_millis()));
            found(&plan.root).expect("just found")
        }
        Err(t) => fatal(&format!(
            "root device {} did not appear within {} ms; block devices: {}",
            plan.root,
            t.as_millis(),
            match root_wait::known_block_devices() {
                v if v.is_empty() => "(none)".to_string(),
                v => v.join(" "),
            }
        )),
    };
    let root_dev = root_dev.to_string_lossy().into_owned();

    let newroot = Path::new("/newroot");
    let _ = std::fs::create_dir_all(newroot);
    let flags = if plan.read_only { libc::MS_RDONLY } else { 0 };
    say(&format!("mounting {root_dev} ({}, {}) on /newroot", plan.fstype, if plan.read_only { "ro" } else { "rw" }));
    if let Err(e) = sys::mount(Some(&root_dev), newroot, Some(&plan.fstype), flags, None) {
        fatal(&format!("cannot mount {root_dev} as {} on /newroot: {e}", plan.fstype));
    }
    for note in switch_root::move_api_mounts(newroot) {
        say(&note);
    }
    if let Err(e) = switch_root::free_initramfs(newroot) {
        say(&format!("initramfs not freed: {e}"));
    }
    if let Err(e) = switch_root::switch_root(newroot) {
        fatal(&format!("cannot switch root to {}: {e}", plan.root));
    }
    // The last line before the guest init: the launcher's boot timeline
    // ends the initramfs phase here.
    say(&format!("{INIT_EXECUTING}{}", plan.init));
    let init_args: Vec<String> = std::env::args().skip(1).collect();
    let e = switch_root::exec_init(&plan.init, &init_args);
    fatal(&format!("cannot execute {} on {}: {e}", plan.init, plan.root))
}
