//! Merges the shutdown timeout, and with `DOCKER_TLS_CERTDIR` the TLS
//! settings, into dockerd's `/etc/docker/daemon.json`.

use serde_json::{Map, Value};

use dinv_contract::fw_cfg::DOCKER_TLS_PORT;

/// Where dockerd reads its configuration (written by the builder, merged into by `setup`).
pub const DAEMON_JSON: &str = "/etc/docker/daemon.json";

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
    fn refuses_non_objects_and_bad_json() {
        assert!(with_shutdown_timeout(Some("[1]"), 5).unwrap_err().contains("not a JSON object"));
        assert!(with_shutdown_timeout(Some("{bip:"), 5).unwrap_err().contains("invalid JSON"));
    }
}
