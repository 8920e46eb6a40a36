//! Command line of `dinv-guest`: subcommands, and dispatch on argv[0] for init and the power commands.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{GuestError, Result};
use crate::log::say;
use crate::pid1::power::{self, PowerAction};
use crate::setup::settings::{Settings, FW_CFG_DIR};
use crate::setup::setup::{setup, SetupPaths};
use crate::system::{DryRun, Live};
use crate::restore::{self, RestorePaths};
use crate::setup::daemon_json;
use crate::{dockerd, pid1::init, quiesce, setup::post};

/// Usage text.
pub const USAGE: &str = "\
usage: dinv-guest setup [--fw-cfg-dir DIR] [--dry-run]
       dinv-guest post [--fw-cfg-dir DIR] [--socket PATH] [--timeout SECS]
       dinv-guest init            (PID 1; also when called as init)
       dinv-guest exec-dockerd DOCKERD [ARG...]   (the dockerd service: opens its plain TCP listeners, hands them over and execs it)
       dinv-guest quiesce [STEP...]   (before a snapshot is saved; steps: sync page-out drop-caches fstrim zero-free-memory; default all but page-out)
       dinv-guest restore         (after a snapshot is restored; reads the launcher's request on stdin)
       dinv-guest restore --listen   (waits for the request on the restore port; quiesce starts it)
       poweroff | halt | reboot | shutdown [options]   (via symlinks; signal PID 1)";

/// What one invocation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    Init,
    Setup { fw_cfg_dir: PathBuf, dry_run: bool },
    Post { fw_cfg_dir: PathBuf, socket: PathBuf, timeout: Duration },
    Quiesce(Vec<quiesce::Step>),
    Restore,
    RestoreListen,
    ExecDockerd(Vec<String>),
    Power(PowerAction),
    Help,
}

/// Parses a command line; `pid1` says whether this process is PID 1 (bare `dinv-guest` then means init).
pub fn parse(argv: &[String], pid1: bool) -> Result<Invocation> {
    let name = argv
        .first()
        .map(|a| Path::new(a).file_name().unwrap_or_default().to_string_lossy().into_owned())
        .unwrap_or_default();
    let rest = argv.get(1..).unwrap_or_default();
    if let Some(action) = power::action_for_command(&name, rest) {
        return Ok(Invocation::Power(action));
    }
    if name == "init" {
        return Ok(Invocation::Init);
    }
    let Some((sub, opts)) = rest.split_first() else {
        return if pid1 { Ok(Invocation::Init) } else { Err(GuestError::Usage(USAGE.into())) };
    };
    match sub.as_str() {
        "quiesce" => return quiesce::parse_steps(opts).map(Invocation::Quiesce).map_err(|e| GuestError::Usage(format!("{e}\n{USAGE}"))),
        "restore" if opts.is_empty() => return Ok(Invocation::Restore),
        "restore" if opts == ["--listen"] => return Ok(Invocation::RestoreListen),
        dinv_contract::services::EXEC_DOCKERD if opts.is_empty() => return Err(GuestError::Usage(format!("exec-dockerd needs dockerd's path\n{USAGE}"))),
        dinv_contract::services::EXEC_DOCKERD => return Ok(Invocation::ExecDockerd(opts.to_vec())),
        _ => {}
    }
    let mut fw_cfg_dir = PathBuf::from(FW_CFG_DIR);
    let mut socket = PathBuf::from(post::DOCKER_SOCK);
    let mut timeout = post::DEFAULT_TIMEOUT;
    let mut dry_run = false;
    let mut opts = opts.iter();
    while let Some(opt) = opts.next() {
        let mut value = || opts.next().cloned().ok_or_else(|| GuestError::Usage(format!("{opt} needs a value\n{USAGE}")));
        match (sub.as_str(), opt.as_str()) {
            ("setup" | "post", "--fw-cfg-dir") => fw_cfg_dir = value()?.into(),
            ("setup", "--dry-run") => dry_run = true,
            ("post", "--socket") => socket = value()?.into(),
            ("post", "--timeout") => {
                let v = value()?;
                timeout = Duration::from_secs(v.parse().map_err(|_| GuestError::Usage(format!("--timeout {v:?}: expected whole seconds")))?);
            }
            _ => return Err(GuestError::Usage(format!("unknown option {opt:?} for {sub:?}\n{USAGE}"))),
        }
    }
    match sub.as_str() {
        "init" => Ok(Invocation::Init),
        "setup" => Ok(Invocation::Setup { fw_cfg_dir, dry_run }),
        "post" => Ok(Invocation::Post { fw_cfg_dir, socket, timeout }),
        "help" | "--help" | "-h" => Ok(Invocation::Help),
        other => Err(GuestError::Usage(format!("unknown command {other:?}\n{USAGE}"))),
    }
}

