//! Checks that go beyond types: references between sections, network
//! ranges, timeouts, sizes.

use std::net::Ipv4Addr;

use dinv_fstree::TreePath;

use super::error::RecipeError;
use super::loaded::LoadedRecipe;
use super::model::{check_alternative, parse_service, ApkRepository, ApkSource, Arch, DebArchive, DebSource, DockerSection, Init, Source};

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

pub use super::values::parse_free;

/// Parses sizes like `512M`, `64G`, `1048576`, `2GiB` into bytes (a bare
/// number is bytes): the contract's one size grammar.
pub fn parse_size(s: &str) -> Option<u64> {
    dinv_contract::settings::parse_size(s, 1)
}

/// A Debian source's suites: exactly one of `suite` and `suites`, each
/// name a plain word, none twice, and a `security_mirror` only where a
/// suite uses it.
fn check_suites(l: &LoadedRecipe, name: &str, d: &DebSource) -> Result<(), RecipeError> {
    match (&d.suite, d.suites.is_empty()) {
        (Some(_), false) => return Err(l.error(&format!("sources.{name}.suites"), "give `suite` or `suites`, not both")),
        (None, true) => return Err(l.error(&format!("sources.{name}"), "a Debian source needs `suites` (e.g. [\"trixie\", \"trixie-updates\", \"trixie-security\"]) or `suite`")),
        _ => {}
    }
    let list = d.suite_list();
    for (i, (suite, _)) in list.iter().enumerate() {
        let key = d.suite_key(name, i);
        if suite.is_empty() || !suite.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '+' | '~')) {
            return Err(l.error(&key, format!("{suite:?} is not a suite name such as \"trixie\" or \"trixie-security\"")));
        }
        if list[..i].iter().any(|(s, _)| s == suite) {
            return Err(l.error(&key, format!("suite {suite:?} is listed twice")));
        }
    }
    if d.security_mirror.is_some() && !list.iter().any(|(_, a)| *a == DebArchive::Security) {
        return Err(l.error(
            &format!("sources.{name}.security_mirror"),
            "no suite of this source is from the security archive (a name ending in -security, or archive = \"security\")",
        ));
    }
    Ok(())
}

