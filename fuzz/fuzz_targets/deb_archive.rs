//! `ar` archives and `.deb` files (`dinv_deb::open_deb`): the control
//! member parsed, then the data member decompressed and read as tar.
//! An input that starts with the `ar` magic runs as given; any other is
//! `control tar PART_MARKER data tar`, assembled here into a `.deb` with
//! uncompressed members and repaired tar checksums (so mutations reach
//! the control parser).
#![no_main]

use std::io::{Cursor, Read};

use dinv_deb::open_deb;
use dinv_fuzz::{ar, drain_tar, fix_tar_checksums, split_parts};
use libfuzzer_sys::fuzz_target;

fn run(data: &[u8]) {
    let Ok(mut deb) = open_deb(Cursor::new(data), "fuzz") else { return };
    let c = deb.take_control();
    let _ = (c.field("Package"), c.conffiles.len(), c.scripts.len());
    let _ = (deb.data_member(), deb.data_compression(), deb.data_size(), deb.package());
    if let Ok(d) = deb.into_data() {
        // Bounded: a tiny input may decompress to a lot (a zip bomb is not
        // a bug of the reader, which streams).
        drain_tar(d.take(64 << 20));
    }
}

fuzz_target!(|data: &[u8]| {
    if data.starts_with(b"!<arch>\n") {
        run(data);
        return;
    }
    let parts = split_parts(data);
    let [control, data_tar] = parts.as_slice() else { return };
    let (control, data_tar) = (fix_tar_checksums(control), fix_tar_checksums(data_tar));
    run(&ar(&[("debian-binary", b"2.0\n"), ("control.tar", &control), ("data.tar", &data_tar)]));
});
