//! The init system. OpenRC guests (Alpine): the DinV runlevels, the
//! dinv-setup/dinv-post scripts, qemu-guest-agent's channel. dinv guests
//! (Debian): `/etc/dinv/services.json` for `dinv-guest init`, which is
//! linked as `/usr/sbin/init` and the power commands.

use dinv_contract::services::QGA_PORT;
use dinv_fstree::{Meta, NodeKind, Tree, TreePath};
use dinv_contract::openrc::openrc_scripts;
use dinv_contract::services::{dockerd_argv, ServicesFile};

use super::docker;
use super::tree::{err, first_file, is_file, read_text, symlink, write};
use crate::recipe::{parse_service, GuestSection, Init, Recipe};
use crate::Result;

/// The DinV service set per OpenRC runlevel (the original DinV's, minus hwclock: a microVM has no RTC).
pub const RUNLEVELS: &[(&str, &[&str])] = &[
    ("sysinit", &["devfs", "dmesg", "mdev"]),
    ("boot", &["modules", "sysctl", "hostname", "bootmisc", "syslog", "networking"]),
    // acpid: the power button's handler, the launcher's fallback when the guest agent does not answer.
    ("default", &["acpid", "docker", "qemu-guest-agent", "dinv-setup", "dinv-post"]),
    ("shutdown", &["mount-ro", "killprocs", "savecache"]),
];

/// Settings file of Alpine's qemu-guest-agent service.
pub const CONF_D_QEMU_GA: &str = "etc/conf.d/qemu-guest-agent";

/// busybox mdev's rules; mdev does not create `/dev/virtio-ports/<name>` links by itself.
pub const MDEV_CONF: &str = "etc/mdev.conf";

/// mdev rule (run from /dev, `$MDEV` = node name) linking each named virtio-serial port, as udev would.
pub const MDEV_VPORT_RULE: &str =
    "vport[0-9]+p[0-9]+ root:root 0600 @[ -r /sys/class/virtio-ports/$MDEV/name ] && mkdir -p virtio-ports && ln -sf ../$MDEV virtio-ports/$(cat /sys/class/virtio-ports/$MDEV/name)";

/// What busybox acpid runs for the power button: its built-in table maps
/// KEY_POWER to `PWRF/00000080` under `/etc/acpi`.
pub const ACPI_POWER_SCRIPT: &str = "etc/acpi/PWRF/00000080";

/// The power button's action: a clean OpenRC shutdown.
pub const ACPI_POWER_ACTION: &str = "#!/bin/sh\npoweroff\n";

/// Where the services file for `dinv-guest init` goes.
pub const SERVICES_JSON: &str = "etc/dinv/services.json";

/// Names linked to dinv-guest in dinv guests: PID 1 and the power commands.
/// `modprobe` stays the distribution's (kmod), which reads the binary
/// indexes the kernel stage writes.
pub const GUEST_LINKS: &[&str] = &["init", "poweroff", "shutdown", "halt", "reboot"];

/// Applies the recipe's init system.
pub fn apply(tree: &mut Tree, recipe: &Recipe) -> Result<()> {
    match recipe.guest.init {
        Init::Openrc => openrc(tree, &recipe.guest),
        Init::Dinv => dinv(tree, recipe),
    }
}

fn enable(tree: &mut Tree, level: &str, name: &str) -> Result<()> {
    tree.mkdir_p(&TreePath::new(&format!("etc/runlevels/{level}")), Meta::root(0o755))
        .map_err(|e| err(format!("runlevel {level}: {e}")))?;
    symlink(tree, &format!("etc/runlevels/{level}/{name}"), &format!("/etc/init.d/{name}"))
}

