//! The KVM probe against this machine's real /dev/kvm, checked against what
//! QEMU itself does with `-accel kvm -cpu host`: the probe must say KVM
//! works exactly when QEMU gets through vCPU initialisation, and name the
//! MSR QEMU aborts on when it does not (0x10a on the nested AMD hosts that
//! motivated the probe). Skips with a notice without /dev/kvm or QEMU.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dinv_launcher::accel::{self, Accel};
use dinv_launcher::kvm_probe::{probe, Probe};

/// How QEMU fared under KVM.
enum Qemu {
    /// It initialised the vCPU and quit when asked.
    Works,
    /// It failed; its stderr.
    Failed(String),
}

/// Starts QEMU under KVM paused (`-S`), which creates and initialises the
/// vCPU before the monitor answers, then asks it to quit over QMP.
fn qemu_under_kvm() -> Option<Qemu> {
    let qemu =
        ["/usr/bin/qemu-system-x86_64", "/usr/local/bin/qemu-system-x86_64"].into_iter().find(|p| std::path::Path::new(p).exists())?;
    let mut child = Command::new(qemu)
        .args(["-M", "microvm", "-accel", "kvm", "-cpu", "host", "-m", "32M", "-smp", "1"])
        .args(["-nodefaults", "-no-user-config", "-display", "none", "-S", "-qmp", "stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let _ = child.stdin.take().unwrap().write_all(b"{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"quit\"}\n");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().ok()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("QEMU under KVM neither quit nor failed within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().ok()?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    Some(if out.status.success() { Qemu::Works } else { Qemu::Failed(stderr) })
}

/// The MSR in QEMU's `failed to set MSR 0x10a to 0x69`.
fn refused_msr(stderr: &str) -> Option<u32> {
    let rest = &stderr[stderr.find("failed to set MSR 0x")? + "failed to set MSR 0x".len()..];
    let hex: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    u32::from_str_radix(&hex, 16).ok()
}

#[test]
fn probe_agrees_with_qemu_on_this_host() {
    if std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_err() {
        eprintln!("skipped: /dev/kvm is absent or cannot be opened read-write here");
        assert!(matches!(probe("/dev/kvm"), Probe::Unavailable(_)));
        return;
    }
    let result = probe("/dev/kvm");
    let choice = accel::decide(None, || result.clone()).unwrap();
    eprintln!("probe: {result:?}\nlauncher: {}", choice.note.as_deref().unwrap_or("(uses KVM, says nothing)"));
    let Some(qemu) = qemu_under_kvm() else {
        eprintln!("skipped the comparison: qemu-system-x86_64 is not installed");
        return;
    };
    match qemu {
        Qemu::Works => {
            assert!(matches!(result, Probe::Works | Probe::Inconclusive(_)), "QEMU runs under KVM here, but the probe says {result:?}");
            assert_eq!(choice.accel, Accel::Kvm);
        }
        Qemu::Failed(stderr) => match refused_msr(&stderr) {
            Some(msr) => {
                assert!(
                    matches!(result, Probe::MsrRefused { index, .. } if index == msr),
                    "QEMU aborts on MSR {msr:#x} but the probe says {result:?}; QEMU said:\n{stderr}"
                );
                assert_eq!(choice.accel, Accel::Tcg);
                let note = choice.note.unwrap();
                assert!(note.contains(&format!("setting MSR {msr:#x}")) && note.contains("using TCG emulation"), "{note}");
            }
            // Some other failure the probe does not model: nothing to compare.
            None => eprintln!("QEMU fails under KVM for another reason (probe: {result:?}):\n{stderr}"),
        },
    }
}

#[test]
fn qemu_abort_message_is_parsed() {
    let stderr = "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\nqemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion `ret == cpu->kvm_msr_buf->nmsrs' failed.\n";
    assert_eq!(refused_msr(stderr), Some(0x10a));
    assert_eq!(refused_msr("qemu: could not load kernel"), None);
}
