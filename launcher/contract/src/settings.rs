//! Every runtime setting of a DinV image in one table: its `DINV_*`
//! variable, the recipe key that sets its default in the image, the fw_cfg
//! key that carries it into the guest, its type, bounds, default and one
//! line of documentation. dinv-build's `check`, the launcher and the guest
//! all read values through [`Setting::parse`], so a recipe value the
//! launcher would refuse is refused at `check`; `docs/runtime.md` is
//! [`markdown`] of this table.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::fw_cfg::DOCKER_TLS_PORT;

/// dockerd's TCP port without TLS.
pub const DOCKER_PORT: u16 = 2375;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;

/// Which QEMU machine type and device flavour to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Machine {
    /// `-M microvm` with virtio-mmio devices: fast to boot.
    #[default]
    Microvm,
    /// `-M q35` with virtio PCI devices.
    Q35,
    /// `-M virt` (arm64) with its virtio-mmio transports.
    Virt,
}

impl Machine {
    /// The name `DINV_MACHINE`, the recipe and QEMU use.
    pub fn as_str(self) -> &'static str {
        match self {
            Machine::Microvm => "microvm",
            Machine::Q35 => "q35",
            Machine::Virt => "virt",
        }
    }

    /// The machine an image for `arch` (Rust's `target_arch`) boots when
    /// DINV_MACHINE is unset.
    pub fn default_for(arch: &str) -> Machine {
        if arch == "aarch64" {
            Machine::Virt
        } else {
            Machine::Microvm
        }
    }

    /// Whether `arch` (Rust's `target_arch`) has this machine: QEMU's
    /// x86_64 system emulator has microvm and q35, the aarch64 one virt.
    pub fn runs_on(self, arch: &str) -> bool {
        (self == Machine::Virt) == (arch == "aarch64")
    }
}

/// One forwarded port: container (host side of SLIRP) → guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortForward {
    pub host: u16,
    pub guest: u16,
}

/// A subject alternative name of dockerd's TLS server certificate.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum San {
    Dns(String),
    Ip(IpAddr),
}

/// The type of a setting, with its bounds: one parser each.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// A whole number from `min` to `max`.
    Count { min: u64, max: u64, what: &'static str },
    /// A size (see [`parse_size`]): a bare number counts in `bare` bytes;
    /// from `min` to `max` bytes, a multiple of `align`.
    Size { bare: u64, min: u64, max: u64, align: u64 },
    /// Seconds, fractions allowed, from 0 to `max`.
    Seconds { max: u64 },
    /// Whole seconds from 0 to `max`.
    WholeSeconds { max: u64 },
    /// `HOST[:GUEST]` port forwards separated by `;`.
    Ports,
    /// Absolute guest paths separated by `;` (9p shares).
    Paths,
    /// One absolute guest path.
    Path,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// `IP:PORT`.
    Addr,
    /// An absolute directory in the container.
    Dir,
    /// `DNS:<name>` or `IP:<address>` items separated by `,` or spaces.
    Sans,
}

/// A parsed value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Not set, and no default.
    Unset,
    Count(u64),
    Bytes(u64),
    Seconds(Duration),
    Ports(Vec<PortForward>),
    Paths(Vec<String>),
    Path(String),
    Choice(&'static str),
    Addr(SocketAddr),
    Dir(PathBuf),
    Sans(Vec<San>),
}

/// One runtime setting.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    /// The container's environment variable.
    pub var: &'static str,
    /// The recipe key whose value becomes the image's default.
    pub recipe_key: Option<&'static str>,
    /// The guest reads it from fw_cfg `opt/dinv/<key>`.
    pub fw_cfg: Option<&'static str>,
    pub kind: Kind,
    /// The default when neither the environment nor the image sets it
    /// (empty: unset). Parsed by the same parser (a test checks it).
    pub default: &'static str,
    /// Part of the original DinV interface (listed in the image's `Env`).
    pub original: bool,
    pub doc: &'static str,
}

