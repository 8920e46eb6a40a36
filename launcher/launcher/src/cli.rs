//! The launcher's command line: `dinv-launcher [COMMAND...]` runs the
//! guest (and COMMAND once dockerd is ready), `dinv-launcher health` checks
//! /_ping once, `dinv-launcher print-qemu-args` prints the QEMU command,
//! `dinv-launcher save-snapshot --out DIR ...` boots and saves a snapshot
//! (what `dinv-build snapshot` runs). `dinv-launcher -- health` runs a
//! command literally named `health`.

use std::time::Duration;

use super::accel::{self, Accel};
use super::config::{self, Paths};
use super::settings::Settings;
use super::certs::{self, CertDir};
use super::ready::Probe;
use super::start::{self, Decision, Facts, StartMode};
use super::supervise::{self, Launch, Plan};
use super::{disks, qemu, ready, restore, save, LauncherError};

/// What the arguments ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Run(Vec<String>),
    Health,
    PrintQemuArgs,
    SaveSnapshot(Vec<String>),
}

/// Parses the arguments after the program name.
pub fn parse_args(args: &[String]) -> Mode {
    match args.first().map(String::as_str) {
        Some("health") if args.len() == 1 => Mode::Health,
        Some("print-qemu-args") if args.len() == 1 => Mode::PrintQemuArgs,
        Some("save-snapshot") => Mode::SaveSnapshot(args[1..].to_vec()),
        Some("--") => Mode::Run(args[1..].to_vec()),
        _ => Mode::Run(args.to_vec()),
    }
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// Loads launcher.json and the DINV_* settings, and `DINV_START`.
pub fn load() -> Result<(Settings, Paths), LauncherError> {
    load_with_start().map(|(s, p, _)| (s, p))
}

fn load_with_start() -> Result<(Settings, Paths, StartMode), LauncherError> {
    let (path, config) = config::load(&env)?;
    let paths = config::resolve(&config, &path, &env)?;
    let lookup = config.lookup(&env);
    let settings = Settings::from_lookup(&lookup)?;
    let start = StartMode::parse(lookup(dinv_contract::settings::START).as_deref().filter(|s| !s.trim().is_empty()));
    Ok((settings, paths, start))
}

fn plan(command: Vec<String>) -> Result<Plan, LauncherError> {
    let (settings, paths, mode) = load_with_start()?;
    let given = env("DINV_ACCEL").filter(|s| !s.is_empty());
    let snapshot = restore::load(&paths.snapshot_dir);
    // A snapshot restores under TCG only: asked for one, TCG it is.
    let forced = given.clone().or_else(|| (mode == StartMode::Snapshot).then(|| "tcg".to_string()));
    let choice = accel::choose(forced.as_deref())
        .map_err(|why| LauncherError::Setting { var: "DINV_ACCEL", value: forced.clone().unwrap_or_default(), why })?;
    let facts = |accel| Facts {
        mode,
        accel,
        accel_forced: given.is_some(),
        base: save::base_files(&paths).unwrap_or(dinv_contract::snapshot::BaseFiles { kernel: 0, initrd: None, rootfs: 0 }),
        tsc_khz: std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| qemu::tsc_khz(&t)),
        data_disk: restore::data_disk(&paths.docker_disk),
    };
    let manifest = snapshot.as_ref().map(|s| s.as_ref().map(|s| &s.manifest)).map_err(String::as_str);
    let launch_for = |accel, decision: Decision| match (decision, &snapshot) {
        (Decision::Restore, Ok(Some(s))) => Launch::Restore(Box::new(s.clone())),
        _ => Launch::Boot(qemu::qemu_args(&settings, &paths, accel)),
    };
    let decision = start::decide(&settings, manifest, &facts(choice.accel));
    let boot_reason = match &decision {
        Decision::Refuse(why) => return Err(LauncherError::Runtime(why.clone())),
        Decision::Boot { why: Some(why) } => {
            eprintln!("dinv-launcher: booting instead of restoring the snapshot: {why}");
            Some(why.clone())
        }
        Decision::Boot { why: None } => None,
        Decision::Restore => {
            eprintln!("dinv-launcher: restoring the snapshot in {}", paths.snapshot_dir.display());
            None
        }
    };
    let launch = launch_for(choice.accel, decision);
    // Only a KVM choice made by probing gets the TCG retry; a forced one is
    // kept. Under TCG, a snapshot image restores like any TCG start.
    let tcg_fallback = choice.retry_with_tcg.then(|| launch_for(Accel::Tcg, start::decide(&settings, manifest, &Facts { data_disk: start::DataDisk::Blank, ..facts(Accel::Tcg) })));
    let boot_after_restore = (mode != StartMode::Snapshot).then(|| qemu::qemu_args(&settings, &paths, Accel::Tcg));
    let started = *STARTED.get_or_init(std::time::Instant::now);
    Ok(Plan {
        qemu: paths.qemu.clone(),
        accel: choice.accel,
        launch,
        tcg_fallback,
        boot_after_restore,
        boot_reason,
        command,
        settings,
        paths,
        probe: Probe::Plain,
        started,
    })
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
            match p.launch {
                Launch::Boot(args) => all.extend(args),
                Launch::Restore(s) => all.extend(restore::qemu_args(&s, &p.settings, &p.paths)),
            }
            println!("{}", qemu::shell_quote(&all));
            0
        }),
        Mode::SaveSnapshot(args) => save::parse_args(&args)
            .map_err(|why| LauncherError::Setting { var: "save-snapshot", value: args.join(" "), why })
            .and_then(|o| {
                let (settings, paths) = load()?;
                let report = save::save(&o, &settings, &paths)?;
                println!("{report}");
                Ok(0)
            }),
        Mode::Run(command) => plan(command).and_then(|mut p| {
            disks::check_inputs(&p.settings, &p.paths)?;
            // A restore writes the docker disk out from the snapshot's.
            if matches!(p.launch, Launch::Restore(_)) {
                std::fs::create_dir_all(&p.paths.run_dir).map_err(LauncherError::io(&p.paths.run_dir, "creating the run directory"))?;
            } else {
                disks::prepare(&p.settings, &p.paths)?;
            }
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
        assert_eq!(parse_args(&s(&["save-snapshot", "--out", "/o"])), Mode::SaveSnapshot(s(&["--out", "/o"])));
    }
}
