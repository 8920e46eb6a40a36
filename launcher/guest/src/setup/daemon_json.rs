//! Merges the shutdown timeout, and with `DOCKER_TLS_CERTDIR` the TLS
//! settings, into dockerd's `/etc/docker/daemon.json`; derives the copy
//! dockerd runs with when `dinv-guest exec-dockerd` hands its plain TCP
//! listeners over ([`activated`]).

use std::net::SocketAddr;

use serde_json::{Map, Value};

use dinv_contract::fw_cfg::DOCKER_TLS_PORT;

/// Where dockerd reads its configuration (written by the builder, merged into by `setup`).
pub const DAEMON_JSON: &str = "/etc/docker/daemon.json";

/// The configuration dockerd runs with when `dinv-guest exec-dockerd`
/// handed it listeners: daemon.json with those `hosts` as `fd://`. On
/// /run, so every boot derives it afresh.
pub const ACTIVATED_JSON: &str = "/run/dinv/dockerd.json";

/// daemon.json key of dockerd's shutdown timeout (seconds).
pub const SHUTDOWN_TIMEOUT_KEY: &str = "shutdown-timeout";

/// Returns `existing` (absent or blank = `{}`) with `shutdown-timeout` set to `secs`.
///
/// Other keys and their order are kept (an existing key keeps its place, a new one
/// goes last), so the same input always gives the same bytes.
pub fn with_shutdown_timeout(existing: Option<&str>, secs: u64) -> Result<String, String> {
    let mut config = object(existing)?;
    config.insert(SHUTDOWN_TIMEOUT_KEY.to_string(), Value::from(secs));
    render(config)
}

/// Where dockerd's TLS files are, in the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsPaths {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

/// Returns `existing` with dockerd verifying clients over TLS: `tlsverify`
/// and the three files set, every `tcp://` listener on 2375 moved to 2376,
/// and `tcp://0.0.0.0:2376` added when no listener is on 2376 yet (a
/// config without `hosts` keeps dockerd's unix socket). Other keys are kept.
pub fn with_tls(existing: Option<&str>, files: &TlsPaths) -> Result<String, String> {
    let mut config = object(existing)?;
    let mut hosts: Vec<Value> = match config.get("hosts") {
        None => vec![Value::from(format!("unix://{}", dinv_contract::services::DOCKER_SOCK))],
        Some(Value::Array(h)) => h.clone(),
        Some(_) => return Err("\"hosts\" is not an array".into()),
    };
    let tls_port = format!(":{DOCKER_TLS_PORT}");
    for h in hosts.iter_mut() {
        if let Some(addr) = h.as_str().and_then(|s| s.strip_prefix("tcp://")).and_then(|a| a.strip_suffix(":2375")) {
            *h = Value::from(format!("tcp://{addr}{tls_port}"));
        }
    }
    if !hosts.iter().any(|h| h.as_str().is_some_and(|s| s.starts_with("tcp://") && s.ends_with(&tls_port))) {
        hosts.push(Value::from(format!("tcp://0.0.0.0{tls_port}")));
    }
    config.insert("hosts".into(), Value::Array(hosts));
    // `tls` too: the builder writes `"tls": false` for a plain TCP listener
    // (so dockerd skips its 15 s start-up delay); TLS now replaces it.
    for (k, v) in [("tls", Value::from(true)), ("tlsverify", Value::from(true)), ("tlscacert", files.ca.as_str().into()), ("tlscert", files.cert.as_str().into()), ("tlskey", files.key.as_str().into())] {
        config.insert(k.into(), v);
    }
    render(config)
}

