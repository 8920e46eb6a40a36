//! What the initramfs tells dinv-init: its settings and the modules to
//! load before the root disk can be reached.

use serde::{Deserialize, Serialize};

use crate::disks::ROOT_SERIAL;

/// Where dinv-init reads its settings.
pub const CONFIG_PATH: &str = "/etc/dinv/initramfs.json";
/// Where dinv-init reads the modules to load: one absolute path per line,
/// optionally followed by module parameters, in load order.
pub const MODULES_PATH: &str = "/etc/dinv/modules";

/// dinv-init's settings (`/etc/dinv/initramfs.json`); the kernel command
/// line (`root=`, `rootfstype=`, `init=`, `ro`/`rw`) overrides them. Unknown
/// keys are ignored, so a newer builder does not break an older init.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct InitramfsConfig {
    /// Root block device: a path (`/dev/vda`) or `SERIAL=<virtio serial>`.
    pub root: String,
    /// Root filesystem type, e.g. `ext4`.
    pub fstype: String,
    /// The guest's init, exec'd after switching root.
    pub init: String,
    /// How long to wait for the root device to appear.
    pub root_timeout_secs: u32,
    /// Mount the root read-only.
    pub read_only: bool,
}

impl Default for InitramfsConfig {
    fn default() -> Self {
        InitramfsConfig { root: "/dev/vda".into(), fstype: "ext4".into(), init: "/sbin/init".into(), root_timeout_secs: 10, read_only: false }
    }
}

impl InitramfsConfig {
    /// Parses the JSON file's text.
    pub fn parse(text: &str) -> Result<InitramfsConfig, String> {
        serde_json::from_str(text).map_err(|e| format!("{CONFIG_PATH}: {e}"))
    }
}

/// The kernel argument that makes dinv-init find the root disk by serial.
pub fn root_by_serial_arg() -> String {
    format!("root=SERIAL={ROOT_SERIAL}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_defaults() {
        let c = InitramfsConfig { root: "SERIAL=dinv-root".into(), read_only: true, ..InitramfsConfig::default() };
        assert_eq!(InitramfsConfig::parse(&serde_json::to_string(&c).unwrap()).unwrap(), c);
        assert_eq!(InitramfsConfig::parse("{\"future\": 1}").unwrap(), InitramfsConfig::default());
        assert!(InitramfsConfig::parse("{").unwrap_err().starts_with(CONFIG_PATH));
        assert_eq!(root_by_serial_arg(), "root=SERIAL=dinv-root");
    }
}
