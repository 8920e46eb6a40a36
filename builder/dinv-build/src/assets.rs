//! Binaries embedded at build time (see build.rs): they go into the guest
//! and the image. All are static x86_64 executables.

mod bins {
    include!(concat!(env!("OUT_DIR"), "/static_bins.rs"));
}

/// The container entrypoint that boots the microVM.
pub fn launcher() -> &'static [u8] {
    bins::DINV_LAUNCHER
}

/// The initramfs `/init`.
pub fn initramfs_init() -> &'static [u8] {
    bins::DINV_INIT
}

/// The guest helper (`setup`, `post`, `init`), installed as `/usr/sbin/dinv-guest`.
pub fn guest() -> &'static [u8] {
    bins::DINV_GUEST
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_binaries_are_static_elf_executables() {
        for (name, b) in [("launcher", super::launcher()), ("init", super::initramfs_init()), ("guest", super::guest())] {
            assert_eq!(&b[..4], b"\x7fELF", "{name}");
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