/// The listeners of daemon.json `existing` that dockerd would open for
/// plain TCP, and the configuration to start it with when it gets them as
/// sockets ready-made: those `hosts` replaced by one `fd://` (systemd's
/// socket activation, which dockerd reads from `LISTEN_FDS`). None when
/// there are none: no `tcp://` host with a numeric address and port, or
/// `tlsverify` set (dockerd then serves TLS with client verification and
/// opens its listeners itself).
///
/// Why: dockerd sleeps a deliberate second before it listens on TCP
/// without client verification (a warning about the open port), in every
/// release since 20.10 and whether or not `tls` is false; a socket it is
/// handed is not "tcp" to that check. Hosts written as names stay with
/// dockerd, which resolves them.
pub fn activated(existing: Option<&str>) -> Result<Option<(String, Vec<SocketAddr>)>, String> {
    let mut config = object(existing)?;
    if config.get("tlsverify") == Some(&Value::Bool(true)) {
        return Ok(None);
    }
    let Some(Value::Array(hosts)) = config.get("hosts") else { return Ok(None) };
    let mut addrs = Vec::new();
    let mut kept = Vec::new();
    for h in hosts {
        match h.as_str().and_then(|s| s.strip_prefix("tcp://")).and_then(|a| a.trim_end_matches('/').parse::<SocketAddr>().ok()) {
            Some(addr) => {
                if addrs.is_empty() {
                    kept.push(Value::from("fd://"));
                }
                if !addrs.contains(&addr) {
                    addrs.push(addr);
                }
            }
            None => kept.push(h.clone()),
        }
    }
    if addrs.is_empty() {
        return Ok(None);
    }
    config.insert("hosts".into(), Value::Array(kept));
    Ok(Some((render(config)?, addrs)))
}

fn object(existing: Option<&str>) -> Result<Map<String, Value>, String> {
    match existing.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(Map::new()),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err("not a JSON object".into()),
            Err(e) => Err(format!("invalid JSON: {e}")),
        },
    }
}

