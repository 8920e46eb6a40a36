//! dockerd's configuration: `/etc/docker/daemon.json` from the recipe, and
//! proxy settings (OpenRC: `/etc/conf.d/docker`; dinv init: the service's
//! environment, see `services.rs`).
//!
//! The shutdown timeout is not written here: `dinv-guest setup` writes it
//! into daemon.json at every boot from the launcher's fw_cfg value
//! (`DINV_SHUTDOWN_TIMEOUT`, whose image default is the recipe's
//! `docker.shutdown_timeout`); dockerd refuses a setting given both there
//! and as a flag, so it is in daemon.json only.

use std::collections::BTreeMap;

use dinv_fstree::Tree;
use serde_json::Value;

use dinv_contract::services::CONTAINERD_SOCK;

use super::tree::{err, first_file, read_text, write};
use crate::recipe::{DockerSection, Init, ProxySection, Recipe};
use crate::Result;

/// Where dockerd reads its configuration.
pub const DAEMON_JSON: &str = "etc/docker/daemon.json";

/// OpenRC's settings file for the docker service (sourced by its script).
pub const CONF_D_DOCKER: &str = "etc/conf.d/docker";

/// containerd's configuration in guests that run it as their own service (see [`own_containerd`]).
pub const CONTAINERD_TOML: &str = "etc/dinv/containerd.toml";

/// containerd's data: where dockerd keeps the containerd it starts itself,
/// on the docker disk, so a disk moves between the two ways unchanged.
pub const CONTAINERD_ROOT: &str = "/var/lib/docker/containerd/daemon";

/// containerd plugins dockerd never uses: CRI (as dockerd disables it for
/// its own containerd), and the snapshotters that probe for their
/// filesystem or module at every start (aufs runs modprobe). dockerd's
/// image store, including the containerd one, uses overlayfs.
pub const CONTAINERD_DISABLED_PLUGINS: &[&str] = &[
    "io.containerd.grpc.v1.cri",
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
];

/// containerd's binary in guests that run containerd as a service of its
/// own beside dockerd: `init = "dinv"` guests that have containerd, unless
/// the recipe points dockerd at a containerd itself (`docker.daemon.containerd`).
/// OpenRC guests keep their packages' services.
pub fn own_containerd(tree: &Tree, recipe: &Recipe) -> Option<&'static str> {
    if recipe.guest.init != Init::Dinv || recipe.docker.daemon.contains_key("containerd") {
        return None;
    }
    first_file(tree, &["usr/bin/containerd", "usr/sbin/containerd"])
}

/// `containerd.toml` for [`own_containerd`]: the data on the docker disk,
/// state and socket where a system containerd has them, dockerd's log
/// level (`docker.daemon.log-level`, or debug with `docker.daemon.debug`),
/// else warnings only: its info lines are a list of plugins at every boot.
pub fn containerd_toml(d: &DockerSection) -> String {
    let level = match (d.daemon.get("debug"), d.daemon.get("log-level")) {
        (Some(toml::Value::Boolean(true)), _) => "debug".to_string(),
        (_, Some(toml::Value::String(level))) => level.clone(),
        _ => "warn".to_string(),
    };
    let disabled: Vec<String> = CONTAINERD_DISABLED_PLUGINS.iter().map(|p| format!("{p:?}")).collect();
    format!(
        "# Written by dinv-build. dinv-guest init starts containerd beside dockerd,\n\
         # whose daemon.json names this socket (\"containerd\").\n\
         version = 2\n\
         root = {CONTAINERD_ROOT:?}\n\
         state = \"/run/containerd\"\n\
         disabled_plugins = [{}]\n\
         \n\
         [grpc]\n  address = {CONTAINERD_SOCK:?}\n\
         \n\
         [debug]\n  level = {level:?}\n",
        disabled.join(", ")
    )
}

/// daemon.json as a JSON object with sorted keys: the typed settings plus
/// the free-form `docker.daemon` table, and `containerd` when the guest
/// runs its own ([`own_containerd`], which needs the guest tree; templates
/// see the recipe's part only). An extra that repeats a typed key is an
/// error naming the key.
pub fn daemon_json(d: &DockerSection, containerd: Option<&str>) -> Result<Value> {
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    if let Some(sock) = containerd {
        out.insert("containerd".into(), Value::from(sock));
    }
    out.insert("bip".into(), Value::from(d.bip.clone()));
    out.insert("hosts".into(), Value::from(d.hosts.clone()));
    if let Some(s) = &d.storage_driver {
        out.insert("storage-driver".into(), Value::from(s.clone()));
    }
    if !d.registry_mirrors.is_empty() {
        out.insert("registry-mirrors".into(), Value::from(d.registry_mirrors.clone()));
    }
    if !d.insecure_registries.is_empty() {
        out.insert("insecure-registries".into(), Value::from(d.insecure_registries.clone()));
    }
    // dockerd 20.10+ sleeps 15 s at start-up when it listens on TCP without
    // TLS, unless TLS is switched off explicitly. DinV's plain 2375 is on
    // purpose (the original DinV's interface; the launcher turns TLS on
    // with DOCKER_TLS_CERTDIR), so say so, unless the recipe sets TLS itself.
    let tls_keys = ["tls", "tlsverify", "tlscacert", "tlscert", "tlskey"];
    if d.hosts.iter().any(|h| h.starts_with("tcp://")) && !d.daemon.keys().any(|k| tls_keys.contains(&k.as_str())) {
        out.insert("tls".into(), Value::from(false));
    }
    for (k, v) in &d.daemon {
        if DockerSection::TYPED_KEYS.contains(&k.as_str()) {
            let field = k.replace('-', "_");
            return Err(err(format!("docker.daemon.{k}: set it with docker.{field} instead (daemon.json would have it twice)")));
        }
        let v = serde_json::to_value(v).map_err(|e| err(format!("docker.daemon.{k}: not representable in JSON: {e}")))?;
        out.insert(k.clone(), v);
    }
    Ok(Value::Object(out.into_iter().collect()))
}

