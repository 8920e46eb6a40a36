//! `dinv-guest`: guest setup, docker.sock hand-over, PID 1 and power commands (see `dinv_guest`).

fn main() {
    std::process::exit(dinv_guest::cli::run(std::env::args().collect()));
}
