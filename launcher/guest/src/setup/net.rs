//! Static network setup for QEMU's user network (SLIRP), by ioctls so no `ip` tool is needed.

use std::ffi::CString;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::error::{GuestError, Result};

/// The guest's address in SLIRP's 10.0.2.0/24.
pub const GUEST: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
/// Netmask of the SLIRP network.
pub const NETMASK: Ipv4Addr = Ipv4Addr::new(255, 255, 255, 0);
/// SLIRP's gateway (the host side).
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
/// SLIRP's DNS forwarder.
pub const DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);

/// Contents of `/etc/resolv.conf` in the guest.
pub fn resolv_conf() -> String {
    format!("nameserver {DNS}\n")
}

/// The interface to configure: `eth0` if present, else the first non-loopback one by name.
pub fn pick_interface(names: &[String]) -> Option<String> {
    if names.iter().any(|n| n == "eth0") {
        return Some("eth0".into());
    }
    let mut others: Vec<&String> = names.iter().filter(|n| *n != "lo").collect();
    others.sort();
    others.first().map(|n| n.to_string())
}

/// Brings up `lo` and `iface` with the SLIRP address and default route.
pub fn configure(iface: &str) -> Result<()> {
    // SAFETY: socket has no preconditions; the fd is owned from here on.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(net_err("socket(AF_INET)", io::Error::last_os_error()));
    }
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let s = sock.as_raw_fd();
    address(s, "lo", Ipv4Addr::LOCALHOST, Ipv4Addr::new(255, 0, 0, 0))?;
    up(s, "lo")?;
    address(s, iface, GUEST, NETMASK)?;
    up(s, iface)?;
    default_route(s, iface, GATEWAY)
}

/// Writes resolv.conf (replacing a symlink, e.g. to a resolver daemon that does not run here).
pub fn write_resolv_conf(path: &Path) -> Result<()> {
    let want = resolv_conf();
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if !is_link && std::fs::read_to_string(path).is_ok_and(|t| t == want) {
        return Ok(());
    }
    if is_link {
        std::fs::remove_file(path).map_err(|e| GuestError::io("removing", path, e))?;
    }
    std::fs::write(path, want).map_err(|e| GuestError::io("writing", path, e))
}

fn net_err(what: &str, e: io::Error) -> GuestError {
    GuestError::Command { command: what.to_string(), why: e.to_string() }
}

fn sockaddr(addr: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(addr.octets()) },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size; the kernel reads it as sockaddr_in for AF_INET.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

fn ifreq(iface: &str) -> Result<libc::ifreq> {
    let name = CString::new(iface).map_err(|_| net_err(iface, io::Error::from(io::ErrorKind::InvalidInput)))?;
    let bytes = name.as_bytes_with_nul();
    if bytes.len() > libc::IFNAMSIZ {
        return Err(net_err(iface, io::Error::new(io::ErrorKind::InvalidInput, "interface name too long")));
    }
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    Ok(req)
}