/// A value a setting refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingError {
    pub var: &'static str,
    pub value: String,
    pub why: String,
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?}: {}", self.var, self.value, self.why)
    }
}

impl std::error::Error for SettingError {}

pub const CPUS: &str = "DINV_CPUS";
pub const MEMORY: &str = "DINV_MEMORY";
pub const TCP_PORTS: &str = "DINV_TCP_PORTS";
pub const UDP_PORTS: &str = "DINV_UDP_PORTS";
pub const MOUNTS: &str = "DINV_MOUNTS";
pub const DOCKER_SIZE: &str = "DINV_DOCKER_SIZE";
pub const VOLUME_PATH: &str = "DINV_VOLUME_PATH";
pub const VOLUME_SIZE: &str = "DINV_VOLUME_SIZE";
pub const VOLUME_UID: &str = "DINV_VOLUME_UID";
pub const VOLUME_GID: &str = "DINV_VOLUME_GID";
pub const SOCK_UID: &str = "DINV_DOCKER_SOCK_UID";
pub const SOCK_GID: &str = "DINV_DOCKER_SOCK_GID";
pub const SHUTDOWN_TIMEOUT: &str = "DINV_SHUTDOWN_TIMEOUT";
pub const MACHINE: &str = "DINV_MACHINE";
pub const STOP_TIMEOUT: &str = "DINV_STOP_TIMEOUT";
pub const READY_TIMEOUT: &str = "DINV_READY_TIMEOUT";
pub const KVM_WATCHDOG: &str = "DINV_KVM_WATCHDOG";
pub const ACCEL: &str = "DINV_ACCEL";
pub const START: &str = "DINV_START";
pub const PING_ADDR: &str = "DINV_PING_ADDR";
pub const TLS_CERTDIR: &str = "DOCKER_TLS_CERTDIR";
pub const TLS_SAN: &str = "DOCKER_TLS_SAN";

const ID: Kind = Kind::Count { min: 0, max: u32::MAX as u64, what: "" };
const DISK: Kind = Kind::Size { bare: 1, min: 64 * MIB, max: 16 * TIB, align: 1 };

