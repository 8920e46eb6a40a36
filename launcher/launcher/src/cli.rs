//! The launcher's command line: `dinv-launcher [COMMAND...]` runs the
//! guest (and COMMAND once dockerd is ready), `dinv-launcher health` checks
//! /_ping once, `dinv-launcher print-qemu-args` prints the QEMU command.
//! `dinv-launcher -- health` runs a command literally named `health`.

use std::time::Duration;

use super::accel::{self, Accel};
use super::config::{self, Paths};
use super::settings::Settings;
use super::certs::{self, CertDir};
use super::ready::Probe;
use super::supervise::{self, Plan};
use super::{disks, qemu, ready, LauncherError};

/// What the arguments ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Run(Vec<String>),
    Health,
    PrintQemuArgs,
}

/// Parses the arguments after the program name.
pub fn parse_args(args: &[String]) -> Mode {
    match args.first().map(String::as_str) {
        Some("health") if args.len() == 1 => Mode::Health,
        Some("print-qemu-args") if args.len() == 1 => Mode::PrintQemuArgs,
        Some("--") => Mode::Run(args[1..].to_vec()),
        _ => Mode::Run(args.to_vec()),
    }
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// Loads launcher.json and the DINV_* settings.
pub fn load() -> Result<(Settings, Paths), LauncherError> {
    let (path, config) = config::load(&env)?;
    let paths = config::resolve(&config, &path, &env)?;
    let lookup = config.lookup(&env);
    let settings = Settings::from_lookup(&lookup)?;
    Ok((settings, paths))
}

fn plan(command: Vec<String>) -> Result<Plan, LauncherError> {
    let (settings, paths) = load()?;
    let forced = env("DINV_ACCEL").filter(|s| !s.is_empty());
    let choice = accel::choose(forced.as_deref())
        .map_err(|why| LauncherError::Setting { var: "DINV_ACCEL", value: forced.clone().unwrap_or_default(), why })?;
    let args = qemu::qemu_args(&settings, &paths, choice.accel);
    // Only a KVM choice made by probing gets the TCG retry; a forced one is kept.
    let tcg_fallback = choice.retry_with_tcg.then(|| qemu::qemu_args(&settings, &paths, Accel::Tcg));
    let started = *STARTED.get_or_init(std::time::Instant::now);
    Ok(Plan { qemu: paths.qemu.clone(), accel: choice.accel, args, tcg_fallback, command, settings, paths, probe: Probe::Plain, started })
}

/// With `DOCKER_TLS_CERTDIR`: creates or renews the certificates, then
/// makes the probe speak TLS with the client set.
fn prepare_tls(plan: &mut Plan) -> Result<(), LauncherError> {
    let Some(dir) = plan.settings.tls_certdir.clone() else { return Ok(()) };
    let (host, ips) = certs::container_identity();
    let sans = certs::server_sans(host.as_deref(), &ips, &plan.settings.tls_san);
    let out = certs::ensure(&CertDir(dir.clone()), &sans, std::time::SystemTime::now())?;
    if out.external {
        eprintln!("dinv-launcher: TLS: using the server certificates in {}/server as they are (no ca/key.pem)", dir.display());
    } else if out.written.is_empty() {
        eprintln!("dinv-launcher: TLS: keeping the certificates in {}", dir.display());
    } else {
        eprintln!("dinv-launcher: TLS: wrote {} in {}", out.written.join(", "), dir.display());
    }
    plan.probe = Probe::for_settings(&plan.settings)?;
    Ok(())
}

/// When `main` began: the ready line counts from here.
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Runs one mode and returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    STARTED.get_or_init(std::time::Instant::now);
    let result = match parse_args(args) {
        Mode::Health => {
            let target = load().and_then(|(s, _)| Ok((s.ping_addr, Probe::for_settings(&s)?)));
            return match target.map_err(|e| e.to_string()).and_then(|(a, probe)| ready::ping(&a, Duration::from_secs(3), &probe)) {
                Ok(()) => {
                    println!("OK");
                    0
                }
                Err(e) => {
                    eprintln!("dinv-launcher health: {e}");
                    1
                }
            };
        }
        Mode::PrintQemuArgs => plan(Vec::new()).map(|p| {
            let mut all = vec![p.qemu.to_string_lossy().into_owned()];
            all.extend(p.args);
            println!("{}", qemu::shell_quote(&all));
            0
        }),
        Mode::Run(command) => plan(command).and_then(|mut p| {
            disks::check_inputs(&p.settings, &p.paths)?;
            disks::prepare(&p.settings, &p.paths)?;
            prepare_tls(&mut p)?;
            supervise::run(p)
        }),
    };
    result.unwrap_or_else(|e| {
        eprintln!("dinv-launcher: error: {e}");
        e.exit_code()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn modes() {
        assert_eq!(parse_args(&[]), Mode::Run(vec![]));
        assert_eq!(parse_args(&s(&["health"])), Mode::Health);
        assert_eq!(parse_args(&s(&["print-qemu-args"])), Mode::PrintQemuArgs);
        assert_eq!(parse_args(&s(&["docker", "info"])), Mode::Run(s(&["docker", "info"])));
        assert_eq!(parse_args(&s(&["--", "health"])), Mode::Run(s(&["health"])));
        assert_eq!(parse_args(&s(&["health", "x"])), Mode::Run(s(&["health", "x"])));
    }
}
