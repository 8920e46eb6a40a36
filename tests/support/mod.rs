//! Shared test support: a local Debian mirror built from what this machine
//! already trusts (apt's lists, `apt-get download`), served on 127.0.0.1.
#![allow(dead_code)]

pub mod alpine_repo;
pub mod appliance;
pub mod debian_mirror;
pub mod ext4;
pub mod fake_kernel;
pub mod outputs;