/// The table. The original DinV's variables come first, in its order.
pub const SETTINGS: &[Setting] = &[
    Setting { var: CPUS, recipe_key: Some("vm.cpus"), fw_cfg: None, kind: Kind::Count { min: 1, max: 255, what: "vCPUs" }, default: "1", original: true, doc: "Virtual CPUs of the guest." },
    Setting {
        var: MEMORY,
        recipe_key: Some("vm.memory"),
        fw_cfg: None,
        kind: Kind::Size { bare: MIB, min: 128 * MIB, max: 128 * GIB, align: MIB },
        default: "512M",
        original: true,
        doc: "Guest memory, in whole MiB (a bare number is MiB, as QEMU's -m reads it).",
    },
    Setting { var: TCP_PORTS, recipe_key: None, fw_cfg: None, kind: Kind::Ports, default: "", original: true, doc: "TCP ports forwarded from the container to the guest, `HOST[:GUEST]` separated by `;`; dockerd's port is reserved." },
    Setting { var: UDP_PORTS, recipe_key: None, fw_cfg: None, kind: Kind::Ports, default: "", original: true, doc: "UDP ports forwarded the same way." },
    Setting { var: MOUNTS, recipe_key: None, fw_cfg: Some("mounts"), kind: Kind::Paths, default: "", original: true, doc: "Container directories shared into the guest at the same path (9p), separated by `;`." },
    Setting { var: DOCKER_SIZE, recipe_key: Some("vm.docker_disk_size"), fw_cfg: None, kind: DISK, default: "64G", original: true, doc: "Size of the sparse docker data disk, made on first start (a bare number is bytes)." },
    Setting { var: VOLUME_PATH, recipe_key: None, fw_cfg: Some("volume_path"), kind: Kind::Path, default: "", original: true, doc: "Guest path of an extra data disk; unset: no extra disk." },
    Setting { var: VOLUME_SIZE, recipe_key: None, fw_cfg: None, kind: DISK, default: "64G", original: true, doc: "Size of the extra disk." },
    Setting { var: VOLUME_UID, recipe_key: None, fw_cfg: Some("volume_uid"), kind: ID, default: "0", original: true, doc: "Owner of the extra disk's root directory." },
    Setting { var: VOLUME_GID, recipe_key: None, fw_cfg: Some("volume_gid"), kind: ID, default: "0", original: true, doc: "Group of the extra disk's root directory." },
    Setting { var: SOCK_UID, recipe_key: None, fw_cfg: Some("sock_uid"), kind: ID, default: "0", original: true, doc: "Owner of the guest's /var/run/docker.sock." },
    Setting { var: SOCK_GID, recipe_key: None, fw_cfg: Some("sock_gid"), kind: ID, default: "0", original: true, doc: "Group of the guest's /var/run/docker.sock." },
    Setting {
        var: SHUTDOWN_TIMEOUT,
        recipe_key: Some("docker.shutdown_timeout"),
        fw_cfg: Some("shutdown_timeout"),
        kind: Kind::WholeSeconds { max: 3600 },
        default: "5",
        original: true,
        doc: "dockerd's shutdown timeout in the guest (seconds); must be below the stop timeout.",
    },
    Setting { var: MACHINE, recipe_key: Some("vm.machine"), fw_cfg: None, kind: Kind::Choice(&["microvm", "q35", "virt"]), default: "microvm", original: true, doc: "QEMU machine: `microvm` (virtio-mmio) or `q35` (PCI) on x86_64; `virt` (virtio-mmio), the only one and the default, on arm64." },
    Setting {
        var: STOP_TIMEOUT,
        recipe_key: Some("vm.stop_timeout"),
        fw_cfg: None,
        kind: Kind::Seconds { max: 86_400 },
        default: "10",
        original: false,
        doc: "How long a graceful guest shutdown may take before QEMU is stopped; match it with `docker stop -t`.",
    },
    Setting { var: READY_TIMEOUT, recipe_key: None, fw_cfg: None, kind: Kind::Seconds { max: 86_400 }, default: "300", original: false, doc: "How long to wait for dockerd's /_ping before giving up." },
    Setting {
        var: KVM_WATCHDOG,
        recipe_key: None,
        fw_cfg: None,
        kind: Kind::Seconds { max: 86_400 },
        default: "20",
        original: false,
        doc: "Under a KVM the launcher chose itself: seconds without a line from the guest kernel before QEMU is restarted under TCG (0: never).",
    },
    Setting { var: ACCEL, recipe_key: None, fw_cfg: None, kind: Kind::Choice(&["kvm", "tcg"]), default: "", original: false, doc: "Force an accelerator; unset: KVM when /dev/kvm works, else TCG." },
    Setting {
        var: START,
        recipe_key: None,
        fw_cfg: None,
        kind: Kind::Choice(&["auto", "snapshot", "boot"]),
        default: "auto",
        original: false,
        doc: "How an image with a snapshot (`dinv-build snapshot`) starts: `auto` restores it when nothing it fixed differs and boots otherwise, naming the setting; `snapshot` restores or fails (and picks TCG when `DINV_ACCEL` is unset); `boot` always boots.",
    },
    Setting { var: PING_ADDR, recipe_key: None, fw_cfg: None, kind: Kind::Addr, default: "", original: false, doc: "Where the readiness probe polls /_ping; unset: 127.0.0.1 and dockerd's port." },
    Setting { var: TLS_CERTDIR, recipe_key: None, fw_cfg: None, kind: Kind::Dir, default: "", original: false, doc: "docker:dind style TLS: certificates kept here, dockerd on 2376 with --tlsverify; unset or empty: plain 2375." },
    Setting { var: TLS_SAN, recipe_key: None, fw_cfg: None, kind: Kind::Sans, default: "", original: false, doc: "Extra names for the TLS server certificate, `DNS:<name>` or `IP:<address>`." },
];

