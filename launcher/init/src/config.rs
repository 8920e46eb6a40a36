//! What the initramfs tells dinv-init (`/etc/dinv/initramfs.json`,
//! `/etc/dinv/modules`), and the plan made from it and the command line.

use std::time::Duration;

use super::cmdline::BootArgs;

pub use dinv_contract::initramfs::{InitramfsConfig, CONFIG_PATH, MODULES_PATH};

/// One line of `/etc/dinv/modules`: a module file and its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleEntry {
    /// Module name (file name without `.ko`, `-` as `_`), for messages.
    pub name: String,
    pub path: String,
    /// Parameters passed to the module (`key=value ...`), may be empty.
    pub params: String,
}

/// Parses the load list: one absolute path per line, optional parameters
/// after it; blank lines and `#` comments are skipped.
pub fn parse_module_list(text: &str) -> Result<Vec<ModuleEntry>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (path, params) = match line.split_once(char::is_whitespace) {
            Some((p, rest)) => (p, rest.trim()),
            None => (line, ""),
        };
        if !path.starts_with('/') || !path.ends_with(".ko") {
            return Err(format!("{MODULES_PATH}:{}: expected an absolute path to a .ko file, got {path:?}", i + 1));
        }
        let file = path.rsplit('/').next().unwrap_or(path);
        let name = file.trim_end_matches(".ko").replace('-', "_");
        out.push(ModuleEntry { name, path: path.to_string(), params: params.to_string() });
    }
    Ok(out)
}

/// What dinv-init will do, settings and command line combined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub root: String,
    pub fstype: String,
    pub init: String,
    pub read_only: bool,
    pub root_timeout: Duration,
    pub debug: bool,
}

impl Plan {
    /// The command line overrides the built-in settings.
    pub fn new(cfg: &InitramfsConfig, args: &BootArgs) -> Result<Plan, String> {
        let root = args.root.clone().unwrap_or_else(|| cfg.root.clone());
        let root = if root.starts_with('/') || root.strip_prefix("SERIAL=").is_some_and(|s| !s.is_empty()) {
            root
        } else if root.contains('=') {
            return Err(format!(
                "root={root}: only device paths such as /dev/vda and SERIAL=<virtio serial> are supported (no udev in the initramfs for LABEL=/UUID= links)"
            ));
        } else {
            format!("/dev/{root}")
        };
        let init = args.init.clone().unwrap_or_else(|| cfg.init.clone());
        if !init.starts_with('/') {
            return Err(format!("init={init}: must be an absolute path"));
        }
        Ok(Plan {
            root,
            fstype: args.rootfstype.clone().unwrap_or_else(|| cfg.fstype.clone()),
            init,
            read_only: args.read_only.unwrap_or(cfg.read_only),
            root_timeout: Duration::from_secs(args.root_timeout_secs.unwrap_or(cfg.root_timeout_secs) as u64),
            debug: args.debug,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_by_serial_is_accepted() {
        let p = Plan::new(&InitramfsConfig::default(), &parse_cmdline("root=SERIAL=dinv-root rw")).unwrap();
        assert_eq!(p.root, "SERIAL=dinv-root");
        assert!(Plan::new(&InitramfsConfig::default(), &parse_cmdline("root=SERIAL= rw")).is_err());
    }

    use super::*;
    use crate::cmdline::parse_cmdline;

    #[test]
    fn config_json_and_defaults() {
        let c = InitramfsConfig::parse(r#"{"root":"/dev/vdb","fstype":"ext4","init":"/sbin/init","root_timeout_secs":5,"read_only":true,"future":1}"#).unwrap();
        assert_eq!(c.root, "/dev/vdb");
        assert!(c.read_only);
        assert_eq!(InitramfsConfig::parse("{}").unwrap(), InitramfsConfig::default());
        assert!(InitramfsConfig::parse("{").unwrap_err().starts_with(CONFIG_PATH));
    }

    #[test]
    fn module_list() {
        let l = parse_module_list("# header\n\n/lib/modules/6.1/kernel/virtio_ring.ko\n/lib/modules/6.1/kernel/crc32c-intel.ko\n/x/virtio_blk.ko  queue_depth=64 poll_queues=1\n").unwrap();
        assert_eq!(l.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["virtio_ring", "crc32c_intel", "virtio_blk"]);
        assert_eq!(l[2].params, "queue_depth=64 poll_queues=1");
        assert_eq!(l[0].params, "");
        let e = parse_module_list("/ok.ko\nrelative.ko\n").unwrap_err();
        assert!(e.contains(":2:"), "{e}");
    }

    #[test]
    fn command_line_overrides_settings() {
        let cfg = InitramfsConfig::default();
        let p = Plan::new(&cfg, &parse_cmdline("console=ttyS0 root=/dev/vda rw panic=-1")).unwrap();
        assert_eq!(
            p,
            Plan { root: "/dev/vda".into(), fstype: "ext4".into(), init: "/sbin/init".into(), read_only: false, root_timeout: Duration::from_secs(10), debug: false }
        );
        let p = Plan::new(&cfg, &parse_cmdline("root=vdb rootfstype=ext2 init=/bin/x ro dinv.debug dinv.root_timeout=2")).unwrap();
        assert_eq!((p.root.as_str(), p.fstype.as_str(), p.init.as_str(), p.read_only, p.debug), ("/dev/vdb", "ext2", "/bin/x", true, true));
        assert_eq!(p.root_timeout, Duration::from_secs(2));
        assert!(Plan::new(&cfg, &parse_cmdline("root=UUID=1234")).unwrap_err().contains("UUID=1234"));
        assert!(Plan::new(&cfg, &parse_cmdline("init=sbin/init")).is_err());
    }
}
