//! `/etc/dinv/services.json`: the services `dinv-guest init` starts and
//! supervises on guests without OpenRC. The builder writes it; dinv-guest
//! reads it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The guest helper binary (PID 1 on `init = "dinv"` guests, setup and post steps).
pub const GUEST_HELPER: &str = "/usr/sbin/dinv-guest";
/// dockerd's socket in the guest.
pub const DOCKER_SOCK: &str = "/var/run/docker.sock";
/// containerd's socket in the guest, where dockerd looks for a system
/// containerd (its `containerd` setting names it too).
pub const CONTAINERD_SOCK: &str = "/run/containerd/containerd.sock";
/// The virtio-serial port QEMU names for the guest agent, as linked under /dev.
pub const QGA_PORT: &str = "/dev/virtio-ports/org.qemu.guest_agent.0";

/// `dinv-guest`'s subcommand that starts dockerd: it opens dockerd's plain
/// TCP listeners, hands them over by socket activation and execs dockerd,
/// which so skips the second it waits before serving TCP without client
/// verification. Its arguments are dockerd's path and arguments.
pub const EXEC_DOCKERD: &str = "exec-dockerd";

/// The dockerd service's argv: `dockerd` (its path in the guest) started through [`EXEC_DOCKERD`].
pub fn dockerd_argv(dockerd: &str) -> Vec<String> {
    vec![GUEST_HELPER.into(), EXEC_DOCKERD.into(), dockerd.into()]
}

/// Where the builder writes the services file in non-OpenRC guests.
pub const SERVICES_JSON: &str = "/etc/dinv/services.json";

/// Top level of the services file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicesFile {
    /// Started in this order, stopped in reverse.
    pub services: Vec<Service>,
}

/// One supervised process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Unique name; prefixes the service's console lines (`[name] ...`).
    pub name: String,
    /// Program and arguments; a program without `/` is looked up in PATH.
    pub argv: Vec<String>,
    /// Extra environment on top of init's (PATH, TERM, HOME).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Restart the service (after a 1 s pause) whenever it exits.
    #[serde(default)]
    pub restart: bool,
    /// Start only once the named, earlier service is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_ready_of: Option<String>,
    /// The service is ready once this path exists; without it, as soon as it is started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_path: Option<String>,
    /// How long to wait after SIGTERM before SIGKILL at shutdown.
    #[serde(default, skip_serializing_if = "StopTimeout::is_default")]
    pub stop_timeout: StopTimeout,
}

/// Grace period between SIGTERM and SIGKILL at shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopTimeout {
    /// A fixed number of seconds: `{"seconds": 10}`.
    Seconds(u64),
    /// The fw_cfg `shutdown_timeout` plus this many seconds (dockerd): `{"shutdown_timeout_plus": 5}`.
    ShutdownTimeoutPlus(u64),
}

impl Default for StopTimeout {
    fn default() -> Self {
        StopTimeout::Seconds(10)
    }
}

impl StopTimeout {
    /// The grace period given dockerd's configured shutdown timeout.
    pub fn resolve(self, shutdown_timeout: u64) -> Duration {
        Duration::from_secs(match self {
            StopTimeout::Seconds(s) => s,
            StopTimeout::ShutdownTimeoutPlus(extra) => shutdown_timeout.saturating_add(extra),
        })
    }

    /// True for the default grace period (left out of the JSON).
    pub fn is_default(&self) -> bool {
        *self == StopTimeout::default()
    }
}

impl ServicesFile {
    /// Parses and validates services JSON.
    pub fn parse(text: &str) -> Result<ServicesFile, String> {
        let file: ServicesFile = serde_json::from_str(text).map_err(|e| format!("invalid services file: {e}"))?;
        file.validate()?;
        Ok(file)
    }

    /// Checks names are unique and non-empty, argv is non-empty, and `after_ready_of` names an earlier service.
    pub fn validate(&self) -> Result<(), String> {
        for (i, s) in self.services.iter().enumerate() {
            let earlier = &self.services[..i];
            if s.name.is_empty() {
                return Err(format!("service #{} has an empty name", i + 1));
            }
            if earlier.iter().any(|e| e.name == s.name) {
                return Err(format!("service {:?} is listed twice", s.name));
            }
            if s.argv.first().map_or("", String::as_str).is_empty() {
                return Err(format!("service {:?} has no program in argv", s.name));
            }
            if let Some(dep) = &s.after_ready_of {
                if !earlier.iter().any(|e| &e.name == dep) {
                    return Err(format!("service {:?}: after_ready_of {dep:?} must name a service listed before it", s.name));
                }
            }
        }
        Ok(())
    }

