//! Kernel config fragments and full `.config` files
//! (`dinv_kernel::Fragment::parse`, `KernelConfig::parse`), merged and
//! checked against each other. Input: `fragment \0 .config`.
#![no_main]

use dinv_fuzz::split_at_byte;
use dinv_kernel::{check, merge, Fragment, KernelConfig, KernelId, ModuleLookup};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (fragment, config) = split_at_byte(data, 0);
    let fragment = std::str::from_utf8(fragment).ok().and_then(|t| Fragment::parse("fuzz.config", t).ok());
    let config = std::str::from_utf8(config).ok().and_then(|t| KernelConfig::parse("config-fuzz", t).ok());
    if let Some(f) = &fragment {
        let _ = f.require_reasons();
    }
    if let (Some(f), Some(k)) = (fragment, config) {
        let merged = merge(&[f.clone(), f]);
        let id = KernelId { package: "linux-fuzz".into(), release: "6.1.0-fuzz".into() };
        // Every kind of answer, chosen by the name's length.
        let module_of = |name: &str| match (name.len() % 3, name.strip_prefix("CONFIG_")) {
            (0, Some(n)) => ModuleLookup::Load(vec![n.to_ascii_lowercase(), format!("{n}_extra")]),
            (1, Some(n)) => ModuleLookup::NotShipped { modules: vec![n.to_ascii_lowercase()], from_recipe: false },
            (2, Some(_)) => ModuleLookup::Load(Vec::new()),
            _ => ModuleLookup::Unknown,
        };
        let report = check(&merged, &k, &id, &module_of);
        let _ = report.module_names();
        let _ = report.into_result();
    }
});
