//! Can KVM really run a vCPU of this CPU? Opening /dev/kvm and creating a
//! VM is not enough: on some (nested) hosts QEMU gets that far, then aborts
//! while initialising the vCPU because KVM refuses one of the feature MSRs
//! QEMU copies into it (`failed to set MSR 0x10a to 0x69`). Starting QEMU
//! just to watch it die costs a whole QEMU start, so this probe replays the
//! part of QEMU's KVM start-up that can fail like that, with the KVM ioctls.
//! (On the nested AMD EPYC hosts this was written for, KVM lists MSR 0x10a,
//! reports a value for it and sets its CPUID bit, yet refuses any write of
//! a non-zero value to it, whatever CPUID the vCPU was given.)
//!
//! The sequence follows QEMU's `-accel kvm -cpu host` start (target/i386/kvm):
//! 1. open /dev/kvm, KVM_GET_API_VERSION (12), KVM_CREATE_VM;
//! 2. KVM_GET_MSR_INDEX_LIST: QEMU only sets an MSR at vCPU init when KVM
//!    lists it here;
//! 3. KVM_GET_MSR_FEATURE_INDEX_LIST (when KVM_CAP_GET_MSR_FEATURES) and
//!    KVM_GET_MSRS on the system fd: the feature MSR values KVM supports,
//!    which `-cpu host` copies into the vCPU;
//! 4. KVM_GET_SUPPORTED_CPUID: `-cpu host` exposes what KVM supports; a
//!    feature MSR is only given its value when its CPUID bit is there;
//! 5. KVM_CREATE_VCPU, KVM_SET_CPUID2 (the supported CPUID, as `-cpu host`);
//! 6. one KVM_SET_MSRS with the feature MSRs in QEMU's order:
//!    IA32_ARCH_CAPABILITIES, IA32_CORE_CAPABILITIES, IA32_PERF_CAPABILITIES,
//!    IA32_UCODE_REV. KVM stops at the first one it refuses; QEMU then
//!    aborts, and so the probe reports that MSR.
//!
//! Only a failure QEMU would share counts against KVM: steps where the
//! probe necessarily differs from QEMU (our CPUID table is KVM's supported
//! one, not QEMU's edited copy) make the result inconclusive instead, and
//! the launcher then tries KVM as before. VMX capability MSRs (nested
//! guests on Intel) are not replayed: QEMU derives their values from its
//! own feature words, and a guess could refuse KVM on a host where it works.

use std::ffi::CString;
use std::io;

/// What the probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Every replayed step succeeded.
    Works,
    /// No usable KVM at all (no device, wrong API, no VM); why.
    Unavailable(String),
    /// KVM refused a feature MSR at vCPU init, as QEMU's abort would show.
    MsrRefused { index: u32, value: u64 },
    /// A step that does not mirror QEMU exactly failed; why. Not a verdict.
    Inconclusive(String),
}

/// The name of the MSRs the probe sets, for messages.
pub fn msr_name(index: u32) -> Option<&'static str> {
    match index {
        MSR_IA32_ARCH_CAPABILITIES => Some("IA32_ARCH_CAPABILITIES"),
        MSR_IA32_CORE_CAPABILITY => Some("IA32_CORE_CAPABILITIES"),
        MSR_IA32_PERF_CAPABILITIES => Some("IA32_PERF_CAPABILITIES"),
        MSR_IA32_UCODE_REV => Some("IA32_UCODE_REV"),
        _ => None,
    }
}