/// The setting of a variable. Panics on a name not in the table: callers
/// use the constants above.
pub fn setting(var: &str) -> &'static Setting {
    SETTINGS.iter().find(|s| s.var == var).unwrap_or_else(|| panic!("{var} is not in the settings table"))
}

/// The fw_cfg key a setting reaches the guest by. Panics for a setting
/// that has none (a table entry, checked by the callers' tests).
pub fn fw_cfg_key(var: &str) -> &'static str {
    setting(var).fw_cfg.unwrap_or_else(|| panic!("{var} has no fw_cfg key"))
}

/// The setting a recipe key sets.
pub fn by_recipe_key(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.recipe_key == Some(key))
}

/// A size: digits, then optionally `K`, `M`, `G` or `T` (binary
/// multiples) with an optional `B` or `iB`, or a lone `B` for bytes; case
/// is ignored. A bare number counts in `bare` bytes. None on anything else
/// or on overflow. The one size grammar of recipes and the launcher.
pub fn parse_size(s: &str, bare: u64) -> Option<u64> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, suffix) = s.split_at(digits);
    let n: u64 = num.parse().ok()?;
    let unit = match suffix.to_ascii_uppercase().as_str() {
        "" => bare,
        "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(unit)
}

/// `1536M`, `2G`: a size in the largest binary unit that divides it.
pub fn format_size(bytes: u64) -> String {
    for (unit, name) in [(TIB, "T"), (GIB, "G"), (MIB, "M"), (1 << 10, "K")] {
        if bytes >= unit && bytes % unit == 0 {
            return format!("{}{name}", bytes / unit);
        }
    }
    format!("{bytes}B")
}

/// An absolute, normalised guest path without `..`, NUL, newline or `;`.
fn guest_path(p: &str) -> Result<String, String> {
    if !p.starts_with('/') {
        return Err(format!("{p:?} is not an absolute path"));
    }
    if p.contains(['\0', '\n', ';']) {
        return Err(format!("{p:?} contains a NUL, newline or ';'"));
    }
    let parts: Vec<&str> = p.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    if parts.contains(&"..") {
        return Err(format!("{p:?} contains '..'"));
    }
    if parts.is_empty() {
        return Err("\"/\" cannot be shared or mounted over".into());
    }
    Ok(format!("/{}", parts.join("/")))
}

fn ports(v: &str) -> Result<Vec<PortForward>, String> {
    let port = |p: &str| -> Result<u16, String> {
        match p.trim().parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{p:?} is not a port number from 1 to 65535")),
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
        if !seen.insert(fwd.host) {
            return Err(format!("port {} is forwarded twice", fwd.host));
        }
        out.push(fwd);
    }
    Ok(out)
}

fn sans(v: &str) -> Result<Vec<San>, String> {
    v.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| match item.split_once(':') {
            Some((k, name)) if k.eq_ignore_ascii_case("DNS") && !name.is_empty() && name.is_ascii() => Ok(San::Dns(name.to_string())),
            Some((k, ip)) if k.eq_ignore_ascii_case("IP") => ip.parse().map(San::Ip).map_err(|_| format!("{ip:?} is not an IP address")),
            _ => Err(format!("{item:?}: expected DNS:<name> or IP:<address>")),
        })
        .collect()
}