/// The proxy environment for dockerd (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`), sorted.
pub fn proxy_env(p: Option<&ProxySection>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if let Some(p) = p {
        for (k, v) in [("HTTP_PROXY", &p.http), ("HTTPS_PROXY", &p.https), ("NO_PROXY", &p.no_proxy)] {
            if let Some(v) = v {
                env.insert(k.to_string(), v.clone());
            }
        }
    }
    env
}

/// Shell-quotes a value for a conf.d file.
fn sh_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

/// `/etc/conf.d/docker` with the proxy exports: earlier proxy lines are
/// dropped, everything else the package put there is kept.
pub fn conf_d_with_proxy(existing: Option<&str>, env: &BTreeMap<String, String>) -> String {
    let mut lines: Vec<String> = existing
        .unwrap_or("")
        .lines()
        .filter(|l| !env.keys().any(|k| l.trim_start().starts_with(&format!("export {k}="))))
        .map(str::to_string)
        .collect();
    for (k, v) in env {
        lines.push(format!("export {k}={}", sh_quote(v)));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// Writes daemon.json (0644) and, for OpenRC guests, the proxy exports;
/// for a guest's own containerd, its configuration, and daemon.json names
/// its socket.
pub fn apply(tree: &mut Tree, recipe: &Recipe) -> Result<()> {
    let containerd = own_containerd(tree, recipe).map(|_| CONTAINERD_SOCK);
    if containerd.is_some() {
        write(tree, CONTAINERD_TOML, containerd_toml(&recipe.docker), 0o644)?;
    }
    let json = daemon_json(&recipe.docker, containerd)?;
    let mut text = serde_json::to_string_pretty(&json).map_err(|e| err(format!("daemon.json: {e}")))?;
    text.push('\n');
    write(tree, DAEMON_JSON, text, 0o644)?;
    let env = proxy_env(recipe.docker.proxy.as_ref());
    if recipe.guest.init == crate::recipe::Init::Openrc && !env.is_empty() {
        let conf = conf_d_with_proxy(read_text(tree, CONF_D_DOCKER).as_deref(), &env);
        write(tree, CONF_D_DOCKER, conf, 0o644)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_json_has_the_typed_keys_sorted_and_merges_extras() {
        let mut d = DockerSection { registry_mirrors: vec!["https://mirror.invalid".into()], ..Default::default() };
        d.daemon.insert("log-driver".into(), toml::Value::String("json-file".into()));
        d.daemon.insert("debug".into(), toml::Value::Boolean(true));
        let text = serde_json::to_string(&daemon_json(&d, None).unwrap()).unwrap();
        assert_eq!(
            text,
            r#"{"bip":"172.19.0.1/16","debug":true,"hosts":["unix:///var/run/docker.sock","tcp://0.0.0.0:2375"],"log-driver":"json-file","registry-mirrors":["https://mirror.invalid"],"tls":false}"#
        );
    }

    #[test]
    fn tls_is_off_explicitly_for_a_tcp_listener_unless_the_recipe_sets_it() {
        let d = DockerSection::default();
        assert_eq!(daemon_json(&d, None).unwrap()["tls"], Value::from(false), "dockerd would sleep 15 s at start-up");
        let unix_only = DockerSection { hosts: vec!["unix:///var/run/docker.sock".into()], ..Default::default() };
        assert!(daemon_json(&unix_only, None).unwrap().get("tls").is_none());
        let mut own = DockerSection::default();
        own.daemon.insert("tlsverify".into(), toml::Value::Boolean(true));
        let j = daemon_json(&own, None).unwrap();
        assert!(j.get("tls").is_none() && j["tlsverify"] == Value::from(true));
    }

    #[test]
    fn extras_may_not_override_typed_keys() {
        let mut d = DockerSection::default();
        d.daemon.insert("shutdown-timeout".into(), toml::Value::Integer(30));
        let e = daemon_json(&d, None).unwrap_err().to_string();
        assert!(e.contains("docker.daemon.shutdown-timeout") && e.contains("docker.shutdown_timeout"), "{e}");
    }

    #[test]
    fn proxy_lines_replace_old_ones_and_keep_the_rest() {
        let env = proxy_env(Some(&ProxySection { http: Some("http://p:3128".into()), https: None, no_proxy: Some("localhost,10.0.0.0/8".into()) }));
        let old = "DOCKER_OPTS=\"\"\nexport HTTP_PROXY='old'\n";
        let out = conf_d_with_proxy(Some(old), &env);
        assert_eq!(out, "DOCKER_OPTS=\"\"\nexport HTTP_PROXY='http://p:3128'\nexport NO_PROXY='localhost,10.0.0.0/8'\n");
        assert_eq!(conf_d_with_proxy(Some(&out), &env), out);
    }
}