// ioctl numbers from linux/kvm.h (x86-64): _IO(0xAE, n), _IOWR/_IOW with the
// size of the fixed header of the structure passed.
const KVM_GET_API_VERSION: libc::c_ulong = 0xAE00;
const KVM_CREATE_VM: libc::c_ulong = 0xAE01;
const KVM_GET_MSR_INDEX_LIST: libc::c_ulong = 0xC004_AE02;
const KVM_CHECK_EXTENSION: libc::c_ulong = 0xAE03;
const KVM_GET_SUPPORTED_CPUID: libc::c_ulong = 0xC008_AE05;
const KVM_GET_MSR_FEATURE_INDEX_LIST: libc::c_ulong = 0xC004_AE0A;
const KVM_CREATE_VCPU: libc::c_ulong = 0xAE41;
const KVM_GET_MSRS: libc::c_ulong = 0xC008_AE88;
const KVM_SET_MSRS: libc::c_ulong = 0x4008_AE89;
const KVM_SET_CPUID2: libc::c_ulong = 0x4008_AE90;
const KVM_CAP_GET_MSR_FEATURES: libc::c_ulong = 153;
const KVM_API_VERSION: libc::c_int = 12;

pub const MSR_IA32_UCODE_REV: u32 = 0x8b;
pub const MSR_IA32_CORE_CAPABILITY: u32 = 0xcf;
pub const MSR_IA32_ARCH_CAPABILITIES: u32 = 0x10a;
pub const MSR_IA32_PERF_CAPABILITIES: u32 = 0x345;

/// Bits of IA32_ARCH_CAPABILITIES that QEMU knows by name; `-cpu host`
/// passes only those on. Whether KVM accepts the MSR does not hang on the
/// value (any subset of what KVM reports is fine), but keep it close.
const ARCH_CAPABILITIES_KNOWN: u64 = 0x1ff | 0x7 << 13 | 1 << 17 | 1 << 19 | 1 << 20 | 1 << 24 | 1 << 26 | 1 << 27;
/// IA32_CORE_CAPABILITIES bits QEMU knows (split-lock detection).
const CORE_CAPABILITY_KNOWN: u64 = 1 << 5;
/// The LBR format (bits 0-5) and PEBS fields (6-11, 14) of
/// IA32_PERF_CAPABILITIES: KVM checks them against the host's CPU model and
/// PMU, which QEMU may set differently; leaving them out keeps the probe
/// from refusing a host QEMU would run on.
const PERF_CAP_MODEL_CHECKED: u64 = 0x3f | 0xfc0 | 1 << 14;
/// QEMU's default microcode revision when KVM reports none (as KVM's own).
const UCODE_REV_DEFAULT_AMD: u64 = 0x0100_0065;
const UCODE_REV_DEFAULT_OTHER: u64 = 0x1_0000_0000;

/// One CPUID leaf as KVM passes it (struct kvm_cpuid_entry2).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuidEntry {
    pub function: u32,
    pub index: u32,
    pub flags: u32,
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
    padding: [u32; 3],
}

/// struct kvm_msr_entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct MsrEntry {
    index: u32,
    reserved: u32,
    data: u64,
}