impl Kind {
    /// What a good value looks like, for messages and docs.
    pub fn expected(&self) -> String {
        match *self {
            Kind::Count { min, max, what: "" } => format!("a whole number from {min} to {max}"),
            Kind::Count { min, max, what } => format!("a whole number of {what} from {min} to {max}"),
            Kind::Size { bare, min, max, align } => {
                let unit = |b: u64| match b {
                    1 => "bytes",
                    MIB => "MiB",
                    GIB => "GiB",
                    _ => "units",
                };
                let whole = if align > 1 { format!(", in whole {}", unit(align)) } else { String::new() };
                format!("a size like 512M or 2G (a bare number is {}) from {} to {}{whole}", unit(bare), format_size(min), format_size(max))
            }
            Kind::Seconds { max } => format!("seconds from 0 to {max} (fractions allowed)"),
            Kind::WholeSeconds { max } => format!("whole seconds from 0 to {max}"),
            Kind::Ports => "`HOST[:GUEST]` ports from 1 to 65535 separated by `;`".into(),
            Kind::Paths => "absolute guest paths separated by `;`".into(),
            Kind::Path => "an absolute guest path".into(),
            Kind::Choice(words) => format!("one of {}", words.join(", ")),
            Kind::Addr => "IP:PORT, e.g. 127.0.0.1:2375".into(),
            Kind::Dir => "an absolute directory path, e.g. /certs".into(),
            Kind::Sans => "`DNS:<name>` or `IP:<address>` items separated by `,`".into(),
        }
    }

    /// Parses a non-empty value.
    pub fn parse(&self, v: &str) -> Result<Value, String> {
        let t = v.trim();
        match *self {
            Kind::Count { min, max, .. } => match t.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Value::Count(n)),
                _ => Err(format!("expected {}", self.expected())),
            },
            Kind::Size { bare, min, max, align } => {
                let bytes = parse_size(t, bare).ok_or_else(|| format!("expected {}", self.expected()))?;
                if bytes < min || bytes > max || bytes % align != 0 {
                    return Err(format!("{} is out of range: expected {}", format_size(bytes), self.expected()));
                }
                Ok(Value::Bytes(bytes))
            }
            Kind::Seconds { max } => match t.parse::<f64>() {
                Ok(s) if s.is_finite() && (0.0..=max as f64).contains(&s) => Ok(Value::Seconds(Duration::from_secs_f64(s))),
                _ => Err(format!("expected {}", self.expected())),
            },
            Kind::WholeSeconds { max } => match t.parse::<u64>() {
                Ok(n) if n <= max => Ok(Value::Seconds(Duration::from_secs(n))),
                _ => Err(format!("expected {}", self.expected())),
            },
            Kind::Ports => ports(t).map(Value::Ports),
            Kind::Paths => {
                let mut out: Vec<String> = Vec::new();
                for item in t.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                    let p = guest_path(item)?;
                    if out.contains(&p) {
                        return Err(format!("{p} is listed twice"));
                    }
                    out.push(p);
                }
                Ok(Value::Paths(out))
            }
            Kind::Path => guest_path(t).map(Value::Path),
            // Exact words: a recipe's enum takes no padding either.
            Kind::Choice(words) => words.iter().find(|w| **w == v).map(|w| Value::Choice(w)).ok_or_else(|| format!("expected {}", self.expected())),
            Kind::Addr => t.parse().map(Value::Addr).map_err(|_| format!("expected {}", self.expected())),
            Kind::Dir if t.starts_with('/') && !t.contains(['\0', '\n']) => Ok(Value::Dir(PathBuf::from(t))),
            Kind::Dir => Err(format!("expected {}", self.expected())),
            Kind::Sans => sans(t).map(Value::Sans),
        }
    }
}

impl Setting {
    /// Parses `raw`; empty or blank means unset, which is the default.
    pub fn parse(&self, raw: &str) -> Result<Value, SettingError> {
        if raw.trim().is_empty() {
            return self.default_value();
        }
        self.kind.parse(raw).map_err(|why| SettingError { var: self.var, value: raw.to_string(), why })
    }

    /// The default, parsed.
    pub fn default_value(&self) -> Result<Value, SettingError> {
        if self.default.is_empty() {
            return Ok(Value::Unset);
        }
        self.kind.parse(self.default).map_err(|why| SettingError { var: self.var, value: self.default.to_string(), why })
    }

    /// Reads the setting through `get` (the environment, then the image's
    /// defaults).
    pub fn read(&self, get: &dyn Fn(&str) -> Option<String>) -> Result<Value, SettingError> {
        self.parse(&get(self.var).unwrap_or_default())
    }
}

