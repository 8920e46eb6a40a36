//! The DinV container entrypoint: boots the guest in QEMU and supervises it.
//! See `dinv_launcher` for the runtime interface.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(dinv_launcher::cli::main(&args));
}
