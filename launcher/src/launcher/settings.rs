//! DINV_* environment variables → typed [`Settings`]. Pure: the caller
//! passes a lookup (environment first, then launcher.json defaults), so
//! every variable and every bad value is unit-tested without touching the
//! process environment.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::certs::{self, San};
use super::LauncherError;

/// Which QEMU machine type and device flavour to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// `-M microvm` with virtio-mmio devices.
    Microvm,
    /// `-M q35` with virtio PCI devices.
    Q35,
}

/// One forwarded port: container (host side of SLIRP) → guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortForward {
    pub host: u16,
    pub guest: u16,
}

/// The optional extra disk (`DINV_VOLUME_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    /// Where the guest mounts it.
    pub path: String,
    pub size: u64,
    pub uid: u32,
    pub gid: u32,
}

/// Everything the DINV_* variables say, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub cpus: u32,
    pub memory_mib: u64,
    pub tcp_ports: Vec<PortForward>,
    pub udp_ports: Vec<PortForward>,
    /// Container paths shared at the same guest path (9p).
    pub mounts: Vec<String>,
    pub docker_size: u64,
    pub volume: Option<Volume>,
    pub sock_uid: u32,
    pub sock_gid: u32,
    /// dockerd's shutdown timeout in the guest, seconds.
    pub shutdown_timeout: u32,
    pub machine: Machine,
    /// How long a graceful guest shutdown may take before QEMU is stopped.
    pub stop_timeout: Duration,
    /// How long to wait for dockerd's /_ping before giving up.
    pub ready_timeout: Duration,
    /// `DINV_KVM_WATCHDOG`: under a KVM the launcher chose itself, how long
    /// the guest may print no boot marker before QEMU is killed and started
    /// again under TCG (zero: never). Some nested hosts pass every KVM check
    /// and then hang the guest before the kernel's first line.
    pub kvm_watchdog: Duration,
    /// Where /_ping is polled (the dockerd forward).
    pub ping_addr: SocketAddr,
    /// `DOCKER_TLS_CERTDIR`: dockerd on 2376 with `--tlsverify`, its
    /// certificates kept here (docker:dind style); None: plain 2375.
    pub tls_certdir: Option<PathBuf>,
    /// `DOCKER_TLS_SAN`: extra names for the server certificate.
    pub tls_san: Vec<San>,
}

/// The dockerd port without TLS.
pub const DOCKER_PORT: u16 = 2375;
/// The dockerd port with TLS (`DOCKER_TLS_CERTDIR`).
pub const DOCKER_TLS_PORT: u16 = dinv_contract::fw_cfg::DOCKER_TLS_PORT;

impl Settings {
    /// The forwarded dockerd port: 2376 with TLS, else 2375.
    pub fn docker_port(&self) -> u16 {
        if self.tls_certdir.is_some() {
            DOCKER_TLS_PORT
        } else {
            DOCKER_PORT
        }
    }
}

const MIB: u64 = 1 << 20;

fn bad(var: &'static str, value: &str, why: impl Into<String>) -> LauncherError {
    LauncherError::Setting { var, value: value.to_string(), why: why.into() }
}

/// A size with an optional binary suffix (K, M, G, T; optional `B`/`iB`);
/// a bare number is in `bare_unit` bytes.
pub fn parse_size(s: &str, bare_unit: u64) -> Option<u64> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, suffix) = s.split_at(digits);
    let n: u64 = num.parse().ok()?;
    let unit = match suffix.to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" if suffix.is_empty() => bare_unit,
        "" => 1, // "512B"
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(unit)
}

fn parse_u32(var: &'static str, v: &str) -> Result<u32, LauncherError> {
    v.trim().parse().map_err(|_| bad(var, v, "expected a whole number from 0 to 4294967295"))
}

