//! `dinv-guest`: guest setup, docker.sock hand-over, PID 1 and power commands (see `dinv_launcher::guest`).

fn main() {
    std::process::exit(dinv_launcher::guest::cli::run(std::env::args().collect()));
}
