//! `dinv-guest`: the guest-side helper, installed in every guest at `/usr/sbin/dinv-guest`.
//!
//! Subcommands: `setup` (before dockerd: disks, 9p shares, daemon.json), `post`
//! (after dockerd: docker.sock owner), `init` (PID 1 for guests without OpenRC),
//! `exec-dockerd` (their dockerd service: hands dockerd its plain TCP
//! listeners by socket activation, see [`dockerd`]),
//! `quiesce` and `restore` (before a snapshot is saved and after it is
//! restored, run by the launcher through the guest agent), and, when called through a symlink named `poweroff`, `halt`, `reboot` or
//! `shutdown`, a request to PID 1 to end the machine.
//!
//! # fw_cfg contract (launcher → guest)
//!
//! The launcher passes `-fw_cfg name=opt/dinv/<key>,string=<value>`; the guest
//! reads `/sys/firmware/qemu_fw_cfg/by_name/opt/dinv/<key>/raw` (module
//! `qemu_fw_cfg`). Values are trimmed of whitespace and NULs; absent or empty
//! keys take the default.
//!
//! | key | value | default |
//! |---|---|---|
//! | `mounts` | `TAG=PATH;TAG=PATH`: virtio-9p mount tag and absolute guest path | none |
//! | `volume_path` | absolute guest path where `/dev/vdc` is mounted | no volume |
//! | `volume_uid`, `volume_gid` | owner of `volume_path` | 0, 0 |
//! | `sock_uid`, `sock_gid` | owner of `/var/run/docker.sock` | 0, 0 |
//! | `shutdown_timeout` | dockerd `shutdown-timeout`, seconds | 5 |
//! | `tls_ca`, `tls_cert`, `tls_key` | dockerd's TLS server set (PEM, all three or none): written to `/etc/docker/tls/`, dockerd on 2376 with `tlsverify` | plain 2375 |
//!
//! Disks: `/dev/vda` root (ext4), `/dev/vdb` docker data (formatted ext4, label
//! `dinv-docker`, when it has no ext superblock; mounted on `/var/lib/docker`),
//! `/dev/vdc` extra volume (same, label `dinv-volume`, only when `volume_path`
//! is set). 9p shares are mounted with `trans=virtio,version=9p2000.L,msize=512000`.
//! The timeout is merged into `/etc/docker/daemon.json` (other keys and their
//! order kept).
//!
//! # `/etc/dinv/services.json` (builder → `dinv-guest init`)
//!
//! ```json
//! {"services": [
//!   {"name": "qemu-ga", "argv": ["/usr/sbin/qemu-ga", "-m", "virtio-serial",
//!     "-p", "/dev/virtio-ports/org.qemu.guest_agent.0"], "restart": true},
//!   {"name": "dockerd", "argv": ["/usr/sbin/dinv-guest", "exec-dockerd", "/usr/bin/dockerd"], "restart": true,
//!    "ready_path": "/var/run/docker.sock", "stop_timeout": {"shutdown_timeout_plus": 5}},
//!   {"name": "dinv-post", "argv": ["/usr/sbin/dinv-guest", "post"], "after_ready_of": "dockerd"}
//! ]}
//! ```
//!
//! Fields: `name` (unique), `argv` (non-empty), `env` (object, added to PATH/TERM/HOME),
//! `restart` (bool, default false; 1 s pause), `after_ready_of` (name of an earlier
//! service that must be ready first), `ready_path` (ready once it exists; default:
//! once started), `stop_timeout` (`{"seconds": N}`, default 10, or
//! `{"shutdown_timeout_plus": N}`). Services start in list order (none overtakes one
//! waiting for readiness) and stop in reverse. See [`pid1::services::ServicesFile`].
//!
//! # Power signals to PID 1 (busybox convention)
//!
//! SIGUSR2 or SIGUSR1: power off (also sent by the ACPI power button's watcher,
//! see [`pid1::power_button`]). SIGTERM or SIGINT (Ctrl-Alt-Del): reboot. The
//! console then shows `dinv-guest: stopping <service>`, `dinv-guest: <service> stopped`
//! and `dinv-guest: powering off` (or `rebooting`).

pub mod cli;
pub mod dockerd;
pub mod pid1;
pub mod setup;
pub mod error;
pub mod log;
pub mod modules;
pub mod quiesce;
pub mod restore;
pub mod system;
#[cfg(test)]
mod testutil;

pub use error::GuestError;
pub use dinv_contract::openrc::openrc_scripts;
pub use pid1::services::{Service, ServicesFile, StopTimeout};
pub use setup::settings::Settings;
