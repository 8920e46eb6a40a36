//! Picks the accelerator: KVM when it can really run this CPU's vCPU, else
//! TCG (slow but works anywhere, including with no /dev/kvm at all).
//!
//! The decision is made before QEMU starts, from [`kvm_probe`]: a host
//! where QEMU would abort at vCPU init (a refused feature MSR) starts QEMU
//! once, under TCG, instead of starting it under KVM, watching it die and
//! starting it again. The supervisor's TCG retry stays as a last resort for
//! failures the probe cannot foresee: QEMU dying early, a KVM internal
//! error, or a guest that prints nothing within `DINV_KVM_WATCHDOG` (nested
//! hosts where every check passes and the guest still hangs).

use super::kvm_probe::{self, Probe};

/// The QEMU accelerator to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    /// The name QEMU's `-accel` takes.
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// The accelerator to start QEMU with, and what to tell the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub accel: Accel,
    /// One line for stderr (without the `dinv-launcher: ` prefix), if any.
    pub note: Option<String>,
    /// Retry under TCG if QEMU dies early under KVM (only for a KVM choice
    /// the launcher made itself; a forced one is kept).
    pub retry_with_tcg: bool,
}

const SLOW: &str = "using TCG emulation, which is much slower";

/// Decides from DINV_ACCEL and, when that is unset, the probe's result
/// (`probe` runs only then). Pure apart from calling `probe`.
pub fn decide(forced: Option<&str>, probe: impl FnOnce() -> Probe) -> Result<Choice, String> {
    let choice = |accel, note: Option<String>, retry_with_tcg| Ok(Choice { accel, note, retry_with_tcg });
    match forced {
        Some("kvm") => return choice(Accel::Kvm, None, false),
        Some("tcg") => return choice(Accel::Tcg, None, false),
        Some(other) => return Err(format!("DINV_ACCEL={other:?}: expected kvm or tcg")),
        None => {}
    }
    match probe() {
        Probe::Works => choice(Accel::Kvm, None, true),
        Probe::Unavailable(why) => choice(Accel::Tcg, Some(format!("warning: KVM unavailable ({why}); {SLOW}")), false),
        Probe::MsrRefused { index, .. } => {
            let name = kvm_probe::msr_name(index).map(|n| format!(" ({n})")).unwrap_or_default();
            choice(Accel::Tcg, Some(format!("KVM cannot run this CPU's vCPU (setting MSR {index:#x}{name} failed); {SLOW}")), false)
        }
        Probe::Inconclusive(why) => choice(Accel::Kvm, Some(format!("could not fully check KVM ({why}); trying it")), true),
    }
}

/// Chooses the accelerator for this run, probing /dev/kvm unless
/// DINV_ACCEL=kvm|tcg forces one, and prints the choice's note on stderr.
pub fn choose(forced: Option<&str>) -> Result<Choice, String> {
    // DINV_TEST_KVM_PROBE=works stands in for a host whose KVM passes the
    // probe (the launcher's tests drive the KVM watchdog with a fake QEMU).
    let probe = || match std::env::var("DINV_TEST_KVM_PROBE").as_deref() {
        Ok("works") => Probe::Works,
        _ => kvm_probe::probe("/dev/kvm"),
    };
    let choice = decide(forced, probe)?;
    if let Some(note) = &choice.note {
        eprintln!("dinv-launcher: {note}");
    }
    Ok(choice)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> Probe {
        panic!("a forced accelerator must not probe")
    }

    #[test]
    fn forced_accelerators_skip_the_probe() {
        assert_eq!(decide(Some("kvm"), never), Ok(Choice { accel: Accel::Kvm, note: None, retry_with_tcg: false }));
        assert_eq!(decide(Some("tcg"), never), Ok(Choice { accel: Accel::Tcg, note: None, retry_with_tcg: false }));
        assert!(decide(Some("hvf"), never).unwrap_err().contains("DINV_ACCEL=\"hvf\""));
    }

    #[test]
    fn working_kvm_is_used_quietly_with_the_retry_kept() {
        assert_eq!(decide(None, || Probe::Works), Ok(Choice { accel: Accel::Kvm, note: None, retry_with_tcg: true }));
    }

    #[test]
    fn refused_msr_starts_tcg_once_with_one_line() {
        let c = decide(None, || Probe::MsrRefused { index: 0x10a, value: 0x69 }).unwrap();
        assert_eq!((c.accel, c.retry_with_tcg), (Accel::Tcg, false));
        assert_eq!(
            c.note.as_deref(),
            Some("KVM cannot run this CPU's vCPU (setting MSR 0x10a (IA32_ARCH_CAPABILITIES) failed); using TCG emulation, which is much slower")
        );
        let other = decide(None, || Probe::MsrRefused { index: 0x1234, value: 0 }).unwrap();
        assert!(other.note.unwrap().contains("(setting MSR 0x1234 failed)"));
    }

    #[test]
    fn unavailable_kvm_warns_and_uses_tcg() {
        let c = decide(None, || Probe::Unavailable("/dev/kvm: No such file or directory (os error 2)".into())).unwrap();
        assert_eq!((c.accel, c.retry_with_tcg), (Accel::Tcg, false));
        assert_eq!(
            c.note.as_deref(),
            Some("warning: KVM unavailable (/dev/kvm: No such file or directory (os error 2)); using TCG emulation, which is much slower")
        );
    }

    #[test]
    fn inconclusive_probe_still_tries_kvm() {
        let c = decide(None, || Probe::Inconclusive("KVM_SET_CPUID2 with the supported CPUID: Invalid argument".into())).unwrap();
        assert_eq!((c.accel, c.retry_with_tcg), (Accel::Kvm, true));
        assert!(c.note.unwrap().starts_with("could not fully check KVM (KVM_SET_CPUID2"));
    }
}
