//! The initramfs `/init`: mounts the root disk and hands over to the guest
//! init. See `dinv_launcher::initramfs`.

fn main() {
    dinv_launcher::initramfs::run()
}