impl Value {
    pub fn count(&self) -> Option<u64> {
        match self {
            Value::Count(n) => Some(*n),
            _ => None,
        }
    }
    pub fn bytes(&self) -> Option<u64> {
        match self {
            Value::Bytes(n) => Some(*n),
            _ => None,
        }
    }
    pub fn seconds(&self) -> Option<Duration> {
        match self {
            Value::Seconds(d) => Some(*d),
            _ => None,
        }
    }
}

/// Checks between settings, in both the launcher and `check`: dockerd's
/// shutdown timeout is below the stop timeout (else dockerd is killed
/// before its containers stop), and no forward takes dockerd's port.
pub fn check_relations(get: &dyn Fn(&str) -> Option<String>) -> Result<(), SettingError> {
    let shutdown = setting(SHUTDOWN_TIMEOUT).read(get)?.seconds().unwrap_or_default();
    let stop = setting(STOP_TIMEOUT).read(get)?.seconds().unwrap_or_default();
    if shutdown >= stop {
        let value = get(SHUTDOWN_TIMEOUT).unwrap_or_else(|| setting(SHUTDOWN_TIMEOUT).default.to_string());
        return Err(SettingError {
            var: SHUTDOWN_TIMEOUT,
            value,
            why: format!("must be below {STOP_TIMEOUT} ({} s), or dockerd is killed before its containers stop", stop.as_secs_f64()),
        });
    }
    let tls = !matches!(setting(TLS_CERTDIR).read(get)?, Value::Unset);
    let docker_port = if tls { DOCKER_TLS_PORT } else { DOCKER_PORT };
    if let Value::Ports(p) = setting(TCP_PORTS).read(get)? {
        if p.iter().any(|f| f.host == docker_port) {
            return Err(SettingError { var: TCP_PORTS, value: get(TCP_PORTS).unwrap_or_default(), why: format!("port {docker_port} is reserved for dockerd") });
        }
    }
    Ok(())
}

