//! Checks that go beyond types: references between sections, network
//! ranges, timeouts, sizes.

use std::net::Ipv4Addr;

use dinv_fstree::TreePath;

use super::error::RecipeError;
use super::loaded::LoadedRecipe;
use super::model::{check_alternative, parse_service, ApkRepository, DockerSection, Init, Source};

/// Parses `a.b.c.d/len`.
pub fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, len) = s.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    (len <= 32).then_some((ip, len))
}

fn network(ip: Ipv4Addr, len: u8) -> (u32, u32) {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    let start = u32::from(ip) & mask;
    (start, start | !mask)
}

/// True when two CIDR ranges share an address.
pub fn overlaps(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let (a0, a1) = network(a.0, a.1);
    let (b0, b1) = network(b.0, b.1);
    a0 <= b1 && b0 <= a1
}

/// Parses sizes like `512M`, `64G`, `1048576`, `2GiB` into bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    let n: u64 = digits.parse().ok()?;
    let unit = s[digits.len()..].trim().to_ascii_uppercase();
    let mul: u64 = match unit.as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// Validates a loaded recipe; errors point at the offending key.
pub fn validate(l: &LoadedRecipe) -> Result<(), RecipeError> {
    let r = &l.recipe;
    let image_name_ok = !r.image.name.is_empty()
        && r.image.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/:".contains(c));
    if !image_name_ok {
        return Err(l.error("image.name", format!("{:?} is not a valid image name (lower-case letters, digits, . _ - /)", r.image.name)));
    }
    for (name, src) in &r.sources {
        match src {
            Source::Apk(a) => {
                if a.repositories.is_empty() {
                    return Err(l.error(&format!("sources.{name}.repositories"), "at least one repository is needed"));
                }
                for (i, repo) in a.repositories.iter().enumerate() {
                    let key = format!("sources.{name}.repositories[{i}]");
                    let needs_mirror = match repo {
                        ApkRepository::Name(_) => true,
                        ApkRepository::Full(t) => t.url.is_none(),
                    };
                    if let ApkRepository::Full(t) = repo {
                        if t.url.is_none() && t.name.is_none() {
                            return Err(l.error(&key, "give `url`, or `name` with the source's `mirror` and `branch`"));
                        }
                    }
                    if needs_mirror && (a.mirror.is_none() || a.branch.is_none()) {
                        return Err(l.error(&key, "a repository given by name needs `mirror` and `branch` on the source"));
                    }
                }
            }
            Source::Deb(d) => {
                if d.components.is_empty() {
                    return Err(l.error(&format!("sources.{name}.components"), "at least one component is needed"));
                }
                if d.keyrings.is_empty() && !d.allow_untrusted {
                    return Err(l.error(
                        &format!("sources.{name}.keyrings"),
                        "a Debian source needs a keyring to verify its Release file (or allow_untrusted = true)",
                    ));
                }
            }
        }
    }
    let check_source = |key: &str, name: &str| -> Result<(), RecipeError> {
        if r.sources.contains_key(name) {
            Ok(())
        } else {
            let known: Vec<&str> = r.sources.keys().map(|s| s.as_str()).collect();
            Err(l.error(key, format!("no source named {name:?} (sources: {})", known.join(", "))))
        }
    };
    check_source("guest.source", &r.guest.source)?;
    check_packages(l, "guest.packages", &r.sources[&r.guest.source], &r.guest.packages)?;
    if let Some(rt) = &r.runtime {
        check_source("runtime.source", &rt.source)?;
        check_packages(l, "runtime.packages", &r.sources[&rt.source], &rt.packages)?;
    }
    for k in r.docker.daemon.keys() {
        if DockerSection::TYPED_KEYS.contains(&k.as_str()) {
            return Err(l.error(&format!("docker.daemon.{k}"), format!("set it with docker.{} instead (daemon.json would have it twice)", k.replace('-', "_"))));
        }
    }
    for (group, choice) in &r.guest.alternatives {
        check_alternative(group, choice).map_err(|e| l.error(&format!("guest.alternatives.{group}"), e))?;
    }
    for (i, s) in r.guest.services.iter().enumerate() {
        if r.guest.init != Init::Openrc {
            return Err(l.error(&format!("guest.services[{i}]"), "services are OpenRC runlevel entries; this guest's init is not openrc"));
        }
        if parse_service(s).is_none() {
            return Err(l.error(&format!("guest.services[{i}]"), format!("{s:?}: expected `runlevel:service`, e.g. \"default:local\"")));
        }
    }
    if r.guest.hostname.is_empty() || r.guest.hostname.len() > 63 || !r.guest.hostname.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(l.error("guest.hostname", format!("{:?} is not a valid host name", r.guest.hostname)));
    }

    let bip = parse_cidr(&r.docker.bip)
        .ok_or_else(|| l.error("docker.bip", format!("{:?} is not an IPv4 CIDR like 172.19.0.1/16", r.docker.bip)))?;
    let host_docker = (Ipv4Addr::new(172, 17, 0, 0), 16);
    if overlaps(bip, host_docker) && !r.docker.force_bip {
        return Err(l.error(
            "docker.bip",
            format!("{} overlaps the host's docker network 172.17.0.0/16; choose another range or set docker.force_bip = true", r.docker.bip),
        ));
    }
    if overlaps(bip, (Ipv4Addr::new(10, 0, 2, 0), 24)) {
        return Err(l.error("docker.bip", format!("{} overlaps QEMU's user network 10.0.2.0/24", r.docker.bip)));
    }
    if r.docker.shutdown_timeout >= r.vm.stop_timeout {
        return Err(l.error(
            "docker.shutdown_timeout",
            format!(
                "{} s must be below vm.stop_timeout ({} s), or dockerd is killed before its containers stop",
                r.docker.shutdown_timeout, r.vm.stop_timeout
            ),
        ));
    }
    for (i, h) in r.docker.hosts.iter().enumerate() {
        if !(h.starts_with("unix://") || h.starts_with("tcp://") || h.starts_with("fd://")) {
            return Err(l.error(&format!("docker.hosts[{i}]"), format!("{h:?}: expected unix://, tcp:// or fd://")));
        }
    }
    if let Some(level) = r.image.compression_level {
        let (lo, hi) = r.image.compression.levels();
        if !(lo..=hi).contains(&level) {
            return Err(l.error("image.compression_level", format!("{level} is out of range for {:?}: {lo} to {hi}", r.image.compression)));
        }
    }
    if r.vm.cpus == 0 {
        return Err(l.error("vm.cpus", "must be at least 1"));
    }
    for (key, v) in [("vm.memory", &r.vm.memory), ("vm.docker_disk_size", &r.vm.docker_disk_size)] {
        if parse_size(v).is_none() {
            return Err(l.error(key, format!("{v:?} is not a size like 512M or 64G")));
        }
    }
    if let Some(s) = &r.rootfs.size {
        if parse_size(s).is_none() {
            return Err(l.error("rootfs.size", format!("{s:?} is not a size like 512M or 2G")));
        }
    }
    if let Some(f) = &r.rootfs.free {
        if parse_free(f).is_none() {
            return Err(l.error("rootfs.free", format!("{f:?} is neither a share of the content like 10% nor a size like 64M")));
        }
    }
    if let super::model::KernelModules::Keep(keep) = &r.kernel.modules {
        for (i, k) in keep.iter().enumerate() {
            let bad = k.is_empty() || k.starts_with('/') || k.split('/').any(|c| c == "..") || k.chars().any(|c| c.is_whitespace() || c.is_control());
            if bad {
                return Err(l.error(&format!("kernel.modules.keep[{i}]"), format!("{k:?} is not a module name, alias, or directory below /lib/modules/<release>/ such as kernel/net/sched/")));
            }
        }
    }
    for (option, module) in &r.kernel.option_modules {
        let key = format!("kernel.option_modules.{option}");
        if !is_option_name(option) {
            return Err(l.error(&key, format!("{option:?} is not a kernel config option such as CONFIG_WIREGUARD (CONFIG_ and upper-case letters, digits, _)")));
        }
        if !is_module_name(module) {
            return Err(l.error(&key, format!("{module:?} is not a module name such as \"wireguard\" (letters, digits, _ and -)")));
        }
    }
    let runtime_remove = r.runtime.as_ref().map(|rt| rt.remove.as_slice()).unwrap_or_default();
    let runtime_keep = r.runtime.as_ref().and_then(|rt| rt.keep.as_deref()).unwrap_or_default();
    for (key, paths) in [("guest.remove", r.guest.remove.as_slice()), ("runtime.remove", runtime_remove), ("runtime.keep", runtime_keep)] {
        for (i, p) in paths.iter().enumerate() {
            TreePath::parse(p, true).map_err(|e| l.error(&format!("{key}[{i}]"), e.to_string()))?;
        }
    }
    for (i, f) in r.files.iter().enumerate() {
        if !f.path.starts_with('/') {
            return Err(l.error(&format!("files[{i}].path"), format!("{:?} must be an absolute guest path", f.path)));
        }
        if f.content.is_some() == f.source.is_some() {
            return Err(l.error(&format!("files[{i}]"), "give exactly one of `content` or `source`"));
        }
        match TreePath::parse(&f.path, true) {
            Ok(p) if p.is_root() => return Err(l.error(&format!("files[{i}].path"), format!("{:?} names the root directory", f.path))),
            Ok(_) => {}
            Err(e) => return Err(l.error(&format!("files[{i}].path"), e.to_string())),
        }
    }
    for (i, o) in r.overlays.iter().enumerate() {
        if !std::path::Path::new(&o.path).is_dir() {
            return Err(l.error(&format!("overlays[{i}].path"), format!("overlay directory {} does not exist", o.path)));
        }
        if let Some(d) = &o.dest {
            TreePath::parse(d, true).map_err(|e| l.error(&format!("overlays[{i}].dest"), e.to_string()))?;
        }
    }
    for (i, f) in r.kernel.fragments.iter().enumerate() {
        if !std::path::Path::new(f).is_file() {
            return Err(l.error(&format!("kernel.fragments[{i}]"), format!("kernel config fragment {f} does not exist")));
        }
    }
    for (i, c) in r.docker.ca_certificates.iter().enumerate() {
        let key = format!("docker.ca_certificates[{i}].file");
        let text = std::fs::read_to_string(&c.file).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => l.error(&key, format!("CA certificate {} does not exist", c.file)),
            _ => l.error(&key, format!("cannot read CA certificate {}: {e}", c.file)),
        })?;
        if !(text.contains("-----BEGIN CERTIFICATE-----") && text.contains("-----END CERTIFICATE-----")) {
            return Err(l.error(&key, format!("{} holds no PEM certificate (-----BEGIN CERTIFICATE----- block)", c.file)));
        }
        if let Some(reg) = &c.registry {
            if reg.is_empty() || reg.contains('/') || reg.contains("..") {
                return Err(l.error(&format!("docker.ca_certificates[{i}].registry"), format!("{reg:?} must be host[:port]")));
            }
        }
    }
    Ok(())
}

