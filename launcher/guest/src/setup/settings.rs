//! Runtime settings passed by the launcher through QEMU fw_cfg (`opt/dinv/<key>`).

use std::io;
use std::path::{Path, PathBuf};

use crate::error::{GuestError, Result};
use crate::log::say;
use dinv_contract::settings::{self as table, fw_cfg_key};

/// Where the qemu_fw_cfg kernel module shows the launcher's `opt/dinv/*` entries.
pub const FW_CFG_DIR: &str = dinv_contract::fw_cfg::GUEST_DIR;

/// Default dockerd shutdown timeout in seconds: the settings table's.
pub fn default_shutdown_timeout() -> u64 {
    table::setting(table::SHUTDOWN_TIMEOUT).default_value().ok().and_then(|v| v.seconds()).map_or(5, |d| d.as_secs())
}

/// One 9p share: the virtio-9p mount tag and the guest path to mount it at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub tag: String,
    pub path: PathBuf,
}

/// dockerd's TLS server set (PEM), from the launcher's `DOCKER_TLS_CERTDIR`.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

impl std::fmt::Debug for TlsFiles {
    /// Leaves the private key out of logs and dry runs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles").field("ca", &self.ca).field("cert", &self.cert).field("key", &"<private key>").finish()
    }
}

/// All settings the guest reads from fw_cfg; missing keys take the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub mounts: Vec<Share>,
    pub volume_path: Option<PathBuf>,
    pub volume_uid: u32,
    pub volume_gid: u32,
    pub sock_uid: u32,
    pub sock_gid: u32,
    pub shutdown_timeout: u64,
    /// Set: dockerd listens on 2376 with `--tlsverify` instead of 2375.
    pub tls: Option<TlsFiles>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mounts: Vec::new(),
            volume_path: None,
            volume_uid: 0,
            volume_gid: 0,
            sock_uid: 0,
            sock_gid: 0,
            shutdown_timeout: default_shutdown_timeout(),
            tls: None,
        }
    }
}

impl Settings {
    /// Reads `<dir>/<key>/raw` for every key; a missing `dir` means all defaults.
    pub fn load(dir: &Path) -> Result<Settings> {
        if !dir.is_dir() {
            say(format_args!("no settings at {} (qemu_fw_cfg not loaded, or no opt/dinv entries); using defaults", dir.display()));
            return Ok(Settings::default());
        }
        let mut values = Vec::new();
        for key in KEYS {
            let path = dir.join(key).join("raw");
            match std::fs::read(&path) {
                Ok(bytes) => values.push((*key, String::from_utf8_lossy(&bytes).into_owned())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(GuestError::io("reading", path, e)),
            }
        }
        Settings::from_values(|key| values.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()))
    }

    /// Builds settings from raw key values (`None` = key absent); values are trimmed of whitespace and NULs.
    pub fn from_values(get: impl Fn(&str) -> Option<String>) -> Result<Settings> {
        let get =
            |key: &str| get(key).map(|v| v.trim_matches(|c: char| c.is_whitespace() || c == '\0').to_string()).filter(|v| !v.is_empty());
        let mut s = Settings::default();
        if let Some(v) = get(fw_cfg_key(table::MOUNTS)) {
            s.mounts = parse_mounts(&v)?;
        }
        if let Some(v) = get(fw_cfg_key(table::VOLUME_PATH)) {
            s.volume_path = Some(absolute("volume_path", &v)?);
        }
        s.volume_uid = number(&get, fw_cfg_key(table::VOLUME_UID), s.volume_uid)?;
        s.volume_gid = number(&get, fw_cfg_key(table::VOLUME_GID), s.volume_gid)?;
        s.sock_uid = number(&get, fw_cfg_key(table::SOCK_UID), s.sock_uid)?;
        s.sock_gid = number(&get, fw_cfg_key(table::SOCK_GID), s.sock_gid)?;
        s.shutdown_timeout = number(&get, fw_cfg_key(table::SHUTDOWN_TIMEOUT), s.shutdown_timeout)?;
        s.tls = tls(&get)?;
        Ok(s)
    }
}

/// The TLS files: all three keys or none.
fn tls(get: &impl Fn(&str) -> Option<String>) -> Result<Option<TlsFiles>> {
    use dinv_contract::fw_cfg::{TLS_CA, TLS_CERT, TLS_KEY};
    let pem = |key: &'static str| -> Result<Option<String>> {
        match get(key) {
            Some(v) if !v.starts_with("-----BEGIN ") => {
                Err(GuestError::Setting { key, value: v.chars().take(20).collect(), why: "expected PEM text".into() })
            }
            v => Ok(v.map(|v| v + "\n")),
        }
    };
    match (pem(TLS_CA)?, pem(TLS_CERT)?, pem(TLS_KEY)?) {
        (None, None, None) => Ok(None),
        (Some(ca), Some(cert), Some(key)) => Ok(Some(TlsFiles { ca, cert, key })),
        (ca, cert, _) => {
            let missing = if ca.is_none() { TLS_CA } else if cert.is_none() { TLS_CERT } else { TLS_KEY };
            Err(GuestError::Setting { key: missing, value: String::new(), why: "tls_ca, tls_cert and tls_key come together".into() })
        }
    }
}