/// OpenRC: DinV scripts, runlevel links, the guest agent's channel.
pub fn openrc(tree: &mut Tree, guest: &GuestSection) -> Result<()> {
    for (path, text) in openrc_scripts() {
        write(tree, path.trim_start_matches('/'), text, 0o755)?;
    }
    for (level, names) in RUNLEVELS {
        for name in *names {
            if is_file(tree, &format!("etc/init.d/{name}")) {
                enable(tree, level, name)?;
            } else {
                tracing::warn!(service = name, runlevel = level, "no /etc/init.d/{name} in the guest; not enabled");
            }
        }
    }
    for entry in &guest.services {
        let (level, name) = parse_service(entry).expect("validated when the recipe was loaded");
        enable(tree, level, name)?;
    }
    // Alpine's busybox ships the handler; write it where a package did not.
    if is_file(tree, "etc/init.d/acpid") && !is_file(tree, ACPI_POWER_SCRIPT) {
        write(tree, ACPI_POWER_SCRIPT, ACPI_POWER_ACTION, 0o755)?;
    }
    if is_file(tree, "etc/init.d/qemu-guest-agent") {
        let existing = read_text(tree, CONF_D_QEMU_GA).unwrap_or_default();
        let mut lines: Vec<String> = existing
            .lines()
            .filter(|l| !l.trim_start().starts_with("GA_PATH="))
            .map(str::to_string)
            .collect();
        lines.push(format!("GA_PATH=\"{QGA_PORT}\""));
        write(tree, CONF_D_QEMU_GA, lines.join("\n") + "\n", 0o644)?;
        let mdev = read_text(tree, MDEV_CONF);
        if !mdev.as_deref().unwrap_or("").contains("virtio-ports") {
            // First match wins in mdev.conf, so the rule goes before any catch-all.
            write(tree, MDEV_CONF, format!("{MDEV_VPORT_RULE}\n{}", mdev.unwrap_or_default()), 0o644)?;
        }
    }
    Ok(())
}

/// dinv init: services.json and the PID 1 / power command links.
pub fn dinv(tree: &mut Tree, recipe: &Recipe) -> Result<()> {
    let dockerd = first_file(tree, &["usr/bin/dockerd", "usr/sbin/dockerd"])
        .ok_or_else(|| err("guest.init = \"dinv\": no dockerd in the guest (/usr/bin/dockerd or /usr/sbin/dockerd); add docker to guest.packages"))?;
    let qemu_ga = first_file(tree, &["usr/sbin/qemu-ga", "usr/bin/qemu-ga"]);
    let containerd = docker::own_containerd(tree, recipe)
        .map(|c| vec![format!("/{c}"), "--config".into(), format!("/{}", docker::CONTAINERD_TOML)]);
    let mut file = ServicesFile::standard(&format!("/{}", qemu_ga.unwrap_or("usr/sbin/qemu-ga")), containerd, dockerd_argv(&format!("/{dockerd}")), vec![]);
    if qemu_ga.is_none() {
        tracing::warn!("no qemu-ga in the guest: the launcher's graceful shutdown will not reach it");
        file.services.retain(|s| s.name != "qemu-ga");
    }
    let env = docker::proxy_env(recipe.docker.proxy.as_ref());
    if let Some(d) = file.services.iter_mut().find(|s| s.name == "dockerd") {
        d.env.extend(env);
    }
    file.validate().map_err(|e| err(format!("services.json: {e}")))?;
    let mut text = serde_json::to_string_pretty(&file).map_err(|e| err(format!("services.json: {e}")))?;
    text.push('\n');
    write(tree, SERVICES_JSON, text, 0o644)?;
    let real_sbin = matches!(tree.get(&TreePath::new("sbin")).map(|n| &n.kind), Some(NodeKind::Dir));
    for name in GUEST_LINKS {
        symlink(tree, &format!("usr/sbin/{name}"), "dinv-guest")?;
        if real_sbin {
            symlink(tree, &format!("sbin/{name}"), "/usr/sbin/dinv-guest")?;
        }
    }
    Ok(())
}

/// A `guest.services` entry whose script the guest lacks.
#[derive(Debug)]
pub struct MissingService {
    /// Index of the entry in `guest.services`.
    pub index: usize,
    pub message: String,
}

