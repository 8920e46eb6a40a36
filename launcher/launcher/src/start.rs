//! Restore or boot, and why: a pure function of `DINV_START`, the run's
//! settings, the image's snapshot manifest and a few facts about this host
//! and its disks. A restore happens only when nothing the snapshot fixed
//! differs; otherwise the guest boots and one log line names the setting
//! (or the fact) that forced it, or, with `DINV_START=snapshot`, the
//! launcher fails with that line.

use dinv_contract::snapshot::{BaseFiles, Manifest};

use super::accel::Accel;
use super::settings::Settings;
use super::snapshot_vm;
use dinv_contract::settings::format_size;

/// `DINV_START`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartMode {
    Auto,
    Snapshot,
    Boot,
}

impl StartMode {
    /// The mode a `DINV_START` value names (the settings table checked it).
    pub fn parse(v: Option<&str>) -> StartMode {
        match v.map(str::trim) {
            Some("snapshot") => StartMode::Snapshot,
            Some("boot") => StartMode::Boot,
            _ => StartMode::Auto,
        }
    }
}

/// The docker data disk before QEMU starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataDisk {
    Missing,
    /// Exists, and every byte is a hole (made by a launcher, never written).
    Blank,
    /// Holds data from an earlier run: never replaced.
    HoldsData,
}

/// What the decision reads besides the settings and the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    pub mode: StartMode,
    pub accel: Accel,
    /// `DINV_ACCEL` was given (so KVM was not merely found).
    pub accel_forced: bool,
    /// Sizes of the image's kernel, initramfs and root filesystem.
    pub base: BaseFiles,
    /// This host's TSC frequency (what a boot would tell the guest).
    pub tsc_khz: Option<u64>,
    pub data_disk: DataDisk,
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Restore,
    /// Boot; `why` is the log line's reason (None: nothing to say, the image
    /// has no snapshot).
    Boot { why: Option<String> },
    /// `DINV_START=snapshot` and no restore is possible.
    Refuse(String),
}

/// TSC frequencies closer than this (relative) count as equal: a host's
/// reported `cpu MHz` wobbles in its last digits.
const TSC_TOLERANCE: f64 = 0.005;

/// Why `manifest` cannot be restored here, or None when it can.
fn mismatch(s: &Settings, m: &Manifest, f: &Facts) -> Option<String> {
    let p = &m.profile;
    if f.accel != Accel::Tcg {
        return Some(if f.accel_forced {
            "DINV_ACCEL=kvm (a snapshot restores under TCG only)".into()
        } else {
            "KVM is usable here, and boots fast (a snapshot restores under TCG only; DINV_START=snapshot restores anyway)".into()
        });
    }
    if snapshot_vm::signature(p) != m.command_line {
        return Some("the snapshot was saved by a launcher that builds another QEMU command line".into());
    }
    if f.base != m.base {
        return Some("the image's kernel, initramfs or root filesystem is not the one the snapshot was saved with".into());
    }
    if s.machine != p.machine {
        return Some(format!("DINV_MACHINE is {}, the snapshot's machine is {}", s.machine.as_str(), p.machine.as_str()));
    }
    if s.cpus != p.cpus {
        return Some(format!("DINV_CPUS is {}, the snapshot has {}", s.cpus, p.cpus));
    }
    if s.memory_mib != p.memory_mib {
        return Some(format!("DINV_MEMORY is {}, the snapshot has {}", format_size(s.memory_mib << 20), format_size(p.memory_mib << 20)));
    }
    if s.docker_size.div_ceil(1 << 20) != p.docker_size.div_ceil(1 << 20) {
        return Some(format!("DINV_DOCKER_SIZE is {}, the snapshot's docker disk is {}", format_size(s.docker_size), format_size(p.docker_size)));
    }
    if s.volume.is_some() {
        return Some("DINV_VOLUME_PATH is set, and the snapshot has no volume disk".into());
    }
    if s.mounts.len() > p.mount_slots as usize {
        return Some(format!("DINV_MOUNTS lists {} paths, the snapshot can mount {}", s.mounts.len(), p.mount_slots));
    }
    if let Some(saved) = p.tsc_khz {
        match f.tsc_khz {
            None => return Some("this host's TSC frequency is unknown (the snapshot's guest counts time at the saving host's)".into()),
            Some(here) if (here as f64 - saved as f64).abs() > saved as f64 * TSC_TOLERANCE => {
                return Some(format!(
                    "this host's TSC runs at {:.0} MHz, the snapshot's guest counts time at {:.0} MHz",
                    here as f64 / 1000.0,
                    saved as f64 / 1000.0
                ))
            }
            Some(_) => {}
        }
    }
    if f.data_disk == DataDisk::HoldsData {
        return Some("the docker data disk holds data from an earlier run, and is never replaced".into());
    }
    None
}

