//! `/dev/virtio-ports/<name>` links (udev's job elsewhere), so qemu-ga finds its channel by name.

use std::io;
use std::path::Path;

/// The named virtio-serial ports under `sys_class` (`/sys/class/virtio-ports`): (port name, device node name).
pub fn named_ports(sys_class: &Path) -> Vec<(String, String)> {
    let mut ports: Vec<(String, String)> = std::fs::read_dir(sys_class)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = std::fs::read_to_string(entry.path().join("name")).ok()?;
            let name = name.trim();
            // A name with a slash could point the link outside /dev/virtio-ports.
            (!name.is_empty() && !name.contains('/') && name != "." && name != "..")
                .then(|| (name.to_string(), entry.file_name().to_string_lossy().into_owned()))
        })
        .collect();
    ports.sort();
    ports
}

/// Creates `<dev>/virtio-ports/<name>` → `../<node>` for every named port; returns how many exist now.
pub fn link_ports(sys_class: &Path, dev: &Path) -> io::Result<usize> {
    let ports = named_ports(sys_class);
    if ports.is_empty() {
        return Ok(0);
    }
    let dir = dev.join("virtio-ports");
    std::fs::create_dir_all(&dir)?;
    for (name, node) in &ports {
        let link = dir.join(name);
        let target = Path::new("..").join(node);
        if std::fs::read_link(&link).is_ok_and(|t| t == target) {
            continue;
        }
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link)?;
    }
    Ok(ports.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn links_named_ports_and_is_idempotent() {
        let dir = TempDir::new("vports");
        let sys = dir.path().join("sys");
        for (node, name) in [("vport0p1", "org.qemu.guest_agent.0\n"), ("vport0p2", ""), ("vport1p1", "../evil")] {
            std::fs::create_dir_all(sys.join(node)).unwrap();
            std::fs::write(sys.join(node).join("name"), name).unwrap();
        }
        std::fs::create_dir_all(sys.join("vport2p0")).unwrap();
        let dev = dir.path().join("dev");
        assert_eq!(named_ports(&sys), vec![("org.qemu.guest_agent.0".to_string(), "vport0p1".to_string())]);
        assert_eq!(link_ports(&sys, &dev).unwrap(), 1);
        assert_eq!(link_ports(&sys, &dev).unwrap(), 1);
        let link = dev.join("virtio-ports/org.qemu.guest_agent.0");
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("../vport0p1"));
        assert_eq!(std::fs::read_dir(dev.join("virtio-ports")).unwrap().count(), 1);
    }

    #[test]
    fn no_ports_no_directory() {
        let dir = TempDir::new("vports");
        assert_eq!(link_ports(&dir.path().join("absent"), dir.path()).unwrap(), 0);
        assert!(!dir.path().join("virtio-ports").exists());
    }
}