/// Validates a loaded recipe; errors point at the offending key.
pub fn validate(l: &LoadedRecipe) -> Result<(), RecipeError> {
    let r = &l.recipe;
    check_image_name(&r.image.name).map_err(|why| l.error("image.name", format!("{:?} is not a valid image name: {why}", r.image.name)))?;
    check_image_tag(&r.image.tag).map_err(|why| l.error("image.tag", format!("{:?} is not a valid image tag: {why}", r.image.tag)))?;
    for (name, src) in &r.sources {
        if Arch::of_source_arch(src.arch()).is_none() {
            return Err(l.error(&format!("sources.{name}.arch"), format!("{:?}: images are built for x86_64 (apk `x86_64`, Debian `amd64`) and arm64 (`aarch64`, `arm64`)", src.arch())));
        }
    }
    // The runtime layer runs the guest's QEMU on the same machine: one architecture.
    if let Some(rt) = &r.runtime {
        if let (Some(g), Some(s)) = (r.sources.get(&r.guest.source), r.sources.get(&rt.source)) {
            if Arch::of_source_arch(g.arch()) != Arch::of_source_arch(s.arch()) {
                return Err(l.error(
                    &format!("sources.{}.arch", rt.source),
                    format!("{:?}: the runtime source must have the guest source's architecture ({:?}, sources.{}.arch)", s.arch(), g.arch(), r.guest.source),
                ));
            }
        }
    }
    for (name, src) in &r.sources {
        match src {
            Source::Apk(a) => {
                if a.repositories.is_empty() {
                    return Err(l.error(&format!("sources.{name}.repositories"), "at least one repository is needed"));
                }
                for (i, repo) in a.repositories.iter().enumerate() {
                    let key = format!("sources.{name}.repositories[{i}]");
                    let (needs_mirror, has_branch) = match repo {
                        ApkRepository::Name(_) => (true, a.branch.is_some()),
                        ApkRepository::Full(t) => (t.url.is_none(), t.branch.is_some() || a.branch.is_some()),
                    };
                    if let ApkRepository::Full(t) = repo {
                        if t.url.is_none() && t.name.is_none() {
                            return Err(l.error(&key, "give `url`, or `name` with the source's `mirror` and `branch`"));
                        }
                        if t.url.is_some() && t.branch.is_some() {
                            return Err(l.error(&format!("{key}.branch"), "`branch` builds the URL from `mirror` and `name`; a repository with `url` cannot have one"));
                        }
                        if let Some(tag) = &t.tag {
                            if !valid_tag(tag) {
                                return Err(l.error(&format!("{key}.tag"), format!("{tag:?} is not a repository tag (letters, digits, . _ -; without the @)")));
                            }
                        }
                    }
                    if needs_mirror && (a.mirror.is_none() || !has_branch) {
                        return Err(l.error(&key, "a repository given by name needs `mirror` and `branch` on the source"));
                    }
                }
            }
            Source::Deb(d) => {
                check_suites(l, name, d)?;
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
    // vm.*, docker.shutdown_timeout: the launcher's own parsers and bounds.
    super::runtime::validate(l)?;
    validate_snapshot(l)?;
    for (i, h) in r.docker.hosts.iter().enumerate() {
        check_docker_host(h).map_err(|why| l.error(&format!("docker.hosts[{i}]"), format!("{h:?}: {why}")))?;
    }
    for (i, m) in r.docker.registry_mirrors.iter().enumerate() {
        check_url(m).map_err(|why| l.error(&format!("docker.registry_mirrors[{i}]"), format!("{m:?} is not a registry mirror URL: {why}")))?;
    }
    if let Some(p) = &r.docker.proxy {
        for (key, v) in [("http", &p.http), ("https", &p.https)] {
            if let Some(v) = v {
                check_url(v).map_err(|why| l.error(&format!("docker.proxy.{key}"), format!("{v:?} is not a proxy URL: {why}")))?;
            }
        }
    }
    if let Some(level) = r.image.compression_level {
        let (lo, hi) = r.image.compression.levels();
        if !(lo..=hi).contains(&level) {
            return Err(l.error("image.compression_level", format!("{level} is out of range for {:?}: {lo} to {hi}", r.image.compression)));
        }
    }
    if let super::model::KernelModules::Keep { keep, decompress, strip_signatures } = &r.kernel.modules {
        if *strip_signatures && !decompress {
            return Err(l.error("kernel.modules.strip_signatures", "needs decompress = true: a signature is cut off the module's plain ELF"));
        }
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
        if !super::vfs::is_dir(std::path::Path::new(&o.path)) {
            return Err(l.error(&format!("overlays[{i}].path"), format!("overlay directory {} does not exist", o.path)));
        }
        if let Some(d) = &o.dest {
            TreePath::parse(d, true).map_err(|e| l.error(&format!("overlays[{i}].dest"), e.to_string()))?;
        }
    }
    for (i, f) in r.kernel.fragments.iter().enumerate() {
        if !super::vfs::is_file(std::path::Path::new(f)) {
            return Err(l.error(&format!("kernel.fragments[{i}]"), format!("kernel config fragment {f} does not exist")));
        }
    }
    for (i, c) in r.docker.ca_certificates.iter().enumerate() {
        let key = format!("docker.ca_certificates[{i}].file");
        let text = super::vfs::read_to_string(std::path::Path::new(&c.file)).map_err(|e| match e.kind() {
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

/// The tags of an apk source's repositories, in recipe order.
fn apk_tags(a: &ApkSource) -> Vec<&str> {
    a.repositories
        .iter()
        .filter_map(|r| match r {
            ApkRepository::Full(t) => t.tag.as_deref(),
            ApkRepository::Name(_) => None,
        })
        .collect()
}

/// apk writes tags after `@` in world entries and `/etc/apk/repositories`.
fn valid_tag(t: &str) -> bool {
    !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// An image name as the distribution reference grammar has it: an
/// optional registry host (with a port), then `/`-separated path
/// components of lower-case letters and digits joined by `.`, `_`, `__`
/// or dashes.
pub fn check_image_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > 255 {
        return Err("it is longer than 255 characters".into());
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    // A first component with a `.` or `:`, or `localhost`, is a registry host.
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        let host = parts.remove(0);
        let (h, port) = match host.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host, None),
        };
        let label_ok = |l: &str| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && !l.starts_with('-') && !l.ends_with('-');
        if !h.split('.').all(label_ok) {
            return Err(format!("registry host {h:?} is not a host name"));
        }
        if let Some(p) = port {
            if !p.parse::<u16>().is_ok_and(|p| p > 0) {
                return Err(format!("registry port {p:?} is not a port number"));
            }
        }
    }
    for c in parts {
        let alnum = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        // Separators: one `.` or `_`, two `_`, or any run of `-`.
        let mut ok = !c.is_empty();
        let mut rest = c;
        while ok && !rest.is_empty() {
            let end = rest.find(|ch: char| !(ch.is_ascii_lowercase() || ch.is_ascii_digit())).unwrap_or(rest.len());
            ok = alnum(&rest[..end]);
            rest = &rest[end..];
            if rest.is_empty() {
                break;
            }
            let sep_len = if rest.starts_with("__") {
                2
            } else if rest.starts_with(['.', '_']) {
                1
            } else {
                rest.find(|ch: char| ch != '-').unwrap_or(rest.len())
            };
            if sep_len == 0 {
                ok = false;
                break;
            }
            rest = &rest[sep_len..];
            ok = ok && !rest.is_empty();
        }
        if !ok {
            return Err(format!("path component {c:?} must be lower-case letters and digits, joined by '.', '_', '__' or '-'"));
        }
    }
    Ok(())
}

/// An image tag: a letter, digit or `_`, then up to 127 of those, `.` and `-`.
pub fn check_image_tag(tag: &str) -> Result<(), String> {
    let mut chars = tag.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok || tag.len() > 128 || !chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
        return Err("expected letters, digits, '_', '.' and '-', at most 128, not starting with '.' or '-'".into());
    }
    Ok(())
}

/// A dockerd `-H` address: `unix:///absolute/path`, `tcp://[HOST]:PORT`
/// or `fd://` (with an optional number).
pub fn check_docker_host(h: &str) -> Result<(), String> {
    if let Some(path) = h.strip_prefix("unix://") {
        return if path.starts_with('/') { Ok(()) } else { Err("a unix socket needs an absolute path, e.g. unix:///var/run/docker.sock".into()) };
    }
    if let Some(rest) = h.strip_prefix("fd://") {
        return if rest.is_empty() || rest.parse::<u32>().is_ok() { Ok(()) } else { Err("expected fd:// or fd://N".into()) };
    }
    if let Some(addr) = h.strip_prefix("tcp://") {
        let (host, port) = addr.rsplit_once(':').ok_or("expected tcp://HOST:PORT, e.g. tcp://0.0.0.0:2375")?;
        if !port.parse::<u16>().is_ok_and(|p| p > 0) {
            return Err(format!("{port:?} is not a port number from 1 to 65535"));
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if !host.is_empty() && host.parse::<std::net::IpAddr>().is_err() && !host.chars().all(|c| c.is_ascii_alphanumeric() || ".-".contains(c)) {
            return Err(format!("{host:?} is not an address or host name"));
        }
        return Ok(());
    }
    Err("expected unix://, tcp:// or fd://".into())
}

/// An http(s) URL with a host.
pub fn check_url(s: &str) -> Result<(), String> {
    let u = reqwest::Url::parse(s).map_err(|e| e.to_string())?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("the scheme must be http or https, not {}", u.scheme()));
    }
    if u.host_str().map_or(true, str::is_empty) {
        return Err("it has no host".into());
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
            Source::Apk(a) => match dinv_apk::ApkDep::parse(p) {
                Err(e) => Some(e.to_string()),
                Ok(d) => d.tag.filter(|t| !apk_tags(a).contains(&t.as_str())).map(|t| {
                    let tags: Vec<String> = apk_tags(a).iter().map(|t| format!("@{t}")).collect();
                    let have = if tags.is_empty() { "none is tagged".to_string() } else { format!("tags: {}", tags.join(", ")) };
                    format!("{p:?} asks for repository tag @{t}, but no repository of the source has it ({have})")
                }),
            },
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


/// `[snapshot]`: the memory through the launcher's own parser, the mount
/// slots within what `save-snapshot` takes, known quiesce steps.
fn validate_snapshot(l: &LoadedRecipe) -> Result<(), RecipeError> {
    let s = &l.recipe.snapshot;
    if let Some(m) = &s.memory {
        let setting = dinv_contract::settings::setting(dinv_contract::settings::MEMORY);
        setting.parse(m).map_err(|e| l.error("snapshot.memory", format!("{m:?}: {} (the launcher reads it as {})", e.why, e.var)))?;
    }
    if s.mounts > 16 {
        return Err(l.error("snapshot.mounts", format!("{}: at most 16 9p devices", s.mounts)));
    }
    let known: Vec<&str> = dinv_contract::snapshot::QUIESCE_STEPS.iter().map(|q| q.0).collect();
    for (i, q) in s.quiesce.iter().enumerate() {
        if !known.contains(&q.as_str()) {
            return Err(l.error(&format!("snapshot.quiesce[{i}]"), format!("{q:?} is not a quiesce step (known: {})", known.join(", "))));
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
    fn references_hosts_and_urls() {
        for ok in ["dinv", "dinv-build/dinv", "a__b", "a.b_c--d", "localhost:5000/x", "registry.example:5443/team/dinv", "ghcr.io/o/n"] {
            assert!(check_image_name(ok).is_ok(), "{ok}: {:?}", check_image_name(ok));
        }
        for bad in ["", "Has Spaces", "UPPER", "a/", "/a", "a..b", "a___b", "-a", "a-", "host:99999/x", "a//b"] {
            assert!(check_image_name(bad).is_err(), "{bad}");
        }
        for ok in ["latest", "v1.2.3", "_x", "A-b.C"] {
            assert!(check_image_tag(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Has Spaces", ".x", "-x", "a:b", &"x".repeat(129)] {
            assert!(check_image_tag(bad).is_err(), "{bad}");
        }
        for ok in ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375", "tcp://:2375", "tcp://[::]:2375", "fd://", "fd://3"] {
            assert!(check_docker_host(ok).is_ok(), "{ok}");
        }
        for bad in ["tcp://0.0.0.0:99999", "tcp://0.0.0.0", "unix://rel", "fd://x", "http://x:1", "tcp://a b:1"] {
            assert!(check_docker_host(bad).is_err(), "{bad}");
        }
        assert!(check_url("https://mirror.example").is_ok());
        for bad in ["not a url", "ftp://x", "https://"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
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

