//! Content-addressed blobs: sha256 digests and hashing writers.

use std::io::{self, Write};

use sha2::{Digest, Sha256};

/// A blob's digest (`sha256:<hex>`) and size, as used in descriptors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub digest: String,
    pub size: u64,
}

impl Blob {
    /// The digest and size of bytes held in memory.
    pub fn of(bytes: &[u8]) -> Self {
        Blob { digest: sha256_digest(bytes), size: bytes.len() as u64 }
    }

    /// The hex part of the digest (the file name under `blobs/sha256/`).
    pub fn hex(&self) -> &str {
        self.digest.strip_prefix("sha256:").unwrap_or(&self.digest)
    }
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A writer that hashes and counts everything passing through it.
pub(crate) struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: Sha256::new(), count: 0 }
    }

    /// The inner writer and the blob digest of what was written.
    pub(crate) fn finish(self) -> (W, Blob) {
        let digest = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        (self.inner, Blob { digest, size: self.count })
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
