//! The snapshot a DinV image may carry (`dinv-build snapshot`): a running
//! guest saved by QEMU right after dockerd answered, which the launcher
//! restores instead of booting when nothing the snapshot fixed differs.
//!
//! Files, in [`SNAPSHOT_DIR`] of the snapshot image:
//! - [`MANIFEST`]: [`Manifest`], what the saved VM was;
//! - [`MEMORY`]: the guest's RAM at the save, a raw image of
//!   `profile.memory_mib` MiB. A restoring QEMU maps it private and
//!   read-only (copy on write, `memory-backend-file` with `rom=off`), so a
//!   restore reads no RAM up front: the guest faults in the pages it
//!   touches, from a page cache every container of the image shares;
//! - [`STATE`]: QEMU's migration stream without the RAM (device state,
//!   `x-ignore-shared`), a few dozen KiB;
//! - [`ROOT_OVERLAY`]: qcow2 overlay of `../rootfs.ext4` holding what the
//!   guest wrote to its root disk until the save;
//! - [`DOCKER_DISK`]: the docker data disk at the save, standalone qcow2
//!   (the launcher writes it out as the raw `docker.img` of the volume).
//!
//! The launcher↔guest side: `dinv-guest quiesce` before the save
//! ([`QUIESCE_STEPS`]), which also leaves `dinv-guest restore --listen`
//! waiting on the virtio-serial port [`RESTORE_PORT`]; after a restore the
//! launcher writes a [`RestoreRequest`] there (one JSON line, so secrets
//! never show on a command line) and reads the guest's messages back until
//! [`RESTORE_DONE`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::settings::Machine;

/// Where the snapshot image keeps the snapshot (next to the root filesystem).
pub const SNAPSHOT_DIR: &str = "/usr/share/dinv/snapshot";
pub const MANIFEST: &str = "snapshot.json";
pub const STATE: &str = "state";
pub const MEMORY: &str = "memory";
pub const ROOT_OVERLAY: &str = "root.qcow2";
pub const DOCKER_DISK: &str = "docker.qcow2";
/// The root overlay's backing file, relative to [`SNAPSHOT_DIR`].
pub const ROOT_BACKING: &str = "../rootfs.ext4";
/// Bumped when a manifest no longer means what older launchers read in it.
pub const FORMAT: u32 = 2;

/// The virtio-serial port (its name) that `dinv-guest restore --listen`
/// reads the [`RestoreRequest`] from and writes its messages to.
pub const RESTORE_PORT: &str = "org.dinv.restore.0";
/// The last line the guest writes on [`RESTORE_PORT`]: this prefix and the
/// number of steps that failed.
pub const RESTORE_DONE: &str = "dinv-restore-done ";

/// What the guest can do before the save, in this order, each named in the
/// recipe's `snapshot.quiesce`: (name, in the default set, what it does).
pub const QUIESCE_STEPS: &[(&str, bool, &str)] = &[
    ("sync", true, "write dirty pages to the disks"),
    // Off by default: it halves the saved RAM (a 26 instead of a 48 MiB
    // layer for the Debian appliance) but the first docker command after a
    // restore then reads dockerd's code back from the disk (0.6 s more
    // under TCG), which costs more than the smaller state saves.
    ("page-out", false, "drop the running programs' file pages (their code) as well: a smaller state, but they are read back from the root disk when run"),
    ("drop-caches", true, "drop the page cache, dentries and inodes (a smaller saved RAM)"),
    ("warm-api", true, "ask dockerd for its version once (GET /version runs runc and docker-init), so the files the first `docker version` after a restore needs are in the saved page cache"),
    ("fstrim", true, "discard the docker filesystem's free blocks (a smaller docker disk)"),
    ("zero-free-memory", true, "fill free RAM with zero pages, which compress to nothing in the layer"),
];

/// The steps a recipe that does not say runs.
pub fn default_quiesce() -> Vec<&'static str> {
    QUIESCE_STEPS.iter().filter(|s| s.1).map(|s| s.0).collect()
}

/// The QEMU virtual machine a snapshot was saved from. A restore builds the
/// same command line from it (the device list must match for QEMU to load
/// the state), so every field is something a restore cannot change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineProfile {
    /// Always `tcg`: a KVM state does not load under TCG, and TCG runs anywhere.
    pub accel: String,
    /// The fixed CPU model (`max` under TCG: the same on every host).
    pub cpu: String,
    pub machine: Machine,
    pub cpus: u32,
    pub memory_mib: u64,
    /// Bytes of the docker data disk (the guest's ext4 is sized to it).
    pub docker_size: u64,
    /// 9p devices present (unmounted) at the save: a restore can mount
    /// that many `DINV_MOUNTS` shares.
    pub mount_slots: u32,
    /// The kernel command line the guest booted with.
    pub append: String,
    /// The TSC frequency the guest was told (`tsc_early_khz`): under TCG the
    /// guest's TSC runs at the host's, so a host whose TSC runs at another
    /// rate would run the guest's clock fast or slow.
    pub tsc_khz: Option<u64>,
    /// A `vmgenid` device is present: a restore gives it a new generation
    /// ID, which makes the guest kernel reseed its random number generator.
    /// Only on q35: QEMU 7.2 builds no ACPI entry for it on microvm, so a
    /// microvm guest never sees the device.
    pub vmgenid: bool,
    /// fw_cfg `opt/dinv/*` strings at the save (the guest read them at boot).
    pub fw_cfg: BTreeMap<String, String>,
}