/// docs/runtime.md: the table as Markdown.
pub fn markdown() -> String {
    let mut s = String::from(
        "# Runtime settings\n\n\
         <!-- Generated from dinv_contract::settings::SETTINGS; a test keeps this file equal to it. Rewrite with DINV_BLESS=1 cargo test -p dinv-contract. -->\n\n\
         Every `DINV_*` variable a DinV image reads, from one table in the code. \
         Set them with `docker run -e`. A variable with a recipe key gets its default in the image from the recipe, \
         and `dinv-build check` refuses there exactly the values the launcher refuses. An empty value counts as unset.\n\n\
         | variable | recipe key | type and bounds | default | what it does |\n|---|---|---|---|---|\n",
    );
    for st in SETTINGS {
        let key = st.recipe_key.map(|k| format!("`{k}`")).unwrap_or_default();
        let default = if st.default.is_empty() { "unset".to_string() } else { format!("`{}`", st.default) };
        let guest = st.fw_cfg.map(|k| format!(" Passed to the guest as fw_cfg `opt/dinv/{k}`.")).unwrap_or_default();
        s.push_str(&format!("| `{}` | {key} | {} | {default} | {}{guest} |\n", st.var, st.kind.expected(), st.doc));
    }
    s.push_str(
        "\nBetween settings: `DINV_SHUTDOWN_TIMEOUT` must be below `DINV_STOP_TIMEOUT`, and `DINV_TCP_PORTS` may not forward \
         dockerd's port (2375, or 2376 with `DOCKER_TLS_CERTDIR`).\n\n\
         The launcher exits 2 when a setting is refused (the message names the variable and the value), \
         1 on any other failure, and with the command's status when a command was given.\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn every_default_parses_and_names_are_unique() {
        let mut vars = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for s in SETTINGS {
            s.default_value().unwrap_or_else(|e| panic!("default of {}: {e}", s.var));
            assert!(vars.insert(s.var), "{} twice", s.var);
            if let Some(k) = s.recipe_key {
                assert!(keys.insert(k), "{k} twice");
            }
        }
        // The fw_cfg keys the guest understands include every table key.
        for k in SETTINGS.iter().filter_map(|s| s.fw_cfg) {
            assert!(crate::fw_cfg::KEYS.contains(&k), "{k}");
        }
    }

    #[test]
    fn one_size_grammar() {
        for (s, bare, want) in [("512M", MIB, Some(512 * MIB)), ("512", MIB, Some(512 * MIB)), ("512", 1, Some(512)), ("2GiB", 1, Some(2 * GIB)), ("1g", 1, Some(GIB)), ("256MB", 1, Some(256 * MIB)), ("512B", MIB, Some(512)), ("12X", 1, None), ("G", 1, None), ("1.5G", 1, None), ("-1", 1, None), ("99999999999999T", 1, None)] {
            assert_eq!(parse_size(s, bare), want, "{s}");
        }
        assert_eq!(format_size(1536 * MIB), "1536M");
        assert_eq!(format_size(64 * GIB), "64G");
        assert_eq!(format_size(100), "100B");
    }

    #[test]
    fn bounds_are_enforced() {
        let bad = |var: &str, v: &str| setting(var).parse(v).is_err();
        assert!(bad(CPUS, "0") && bad(CPUS, "256") && bad(CPUS, "300") && !bad(CPUS, "255"));
        assert!(bad(MEMORY, "0") && bad(MEMORY, "1T") && bad(MEMORY, "64M") && bad(MEMORY, "100000K") && !bad(MEMORY, "128") && !bad(MEMORY, "2G"));
        assert!(bad(DOCKER_SIZE, "1M") && !bad(DOCKER_SIZE, "134217728"));
        assert!(bad(SHUTDOWN_TIMEOUT, "3601") && bad(SHUTDOWN_TIMEOUT, "5s") && !bad(SHUTDOWN_TIMEOUT, "3600"));
        assert!(bad(STOP_TIMEOUT, "-1") && bad(STOP_TIMEOUT, "NaN") && bad(STOP_TIMEOUT, "inf") && !bad(STOP_TIMEOUT, "2.5"));
        assert_eq!(setting(MEMORY).parse("").unwrap(), Value::Bytes(512 * MIB));
        let e = setting(CPUS).parse("300").unwrap_err();
        assert_eq!(e.to_string(), "DINV_CPUS=\"300\": expected a whole number of vCPUs from 1 to 255");
    }

    #[test]
    fn relations() {
        let with = |vars: &[(&str, &str)]| {
            let m: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            check_relations(&|k| m.get(k).cloned())
        };
        assert!(with(&[]).is_ok());
        assert!(with(&[(SHUTDOWN_TIMEOUT, "10")]).unwrap_err().why.contains("below DINV_STOP_TIMEOUT (10 s)"));
        assert!(with(&[(SHUTDOWN_TIMEOUT, "10"), (STOP_TIMEOUT, "30")]).is_ok());
        assert!(with(&[(TCP_PORTS, "2375")]).unwrap_err().why.contains("reserved"));
        assert!(with(&[(TCP_PORTS, "2375"), (TLS_CERTDIR, "/certs")]).is_ok());
        assert!(with(&[(TCP_PORTS, "2376"), (TLS_CERTDIR, "/certs")]).is_err());
    }

    /// docs/runtime.md is the table; DINV_BLESS=1 rewrites it.
    #[test]
    fn runtime_md_is_generated_from_the_table() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/runtime.md");
        let want = markdown();
        if std::env::var_os("DINV_BLESS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let got = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(got == want, "docs/runtime.md is not the settings table; run DINV_BLESS=1 cargo test -p dinv-contract");
        for s in SETTINGS {
            assert!(got.contains(&format!("`{}`", s.var)), "{}", s.var);
        }
    }
}