/// `CONFIG_[A-Z0-9_]+`.
fn is_option_name(s: &str) -> bool {
    s.strip_prefix("CONFIG_").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'))
}

/// A module name as `modprobe` takes it (the kernel treats `-` as `_`).
fn is_module_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Each requested package in its source's syntax: apk world atoms
/// (`name`, `name>=1.2`, `name@tag`, `!name`), or Debian `name` /
/// `name=version`.
fn check_packages(l: &LoadedRecipe, key: &str, source: &Source, packages: &[String]) -> Result<(), RecipeError> {
    for (i, p) in packages.iter().enumerate() {
        let problem = match source {
            Source::Apk(_) => dinv_apk::ApkDep::parse(p).err().map(|e| e.to_string()),
            Source::Deb(_) => {
                let p = p.trim();
                let ok = match p.split_once('=') {
                    Some((n, v)) => !n.trim().is_empty() && !v.trim().is_empty(),
                    None => !p.is_empty() && !p.contains(char::is_whitespace),
                };
                (!ok).then(|| format!("{p:?} is not `name` or `name=version`"))
            }
        };
        if let Some(why) = problem {
            return Err(l.error(&format!("{key}[{i}]"), why));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_and_sizes() {
        assert!(overlaps(parse_cidr("172.17.5.1/24").unwrap(), (Ipv4Addr::new(172, 17, 0, 0), 16)));
        assert!(!overlaps(parse_cidr("172.19.0.1/16").unwrap(), (Ipv4Addr::new(172, 17, 0, 0), 16)));
        assert!(overlaps(parse_cidr("172.16.0.1/12").unwrap(), (Ipv4Addr::new(172, 17, 0, 0), 16)));
        assert!(parse_cidr("172.19.0.1").is_none());
        assert!(parse_cidr("300.1.1.1/16").is_none());
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("64G"), Some(64 << 30));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("12x"), None);
    }

    #[test]
    fn option_and_module_names() {
        assert!(is_option_name("CONFIG_WIREGUARD") && is_option_name("CONFIG_9P_FS"));
        for bad in ["WIREGUARD", "CONFIG_", "CONFIG_wireguard", "CONFIG_WIRE-GUARD", "config_X"] {
            assert!(!is_option_name(bad), "{bad}");
        }
        assert!(is_module_name("wireguard") && is_module_name("xt_MASQUERADE") && is_module_name("crc32c-intel"));
        for bad in ["", "wireguard.ko", "kernel/net/wg", "a b"] {
            assert!(!is_module_name(bad), "{bad}");
        }
    }
}

/// `rootfs.free`: `"10%"` → a share of the content, in percent; `"64M"` →
/// bytes. `(percent, bytes)`, one of them zero.
pub fn parse_free(s: &str) -> Option<(u32, u64)> {
    match s.trim().strip_suffix('%') {
        Some(p) => p.trim().parse::<u32>().ok().filter(|p| *p <= 1000).map(|p| (p, 0)),
        None => parse_size(s).map(|b| (0, b)),
    }
}