/// Runs `dinv-guest` with `argv`; returns the process exit code.
pub fn run(argv: Vec<String>) -> i32 {
    // SAFETY: getpid has no preconditions.
    let pid1 = unsafe { libc::getpid() } == 1;
    let result = parse(&argv, pid1).and_then(|inv| match inv {
        Invocation::Init => Ok(init::init()),
        Invocation::Setup { fw_cfg_dir, dry_run } => {
            // On OpenRC guests this is the first guest-side line we print: the
            // launcher's boot timeline uses it to see the guest init running.
            say(dinv_contract::console::markers::GUEST_SETUP_STARTING);
            let settings = Settings::load(&fw_cfg_dir)?;
            if dry_run {
                setup(&settings, &SetupPaths::default(), &mut DryRun::default())
            } else {
                setup(&settings, &SetupPaths::default(), &mut Live)
            }
            .map(|()| 0)
        }
        Invocation::Post { fw_cfg_dir, socket, timeout } => post::post(&Settings::load(&fw_cfg_dir)?, &socket, timeout).map(|()| 0),
        Invocation::Quiesce(steps) => quiesce::quiesce(&steps, &SetupPaths::default().docker_dir).map(|()| 0),
        Invocation::Restore => restore::restore(&restore::read_request()?, &RestorePaths::default(), &mut Live).map(|()| 0),
        Invocation::RestoreListen => restore::listen(Path::new(restore::VIRTIO_PORTS), &RestorePaths::default(), &mut Live).map(|()| 0),
        Invocation::ExecDockerd(argv) => dockerd::exec_dockerd(&argv[0], &argv[1..], Path::new(daemon_json::DAEMON_JSON), Path::new(daemon_json::ACTIVATED_JSON)),
        Invocation::Power(action) => power::request(action).map(|()| 0).map_err(|e| GuestError::Command {
            command: format!("signalling PID 1 to start {}", action.verb()),
            why: e.to_string(),
        }),
        Invocation::Help => {
            println!("{USAGE}");
            Ok(0)
        }
    });
    match result {
        Ok(code) => code,
        Err(GuestError::Usage(text)) => {
            eprintln!("{text}");
            2
        }
        Err(e) => {
            say(format_args!("error: {e}"));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str], pid1: bool) -> Result<Invocation> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>(), pid1)
    }

    #[test]
    fn dispatches_on_argv0() {
        assert_eq!(
            p(&["/sbin/shutdown", "-h", "-P", "+0", "hypervisor initiated shutdown"], false).unwrap(),
            Invocation::Power(PowerAction::PowerOff)
        );
        assert_eq!(p(&["/usr/sbin/reboot"], false).unwrap(), Invocation::Power(PowerAction::Reboot));
        assert_eq!(p(&["poweroff", "-f"], false).unwrap(), Invocation::Power(PowerAction::PowerOff));
        assert_eq!(p(&["/sbin/init"], true).unwrap(), Invocation::Init);
        assert_eq!(p(&["/usr/sbin/dinv-guest"], true).unwrap(), Invocation::Init);
        assert!(matches!(p(&["/usr/sbin/dinv-guest"], false), Err(GuestError::Usage(_))));
    }

    #[test]
    fn subcommands_and_options() {
        assert_eq!(
            p(&["dinv-guest", "setup"], false).unwrap(),
            Invocation::Setup {
                fw_cfg_dir: FW_CFG_DIR.into(),
                dry_run: false
            }
        );
        assert_eq!(
            p(&["dinv-guest", "setup", "--fw-cfg-dir", "/tmp/cfg", "--dry-run"], false).unwrap(),
            Invocation::Setup {
                fw_cfg_dir: "/tmp/cfg".into(),
                dry_run: true
            }
        );
        assert_eq!(
            p(&["dinv-guest", "post", "--socket", "/run/d.sock", "--timeout", "7"], false).unwrap(),
            Invocation::Post {
                fw_cfg_dir: FW_CFG_DIR.into(),
                socket: "/run/d.sock".into(),
                timeout: Duration::from_secs(7)
            }
        );
        assert_eq!(p(&["dinv-guest", "init"], false).unwrap(), Invocation::Init);
        assert_eq!(p(&["dinv-guest", "quiesce"], false).unwrap(), Invocation::Quiesce(quiesce::parse_steps(&[]).unwrap()));
        assert_eq!(p(&["dinv-guest", "quiesce", "sync"], false).unwrap(), Invocation::Quiesce(vec![quiesce::Step::Sync]));
        assert_eq!(p(&["dinv-guest", "restore"], false).unwrap(), Invocation::Restore);
        assert_eq!(
            p(&["dinv-guest", "exec-dockerd", "/usr/bin/dockerd", "--debug"], false).unwrap(),
            Invocation::ExecDockerd(vec!["/usr/bin/dockerd".into(), "--debug".into()])
        );
        assert!(matches!(p(&["dinv-guest", "exec-dockerd"], false), Err(GuestError::Usage(u)) if u.starts_with("exec-dockerd needs dockerd's path")));
        assert_eq!(p(&["dinv-guest", "restore", "--listen"], false).unwrap(), Invocation::RestoreListen);
        assert_eq!(p(&["dinv-guest", "--help"], false).unwrap(), Invocation::Help);
    }

    #[test]
    fn bad_command_lines_are_usage_errors() {
        for args in [
            &["dinv-guest", "frobnicate"][..],
            &["dinv-guest", "setup", "--socket", "x"],
            &["dinv-guest", "post", "--timeout"],
            &["dinv-guest", "post", "--timeout", "soon"],
            &["dinv-guest", "quiesce", "defrag"],
            &["dinv-guest", "restore", "--now"],
        ] {
            assert!(matches!(p(args, false), Err(GuestError::Usage(_))), "{args:?}");
        }
    }
}
