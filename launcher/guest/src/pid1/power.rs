//! `poweroff`, `halt`, `reboot` and `shutdown` for guests run by `dinv-guest init`: they signal PID 1.
//!
//! Signals follow busybox init: SIGUSR2 (and SIGUSR1, halt) power off, SIGTERM and
//! SIGINT (Ctrl-Alt-Del) reboot. Halt powers off too: a halted microVM would leave
//! the container hanging. QEMU runs with `-no-reboot`, so a reboot also ends the VM.

use std::io;

/// What the machine does once services are stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    PowerOff,
    Reboot,
}

impl PowerAction {
    /// The signal that asks `dinv-guest init` for this action.
    pub fn signal(self) -> libc::c_int {
        match self {
            PowerAction::PowerOff => libc::SIGUSR2,
            PowerAction::Reboot => libc::SIGTERM,
        }
    }

    /// The action `dinv-guest init` takes on `signal`, if it is a shutdown signal.
    pub fn for_signal(signal: libc::c_int) -> Option<PowerAction> {
        match signal {
            libc::SIGUSR1 | libc::SIGUSR2 => Some(PowerAction::PowerOff),
            libc::SIGTERM | libc::SIGINT => Some(PowerAction::Reboot),
            _ => None,
        }
    }

    /// The reboot(2) command that ends the machine this way.
    pub fn reboot_cmd(self) -> libc::c_int {
        match self {
            PowerAction::PowerOff => libc::RB_POWER_OFF,
            PowerAction::Reboot => libc::RB_AUTOBOOT,
        }
    }

    /// Console wording: "powering off" / "rebooting".
    pub fn verb(self) -> &'static str {
        match self {
            PowerAction::PowerOff => "powering off",
            PowerAction::Reboot => "rebooting",
        }
    }
}

/// The action for a command named `name` (argv[0]'s file name) with `args`, or None if it is not one.
///
/// Options are accepted and ignored (qemu-ga runs `shutdown -h -P +0 "hypervisor
/// initiated shutdown"`), except `shutdown -r` / `--reboot`, which reboots.
pub fn action_for_command(name: &str, args: &[String]) -> Option<PowerAction> {
    match name {
        "poweroff" | "halt" => Some(PowerAction::PowerOff),
        "reboot" => Some(PowerAction::Reboot),
        "shutdown" => {
            let reboot = args.iter().any(|a| a == "--reboot" || (a.starts_with('-') && !a.starts_with("--") && a.contains('r')));
            Some(if reboot { PowerAction::Reboot } else { PowerAction::PowerOff })
        }
        _ => None,
    }
}

/// Asks PID 1 to carry out `action`.
pub fn request(action: PowerAction) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(1, action.signal()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn qemu_ga_shutdown_powers_off() {
        let a = args(&["-h", "-P", "+0", "hypervisor initiated shutdown"]);
        assert_eq!(action_for_command("shutdown", &a), Some(PowerAction::PowerOff));
        assert_eq!(action_for_command("shutdown", &args(&["-r", "+0", "hypervisor initiated reboot"])), Some(PowerAction::Reboot));
        assert_eq!(action_for_command("shutdown", &args(&["--reboot", "now"])), Some(PowerAction::Reboot));
        assert_eq!(action_for_command("shutdown", &args(&["--poweroff", "now"])), Some(PowerAction::PowerOff));
    }

    #[test]
    fn command_names() {
        assert_eq!(action_for_command("poweroff", &args(&["-f"])), Some(PowerAction::PowerOff));
        assert_eq!(action_for_command("halt", &[]), Some(PowerAction::PowerOff));
        assert_eq!(action_for_command("reboot", &[]), Some(PowerAction::Reboot));
        assert_eq!(action_for_command("dinv-guest", &[]), None);
    }

    #[test]
    fn signals_round_trip() {
        for action in [PowerAction::PowerOff, PowerAction::Reboot] {
            assert_eq!(PowerAction::for_signal(action.signal()), Some(action));
        }
        assert_eq!(PowerAction::for_signal(libc::SIGINT), Some(PowerAction::Reboot));
        assert_eq!(PowerAction::for_signal(libc::SIGUSR1), Some(PowerAction::PowerOff));
        assert_eq!(PowerAction::for_signal(libc::SIGCHLD), None);
    }
}
