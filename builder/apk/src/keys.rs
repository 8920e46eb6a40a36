//! Trusted RSA public keys, named by file name as signatures refer to them
//! (`.SIGN.RSA.alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub`).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::RsaPublicKey;

use crate::KeyError;

/// A set of trusted keys by name.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    keys: BTreeMap<String, RsaPublicKey>,
}

impl Keyring {
    /// An empty keyring (trusts nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key from PEM text (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`).
    pub fn add_pem(&mut self, name: &str, pem: &str) -> Result<(), KeyError> {
        let key = if pem.contains("-----BEGIN RSA PUBLIC KEY-----") {
            RsaPublicKey::from_pkcs1_pem(pem.trim()).map_err(|e| e.to_string())
        } else {
            RsaPublicKey::from_public_key_pem(pem.trim()).map_err(|e| e.to_string())
        };
        let key = key.map_err(|why| KeyError::Pem { name: name.to_string(), why })?;
        self.insert(name, key);
        Ok(())
    }

    /// Adds an already decoded key.
    pub fn insert(&mut self, name: &str, key: RsaPublicKey) {
        self.keys.insert(name.to_string(), key);
    }

    /// Adds the key in `path`, named by its file name.
    pub fn load_file(&mut self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io { path: path.to_path_buf(), source };
        let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            io(std::io::Error::new(std::io::ErrorKind::InvalidInput, "key file name is not UTF-8"))
        })?;
        let pem = fs::read_to_string(path).map_err(io)?;
        self.add_pem(name, &pem)
    }

    /// Adds every regular file in `dir` (hidden files skipped); a file that
    /// is not a key is an error, so a misplaced file is noticed.
    pub fn load_dir(&mut self, dir: &Path) -> Result<usize, KeyError> {
        let io = |source| KeyError::Io { path: dir.to_path_buf(), source };
        let mut paths: Vec<_> = fs::read_dir(dir)
            .map_err(io)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(io)?;
        paths.sort();
        let mut n = 0;
        for p in paths {
            let hidden = p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
            if hidden || !p.is_file() {
                continue;
            }
            self.load_file(&p)?;
            n += 1;
        }
        Ok(n)
    }

    /// The key of that name, if trusted.
    pub fn get(&self, name: &str) -> Option<&RsaPublicKey> {
        self.keys.get(name)
    }

    /// Names of all trusted keys, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