/// An owned file descriptor, closed on drop.
struct Fd(libc::c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

/// ioctl that retries on EINTR (as QEMU's wrappers do).
fn ioctl(fd: &Fd, request: libc::c_ulong, arg: libc::c_ulong) -> io::Result<libc::c_int> {
    loop {
        // SAFETY: every caller passes a request with an argument of the
        // size and layout linux/kvm.h defines for it.
        let r = unsafe { libc::ioctl(fd.0, request as _, arg) };
        if r >= 0 {
            return Ok(r);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// A buffer of `u32` words (8-byte aligned) holding a KVM structure with
/// a flexible array: `header` words, then `count` entries of `entry` words.
fn buffer(header: usize, count: usize, entry: usize) -> Vec<u64> {
    vec![0u64; (header * 4 + count * entry * 4).div_ceil(8)]
}

/// KVM_GET_MSR_INDEX_LIST or KVM_GET_MSR_FEATURE_INDEX_LIST: asks for the
/// size with an empty list first, as QEMU does.
fn msr_list(kvm: &Fd, request: libc::c_ulong) -> io::Result<Vec<u32>> {
    let mut count: u32 = 0;
    match ioctl(kvm, request, &mut count as *mut u32 as libc::c_ulong) {
        Ok(_) => return Ok(Vec::new()),
        Err(e) if e.raw_os_error() == Some(libc::E2BIG) => {}
        Err(e) => return Err(e),
    }
    let mut buf = buffer(1, count as usize, 1);
    let words = buf.as_mut_ptr() as *mut u32;
    // SAFETY: buf holds 1 + count u32 words.
    unsafe { *words = count };
    ioctl(kvm, request, words as libc::c_ulong)?;
    // SAFETY: KVM wrote n ≤ count indices after the count word.
    let n = unsafe { *words }.min(count) as usize;
    Ok((0..n).map(|i| unsafe { *words.add(1 + i) }).collect())
}

/// KVM_GET_SUPPORTED_CPUID, growing the table until it fits.
fn supported_cpuid(kvm: &Fd) -> io::Result<Vec<CpuidEntry>> {
    let size = std::mem::size_of::<CpuidEntry>() / 4;
    let mut max = 64usize;
    loop {
        let mut buf = buffer(2, max, size);
        let words = buf.as_mut_ptr() as *mut u32;
        // SAFETY: buf holds the 2-word header and `max` entries.
        unsafe { *words = max as u32 };
        match ioctl(kvm, KVM_GET_SUPPORTED_CPUID, words as libc::c_ulong) {
            Ok(_) => {
                // SAFETY: KVM wrote nent ≤ max entries after the header.
                let n = (unsafe { *words } as usize).min(max);
                let entries = unsafe { words.add(2) } as *const CpuidEntry;
                return Ok((0..n).map(|i| unsafe { *entries.add(i) }).collect());
            }
            Err(e) if e.raw_os_error() == Some(libc::E2BIG) && max < 4096 => max *= 2,
            Err(e) => return Err(e),
        }
    }
}

/// KVM_GET_MSRS or KVM_SET_MSRS on `fd` with `entries`; returns how many
/// MSRs KVM processed (it stops at the first it refuses) and the entries.
fn msr_ioctl(fd: &Fd, request: libc::c_ulong, entries: &[MsrEntry]) -> io::Result<(usize, Vec<MsrEntry>)> {
    let size = std::mem::size_of::<MsrEntry>() / 4;
    let mut buf = buffer(2, entries.len(), size);
    let words = buf.as_mut_ptr() as *mut u32;
    // SAFETY: buf holds the 2-word header and entries.len() entries.
    let table = unsafe {
        *words = entries.len() as u32;
        let table = words.add(2) as *mut MsrEntry;
        std::ptr::copy_nonoverlapping(entries.as_ptr(), table, entries.len());
        table
    };
    let done = ioctl(fd, request, words as libc::c_ulong)? as usize;
    // SAFETY: the table still holds entries.len() entries.
    let out = (0..entries.len()).map(|i| unsafe { *table.add(i) }).collect();
    Ok((done, out))
}

/// The CPUID leaf `function`.`index` in `table`.
fn leaf(table: &[CpuidEntry], function: u32, index: u32) -> Option<&CpuidEntry> {
    table.iter().find(|e| e.function == function && e.index == index)
}

/// True when CPUID leaf 0 names an AMD CPU ("AuthenticAMD").
fn is_amd(table: &[CpuidEntry]) -> bool {
    leaf(table, 0, 0).is_some_and(|l| (l.ebx, l.edx, l.ecx) == (0x6874_7541, 0x6974_6e65, 0x444d_4163))
}

/// What KVM tells about the host, as QEMU reads it before creating a vCPU.
#[derive(Clone, Debug, Default)]
pub struct HostInfo {
    /// KVM_GET_MSR_INDEX_LIST.
    pub msrs: Vec<u32>,
    /// KVM_GET_MSR_FEATURE_INDEX_LIST with each value from KVM_GET_MSRS.
    pub feature_msrs: Vec<(u32, u64)>,
    /// KVM_GET_SUPPORTED_CPUID.
    pub cpuid: Vec<CpuidEntry>,
}

impl HostInfo {
    fn feature(&self, index: u32) -> u64 {
        self.feature_msrs.iter().find(|(i, _)| *i == index).map_or(0, |(_, v)| *v)
    }

    fn cpuid_bit(&self, function: u32, reg: fn(&CpuidEntry) -> u32, bit: u32) -> bool {
        leaf(&self.cpuid, function, 0).is_some_and(|l| reg(l) & (1 << bit) != 0)
    }

    /// The MSRs, in order, that QEMU sets on a new `-cpu host` vCPU, with
    /// the values it would give them. An MSR is set only when KVM lists it
    /// (step 2); a feature MSR whose CPUID bit is absent gets 0.
    pub fn init_msrs(&self) -> Vec<(u32, u64)> {
        let listed = |i: u32| self.msrs.contains(&i);
        let mut out = Vec::new();
        if listed(MSR_IA32_ARCH_CAPABILITIES) {
            // CPUID.(EAX=7,ECX=0):EDX[29] enumerates the MSR.
            let on = self.cpuid_bit(7, |l| l.edx, 29);
            out.push((MSR_IA32_ARCH_CAPABILITIES, if on { self.feature(MSR_IA32_ARCH_CAPABILITIES) & ARCH_CAPABILITIES_KNOWN } else { 0 }));
        }
        if listed(MSR_IA32_CORE_CAPABILITY) {
            // CPUID.(EAX=7,ECX=0):EDX[30].
            let on = self.cpuid_bit(7, |l| l.edx, 30);
            out.push((MSR_IA32_CORE_CAPABILITY, if on { self.feature(MSR_IA32_CORE_CAPABILITY) & CORE_CAPABILITY_KNOWN } else { 0 }));
        }
        if listed(MSR_IA32_PERF_CAPABILITIES) {
            // `-cpu host` enables the PMU; CPUID.1:ECX[15] (PDCM) enumerates the MSR.
            let on = self.cpuid_bit(1, |l| l.ecx, 15);
            out.push((MSR_IA32_PERF_CAPABILITIES, if on { self.feature(MSR_IA32_PERF_CAPABILITIES) & !PERF_CAP_MODEL_CHECKED } else { 0 }));
        }
        if listed(MSR_IA32_UCODE_REV) {
            let default = if is_amd(&self.cpuid) { UCODE_REV_DEFAULT_AMD } else { UCODE_REV_DEFAULT_OTHER };
            out.push((MSR_IA32_UCODE_REV, Some(self.feature(MSR_IA32_UCODE_REV)).filter(|&v| v != 0).unwrap_or(default)));
        }
        out
    }
}

/// Steps 1-2 on every architecture: the device, its API version, a VM.
fn open_kvm(dev: &str) -> Result<(Fd, Fd), String> {
    let path = CString::new(dev).map_err(|_| format!("{dev}: bad path"))?;
    // SAFETY: open on a NUL-terminated path.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(format!("{dev}: {}", io::Error::last_os_error()));
    }
    let kvm = Fd(fd);
    let version = ioctl(&kvm, KVM_GET_API_VERSION, 0).map_err(|e| format!("{dev}: KVM_GET_API_VERSION: {e}"))?;
    if version != KVM_API_VERSION {
        return Err(format!("{dev}: KVM API version {version}, need {KVM_API_VERSION}"));
    }
    let vm = Fd(ioctl(&kvm, KVM_CREATE_VM, 0).map_err(|e| format!("{dev}: cannot create a VM: {e}"))?);
    Ok((kvm, vm))
}

/// Steps 1-4: the system and VM file descriptors and what KVM reports.
/// Failures here are failures QEMU's KVM set-up shares.
fn open_vm(dev: &str) -> Result<(Fd, Fd, HostInfo), String> {
    let (kvm, vm) = open_kvm(dev)?;
    let msrs = msr_list(&kvm, KVM_GET_MSR_INDEX_LIST).map_err(|e| format!("{dev}: KVM_GET_MSR_INDEX_LIST: {e}"))?;
    let mut feature_msrs = Vec::new();
    if ioctl(&kvm, KVM_CHECK_EXTENSION, KVM_CAP_GET_MSR_FEATURES).unwrap_or(0) > 0 {
        let list = msr_list(&kvm, KVM_GET_MSR_FEATURE_INDEX_LIST).map_err(|e| format!("{dev}: KVM_GET_MSR_FEATURE_INDEX_LIST: {e}"))?;
        // QEMU reads only the feature MSRs it uses, one at a time, and exits
        // if KVM will not say; read the ones the probe sets the same way.
        for index in list.into_iter().filter(|i| msr_name(*i).is_some()) {
            let (n, got) = msr_ioctl(&kvm, KVM_GET_MSRS, &[MsrEntry { index, ..Default::default() }])
                .map_err(|e| format!("{dev}: reading feature MSR {index:#x}: {e}"))?;
            if n != 1 {
                return Err(format!("{dev}: KVM does not report feature MSR {index:#x}"));
            }
            feature_msrs.push((index, got[0].data));
        }
    }
    let cpuid = supported_cpuid(&kvm).map_err(|e| format!("{dev}: KVM_GET_SUPPORTED_CPUID: {e}"))?;
    Ok((kvm, vm, HostInfo { msrs, feature_msrs, cpuid }))
}

/// Runs the probe against `dev` (normally /dev/kvm): the MSR replay on
/// x86_64, where QEMU can fail like that; elsewhere (arm64) what every
/// QEMU KVM start shares: the device, a VM and a vCPU.
pub fn probe(dev: &str) -> Probe {
    if cfg!(target_arch = "x86_64") {
        probe_x86(dev)
    } else {
        probe_vcpu(dev)
    }
}

fn probe_vcpu(dev: &str) -> Probe {
    let (_kvm, vm) = match open_kvm(dev) {
        Ok(x) => x,
        Err(why) => return Probe::Unavailable(why),
    };
    match ioctl(&vm, KVM_CREATE_VCPU, 0) {
        Ok(_) => Probe::Works,
        Err(e) => Probe::Unavailable(format!("{dev}: cannot create a vCPU: {e}")),
    }
}

fn probe_x86(dev: &str) -> Probe {
    let (_kvm, vm, host) = match open_vm(dev) {
        Ok(x) => x,
        Err(why) => return Probe::Unavailable(why),
    };
    let vcpu = match ioctl(&vm, KVM_CREATE_VCPU, 0) {
        Ok(fd) => Fd(fd),
        Err(e) => return Probe::Unavailable(format!("{dev}: cannot create a vCPU: {e}")),
    };
    if let Err(e) = set_cpuid(&vcpu, &host.cpuid) {
        return Probe::Inconclusive(format!("KVM_SET_CPUID2 with the supported CPUID: {e}"));
    }
    let init = host.init_msrs();
    if init.is_empty() {
        return Probe::Works;
    }
    let entries: Vec<MsrEntry> = init.iter().map(|&(index, data)| MsrEntry { index, data, ..Default::default() }).collect();
    match msr_ioctl(&vcpu, KVM_SET_MSRS, &entries) {
        Ok((n, _)) if n >= entries.len() => Probe::Works,
        Ok((n, _)) => Probe::MsrRefused { index: entries[n].index, value: entries[n].data },
        // KVM refuses an MSR by stopping short, not with an error; an error
        // (EFAULT, ENOMEM, ...) says nothing about the MSRs themselves.
        Err(e) => Probe::Inconclusive(format!("KVM_SET_MSRS: {e}")),
    }
}

/// KVM_SET_CPUID2 with `table`.
fn set_cpuid(vcpu: &Fd, table: &[CpuidEntry]) -> io::Result<()> {
    let size = std::mem::size_of::<CpuidEntry>() / 4;
    let mut buf = buffer(2, table.len(), size);
    let words = buf.as_mut_ptr() as *mut u32;
    // SAFETY: buf holds the 2-word header and table.len() entries.
    unsafe {
        *words = table.len() as u32;
        std::ptr::copy_nonoverlapping(table.as_ptr(), words.add(2) as *mut CpuidEntry, table.len());
    }
    ioctl(vcpu, KVM_SET_CPUID2, words as libc::c_ulong).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(function: u32, ebx: u32, ecx: u32, edx: u32) -> CpuidEntry {
        CpuidEntry { function, ebx, ecx, edx, ..Default::default() }
    }

    #[test]
    fn structures_match_linux_kvm_h() {
        assert_eq!(std::mem::size_of::<CpuidEntry>(), 40);
        assert_eq!(std::mem::size_of::<MsrEntry>(), 16);
        assert_eq!(buffer(2, 3, 10).len() * 8, 8 + 3 * 40);
        assert_eq!(buffer(1, 3, 1).len() * 8, 16);
    }

    #[test]
    fn init_msrs_follow_qemu_order_and_cpuid() {
        // As seen on a nested AMD EPYC host: KVM lists ARCH_CAPABILITIES,
        // PERF_CAPABILITIES and UCODE_REV, the CPUID enumerates only
        // ARCH_CAPABILITIES, and the feature value has bits QEMU does not know.
        let host = HostInfo {
            msrs: vec![0x10, MSR_IA32_ARCH_CAPABILITIES, MSR_IA32_PERF_CAPABILITIES, MSR_IA32_UCODE_REV],
            feature_msrs: vec![
                (MSR_IA32_UCODE_REV, 0x0100_0065),
                (MSR_IA32_ARCH_CAPABILITIES, 0x4000_0000_0c00_0069),
                (MSR_IA32_PERF_CAPABILITIES, 0x2004),
            ],
            cpuid: vec![entry(0, 0x6874_7541, 0x444d_4163, 0x6974_6e65), entry(1, 0, 0x8120_2000, 0), entry(7, 0, 0, 1 << 29)],
        };
        assert_eq!(
            host.init_msrs(),
            [(MSR_IA32_ARCH_CAPABILITIES, 0x0c00_0069), (MSR_IA32_PERF_CAPABILITIES, 0), (MSR_IA32_UCODE_REV, 0x0100_0065)]
        );
    }

    #[test]
    fn missing_cpuid_bits_and_values_get_qemus_defaults() {
        let mut host = HostInfo {
            msrs: vec![MSR_IA32_UCODE_REV, MSR_IA32_CORE_CAPABILITY, MSR_IA32_ARCH_CAPABILITIES, MSR_IA32_PERF_CAPABILITIES],
            feature_msrs: vec![(MSR_IA32_ARCH_CAPABILITIES, 0x69), (MSR_IA32_CORE_CAPABILITY, 0x20), (MSR_IA32_PERF_CAPABILITIES, 0x33c5)],
            cpuid: vec![entry(0, 0x756e_6547, 0x6c65_746e, 0x4965_6e69), entry(7, 0, 0, 0)],
        };
        // No CPUID 7 EDX bits: ARCH/CORE capabilities are 0; no PDCM: PERF 0;
        // no microcode revision from KVM: QEMU's non-AMD default.
        assert_eq!(
            host.init_msrs(),
            [
                (MSR_IA32_ARCH_CAPABILITIES, 0),
                (MSR_IA32_CORE_CAPABILITY, 0),
                (MSR_IA32_PERF_CAPABILITIES, 0),
                (MSR_IA32_UCODE_REV, 0x1_0000_0000)
            ]
        );
        host.cpuid = vec![entry(1, 0, 1 << 15, 0), entry(7, 0, 0, 3 << 29)];
        let got = host.init_msrs();
        // The LBR and PEBS fields of PERF_CAPABILITIES are left out.
        assert_eq!(got[..3], [(MSR_IA32_ARCH_CAPABILITIES, 0x69), (MSR_IA32_CORE_CAPABILITY, 0x20), (MSR_IA32_PERF_CAPABILITIES, 0x3000)]);
        // MSRs KVM does not list are not set at all.
        host.msrs.clear();
        assert!(host.init_msrs().is_empty());
    }

    #[test]
    fn missing_or_wrong_device_is_unavailable() {
        assert!(matches!(probe("/nonexistent/kvm"), Probe::Unavailable(w) if w.contains("/nonexistent/kvm")));
        // /dev/null opens but is not KVM.
        assert!(matches!(probe("/dev/null"), Probe::Unavailable(w) if w.contains("/dev/null")));
    }
}