fn parse_seconds(var: &'static str, v: &str) -> Result<Duration, LauncherError> {
    let secs: f64 = v.trim().parse().map_err(|_| bad(var, v, "expected a number of seconds"))?;
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(bad(var, v, "expected seconds between 0 and 86400"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_disk_size(var: &'static str, v: &str) -> Result<u64, LauncherError> {
    let size = parse_size(v, 1).ok_or_else(|| bad(var, v, "expected a size like 64G, 512M or a byte count"))?;
    if size < 64 * MIB {
        return Err(bad(var, v, "must be at least 64M to hold an ext4 filesystem"));
    }
    Ok(size)
}

fn parse_ports(var: &'static str, v: &str, reserved: Option<u16>) -> Result<Vec<PortForward>, LauncherError> {
    let port = |p: &str| -> Result<u16, LauncherError> {
        match p.trim().parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(bad(var, v, format!("{p:?} is not a port number from 1 to 65535"))),
        }
    };
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for item in v.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let fwd = match item.split_once(':') {
            Some((h, g)) => PortForward { host: port(h)?, guest: port(g)? },
            None => {
                let p = port(item)?;
                PortForward { host: p, guest: p }
            }
        };
        if Some(fwd.host) == reserved {
            return Err(bad(var, v, format!("port {} is reserved for dockerd", fwd.host)));
        }
        if !seen.insert(fwd.host) {
            return Err(bad(var, v, format!("port {} is forwarded twice", fwd.host)));
        }
        out.push(fwd);
    }
    Ok(out)
}

/// An absolute, normalised path without `..`, NUL, newline or `;`.
fn parse_guest_path(var: &'static str, whole: &str, p: &str) -> Result<String, LauncherError> {
    if !p.starts_with('/') {
        return Err(bad(var, whole, format!("{p:?} is not an absolute path")));
    }
    if p.contains(['\0', '\n', ';']) {
        return Err(bad(var, whole, format!("{p:?} contains a NUL, newline or ';'")));
    }
    let parts: Vec<&str> = p.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    if parts.contains(&"..") {
        return Err(bad(var, whole, format!("{p:?} contains '..'")));
    }
    if parts.is_empty() {
        return Err(bad(var, whole, "\"/\" cannot be shared or mounted over"));
    }
    Ok(format!("/{}", parts.join("/")))
}

fn parse_mounts(v: &str) -> Result<Vec<String>, LauncherError> {
    let mut out: Vec<String> = Vec::new();
    for item in v.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let p = parse_guest_path("DINV_MOUNTS", v, item)?;
        if out.contains(&p) {
            return Err(bad("DINV_MOUNTS", v, format!("{p} is listed twice")));
        }
        out.push(p);
    }
    Ok(out)
}