fn ioctl<T>(sock: i32, request: libc::c_ulong, arg: &mut T) -> io::Result<()> {
    // SAFETY: `arg` is the structure `request` expects and lives across the call.
    if unsafe { libc::ioctl(sock, request as _, arg as *mut T) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn address(sock: i32, iface: &str, addr: Ipv4Addr, mask: Ipv4Addr) -> Result<()> {
    let mut req = ifreq(iface)?;
    req.ifr_ifru.ifru_addr = sockaddr(addr);
    ioctl(sock, libc::SIOCSIFADDR, &mut req).map_err(|e| net_err(&format!("setting address {addr} on {iface}"), e))?;
    let mut req = ifreq(iface)?;
    req.ifr_ifru.ifru_netmask = sockaddr(mask);
    ioctl(sock, libc::SIOCSIFNETMASK, &mut req).map_err(|e| net_err(&format!("setting netmask {mask} on {iface}"), e))
}

fn up(sock: i32, iface: &str) -> Result<()> {
    let mut req = ifreq(iface)?;
    ioctl(sock, libc::SIOCGIFFLAGS, &mut req).map_err(|e| net_err(&format!("reading flags of {iface}"), e))?;
    // SAFETY: SIOCGIFFLAGS filled the flags member.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    ioctl(sock, libc::SIOCSIFFLAGS, &mut req).map_err(|e| net_err(&format!("bringing up {iface}"), e))
}

fn default_route(sock: i32, iface: &str, gateway: Ipv4Addr) -> Result<()> {
    let dev = CString::new(iface).map_err(|_| net_err(iface, io::Error::from(io::ErrorKind::InvalidInput)))?;
    // SAFETY: rtentry is plain data; all-zero is a valid value.
    let mut rt: libc::rtentry = unsafe { std::mem::zeroed() };
    rt.rt_dst = sockaddr(Ipv4Addr::UNSPECIFIED);
    rt.rt_genmask = sockaddr(Ipv4Addr::UNSPECIFIED);
    rt.rt_gateway = sockaddr(gateway);
    rt.rt_flags = libc::RTF_UP | libc::RTF_GATEWAY;
    rt.rt_dev = dev.as_ptr() as *mut libc::c_char;
    match ioctl(sock, libc::SIOCADDRT, &mut rt) {
        // Already there: a second run (or the kernel's ip= boot option) set it.
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        other => other.map_err(|e| net_err(&format!("adding default route via {gateway} on {iface}"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slirp_addressing() {
        assert_eq!(resolv_conf(), "nameserver 10.0.2.3\n");
        let sa = sockaddr(GUEST);
        assert_eq!(sa.sa_family, libc::AF_INET as libc::sa_family_t);
        // sockaddr_in: port (2 bytes) then the address in network order.
        let data: Vec<u8> = sa.sa_data[2..6].iter().map(|b| *b as u8).collect();
        assert_eq!(data, [10, 0, 2, 15]);
    }

    #[test]
    fn picks_eth0_else_first_non_loopback() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(pick_interface(&names(&["lo", "enp0s2", "eth0"])).as_deref(), Some("eth0"));
        assert_eq!(pick_interface(&names(&["lo", "enp0s3", "enp0s2"])).as_deref(), Some("enp0s2"));
        assert_eq!(pick_interface(&names(&["lo"])), None);
    }

    #[test]
    fn resolv_conf_replaces_symlink() {
        let dir = crate::testutil::TempDir::new("net");
        let target = dir.path().join("stub-resolv.conf");
        std::fs::write(&target, "nameserver 127.0.0.53\n").unwrap();
        let path = dir.path().join("resolv.conf");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        write_resolv_conf(&path).unwrap();
        assert!(!std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "nameserver 10.0.2.3\n");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "nameserver 127.0.0.53\n", "the link target is left alone");
    }

    #[test]
    fn long_interface_name_is_refused() {
        assert!(ifreq("an-interface-name-too-long").is_err());
        assert!(ifreq("eth0").is_ok());
    }

    #[test]
    fn configures_addresses_and_route_in_a_private_netns() {
        // A thread of its own, moved into a fresh network namespace, so the host is untouched.
        let result = std::thread::spawn(|| {
            // SAFETY: unshare affects only this thread's network namespace.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return None;
            }
            // Only `lo` exists here; configuring it as the "uplink" exercises every ioctl, twice.
            configure("lo").unwrap();
            configure("lo").unwrap();
            let sock = unsafe { OwnedFd::from_raw_fd(libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0)) };
            let read = |request| {
                let mut req = ifreq("lo").unwrap();
                ioctl(sock.as_raw_fd(), request, &mut req).unwrap();
                let sa = unsafe { req.ifr_ifru.ifru_addr };
                Ipv4Addr::from([2, 3, 4, 5].map(|i| sa.sa_data[i] as u8))
            };
            let mut flags = ifreq("lo").unwrap();
            ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut flags).unwrap();
            let up = unsafe { flags.ifr_ifru.ifru_flags } & libc::IFF_UP as libc::c_short != 0;
            let routes = std::fs::read_to_string("/proc/thread-self/net/route").unwrap();
            Some((read(libc::SIOCGIFADDR), read(libc::SIOCGIFNETMASK), up, routes))
        })
        .join()
        .unwrap();
        let Some((addr, mask, up, routes)) = result else {
            eprintln!("skipped: no permission to create a network namespace");
            return;
        };
        assert_eq!((addr, mask, up), (GUEST, NETMASK, true));
        // /proc/net/route: Iface Destination Gateway ..., addresses as hex of the in-memory u32.
        let default = routes.lines().find(|l| l.split_whitespace().nth(1) == Some("00000000")).expect(&routes);
        let fields: Vec<&str> = default.split_whitespace().collect();
        assert_eq!(fields[0], "lo");
        assert_eq!(u32::from_str_radix(fields[2], 16).unwrap().to_ne_bytes(), GATEWAY.octets());
    }
}
