//! The initramfs `/init`: mounts the root disk and hands over to the guest
//! init. See `dinv_init`.

fn main() {
    dinv_init::run()
}
