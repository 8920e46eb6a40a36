//! DINV_* environment variables → typed [`Settings`], through the
//! contract's settings table (`dinv_contract::settings`), which also
//! checks recipe values at `dinv-build check`. Pure: the caller passes a
//! lookup (environment first, then launcher.json defaults), so every
//! variable and every bad value is unit-tested without touching the
//! process environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use dinv_contract::settings::{self as table, check_relations, setting, SettingError, Value};
pub use dinv_contract::settings::{Machine, PortForward, San, DOCKER_PORT};

use super::LauncherError;

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

impl From<SettingError> for LauncherError {
    fn from(e: SettingError) -> Self {
        LauncherError::Setting { var: e.var, value: e.value, why: e.why }
    }
}

/// A size with an optional binary suffix (the contract's one grammar).
pub fn parse_size(s: &str, bare_unit: u64) -> Option<u64> {
    table::parse_size(s, bare_unit)
}

impl Settings {
    /// Reads every DINV_* variable through `get`; an empty value counts as
    /// unset. The first bad value is reported with its variable name.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Settings, LauncherError> {
        let read = |var: &str| setting(var).read(get);
        // Every value is read (and so checked) whether or not another makes it unused.
        let (count, bytes, seconds) = (|v: Value| v.count().unwrap_or(0), |v: Value| v.bytes().unwrap_or(0), |v: Value| v.seconds().unwrap_or_default());
        let id = |var: &str| -> Result<u32, LauncherError> { Ok(count(read(var)?) as u32) };
        let cpus = count(read(table::CPUS)?) as u32;
        let memory_mib = bytes(read(table::MEMORY)?) >> 20;
        let tls_certdir = match read(table::TLS_CERTDIR)? {
            Value::Dir(d) => Some(d),
            _ => None,
        };
        let tls_san = match read(table::TLS_SAN)? {
            Value::Sans(s) => s,
            _ => Vec::new(),
        };
        let ports = |var: &str| -> Result<Vec<PortForward>, LauncherError> {
            Ok(match read(var)? {
                Value::Ports(p) => p,
                _ => Vec::new(),
            })
        };
        let (tcp_ports, udp_ports) = (ports(table::TCP_PORTS)?, ports(table::UDP_PORTS)?);
        let mounts = match read(table::MOUNTS)? {
            Value::Paths(p) => p,
            _ => Vec::new(),
        };
        let docker_size = bytes(read(table::DOCKER_SIZE)?);
        let (volume_size, volume_uid, volume_gid) = (bytes(read(table::VOLUME_SIZE)?), id(table::VOLUME_UID)?, id(table::VOLUME_GID)?);
        let volume = match read(table::VOLUME_PATH)? {
            Value::Path(path) => Some(Volume { path, size: volume_size, uid: volume_uid, gid: volume_gid }),
            _ => None,
        };
        let (sock_uid, sock_gid) = (id(table::SOCK_UID)?, id(table::SOCK_GID)?);
        let shutdown_timeout = seconds(read(table::SHUTDOWN_TIMEOUT)?).as_secs() as u32;
        let arch = std::env::consts::ARCH;
        let machine = match (read(table::MACHINE)?, get(table::MACHINE).filter(|v| !v.is_empty())) {
            (_, None) => Machine::default_for(arch),
            (Value::Choice("q35"), _) => Machine::Q35,
            (Value::Choice("virt"), _) => Machine::Virt,
            _ => Machine::Microvm,
        };
        if !machine.runs_on(arch) {
            let have = if arch == "aarch64" { "virt" } else { "microvm or q35" };
            return Err(LauncherError::Setting { var: table::MACHINE, value: machine.as_str().into(), why: format!("this image is {arch}, whose QEMU has {have}") });
        }
        let stop_timeout = seconds(read(table::STOP_TIMEOUT)?);
        let ready_timeout = seconds(read(table::READY_TIMEOUT)?);
        let kvm_watchdog = seconds(read(table::KVM_WATCHDOG)?);
        read(table::ACCEL)?;
        read(table::START)?;
        check_relations(get)?;
        let docker_port = if tls_certdir.is_some() { DOCKER_TLS_PORT } else { DOCKER_PORT };
        let ping_addr = match read(table::PING_ADDR)? {
            Value::Addr(a) => a,
            _ => SocketAddr::from(([127, 0, 0, 1], docker_port)),
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
        assert_eq!(s.stop_timeout, Duration::from_secs(10));
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
        let s = with(&[("DINV_DOCKER_SOCK_UID", "1000"), ("DINV_DOCKER_SOCK_GID", "999"), ("DINV_SHUTDOWN_TIMEOUT", "30"), ("DINV_STOP_TIMEOUT", "40")]).unwrap();
        assert_eq!((s.sock_uid, s.sock_gid, s.shutdown_timeout), (1000, 999, 30));
        assert!(err(&[("DINV_DOCKER_SOCK_UID", "me")]).starts_with("DINV_DOCKER_SOCK_UID="));
        assert!(err(&[("DINV_DOCKER_SOCK_GID", "4294967296")]).starts_with("DINV_DOCKER_SOCK_GID="));
        assert!(err(&[("DINV_SHUTDOWN_TIMEOUT", "5s")]).starts_with("DINV_SHUTDOWN_TIMEOUT="));
        let s = with(&[("DINV_STOP_TIMEOUT", "5.5"), ("DINV_READY_TIMEOUT", "60")]).unwrap();
        assert_eq!((s.stop_timeout, s.ready_timeout), (Duration::from_millis(5500), Duration::from_secs(60)));
        // The shutdown timeout must stay below the stop timeout.
        assert!(err(&[("DINV_STOP_TIMEOUT", "2.5")]).starts_with("DINV_SHUTDOWN_TIMEOUT=\"5\""));
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

    /// For random values of every setting in the table, the launcher
    /// accepts exactly what the table's parser and the checks between
    /// settings accept (what `dinv-build check` runs): one contract.
    #[test]
    fn the_launcher_accepts_exactly_what_the_table_accepts() {
        use dinv_contract::settings::{check_relations, SETTINGS};
        let mut state: u64 = 0x5eed_0f_5e77_1265;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let atoms = ["0", "1", "5", "10", "255", "256", "3600", "3601", "86400", "99999999999", "-1", "2.5", "512", "128M", "2G", "1T", "64K", "16T", "17T", "512B", "1MiB", "x", "", " ", "/data", "/a;/b", "/a/../b", "rel", "/", "80", "80:8080", "2375", "2376", "0:1", "microvm", "q35", "pc", "kvm", "tcg", "127.0.0.1:2375", "localhost:1", "/certs", "DNS:a.example", "IP:10.0.0.1", "IP:x"];
        let mut checked = 0;
        for st in SETTINGS {
            for _ in 0..60 {
                let mut v = atoms[(next() % atoms.len() as u64) as usize].to_string();
                if next() % 4 == 0 {
                    v.push_str(atoms[(next() % atoms.len() as u64) as usize]);
                }
                let get = |k: &str| (k == st.var).then(|| v.clone());
                let table_ok = st.parse(&v).is_ok() && check_relations(&get).is_ok() && SETTINGS.iter().all(|o| o.read(&get).is_ok());
                let launcher_ok = Settings::from_lookup(&get).is_ok();
                assert_eq!(table_ok, launcher_ok, "{}={v:?}: table {table_ok}, launcher {launcher_ok}", st.var);
                checked += 1;
            }
        }
        assert_eq!(checked, SETTINGS.len() * 60);
    }
}
