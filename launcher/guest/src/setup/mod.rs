//! Per-boot setup around dockerd (`dinv-guest setup` before it, `post`
//! after it): the launcher's fw_cfg settings, disks, 9p mounts, network,
//! daemon.json and TLS, virtio ports, docker.sock's owner.

pub mod daemon_json;
pub mod ext4;
pub mod mounts;
pub mod net;
pub mod post;
pub mod settings;
pub mod setup;
pub mod virtio_ports;
