//! `keygen`: a signing key pair in cosign's formats: `PREFIX.private`
//! (ECDSA P-256, encrypted: scrypt + NaCl secretbox, as `cosign
//! generate-key-pair` writes it) and `PREFIX.pub` (SubjectPublicKeyInfo PEM).

use std::path::{Path, PathBuf};

use serde_json::json;

use super::outcome::{object, Outcome};
use crate::sign::{self, PrivateKey};
use crate::{Error, Result};

struct Written {
    private: PathBuf,
    public: PathBuf,
}

impl Outcome for Written {
    fn text(&self) -> String {
        format!("wrote {} (encrypted) and {}\n", self.private.display(), self.public.display())
    }

    fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        object(json!({"private_key": self.private, "public_key": self.public}))
    }
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes the pair; refuses to replace either file.
pub fn run(prefix: &Path, passphrase_file: Option<&Path>) -> Result<Box<dyn Outcome>> {
    let passphrase = sign::passphrase(passphrase_file)?
        .ok_or_else(|| Error::Usage("keygen encrypts the private key: give a passphrase in DINV_SIGN_PASSPHRASE or with --sign-passphrase-file FILE".into()))?;
    let (private, public) = (with_suffix(prefix, ".private"), with_suffix(prefix, ".pub"));
    for p in [&private, &public] {
        if p.exists() {
            return Err(Error::Usage(format!("{} already exists", p.display())));
        }
    }
    let key = PrivateKey::generate();
    let pem = key.to_encrypted_pem(&passphrase);
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&private).map_err(Error::io(&private))?;
        f.write_all(pem.as_bytes()).map_err(Error::io(&private))?;
    }
    std::fs::write(&public, key.public().to_pem()).map_err(Error::io(&public))?;
    Ok(Box::new(Written { private, public }))
}
