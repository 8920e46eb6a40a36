//! The image description and its OCI image config JSON (the fields docker
//! also reads, including its `Healthcheck`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::{rfc3339, ImageError, Layer};

/// Docker's health check, stored in the config and honoured by docker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["CMD", prog, args...]` or `["CMD-SHELL", "cmd"]`.
    pub test: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub retries: u32,
}

/// Everything about the image except its layers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSpec {
    /// Repository name, e.g. `dinv` or `ghcr.io/org/dinv`.
    pub name: String,
    pub tag: String,
    /// Creation time in seconds since the epoch (SOURCE_DATE_EPOCH).
    pub created: i64,
    pub architecture: String,
    pub os: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=value` entries, in order.
    pub env: Vec<String>,
    /// `2375/tcp`, `53/udp`...
    pub exposed_ports: Vec<String>,
    /// Container paths declared as volumes.
    pub volumes: Vec<String>,
    pub stop_signal: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub healthcheck: Option<Healthcheck>,
}

impl ImageSpec {
    /// An amd64/linux image with nothing configured, created at `created`.
    pub fn new(name: impl Into<String>, tag: impl Into<String>, created: i64) -> Self {
        ImageSpec {
            name: name.into(),
            tag: tag.into(),
            created,
            architecture: "amd64".into(),
            os: "linux".into(),
            entrypoint: Vec::new(),
            cmd: Vec::new(),
            env: Vec::new(),
            exposed_ports: Vec::new(),
            volumes: Vec::new(),
            stop_signal: None,
            labels: BTreeMap::new(),
            working_dir: None,
            user: None,
            healthcheck: None,
        }
    }

    /// Checks name and tag against docker's reference grammar (simplified:
    /// lowercase path components, optional registry host[:port]).
    pub fn validate(&self) -> Result<(), ImageError> {
        let bad = |why| ImageError::BadReference { reference: self.reference(), why };
        let tag_ok = !self.tag.is_empty()
            && self.tag.len() <= 128
            && !self.tag.starts_with(['.', '-'])
            && self.tag.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !tag_ok {
            return Err(bad("the tag must be 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'"));
        }
        let mut parts: Vec<&str> = self.name.split('/').collect();
        if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
            parts.remove(0); // a registry host may have uppercase, dots and a port
        }
        let component_ok = |p: &&str| {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                && p.starts_with(|c: char| c.is_ascii_alphanumeric())
                && p.ends_with(|c: char| c.is_ascii_alphanumeric())
        };
        if self.name.is_empty() || !parts.iter().all(component_ok) {
            return Err(bad("name components must be lowercase [a-z0-9._-], starting and ending alphanumeric"));
        }
        Ok(())
    }

    /// `name:tag` as in docker's RepoTags.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.name, self.tag)
    }

    /// The fully qualified name docker and containerd store
    /// (`docker.io/library/dinv:latest` for `dinv:latest`).
    pub fn full_reference(&self) -> String {
        let first = self.name.split('/').next().unwrap_or("");
        let has_host = self.name.contains('/') && (first.contains(['.', ':']) || first == "localhost");
        if has_host {
            self.reference()
        } else if self.name.contains('/') {
            format!("docker.io/{}", self.reference())
        } else {
            format!("docker.io/library/{}", self.reference())
        }
    }

    /// The image config JSON value for these layers.
    pub fn config_json(&self, layers: &[Layer]) -> Value {
        let created = rfc3339(self.created);
        let mut c = Map::new();
        let strings = |v: &[String]| Value::from(v.to_vec());
        let set = |v: &[String]| Value::Object(v.iter().map(|k| (k.clone(), json!({}))).collect());
        if !self.entrypoint.is_empty() {
            c.insert("Entrypoint".into(), strings(&self.entrypoint));
        }
        if !self.cmd.is_empty() {
            c.insert("Cmd".into(), strings(&self.cmd));
        }
        if !self.env.is_empty() {
            c.insert("Env".into(), strings(&self.env));
        }
        if !self.exposed_ports.is_empty() {
            c.insert("ExposedPorts".into(), set(&self.exposed_ports));
        }
        if !self.volumes.is_empty() {
            c.insert("Volumes".into(), set(&self.volumes));
        }
        if let Some(s) = &self.stop_signal {
            c.insert("StopSignal".into(), s.clone().into());
        }
        if !self.labels.is_empty() {
            c.insert("Labels".into(), json!(self.labels));
        }
        if let Some(w) = &self.working_dir {
            c.insert("WorkingDir".into(), w.clone().into());
        }
        if let Some(u) = &self.user {
            c.insert("User".into(), u.clone().into());
        }
        if let Some(h) = &self.healthcheck {
            // Docker stores durations in nanoseconds.
            c.insert(
                "Healthcheck".into(),
                json!({
                    "Test": h.test,
                    "Interval": h.interval.as_nanos() as u64,
                    "Timeout": h.timeout.as_nanos() as u64,
                    "StartPeriod": h.start_period.as_nanos() as u64,
                    "Retries": h.retries,
                }),
            );
        }
        let history: Vec<Value> = layers.iter().map(|l| json!({"created": created, "created_by": l.created_by})).collect();
        json!({
            "architecture": self.architecture,
            "os": self.os,
            "created": created,
            "config": Value::Object(c),
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
            "history": history,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let s = ImageSpec::new("dinv", "latest", 0);
        assert_eq!(s.full_reference(), "docker.io/library/dinv:latest");
        s.validate().unwrap();
        let s = ImageSpec::new("org/dinv", "1.0", 0);
        assert_eq!(s.full_reference(), "docker.io/org/dinv:1.0");
        let s = ImageSpec::new("localhost:5000/Org/dinv", "v1", 0);
        assert!(s.validate().is_err());
        let s = ImageSpec::new("Registry.example:5000/org/dinv", "v1", 0);
        s.validate().unwrap();
        assert_eq!(s.full_reference(), "Registry.example:5000/org/dinv:v1");
        for (name, tag) in [("Dinv", "x"), ("dinv", ""), ("dinv", "-x"), ("dinv-", "x"), ("", "x"), ("a//b", "x")] {
            let err = ImageSpec::new(name, tag, 0).validate().unwrap_err().to_string();
            assert!(err.contains(&format!("{name}:{tag}")), "{err}");
        }
    }
}