/// Every fw_cfg key the guest understands (under `opt/dinv/`).
pub const KEYS: &[&str] = dinv_contract::fw_cfg::KEYS;

/// Parses `TAG=PATH;TAG=PATH`; empty entries are skipped, paths must be absolute.
pub fn parse_mounts(value: &str) -> Result<Vec<Share>> {
    let mut shares = Vec::new();
    for entry in value.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = |why: &str| GuestError::Setting { key: "mounts", value: value.to_string(), why: format!("entry {entry:?}: {why}") };
        let (tag, path) = entry.split_once('=').ok_or_else(|| bad("expected TAG=PATH"))?;
        if tag.is_empty() {
            return Err(bad("empty mount tag"));
        }
        let path = absolute("mounts", path).map_err(|_| bad("path must be absolute"))?;
        shares.push(Share { tag: tag.to_string(), path });
    }
    Ok(shares)
}

fn absolute(key: &'static str, value: &str) -> Result<PathBuf> {
    if value.starts_with('/') {
        Ok(PathBuf::from(value))
    } else {
        Err(GuestError::Setting { key, value: value.to_string(), why: "path must be absolute".into() })
    }
}

fn number<T: std::str::FromStr>(get: &impl Fn(&str) -> Option<String>, key: &'static str, default: T) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    match get(key) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|e: T::Err| GuestError::Setting { key, value: v.clone(), why: e.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Settings> {
        Settings::from_values(|k| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn missing_keys_mean_defaults() {
        let s = from(&[]).unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(s.shutdown_timeout, 5);
        assert!(s.volume_path.is_none());
    }

    #[test]
    fn parses_all_keys_and_trims_nul_and_newline() {
        let s = from(&[
            ("mounts", "src=/src;cache=/var/cache/x;"),
            ("volume_path", "/data\n"),
            ("volume_uid", "1000"),
            ("volume_gid", "100\0"),
            ("sock_uid", "1001"),
            ("sock_gid", "999"),
            ("shutdown_timeout", " 30 "),
        ])
        .unwrap();
        assert_eq!(
            s.mounts,
            vec![Share { tag: "src".into(), path: "/src".into() }, Share { tag: "cache".into(), path: "/var/cache/x".into() }]
        );
        assert_eq!(s.volume_path.as_deref(), Some(Path::new("/data")));
        assert_eq!((s.volume_uid, s.volume_gid, s.sock_uid, s.sock_gid, s.shutdown_timeout), (1000, 100, 1001, 999, 30));
    }

    #[test]
    fn empty_values_are_defaults() {
        let s = from(&[("mounts", ""), ("volume_path", "  "), ("shutdown_timeout", "")]).unwrap();
        assert_eq!(s, Settings::default());
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = from(&[("sock_uid", "root")]).unwrap_err().to_string();
        assert!(e.contains("sock_uid") && e.contains("root"), "{e}");
        let e = from(&[("volume_path", "data")]).unwrap_err().to_string();
        assert!(e.contains("volume_path") && e.contains("absolute"), "{e}");
        let e = parse_mounts("a=/x;nopath").unwrap_err().to_string();
        assert!(e.contains("nopath") && e.contains("TAG=PATH"), "{e}");
        assert!(parse_mounts("=/x").is_err());
        assert!(parse_mounts("t=rel/x").is_err());
    }

    #[test]
    fn tls_files_come_together() {
        let pem = |what: &str| format!("-----BEGIN {what}-----\nAAAA\n-----END {what}-----");
        let (ca, cert, key) = (pem("CERTIFICATE"), pem("CERTIFICATE"), pem("PRIVATE KEY"));
        let s = from(&[("tls_ca", &ca), ("tls_cert", &cert), ("tls_key", &format!("{key}\n\0"))]).unwrap();
        let tls = s.tls.unwrap();
        assert_eq!(tls.key, format!("{key}\n"));
        assert!(!format!("{tls:?}").contains("AAAA\n-----END PRIVATE"), "the key stays out of Debug");
        let e = from(&[("tls_ca", &ca), ("tls_key", &key)]).unwrap_err().to_string();
        assert!(e.contains("tls_cert") && e.contains("together"), "{e}");
        let e = from(&[("tls_ca", "junk"), ("tls_cert", &cert), ("tls_key", &key)]).unwrap_err().to_string();
        assert!(e.contains("tls_ca") && e.contains("PEM"), "{e}");
    }

    #[test]
    fn load_reads_fw_cfg_layout_and_tolerates_missing_dir() {
        let dir = std::env::temp_dir().join(format!("dinv-guest-settings-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(Settings::load(&dir).unwrap(), Settings::default());
        for (key, value) in [("mounts", "w=/work"), ("shutdown_timeout", "12")] {
            std::fs::create_dir_all(dir.join(key)).unwrap();
            std::fs::write(dir.join(key).join("raw"), value).unwrap();
        }
        let s = Settings::load(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(s.mounts, vec![Share { tag: "w".into(), path: "/work".into() }]);
        assert_eq!(s.shutdown_timeout, 12);
        assert_eq!(s.sock_uid, 0);
    }
}
