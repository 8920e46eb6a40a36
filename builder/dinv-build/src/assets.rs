//! Binaries embedded at build time (see build.rs): they go into the guest
//! and the image. All are static executables, for x86_64 and aarch64.

mod bins {
    include!(concat!(env!("OUT_DIR"), "/static_bins.rs"));
}

/// The container entrypoint that boots the microVM.
pub fn launcher() -> &'static [u8] {
    bins::x86_64::DINV_LAUNCHER
}

/// The initramfs `/init`.
pub fn initramfs_init() -> &'static [u8] {
    bins::x86_64::DINV_INIT
}

/// The guest helper (`setup`, `post`, `init`), installed as `/usr/sbin/dinv-guest`.
pub fn guest() -> &'static [u8] {
    bins::x86_64::DINV_GUEST
}

/// The three binaries of an image for one architecture.
pub struct Binaries {
    /// The container entrypoint.
    pub launcher: &'static [u8],
    /// The initramfs `/init`.
    pub init: &'static [u8],
    /// `/usr/sbin/dinv-guest`.
    pub guest: &'static [u8],
}

/// The binaries of an image for `arch`.
pub fn for_arch(arch: crate::recipe::Arch) -> Binaries {
    match arch {
        crate::recipe::Arch::X86_64 => Binaries { launcher: launcher(), init: initramfs_init(), guest: guest() },
        crate::recipe::Arch::Aarch64 => Binaries { launcher: bins::aarch64::DINV_LAUNCHER, init: bins::aarch64::DINV_INIT, guest: bins::aarch64::DINV_GUEST },
    }
}

#[cfg(test)]
mod tests {
    /// ELF e_machine of x86-64 and AArch64.
    const EM_X86_64: u16 = 62;
    const EM_AARCH64: u16 = 183;

    #[test]
    fn embedded_binaries_are_static_elf_executables() {
        let arm = super::for_arch(crate::recipe::Arch::Aarch64);
        for (name, b, machine) in [
            ("launcher", super::launcher(), EM_X86_64),
            ("init", super::initramfs_init(), EM_X86_64),
            ("guest", super::guest(), EM_X86_64),
            ("aarch64 launcher", arm.launcher, EM_AARCH64),
            ("aarch64 init", arm.init, EM_AARCH64),
            ("aarch64 guest", arm.guest, EM_AARCH64),
        ] {
            assert_eq!(&b[..4], b"\x7fELF", "{name}");
            assert_eq!(u16::from_le_bytes([b[18], b[19]]), machine, "{name}: e_machine");
            // No PT_INTERP program header: statically linked.
            let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap()) as usize;
            let phentsize = u16::from_le_bytes(b[54..56].try_into().unwrap()) as usize;
            let phnum = u16::from_le_bytes(b[56..58].try_into().unwrap()) as usize;
            for i in 0..phnum {
                let t = u32::from_le_bytes(b[phoff + i * phentsize..phoff + i * phentsize + 4].try_into().unwrap());
                assert_ne!(t, 3, "{name} has an ELF interpreter: not static");
            }
        }
    }
}
