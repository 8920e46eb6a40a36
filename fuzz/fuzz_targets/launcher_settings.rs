//! The launcher's settings as `dinv-launcher` reads them at start
//! (`cli::load` and `plan`, without the disk and the KVM probe):
//! launcher.json (`config::parse`, `resolve`), the DINV_* variables over
//! its defaults (`Settings::from_lookup`), DINV_ACCEL (`accel::decide`),
//! then the QEMU command line built from them. Input: `launcher.json \0
//! environment`, the environment as `NAME=value` lines.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;

use dinv_fuzz::split_at_byte;
use dinv_launcher::accel::{decide, Accel};
use dinv_launcher::config::{self, LauncherConfig};
use dinv_launcher::kvm_probe::Probe;
use dinv_launcher::qemu::{qemu_args, shell_quote};
use dinv_launcher::settings::{Settings, DOCKER_PORT};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (json, env_text) = split_at_byte(data, 0);
    let path = Path::new("/etc/dinv/launcher.json");
    let cfg = match config::parse(path, json) {
        Ok(cfg) => {
            // What parses, written back, parses to the same config.
            let again = config::parse(path, &serde_json::to_vec(&cfg).unwrap()).expect("a written launcher.json parses");
            assert_eq!(again, cfg);
            cfg
        }
        Err(_) => LauncherConfig::default(),
    };
    let env_text = String::from_utf8_lossy(env_text);
    let vars: BTreeMap<&str, &str> = env_text.lines().filter_map(|l| l.split_once('=')).collect();
    let env = |k: &str| vars.get(k).map(|v| v.to_string());
    let paths = config::resolve(&cfg, path, &env);
    let lookup = cfg.lookup(&env);
    let Ok(settings) = Settings::from_lookup(&lookup) else { return };
    // What the parser promises the QEMU arguments and the guest.
    assert!((1..=255).contains(&settings.cpus));
    assert!(settings.memory_mib >= 128);
    assert!(settings.tcp_ports.iter().all(|p| p.host != DOCKER_PORT && p.host > 0 && p.guest > 0));
    for m in settings.mounts.iter().chain(settings.volume.as_ref().map(|v| &v.path)) {
        assert!(m.starts_with('/') && m.len() > 1 && !m.split('/').any(|c| c == ".." || c == "."), "{m:?}");
        assert!(!m.contains(['\0', '\n', ';']), "{m:?}");
    }
    let forced = env("DINV_ACCEL").filter(|s| !s.is_empty());
    let Ok(choice) = decide(forced.as_deref(), || Probe::Works) else { return };
    if let Ok(paths) = paths {
        for accel in [choice.accel, Accel::Tcg] {
            let args = qemu_args(&settings, &paths, accel);
            let _ = shell_quote(&args);
        }
    }
});