impl std::fmt::Display for MissingService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Checks that every service the recipe enabled has its script, once
/// overlays (which may add scripts) are in.
pub fn check_enabled(tree: &Tree, guest: &GuestSection) -> std::result::Result<(), MissingService> {
    for (index, entry) in guest.services.iter().enumerate() {
        if let Some((_, name)) = parse_service(entry) {
            if !is_file(tree, &format!("etc/init.d/{name}")) {
                let message = format!("{entry:?} enables {name}, but the guest has no /etc/init.d/{name} (which package or overlay provides it?)");
                return Err(MissingService { index, message });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe(extra_guest: &str) -> Recipe {
        toml::from_str(&format!(
            "[image]\nname = \"t\"\n[sources.s]\ntype = \"apk\"\nrepositories = []\n[guest]\nsource = \"s\"\npackages = []\n{extra_guest}\n"
        ))
        .unwrap()
    }

    fn link(t: &Tree, p: &str) -> Option<String> {
        match &t.get(&TreePath::new(p))?.kind {
            NodeKind::Symlink(s) => Some(s.clone()),
            _ => None,
        }
    }

    #[test]
    fn openrc_links_present_services_only() {
        let mut t = Tree::new();
        for s in ["devfs", "docker", "qemu-guest-agent", "local", "acpid"] {
            t.write_file(&TreePath::new(&format!("etc/init.d/{s}")), "#!/sbin/openrc-run\n", Meta::root(0o755))
                .unwrap();
        }
        let r = recipe("services = [\"default:local\"]");
        apply(&mut t, &r).unwrap();
        assert_eq!(link(&t, "etc/runlevels/sysinit/devfs").as_deref(), Some("/etc/init.d/devfs"));
        assert_eq!(link(&t, "etc/runlevels/default/dinv-setup").as_deref(), Some("/etc/init.d/dinv-setup"));
        assert_eq!(link(&t, "etc/runlevels/default/local").as_deref(), Some("/etc/init.d/local"));
        assert!(link(&t, "etc/runlevels/sysinit/mdev").is_none());
        // The power button fallback: acpid runs, and its handler powers off.
        assert_eq!(link(&t, "etc/runlevels/default/acpid").as_deref(), Some("/etc/init.d/acpid"));
        assert_eq!(read_text(&t, ACPI_POWER_SCRIPT).unwrap(), "#!/bin/sh\npoweroff\n");
        assert_eq!(t.get(&TreePath::new(ACPI_POWER_SCRIPT)).unwrap().meta.mode, 0o755);
        assert_eq!(t.get(&TreePath::new("etc/init.d/dinv-post")).unwrap().meta.mode, 0o755);
        assert_eq!(read_text(&t, CONF_D_QEMU_GA).unwrap(), format!("GA_PATH=\"{QGA_PORT}\"\n"));
        assert!(read_text(&t, MDEV_CONF).unwrap().starts_with("vport[0-9]+p[0-9]+ "));
        check_enabled(&t, &r.guest).unwrap();
        let bad = recipe("services = [\"default:nope\"]");
        apply(&mut t, &bad).unwrap();
        let e = check_enabled(&t, &bad.guest).unwrap_err().to_string();
        assert!(e.contains("no /etc/init.d/nope"), "{e}");
    }

    #[test]
    fn dinv_init_writes_services_and_links_under_merged_usr() {
        let mut t = Tree::new();
        t.write_file(&TreePath::new("usr/sbin/dockerd"), "d", Meta::root(0o755)).unwrap();
        t.write_file(&TreePath::new("usr/bin/qemu-ga"), "q", Meta::root(0o755)).unwrap();
        t.write_file(&TreePath::new("usr/sbin/halt"), "systemctl", Meta::root(0o755)).unwrap();
        t.symlink(&TreePath::new("sbin"), "usr/sbin").unwrap();
        let mut r = recipe("init = \"dinv\"");
        r.docker.proxy = Some(crate::recipe::ProxySection {
            http: Some("http://p:3128".into()),
            https: None,
            no_proxy: None,
        });
        apply(&mut t, &r).unwrap();
        let f = ServicesFile::parse(&read_text(&t, SERVICES_JSON).unwrap()).unwrap();
        assert_eq!(f.services[0].argv[0], "/usr/bin/qemu-ga");
        assert_eq!(f.services[1].argv, ["/usr/sbin/dinv-guest", "exec-dockerd", "/usr/sbin/dockerd"], "dinv-guest hands dockerd its listeners");
        assert_eq!(f.services[1].env.get("HTTP_PROXY").map(String::as_str), Some("http://p:3128"));
        for n in GUEST_LINKS {
            assert_eq!(link(&t, &format!("usr/sbin/{n}")).as_deref(), Some("dinv-guest"), "{n}");
        }
        assert!(matches!(t.get(&TreePath::new("sbin")).unwrap().kind, NodeKind::Symlink(_)));
    }

    #[test]
    fn dinv_init_runs_the_guests_containerd_beside_dockerd() {
        let base = || {
            let mut t = Tree::new();
            for f in ["usr/bin/dockerd", "usr/bin/containerd", "usr/sbin/qemu-ga"] {
                t.write_file(&TreePath::new(f), "x", Meta::root(0o755)).unwrap();
            }
            t
        };
        let configure = |t: &mut Tree, r: &Recipe| {
            docker::apply(t, r).unwrap();
            apply(t, r).unwrap();
            let f = ServicesFile::parse(&read_text(t, SERVICES_JSON).unwrap()).unwrap();
            let daemon: serde_json::Value = serde_json::from_str(&read_text(t, docker::DAEMON_JSON).unwrap()).unwrap();
            (f, daemon)
        };
        let r = recipe("init = \"dinv\"");
        let mut t = base();
        let (f, daemon) = configure(&mut t, &r);
        let names: Vec<&str> = f.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["qemu-ga", "containerd", "dockerd", "dinv-post"]);
        assert_eq!(f.services[1].argv, ["/usr/bin/containerd", "--config", "/etc/dinv/containerd.toml"]);
        assert_eq!(daemon["containerd"], dinv_contract::services::CONTAINERD_SOCK, "dockerd must not start a second one");
        let keys: Vec<&String> = daemon.as_object().unwrap().keys().collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "daemon.json keys stay sorted: {keys:?}");
        let conf: toml::Value = toml::from_str(&read_text(&t, docker::CONTAINERD_TOML).unwrap()).unwrap();
        assert_eq!(conf["version"].as_integer(), Some(2));
        assert_eq!(conf["root"].as_str(), Some(docker::CONTAINERD_ROOT));
        assert_eq!(conf["grpc"]["address"].as_str(), Some(dinv_contract::services::CONTAINERD_SOCK));
        assert_eq!(conf["debug"]["level"].as_str(), Some("warn"));
        assert!(conf["disabled_plugins"].as_array().unwrap().iter().any(|p| p.as_str() == Some("io.containerd.grpc.v1.cri")));

        // dockerd's debug switch reaches containerd too.
        let mut debug = recipe("init = \"dinv\"");
        debug.docker.daemon.insert("debug".into(), toml::Value::Boolean(true));
        let mut t = base();
        configure(&mut t, &debug);
        assert!(read_text(&t, docker::CONTAINERD_TOML).unwrap().contains("level = \"debug\""));

        // A recipe that names its own containerd keeps dockerd's setting and no service.
        let mut own = recipe("init = \"dinv\"");
        own.docker.daemon.insert("containerd".into(), toml::Value::String("/run/other.sock".into()));
        let mut t = base();
        let (f, daemon) = configure(&mut t, &own);
        assert!(f.services.iter().all(|s| s.name != "containerd"));
        assert_eq!(daemon["containerd"], "/run/other.sock");
        assert!(read_text(&t, docker::CONTAINERD_TOML).is_none());

        // OpenRC guests keep their packages' services.
        let mut t = base();
        docker::apply(&mut t, &recipe("")).unwrap();
        assert!(read_text(&t, docker::CONTAINERD_TOML).is_none());
    }

    #[test]
    fn dinv_init_without_dockerd_is_an_error() {
        let e = apply(&mut Tree::new(), &recipe("init = \"dinv\"")).unwrap_err().to_string();
        assert!(e.contains("no dockerd"), "{e}");
    }
}
