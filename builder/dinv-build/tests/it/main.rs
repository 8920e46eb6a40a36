//! dinv-build's integration tests, one binary (uv-style): each module
//! drives the real `dinv-build` executable or the library against
//! generated mirrors and fixtures. The end-to-end run with a booted guest
//! and the real docker client is its own binary (`e2e_debian`), so it
//! never shares the machine with the rest.
//!
//! - `sources`: apk and Debian sources (indexes, signatures, hostile input);
//! - `stages`: kernel, initramfs, rootfs, image, guest configuration, runtime layer;
//! - `features`: recipes extended by teams, locks, reproducibility, push,
//!   output directories, the runtime-settings contract, CLI output;
//! - `faults`: builds killed in every stage, every network fault;
//! - `repo`: rules about the repository itself (layering, README).

mod faults;
mod features;
mod repo;
mod sources;
mod stages;