    /// The usual Debian guest: qemu-ga, containerd when `containerd_argv`
    /// is given, dockerd, `dinv-guest post` once docker.sock exists, and
    /// `extra` (e.g. a getty).
    ///
    /// dockerd starts once containerd's socket is there. Left to dockerd,
    /// containerd starts late in dockerd's start-up, and dockerd's first
    /// dial of the missing socket puts its gRPC client into a reconnect
    /// back-off: 3.4 s of a trixie guest's boot under TCG, idle. Started
    /// side by side on one vCPU, the two Go programs only slow each other
    /// down. Stopped in reverse order, containerd outlives dockerd, which
    /// stops the containers through it.
    pub fn standard(qemu_ga: &str, containerd_argv: Option<Vec<String>>, dockerd_argv: Vec<String>, extra: Vec<Service>) -> ServicesFile {
        let service = |name: &str, argv: Vec<String>| Service {
            name: name.into(),
            argv,
            env: BTreeMap::new(),
            restart: true,
            after_ready_of: None,
            ready_path: None,
            stop_timeout: StopTimeout::default(),
        };
        let qemu_ga = service(
            "qemu-ga",
            [qemu_ga, "-m", "virtio-serial", "-p", QGA_PORT].map(String::from).to_vec(),
        );
        let containerd = containerd_argv.map(|argv| Service { ready_path: Some(CONTAINERD_SOCK.into()), ..service("containerd", argv) });
        let dockerd = Service {
            ready_path: Some(DOCKER_SOCK.into()),
            after_ready_of: containerd.as_ref().map(|c| c.name.clone()),
            stop_timeout: StopTimeout::ShutdownTimeoutPlus(5),
            ..service("dockerd", dockerd_argv)
        };
        let post = Service {
            restart: false,
            after_ready_of: Some("dockerd".into()),
            ..service("dinv-post", vec![GUEST_HELPER.into(), "post".into()])
        };
        let mut services = vec![qemu_ga];
        services.extend(containerd);
        services.extend([dockerd, post]);
        services.extend(extra);
        ServicesFile { services }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dockerd_argv() -> Vec<String> {
        ["/usr/bin/dockerd", "-H", "unix:///var/run/docker.sock", "-H", "tcp://0.0.0.0:2375"].map(String::from).to_vec()
    }

    #[test]
    fn standard_file_round_trips_and_validates() {
        let file = ServicesFile::standard("/usr/sbin/qemu-ga", None, dockerd_argv(), vec![]);
        let text = serde_json::to_string_pretty(&file).unwrap();
        assert_eq!(ServicesFile::parse(&text).unwrap(), file);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["services"][1]["stop_timeout"], serde_json::json!({"shutdown_timeout_plus": 5}));
        assert_eq!(v["services"][1]["ready_path"], "/var/run/docker.sock");
        assert_eq!(v["services"][2]["after_ready_of"], "dockerd");
        assert!(v["services"][0].get("stop_timeout").is_none(), "defaults are left out");
    }

    #[test]
    fn containerd_is_ready_before_dockerd_starts() {
        let argv = ["/usr/bin/containerd", "--config", "/etc/dinv/containerd.toml"].map(String::from).to_vec();
        let file = ServicesFile::standard("/usr/sbin/qemu-ga", Some(argv.clone()), dockerd_argv(), vec![]);
        file.validate().unwrap();
        let names: Vec<&str> = file.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["qemu-ga", "containerd", "dockerd", "dinv-post"], "stopped in reverse: containerd after dockerd");
        let c = &file.services[1];
        assert_eq!((c.argv.clone(), c.ready_path.as_deref(), c.restart), (argv, Some(CONTAINERD_SOCK), true));
        assert_eq!(file.services[2].after_ready_of.as_deref(), Some("containerd"));
    }

    #[test]
    fn minimal_service_takes_defaults() {
        let f = ServicesFile::parse(r#"{"services":[{"name":"getty","argv":["/sbin/agetty","ttyS0","115200"]}]}"#).unwrap();
        let s = &f.services[0];
        assert!(!s.restart && s.env.is_empty() && s.after_ready_of.is_none() && s.ready_path.is_none());
        assert_eq!(s.stop_timeout.resolve(30), Duration::from_secs(10));
        assert_eq!(StopTimeout::ShutdownTimeoutPlus(5).resolve(30), Duration::from_secs(35));
    }

    #[test]
    fn rejects_bad_files() {
        let bad = [
            (r#"{"services":[{"name":"a","argv":[]}]}"#, "no program"),
            (r#"{"services":[{"name":"","argv":["x"]}]}"#, "empty name"),
            (r#"{"services":[{"name":"a","argv":["x"]},{"name":"a","argv":["y"]}]}"#, "listed twice"),
            (r#"{"services":[{"name":"a","argv":["x"],"after_ready_of":"b"},{"name":"b","argv":["y"]}]}"#, "listed before"),
            (r#"{"services":[{"name":"a","argv":["x"],"restrat":true}]}"#, "unknown field"),
        ];
        for (text, want) in bad {
            let err = ServicesFile::parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
