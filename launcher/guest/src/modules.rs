//! Loads the kernel modules listed in `/etc/modules` with the guest's own
//! `modprobe` (kmod's, reading the binary indexes the builder writes).

use std::path::Path;
use std::process::Command;

use crate::log::say;

/// The module list the builder writes (one module per line, optional parameters after it).
pub const ETC_MODULES: &str = "/etc/modules";

const MODPROBE: &[&str] = &["/sbin/modprobe", "/usr/sbin/modprobe", "/bin/modprobe", "/usr/bin/modprobe"];

/// Parses `/etc/modules`: `#` comments and blank lines skipped; each entry is the module name then its parameters.
pub fn parse_modules(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .map(|line| line.split_whitespace().map(String::from).collect::<Vec<_>>())
        .filter(|words| !words.is_empty())
        .collect()
}

/// Loads every module listed in `list`; failures are reported and skipped.
pub fn load_modules(list: &Path) {
    let text = match std::fs::read_to_string(list) {
        Ok(t) => t,
        Err(e) => {
            say(format_args!("no modules loaded: cannot read {}: {e}", list.display()));
            return;
        }
    };
    let modules = parse_modules(&text);
    if modules.is_empty() {
        return;
    }
    let Some(modprobe) = MODPROBE.iter().find(|p| Path::new(p).exists()) else {
        say(format_args!(
            "modprobe not found (kmod not installed); skipping modules from {}",
            list.display()
        ));
        return;
    };
    // One run for every module without parameters, one per module with.
    let (plain, with_params): (Vec<&Vec<String>>, Vec<&Vec<String>>) = modules.iter().partition(|m| m.len() == 1);
    let mut runs: Vec<Vec<&str>> = Vec::new();
    if !plain.is_empty() {
        runs.push(["-a"].into_iter().chain(plain.iter().map(|m| m[0].as_str())).collect());
    }
    runs.extend(with_params.iter().map(|m| m.iter().map(String::as_str).collect()));
    for args in runs {
        match Command::new(modprobe).arg("-b").args(&args).status() {
            Ok(s) if s.success() => {}
            Ok(s) => say(format_args!("{modprobe} -b {} failed with {s}", args.join(" "))),
            Err(e) => say(format_args!("cannot run {modprobe}: {e}")),
        }
    }
    let names: Vec<&str> = modules.iter().map(|m| m[0].as_str()).collect();
    say(format_args!("modules: {}", names.join(" ")));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_params_and_comments() {
        let text = "# /etc/modules\n9pnet\n\n  9pnet_virtio  \nqemu_fw_cfg # settings\nloop max_loop=8\n#virtio_console\n";
        let want: Vec<Vec<String>> = vec![
            vec!["9pnet".into()],
            vec!["9pnet_virtio".into()],
            vec!["qemu_fw_cfg".into()],
            vec!["loop".into(), "max_loop=8".into()],
        ];
        assert_eq!(parse_modules(text), want);
        assert!(parse_modules("").is_empty());
    }
}

/// Loads the drivers for devices already present (what udev or `mdev -s` would do at boot):
/// every `modalias` under /sys/bus/*/devices/ is handed to `modprobe -a`.
pub fn coldplug(sys_bus: &Path) {
    let aliases = device_aliases(sys_bus);
    let Some(modprobe) = MODPROBE.iter().find(|p| Path::new(p).exists()) else {
        return;
    };
    if aliases.is_empty() {
        return;
    }
    // Aliases with no module (built-in drivers, unknown devices) are normal; -q keeps them quiet.
    let _ = Command::new(modprobe).args(["-q", "-b", "-a"]).args(&aliases).status();
}

/// The sorted, distinct `modalias` values of the devices under `sys_bus` (`/sys/bus`).
pub fn device_aliases(sys_bus: &Path) -> Vec<String> {
    let mut aliases = std::collections::BTreeSet::new();
    for bus in std::fs::read_dir(sys_bus).into_iter().flatten().flatten() {
        for dev in std::fs::read_dir(bus.path().join("devices")).into_iter().flatten().flatten() {
            if let Ok(alias) = std::fs::read_to_string(dev.path().join("modalias")) {
                let alias = alias.trim();
                if !alias.is_empty() {
                    aliases.insert(alias.to_string());
                }
            }
        }
    }
    aliases.into_iter().collect()
}

#[cfg(test)]
mod coldplug_tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn collects_distinct_aliases() {
        let dir = TempDir::new("sysbus");
        for (dev, alias) in [
            ("virtio/devices/virtio0", "virtio:d00000001v00001AF4\n"),
            ("virtio/devices/virtio1", "virtio:d00000001v00001AF4"),
            ("platform/devices/x", "platform:x"),
            ("platform/devices/y", ""),
        ] {
            let d = dir.path().join(dev);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("modalias"), alias).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("platform/devices/noalias")).unwrap();
        assert_eq!(
            device_aliases(dir.path()),
            vec!["platform:x".to_string(), "virtio:d00000001v00001AF4".to_string()]
        );
    }
}