/// Restore, boot (and why) or refuse.
pub fn decide(s: &Settings, manifest: Result<Option<&Manifest>, &str>, f: &Facts) -> Decision {
    let why = match (f.mode, manifest) {
        (StartMode::Boot, Ok(None)) => return Decision::Boot { why: None },
        (StartMode::Boot, _) => return Decision::Boot { why: Some("DINV_START=boot".into()) },
        (StartMode::Auto, Ok(None)) => return Decision::Boot { why: None },
        (_, Ok(None)) => "the image has no snapshot (dinv-build snapshot makes one)".to_string(),
        (_, Err(e)) => format!("the snapshot cannot be read ({e})"),
        (_, Ok(Some(m))) => match mismatch(s, m, f) {
            None => return Decision::Restore,
            Some(why) => why,
        },
    };
    match f.mode {
        StartMode::Snapshot => Decision::Refuse(format!("DINV_START=snapshot, but {why}")),
        _ => Decision::Boot { why: Some(why) },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::BTreeMap;

    pub fn manifest() -> Manifest {
        let profile = crate::snapshot_vm::tests::profile();
        Manifest {
            format: dinv_contract::snapshot::FORMAT,
            command_line: snapshot_vm::signature(&profile),
            profile,
            base: BaseFiles { kernel: 10, initrd: Some(20), rootfs: 30 },
            base_image: None,
            state_bytes: 1,
            memory_data_bytes: 0,
        }
    }

    fn settings(vars: &[(&str, &str)]) -> Settings {
        let m: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(&|k| m.get(k).cloned()).unwrap()
    }

    fn facts() -> Facts {
        Facts {
            mode: StartMode::Auto,
            accel: Accel::Tcg,
            accel_forced: false,
            base: BaseFiles { kernel: 10, initrd: Some(20), rootfs: 30 },
            tsc_khz: Some(3_000_000),
            data_disk: DataDisk::Missing,
        }
    }

    fn why(d: Decision) -> String {
        match d {
            Decision::Boot { why: Some(w) } => w,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn restores_when_nothing_differs() {
        let m = manifest();
        assert_eq!(decide(&settings(&[]), Ok(Some(&m)), &facts()), Decision::Restore);
        // Host-side settings do not matter; 2 of 2 mount slots used; a blank disk is no data.
        let s = settings(&[("DINV_TCP_PORTS", "8080:80"), ("DINV_MOUNTS", "/a;/b"), ("DINV_DOCKER_SOCK_UID", "1000"), ("DOCKER_TLS_CERTDIR", "/certs")]);
        assert_eq!(decide(&s, Ok(Some(&m)), &Facts { data_disk: DataDisk::Blank, tsc_khz: Some(3_001_000), ..facts() }), Decision::Restore);
        assert_eq!(decide(&settings(&[]), Ok(Some(&m)), &Facts { mode: StartMode::Snapshot, ..facts() }), Decision::Restore);
    }

    #[test]
    fn each_fixed_setting_forces_a_boot_and_is_named() {
        let m = manifest();
        let boot = |vars: &[(&str, &str)], f: Facts| why(decide(&settings(vars), Ok(Some(&m)), &f));
        assert_eq!(boot(&[("DINV_MEMORY", "1G")], facts()), "DINV_MEMORY is 1G, the snapshot has 512M");
        assert_eq!(boot(&[("DINV_CPUS", "2")], facts()), "DINV_CPUS is 2, the snapshot has 1");
        assert_eq!(boot(&[("DINV_MACHINE", "q35")], facts()), "DINV_MACHINE is q35, the snapshot's machine is microvm");
        assert_eq!(boot(&[("DINV_DOCKER_SIZE", "8G")], facts()), "DINV_DOCKER_SIZE is 8G, the snapshot's docker disk is 64G");
        assert_eq!(boot(&[("DINV_VOLUME_PATH", "/work")], facts()), "DINV_VOLUME_PATH is set, and the snapshot has no volume disk");
        assert_eq!(boot(&[("DINV_MOUNTS", "/a;/b;/c")], facts()), "DINV_MOUNTS lists 3 paths, the snapshot can mount 2");
        assert!(boot(&[], Facts { accel: Accel::Kvm, ..facts() }).starts_with("KVM is usable here"));
        assert!(boot(&[], Facts { accel: Accel::Kvm, accel_forced: true, ..facts() }).starts_with("DINV_ACCEL=kvm"));
        assert_eq!(boot(&[], Facts { data_disk: DataDisk::HoldsData, ..facts() }), "the docker data disk holds data from an earlier run, and is never replaced");
        assert_eq!(boot(&[], Facts { tsc_khz: Some(2_400_000), ..facts() }), "this host's TSC runs at 2400 MHz, the snapshot's guest counts time at 3000 MHz");
        assert!(boot(&[], Facts { tsc_khz: None, ..facts() }).contains("TSC frequency is unknown"));
        assert!(boot(&[], Facts { base: BaseFiles { rootfs: 31, ..facts().base }, ..facts() }).contains("root filesystem"));
    }

    #[test]
    fn a_manifest_of_another_launcher_or_none() {
        let mut m = manifest();
        m.command_line = "0".repeat(64);
        assert!(why(decide(&settings(&[]), Ok(Some(&m)), &facts())).contains("another QEMU command line"));
        // No snapshot: boot without a word, unless one was asked for.
        assert_eq!(decide(&settings(&[]), Ok(None), &facts()), Decision::Boot { why: None });
        assert_eq!(decide(&settings(&[]), Ok(None), &Facts { mode: StartMode::Boot, ..facts() }), Decision::Boot { why: None });
        let refused = decide(&settings(&[]), Ok(None), &Facts { mode: StartMode::Snapshot, ..facts() });
        assert_eq!(refused, Decision::Refuse("DINV_START=snapshot, but the image has no snapshot (dinv-build snapshot makes one)".into()));
        assert!(why(decide(&settings(&[]), Err("bad JSON"), &facts())).contains("cannot be read (bad JSON)"));
    }

    #[test]
    fn start_modes() {
        let m = manifest();
        assert_eq!(decide(&settings(&[]), Ok(Some(&m)), &Facts { mode: StartMode::Boot, ..facts() }), Decision::Boot { why: Some("DINV_START=boot".into()) });
        let refused = decide(&settings(&[("DINV_MEMORY", "1G")]), Ok(Some(&m)), &Facts { mode: StartMode::Snapshot, ..facts() });
        assert_eq!(refused, Decision::Refuse("DINV_START=snapshot, but DINV_MEMORY is 1G, the snapshot has 512M".into()));
        assert_eq!(StartMode::parse(Some("snapshot")), StartMode::Snapshot);
        assert_eq!(StartMode::parse(None), StartMode::Auto);
    }
}
