//! What PID 1 does before starting services: kernel filesystems, hostname, modules, network, setup.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::GuestError;
use crate::log::say;
use crate::setup::mounts::{self, MountRequest};
use crate::setup::settings::{Settings, FW_CFG_DIR};
use crate::setup::setup::{setup, SetupPaths};
use crate::system::Live;
use crate::{modules, setup::net, setup::virtio_ports};

/// The kernel filesystems init mounts, in order (parents first), unless already mounted.
pub fn api_mounts() -> Vec<MountRequest> {
    let (nosuid, nodev, noexec) = (libc::MS_NOSUID, libc::MS_NODEV, libc::MS_NOEXEC);
    let m = |src: &str, target: &str, fstype: &str, flags, data: &str| MountRequest::new(src, Path::new(target), fstype, flags, data);
    vec![
        m("proc", "/proc", "proc", nosuid | nodev | noexec, ""),
        m("sysfs", "/sys", "sysfs", nosuid | nodev | noexec, ""),
        m("devtmpfs", "/dev", "devtmpfs", nosuid, "mode=0755"),
        m("devpts", "/dev/pts", "devpts", nosuid | noexec, "gid=5,mode=0620,ptmxmode=0666"),
        m("shm", "/dev/shm", "tmpfs", nosuid | nodev, "mode=1777"),
        m("run", "/run", "tmpfs", nosuid | nodev, "mode=0755"),
        m("cgroup2", "/sys/fs/cgroup", "cgroup2", nosuid | nodev | noexec, "nsdelegate"),
    ]
}

/// The hostname in `/etc/hostname` text: its first non-comment word.
pub fn parse_hostname(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).and_then(|l| l.split_whitespace().next())
}

/// Runs every early-boot step, reporting failures and carrying on; returns the fw_cfg settings.
pub fn boot() -> Settings {
    for req in api_mounts() {
        report(mount_api(&req));
    }
    ensure_console();
    report(remount_root_rw());
    hostname();
    modules::coldplug(Path::new("/sys/bus"));
    modules::load_modules(Path::new(modules::ETC_MODULES));
    virtio_port_links();
    network();
    let settings = Settings::load(Path::new(FW_CFG_DIR)).unwrap_or_else(|e| {
        say(format_args!("error: {e}; using defaults"));
        Settings::default()
    });
    report(setup(&settings, &SetupPaths::default(), &mut Live));
    settings
}

fn report(result: Result<(), GuestError>) {
    if let Err(e) = result {
        say(format_args!("error: {e}"));
    }
}

fn mount_api(req: &MountRequest) -> Result<(), GuestError> {
    if mounts::is_mount_point(&req.target).unwrap_or(false) {
        return Ok(());
    }
    std::fs::create_dir_all(&req.target).map_err(|e| GuestError::io("creating directory", &req.target, e))?;
    mounts::mount(req)
}

/// Gives PID 1 a console on fds 0-2 if the kernel or initramfs left none.
fn ensure_console() {
    // SAFETY: fcntl/open/dup2 on plain fds and a NUL-terminated literal.
    unsafe {
        if libc::fcntl(1, libc::F_GETFD) != -1 {
            return;
        }
        let fd = libc::open(c"/dev/console".as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        if fd < 0 {
            return;
        }
        for target in 0..3 {
            libc::dup2(fd, target);
        }
        if fd > 2 {
            libc::close(fd);
        }
    }
}

fn remount_root_rw() -> Result<(), GuestError> {
    // SAFETY: statvfs writes into the zeroed struct; the path is a NUL-terminated literal.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c"/".as_ptr(), &mut st) } == 0 && st.f_flag & libc::ST_RDONLY == 0 {
        return Ok(());
    }
    mounts::mount(&MountRequest::new("", Path::new("/"), "", libc::MS_REMOUNT, ""))?;
    say("remounted / read-write");
    Ok(())
}

fn hostname() {
    let Ok(text) = std::fs::read_to_string("/etc/hostname") else { return };
    let Some(name) = parse_hostname(&text) else { return };
    // SAFETY: the pointer and length describe `name`'s bytes.
    if unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) } != 0 {
        say(format_args!("error: setting hostname {name:?}: {}", std::io::Error::last_os_error()));
    }
}

/// Links virtio-serial ports by name; the driver may still be probing, so wait briefly for them.
fn virtio_port_links() {
    let sys = Path::new("/sys/class/virtio-ports");
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match virtio_ports::link_ports(sys, Path::new("/dev")) {
            Ok(0) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(0) => return say("no named virtio-serial ports (is virtio_console loaded?); qemu-ga will not find its channel"),
            Ok(_) => return,
            Err(e) => return say(format_args!("error: linking /dev/virtio-ports: {e}")),
        }
    }
}

/// Waits briefly for the network driver, then configures the SLIRP address.
fn network() {
    let deadline = Instant::now() + Duration::from_secs(2);
    let iface = loop {
        let names: Vec<String> = std::fs::read_dir("/sys/class/net")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        match net::pick_interface(&names) {
            Some(iface) => break iface,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            None => return say("error: no network interface found (is virtio_net loaded?)"),
        }
    };
    match net::configure(&iface) {
        Ok(()) => say(format_args!("{iface} up: {}/24 via {}", net::GUEST, net::GATEWAY)),
        Err(e) => say(format_args!("error: {e}")),
    }
    report(net::write_resolv_conf(Path::new("/etc/resolv.conf")));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_mounts_put_parents_first() {
        let m = api_mounts();
        let targets: Vec<&Path> = m.iter().map(|r| r.target.as_path()).collect();
        for (i, t) in targets.iter().enumerate() {
            for parent in t.ancestors().skip(1) {
                if let Some(j) = targets.iter().position(|o| *o == parent) {
                    assert!(j < i, "{} must be mounted before {}", parent.display(), t.display());
                }
            }
        }
        assert!(m.iter().any(|r| r.fstype == "cgroup2" && r.target == Path::new("/sys/fs/cgroup")));
    }

    #[test]
    fn hostname_parsing() {
        assert_eq!(parse_hostname("# comment\n\n  dinv  \nother\n"), Some("dinv"));
        assert_eq!(parse_hostname("dinv extra"), Some("dinv"));
        assert_eq!(parse_hostname("\n# only\n"), None);
    }
}