impl Settings {
    /// Reads every DINV_* variable through `get`; an empty value counts as
    /// unset. The first bad value is reported with its variable name.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Settings, LauncherError> {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let cpus = match var("DINV_CPUS") {
            None => 1,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if (1..=255).contains(&n) => n,
                _ => return Err(bad("DINV_CPUS", &v, "expected a number of vCPUs from 1 to 255")),
            },
        };
        let memory_mib = match var("DINV_MEMORY") {
            None => 512,
            Some(v) => {
                let bytes = parse_size(&v, MIB).ok_or_else(|| bad("DINV_MEMORY", &v, "expected a size like 512M or 2G (a bare number is MiB)"))?;
                if bytes % MIB != 0 || bytes < 128 * MIB {
                    return Err(bad("DINV_MEMORY", &v, "must be a whole number of MiB, at least 128M"));
                }
                bytes / MIB
            }
        };
        let tls_certdir = match var("DOCKER_TLS_CERTDIR") {
            None => None,
            Some(v) if v.trim().starts_with('/') && !v.contains(['\0', '\n']) => Some(PathBuf::from(v.trim())),
            Some(v) => return Err(bad("DOCKER_TLS_CERTDIR", &v, "expected an absolute directory path, e.g. /certs")),
        };
        let tls_san = var("DOCKER_TLS_SAN").map(|v| certs::parse_extra_sans(&v).map_err(|why| bad("DOCKER_TLS_SAN", &v, why))).transpose()?.unwrap_or_default();
        let docker_port = if tls_certdir.is_some() { DOCKER_TLS_PORT } else { DOCKER_PORT };
        let tcp_ports = var("DINV_TCP_PORTS").map(|v| parse_ports("DINV_TCP_PORTS", &v, Some(docker_port))).transpose()?.unwrap_or_default();
        let udp_ports = var("DINV_UDP_PORTS").map(|v| parse_ports("DINV_UDP_PORTS", &v, None)).transpose()?.unwrap_or_default();
        let mounts = var("DINV_MOUNTS").map(|v| parse_mounts(&v)).transpose()?.unwrap_or_default();
        let docker_size = var("DINV_DOCKER_SIZE").map(|v| parse_disk_size("DINV_DOCKER_SIZE", &v)).transpose()?.unwrap_or(64 << 30);
        let volume = match var("DINV_VOLUME_PATH") {
            None => None,
            Some(v) => Some(Volume {
                path: parse_guest_path("DINV_VOLUME_PATH", &v, v.trim())?,
                size: var("DINV_VOLUME_SIZE").map(|s| parse_disk_size("DINV_VOLUME_SIZE", &s)).transpose()?.unwrap_or(64 << 30),
                uid: var("DINV_VOLUME_UID").map(|s| parse_u32("DINV_VOLUME_UID", &s)).transpose()?.unwrap_or(0),
                gid: var("DINV_VOLUME_GID").map(|s| parse_u32("DINV_VOLUME_GID", &s)).transpose()?.unwrap_or(0),
            }),
        };
        if volume.is_none() {
            // Still validate, so a typo'd setup fails now rather than later.
            if let Some(v) = var("DINV_VOLUME_SIZE") {
                parse_disk_size("DINV_VOLUME_SIZE", &v)?;
            }
            if let Some(v) = var("DINV_VOLUME_UID") {
                parse_u32("DINV_VOLUME_UID", &v)?;
            }
            if let Some(v) = var("DINV_VOLUME_GID") {
                parse_u32("DINV_VOLUME_GID", &v)?;
            }
        }
        let sock_uid = var("DINV_DOCKER_SOCK_UID").map(|v| parse_u32("DINV_DOCKER_SOCK_UID", &v)).transpose()?.unwrap_or(0);
        let sock_gid = var("DINV_DOCKER_SOCK_GID").map(|v| parse_u32("DINV_DOCKER_SOCK_GID", &v)).transpose()?.unwrap_or(0);
        let shutdown_timeout = match var("DINV_SHUTDOWN_TIMEOUT") {
            None => 5,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if n <= 3600 => n,
                _ => return Err(bad("DINV_SHUTDOWN_TIMEOUT", &v, "expected whole seconds from 0 to 3600")),
            },
        };
        let machine = match var("DINV_MACHINE").as_deref().map(str::trim) {
            None | Some("microvm") => Machine::Microvm,
            Some("q35") => Machine::Q35,
            Some(other) => return Err(bad("DINV_MACHINE", other, "expected microvm or q35")),
        };
        let stop_timeout = var("DINV_STOP_TIMEOUT").map(|v| parse_seconds("DINV_STOP_TIMEOUT", &v)).transpose()?.unwrap_or(Duration::from_secs(20));
        let ready_timeout =
            var("DINV_READY_TIMEOUT").map(|v| parse_seconds("DINV_READY_TIMEOUT", &v)).transpose()?.unwrap_or(Duration::from_secs(300));
        let kvm_watchdog =
            var("DINV_KVM_WATCHDOG").map(|v| parse_seconds("DINV_KVM_WATCHDOG", &v)).transpose()?.unwrap_or(Duration::from_secs(20));
        let ping_addr = match var("DINV_PING_ADDR") {
            None => SocketAddr::from(([127, 0, 0, 1], docker_port)),
            Some(v) => v.trim().parse().map_err(|_| bad("DINV_PING_ADDR", &v, "expected IP:PORT, e.g. 127.0.0.1:2375"))?,
        };
        Ok(Settings {
            cpus,
            memory_mib,
            tcp_ports,
            udp_ports,
            mounts,
            docker_size,
            volume,
            sock_uid,
            sock_gid,
            shutdown_timeout,
            machine,
            stop_timeout,
            ready_timeout,
            kvm_watchdog,
            ping_addr,
            tls_certdir,
            tls_san,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn with(vars: &[(&str, &str)]) -> Result<Settings, LauncherError> {
        let m: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(&|k| m.get(k).cloned())
    }

    fn err(vars: &[(&str, &str)]) -> String {
        with(vars).unwrap_err().to_string()
    }

    #[test]
    fn defaults() {
        let s = with(&[]).unwrap();
        assert_eq!(s.cpus, 1);
        assert_eq!(s.memory_mib, 512);
        assert!(s.tcp_ports.is_empty() && s.udp_ports.is_empty() && s.mounts.is_empty());
        assert_eq!(s.docker_size, 64 << 30);
        assert_eq!(s.volume, None);
        assert_eq!((s.sock_uid, s.sock_gid, s.shutdown_timeout), (0, 0, 5));
        assert_eq!(s.machine, Machine::Microvm);
        assert_eq!(s.stop_timeout, Duration::from_secs(20));
        assert_eq!(s.ready_timeout, Duration::from_secs(300));
        assert_eq!(s.kvm_watchdog, Duration::from_secs(20));
        assert_eq!(s.ping_addr.to_string(), "127.0.0.1:2375");
        assert_eq!((s.tls_certdir.as_ref(), s.docker_port()), (None, 2375));
        // Empty values count as unset.
        assert_eq!(with(&[("DINV_CPUS", ""), ("DINV_MEMORY", " ")]).unwrap(), s);
    }

    #[test]
    fn cpus() {
        assert_eq!(with(&[("DINV_CPUS", "4")]).unwrap().cpus, 4);
        for v in ["0", "-1", "two", "256", "1.5"] {
            assert!(err(&[("DINV_CPUS", v)]).starts_with(&format!("DINV_CPUS={v:?}")), "{v}");
        }
    }

    #[test]
    fn memory() {
        for (v, mib) in [("512M", 512), ("2G", 2048), ("1024", 1024), ("1g", 1024), ("3GiB", 3072), ("256MB", 256)] {
            assert_eq!(with(&[("DINV_MEMORY", v)]).unwrap().memory_mib, mib, "{v}");
        }
        for v in ["lots", "64M", "1.5G", "100000K", "12X", "G"] {
            assert!(err(&[("DINV_MEMORY", v)]).starts_with("DINV_MEMORY="), "{v}");
        }
    }

    #[test]
    fn ports() {
        let s = with(&[("DINV_TCP_PORTS", "80; 8443:443;"), ("DINV_UDP_PORTS", "53;5353:53")]).unwrap();
        assert_eq!(s.tcp_ports, vec![PortForward { host: 80, guest: 80 }, PortForward { host: 8443, guest: 443 }]);
        assert_eq!(s.udp_ports, vec![PortForward { host: 53, guest: 53 }, PortForward { host: 5353, guest: 53 }]);
        // 2375/udp is free; 2375/tcp is dockerd's.
        assert_eq!(with(&[("DINV_UDP_PORTS", "2375")]).unwrap().udp_ports.len(), 1);
        assert!(err(&[("DINV_TCP_PORTS", "2375")]).contains("reserved for dockerd"));
        assert!(err(&[("DINV_TCP_PORTS", "80;80:8080")]).contains("twice"));
        for v in ["0", "65536", "http", "80:", ":80", "1:2:3"] {
            assert!(err(&[("DINV_TCP_PORTS", v)]).starts_with("DINV_TCP_PORTS="), "{v}");
            assert!(err(&[("DINV_UDP_PORTS", v)]).starts_with("DINV_UDP_PORTS="), "{v}");
        }
    }

    #[test]
    fn mounts() {
        let s = with(&[("DINV_MOUNTS", "/data;/srv/a b/;/x//y/./z")]).unwrap();
        assert_eq!(s.mounts, vec!["/data", "/srv/a b", "/x/y/z"]);
        for (v, why) in [("data", "absolute"), ("/a/../etc", "'..'"), ("/", "\"/\""), ("/a;/a/", "twice")] {
            let e = err(&[("DINV_MOUNTS", v)]);
            assert!(e.starts_with("DINV_MOUNTS=") && e.contains(why), "{v}: {e}");
        }
    }

    #[test]
    fn docker_size() {
        assert_eq!(with(&[("DINV_DOCKER_SIZE", "10G")]).unwrap().docker_size, 10 << 30);
        assert_eq!(with(&[("DINV_DOCKER_SIZE", "134217728")]).unwrap().docker_size, 128 << 20);
        for v in ["10Q", "big", "1M", "-5G"] {
            assert!(err(&[("DINV_DOCKER_SIZE", v)]).starts_with("DINV_DOCKER_SIZE="), "{v}");
        }
    }

    #[test]
    fn volume() {
        let s = with(&[("DINV_VOLUME_PATH", "/work/"), ("DINV_VOLUME_SIZE", "1G"), ("DINV_VOLUME_UID", "1000"), ("DINV_VOLUME_GID", "100")])
            .unwrap();
        assert_eq!(s.volume, Some(Volume { path: "/work".into(), size: 1 << 30, uid: 1000, gid: 100 }));
        let s = with(&[("DINV_VOLUME_PATH", "/work")]).unwrap();
        assert_eq!(s.volume, Some(Volume { path: "/work".into(), size: 64 << 30, uid: 0, gid: 0 }));
        assert!(err(&[("DINV_VOLUME_PATH", "work")]).starts_with("DINV_VOLUME_PATH="));
        assert!(err(&[("DINV_VOLUME_PATH", "/w"), ("DINV_VOLUME_SIZE", "x")]).starts_with("DINV_VOLUME_SIZE="));
        assert!(err(&[("DINV_VOLUME_PATH", "/w"), ("DINV_VOLUME_UID", "-1")]).starts_with("DINV_VOLUME_UID="));
        assert!(err(&[("DINV_VOLUME_PATH", "/w"), ("DINV_VOLUME_GID", "root")]).starts_with("DINV_VOLUME_GID="));
        // Bad values are reported even without a volume path.
        assert!(err(&[("DINV_VOLUME_GID", "root")]).starts_with("DINV_VOLUME_GID="));
        assert!(err(&[("DINV_VOLUME_UID", "x")]).starts_with("DINV_VOLUME_UID="));
        assert!(err(&[("DINV_VOLUME_SIZE", "x")]).starts_with("DINV_VOLUME_SIZE="));
    }

    #[test]
    fn socket_owner_and_timeouts() {
        let s = with(&[("DINV_DOCKER_SOCK_UID", "1000"), ("DINV_DOCKER_SOCK_GID", "999"), ("DINV_SHUTDOWN_TIMEOUT", "30")]).unwrap();
        assert_eq!((s.sock_uid, s.sock_gid, s.shutdown_timeout), (1000, 999, 30));
        assert!(err(&[("DINV_DOCKER_SOCK_UID", "me")]).starts_with("DINV_DOCKER_SOCK_UID="));
        assert!(err(&[("DINV_DOCKER_SOCK_GID", "4294967296")]).starts_with("DINV_DOCKER_SOCK_GID="));
        assert!(err(&[("DINV_SHUTDOWN_TIMEOUT", "5s")]).starts_with("DINV_SHUTDOWN_TIMEOUT="));
        let s = with(&[("DINV_STOP_TIMEOUT", "2.5"), ("DINV_READY_TIMEOUT", "60")]).unwrap();
        assert_eq!((s.stop_timeout, s.ready_timeout), (Duration::from_millis(2500), Duration::from_secs(60)));
        assert!(err(&[("DINV_STOP_TIMEOUT", "-1")]).starts_with("DINV_STOP_TIMEOUT="));
        assert!(err(&[("DINV_READY_TIMEOUT", "soon")]).starts_with("DINV_READY_TIMEOUT="));
        assert_eq!(with(&[("DINV_KVM_WATCHDOG", "0")]).unwrap().kvm_watchdog, Duration::ZERO);
        assert_eq!(with(&[("DINV_KVM_WATCHDOG", "1.5")]).unwrap().kvm_watchdog, Duration::from_millis(1500));
        assert!(err(&[("DINV_KVM_WATCHDOG", "never")]).starts_with("DINV_KVM_WATCHDOG="));
    }

    #[test]
    fn machine_and_ping() {
        assert_eq!(with(&[("DINV_MACHINE", "q35")]).unwrap().machine, Machine::Q35);
        assert_eq!(with(&[("DINV_MACHINE", "microvm")]).unwrap().machine, Machine::Microvm);
        assert!(err(&[("DINV_MACHINE", "pc")]).starts_with("DINV_MACHINE=\"pc\""));
        assert_eq!(with(&[("DINV_PING_ADDR", "127.0.0.1:9")]).unwrap().ping_addr.port(), 9);
        assert!(err(&[("DINV_PING_ADDR", "localhost")]).starts_with("DINV_PING_ADDR="));
    }

    #[test]
    fn tls_certdir_moves_dockerd_to_2376() {
        let s = with(&[("DOCKER_TLS_CERTDIR", "/certs"), ("DOCKER_TLS_SAN", "DNS:dind.example,IP:10.0.0.7")]).unwrap();
        assert_eq!(s.tls_certdir.as_deref(), Some(std::path::Path::new("/certs")));
        assert_eq!((s.docker_port(), s.ping_addr.to_string().as_str()), (2376, "127.0.0.1:2376"));
        assert_eq!(s.tls_san, vec![San::Dns("dind.example".into()), San::Ip("10.0.0.7".parse().unwrap())]);
        // 2376 is dockerd's now; 2375 is free for the user.
        let tls = [("DOCKER_TLS_CERTDIR", "/certs")];
        assert!(err(&[tls[0], ("DINV_TCP_PORTS", "2376")]).contains("reserved for dockerd"));
        assert_eq!(with(&[tls[0], ("DINV_TCP_PORTS", "2375")]).unwrap().tcp_ports.len(), 1);
        // Empty means off, as in docker:dind.
        assert_eq!(with(&[("DOCKER_TLS_CERTDIR", "")]).unwrap().docker_port(), 2375);
        assert!(err(&[("DOCKER_TLS_CERTDIR", "certs")]).starts_with("DOCKER_TLS_CERTDIR=\"certs\""));
        assert!(err(&[tls[0], ("DOCKER_TLS_SAN", "IP:x")]).starts_with("DOCKER_TLS_SAN="));
    }
}
