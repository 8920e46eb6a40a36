//! The services file `/etc/dinv/services.json` that `dinv-guest init` starts and supervises (schema: [`dinv_contract::services`]).

use std::path::Path;

pub use dinv_contract::services::{Service, ServicesFile, StopTimeout, SERVICES_JSON};

use crate::error::{GuestError, Result};

/// Reads and validates a services file.
pub fn load(path: &Path) -> Result<ServicesFile> {
    let text = std::fs::read_to_string(path).map_err(|e| GuestError::io("reading", path, e))?;
    ServicesFile::parse(&text).map_err(|why| GuestError::Config { path: path.into(), why })
}
