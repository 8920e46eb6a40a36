//! `.PKGINFO` text (`dinv_apk::PkgInfo::parse`) and writing it back.
#![no_main]

use dinv_apk::PkgInfo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(p) = PkgInfo::parse(text) {
        let _ = p.label();
        let _ = PkgInfo::parse(&p.to_text());
    }
});