fn render(config: Map<String, Value>) -> Result<String, String> {
    let mut text = serde_json::to_string_pretty(&Value::Object(config)).map_err(|e| e.to_string())?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_config_when_absent_or_blank() {
        let want = "{\n  \"shutdown-timeout\": 5\n}\n";
        assert_eq!(with_shutdown_timeout(None, 5).unwrap(), want);
        assert_eq!(with_shutdown_timeout(Some("  \n"), 5).unwrap(), want);
    }

    #[test]
    fn keeps_other_keys_in_their_order() {
        let existing = r#"{"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"], "bip": "172.19.0.1/16", "debug": false}"#;
        let out = with_shutdown_timeout(Some(existing), 30).unwrap();
        let keys: Vec<String> = serde_json::from_str::<Map<String, Value>>(&out).unwrap().keys().cloned().collect();
        assert_eq!(keys, ["hosts", "bip", "debug", "shutdown-timeout"]);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["bip"], "172.19.0.1/16");
        assert_eq!(v["hosts"][1], "tcp://0.0.0.0:2375");
        assert_eq!(v["shutdown-timeout"], 30);
    }

    #[test]
    fn replaces_existing_timeout_in_place_and_is_idempotent() {
        let existing = r#"{"shutdown-timeout": 5, "bip": "172.19.0.1/16"}"#;
        let once = with_shutdown_timeout(Some(existing), 12).unwrap();
        assert!(once.find("shutdown-timeout").unwrap() < once.find("bip").unwrap());
        assert!(once.contains("\"shutdown-timeout\": 12"));
        assert_eq!(with_shutdown_timeout(Some(&once), 12).unwrap(), once);
    }

    fn paths() -> TlsPaths {
        TlsPaths { ca: "/etc/docker/tls/ca.pem".into(), cert: "/etc/docker/tls/cert.pem".into(), key: "/etc/docker/tls/key.pem".into() }
    }

    #[test]
    fn tls_moves_2375_listeners_to_2376_and_sets_the_files() {
        let existing = r#"{"bip": "172.19.0.1/16", "hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"], "shutdown-timeout": 5, "tls": false}"#;
        let out = with_tls(Some(existing), &paths()).unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["tls"], Value::from(true), "the builder's tls=false gives way");
        assert_eq!(v["hosts"], serde_json::json!(["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"]));
        assert_eq!((v["tlsverify"].clone(), v["tlskey"].clone()), (Value::from(true), Value::from("/etc/docker/tls/key.pem")));
        assert_eq!(v["tlscacert"], "/etc/docker/tls/ca.pem");
        assert_eq!(v["tlscert"], "/etc/docker/tls/cert.pem");
        assert_eq!((v["bip"].clone(), v["shutdown-timeout"].clone()), (Value::from("172.19.0.1/16"), Value::from(5)));
        assert!(!out.contains("2375"), "{out}");
        assert_eq!(with_tls(Some(&out), &paths()).unwrap(), out, "idempotent");
    }

    #[test]
    fn tls_adds_a_listener_when_none_is_there() {
        let v: Value = serde_json::from_str(&with_tls(Some(r#"{"hosts": ["unix:///var/run/docker.sock"]}"#), &paths()).unwrap()).unwrap();
        assert_eq!(v["hosts"], serde_json::json!(["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"]));
        let v: Value = serde_json::from_str(&with_tls(None, &paths()).unwrap()).unwrap();
        assert_eq!(v["hosts"], serde_json::json!(["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"]));
        // A listener on another port stays (it gets TLS too: tlsverify applies to every TCP listener).
        let v: Value = serde_json::from_str(&with_tls(Some(r#"{"hosts": ["tcp://127.0.0.1:2999"]}"#), &paths()).unwrap()).unwrap();
        assert_eq!(v["hosts"], serde_json::json!(["tcp://127.0.0.1:2999", "tcp://0.0.0.0:2376"]));
        assert!(with_tls(Some(r#"{"hosts": "tcp://x"}"#), &paths()).unwrap_err().contains("hosts"));
    }

    #[test]
    fn plain_tcp_hosts_are_handed_over_as_one_fd_host() {
        let built = r#"{"bip": "172.19.0.1/16", "hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375", "tcp://[::1]:2380", "tcp://0.0.0.0:2375"], "shutdown-timeout": 5, "tls": false}"#;
        let (copy, addrs) = activated(Some(built)).unwrap().expect("plain TCP");
        assert_eq!(addrs, ["0.0.0.0:2375".parse::<SocketAddr>().unwrap(), "[::1]:2380".parse().unwrap()]);
        let v: Value = serde_json::from_str(&copy).unwrap();
        assert_eq!(v["hosts"], serde_json::json!(["unix:///var/run/docker.sock", "fd://"]), "in the first TCP host's place");
        let keys: Vec<String> = serde_json::from_str::<Map<String, Value>>(&copy).unwrap().keys().cloned().collect();
        assert_eq!(keys, ["bip", "hosts", "shutdown-timeout", "tls"], "everything else as it was");
        assert_eq!((v["shutdown-timeout"].clone(), v["tls"].clone()), (Value::from(5), Value::from(false)));
        // `tls` without verification still gets dockerd's sleep, so it is handed over too (dockerd wraps fd:// in TLS).
        let tls_only = r#"{"hosts": ["tcp://0.0.0.0:2376"], "tls": true}"#;
        assert_eq!(activated(Some(tls_only)).unwrap().unwrap().1, ["0.0.0.0:2376".parse::<SocketAddr>().unwrap()]);
    }

    #[test]
    fn dockerd_keeps_listeners_it_must_open_itself() {
        // Client verification: no sleep, and the listener moved to 2376 by `with_tls`.
        let tls = with_tls(Some(r#"{"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"], "tls": false}"#), &paths()).unwrap();
        assert_eq!(activated(Some(&tls)).unwrap(), None);
        for text in [
            r#"{"hosts": ["unix:///var/run/docker.sock"]}"#,
            r#"{"hosts": ["tcp://localhost:2375", "tcp://0.0.0.0"]}"#,
            r#"{"bip": "172.19.0.1/16"}"#,
            "",
        ] {
            assert_eq!(activated(Some(text)).unwrap(), None, "{text}");
        }
        assert!(activated(Some("[1]")).unwrap_err().contains("not a JSON object"));
    }

    #[test]
    fn refuses_non_objects_and_bad_json() {
        assert!(with_shutdown_timeout(Some("[1]"), 5).unwrap_err().contains("not a JSON object"));
        assert!(with_shutdown_timeout(Some("{bip:"), 5).unwrap_err().contains("invalid JSON"));
    }
}