/// Sizes of the base image's files the snapshot was taken from: a restore
/// over other files (a snapshot layer on another base) must boot instead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseFiles {
    pub kernel: u64,
    pub initrd: Option<u64>,
    pub rootfs: u64,
}

/// The base image, as dinv-build records it after the save.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseImage {
    pub reference: String,
    pub manifest_digest: String,
    pub config_digest: String,
}

/// `snapshot.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub profile: MachineProfile,
    /// SHA-256 of the QEMU command line the launcher builds for `profile`
    /// with every host path replaced by a placeholder: a launcher that
    /// would build another one cannot restore this snapshot.
    pub command_line: String,
    pub base: BaseFiles,
    /// Written by dinv-build once the layer is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_image: Option<BaseImage>,
    /// The device state's size, for the record.
    pub state_bytes: u64,
    /// How much of [`MEMORY`] is not zero pages, for the record.
    pub memory_data_bytes: u64,
}

impl Manifest {
    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if m.format != FORMAT {
            return Err(format!("snapshot format {} (this launcher reads {FORMAT})", m.format));
        }
        Ok(m)
    }
}

/// A 9p share to mount after a restore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Share {
    pub tag: String,
    pub path: String,
}

/// dockerd's TLS server set (PEM).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsServer {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer").field("ca", &self.ca).field("cert", &self.cert).field("key", &"<private key>").finish()
    }
}

/// What `dinv-guest restore` does to a restored guest, read as JSON on its
/// stdin: everything a booted guest would have got from fw_cfg at boot
/// (fw_cfg entries are read once, at boot), and fresh entropy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// The host's clock (nanoseconds since the epoch) as the launcher sends
    /// the request; the guest sets its clock to it first thing. (The
    /// agent's `guest-set-time` would also run `hwclock -w`, which waits
    /// for the RTC's next second: up to a second of a restore's time. The
    /// RTC needs nothing: QEMU's follows the host's clock.)
    pub clock_ns: u64,
    /// Random bytes from the host, hex: mixed into the guest's pool, then
    /// the kernel reseeds its generator.
    pub entropy: String,
    pub shares: Vec<Share>,
    pub sock_uid: u32,
    pub sock_gid: u32,
    pub shutdown_timeout: u64,
    /// dockerd moves to 2376 with `--tlsverify` (it restarts to do so).
    pub tls: Option<TlsServer>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trip_and_format() {
        let m = Manifest {
            format: FORMAT,
            profile: MachineProfile {
                accel: "tcg".into(),
                cpu: "max".into(),
                machine: Machine::Microvm,
                cpus: 1,
                memory_mib: 512,
                docker_size: 64 << 30,
                mount_slots: 4,
                append: "console=ttyS0".into(),
                tsc_khz: Some(2_999_998),
                vmgenid: true,
                fw_cfg: [("sock_uid".to_string(), "0".to_string())].into(),
            },
            command_line: "ab".into(),
            base: BaseFiles { kernel: 1, initrd: Some(2), rootfs: 3 },
            base_image: None,
            state_bytes: 4,
            memory_data_bytes: 5,
        };
        let bytes = serde_json::to_vec(&m).unwrap();
        assert_eq!(Manifest::parse(&bytes).unwrap(), m);
        // Format 1 (a zstd stream with the RAM) is not read any more.
        for other in [1, 3] {
            let text = String::from_utf8(bytes.clone()).unwrap().replace(&format!("\"format\":{FORMAT}"), &format!("\"format\":{other}"));
            assert!(Manifest::parse(text.as_bytes()).unwrap_err().contains(&format!("snapshot format {other}")));
        }
        assert_eq!(QUIESCE_STEPS.iter().map(|s| s.0).collect::<Vec<_>>(), ["sync", "page-out", "drop-caches", "warm-api", "fstrim", "zero-free-memory"]);
        assert_eq!(default_quiesce(), ["sync", "drop-caches", "warm-api", "fstrim", "zero-free-memory"]);
        let r = RestoreRequest { clock_ns: 1, entropy: "00".into(), shares: vec![], sock_uid: 0, sock_gid: 0, shutdown_timeout: 5, tls: Some(TlsServer { ca: "c".into(), cert: "c".into(), key: "SECRET".into() }) };
        assert!(!format!("{r:?}").contains("SECRET"));
    }
}
