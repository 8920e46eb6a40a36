//! Picks the accelerator: KVM when /dev/kvm really works, else TCG (slow
//! but works anywhere, including with no /dev/kvm at all).

use std::ffi::CString;

/// The QEMU accelerator to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

const KVM_GET_API_VERSION: libc::c_ulong = 0xAE00;
const KVM_CREATE_VM: libc::c_ulong = 0xAE01;
const KVM_API_VERSION: libc::c_int = 12;

/// Probes `dev` (normally /dev/kvm): it must open read-write, report API
/// version 12 and let us create a VM. Returns why not on failure.
pub fn probe_kvm(dev: &str) -> Result<(), String> {
    let path = CString::new(dev).map_err(|_| format!("{dev}: bad path"))?;
    // SAFETY: plain syscalls on a path we own; every fd opened is closed.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(format!("{dev}: {}", std::io::Error::last_os_error()));
        }
        let version = libc::ioctl(fd, KVM_GET_API_VERSION as _, 0);
        if version != KVM_API_VERSION {
            libc::close(fd);
            return Err(format!("{dev}: KVM API version {version}, need {KVM_API_VERSION}"));
        }
        let vm = libc::ioctl(fd, KVM_CREATE_VM as _, 0);
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if vm < 0 {
            return Err(format!("{dev}: cannot create a VM: {err}"));
        }
        libc::close(vm);
    }
    Ok(())
}

/// Chooses the accelerator. DINV_ACCEL=kvm|tcg forces one; otherwise KVM
/// if the probe passes, else TCG with a one-line warning on stderr.
pub fn choose(forced: Option<&str>) -> Result<Accel, String> {
    match forced {
        Some("kvm") => Ok(Accel::Kvm),
        Some("tcg") => Ok(Accel::Tcg),
        Some(other) => Err(format!("DINV_ACCEL={other:?}: expected kvm or tcg")),
        None => match probe_kvm("/dev/kvm") {
            Ok(()) => Ok(Accel::Kvm),
            Err(why) => {
                eprintln!("dinv-launcher: warning: KVM unavailable ({why}); using TCG emulation, which is much slower");
                Ok(Accel::Tcg)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_wrong_device_is_refused_with_a_reason() {
        assert!(probe_kvm("/nonexistent/kvm").unwrap_err().contains("/nonexistent/kvm"));
        // /dev/null opens but is not KVM.
        assert!(probe_kvm("/dev/null").unwrap_err().contains("API version"));
        assert_eq!(choose(Some("tcg")), Ok(Accel::Tcg));
        assert!(choose(Some("hvf")).unwrap_err().contains("DINV_ACCEL"));
    }

    #[test]
    fn probe_agrees_with_the_device() {
        // Whatever the machine has, the probe must not panic and must agree
        // with whether /dev/kvm can be opened read-write.
        let openable = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok();
        if !openable {
            assert!(probe_kvm("/dev/kvm").is_err());
        }
    }
}
