//! Merges the shutdown timeout into dockerd's `/etc/docker/daemon.json`.

use serde_json::{Map, Value};

/// Where dockerd reads its configuration (written by the builder, merged into by `setup`).
pub const DAEMON_JSON: &str = "/etc/docker/daemon.json";

/// daemon.json key of dockerd's shutdown timeout (seconds).
pub const SHUTDOWN_TIMEOUT_KEY: &str = "shutdown-timeout";

/// Returns `existing` (absent or blank = `{}`) with `shutdown-timeout` set to `secs`.
///
/// Other keys and their order are kept (an existing key keeps its place, a new one
/// goes last), so the same input always gives the same bytes.
pub fn with_shutdown_timeout(existing: Option<&str>, secs: u64) -> Result<String, String> {
    let mut config = match existing.map(str::trim).filter(|t| !t.is_empty()) {
        None => Map::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err("not a JSON object".into()),
            Err(e) => return Err(format!("invalid JSON: {e}")),
        },
    };
    config.insert(SHUTDOWN_TIMEOUT_KEY.to_string(), Value::from(secs));
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

    #[test]
    fn refuses_non_objects_and_bad_json() {
        assert!(with_shutdown_timeout(Some("[1]"), 5).unwrap_err().contains("not a JSON object"));
        assert!(with_shutdown_timeout(Some("{bip:"), 5).unwrap_err().contains("invalid JSON"));
    }
}
