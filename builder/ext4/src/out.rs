//! The image file: created beside its final name and renamed into place
//! when complete; writes are positional and coalesced into large ones.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::Ext4Error;

/// Coalescing buffer size: sequential data goes out in writes this big.
const BUF: usize = 8 << 20;

/// A temporary image file that is removed unless [`TempImage::persist`] runs.
pub(crate) struct TempImage {
    tmp: PathBuf,
    dest: PathBuf,
    file: File,
    buf: Vec<u8>,
    buf_at: u64,
    persisted: bool,
}

impl TempImage {
    /// Creates `.NAME.PID.tmp` next to `dest`, sparse, `size` bytes long.
    pub(crate) fn create(dest: &Path, size: u64) -> Result<TempImage, Ext4Error> {
        let werr = |e: io::Error| Ext4Error::Write { path: dest.to_path_buf(), source: e };
        let name = dest
            .file_name()
            .ok_or_else(|| werr(io::Error::new(io::ErrorKind::InvalidInput, "the image path has no file name")))?;
        let tmp = dest.with_file_name(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&tmp).map_err(werr)?;
        let img = TempImage { tmp, dest: dest.to_path_buf(), file, buf: Vec::with_capacity(BUF), buf_at: 0, persisted: false };
        img.file.set_len(size).map_err(werr)?;
        Ok(img)
    }

    fn err(&self, e: io::Error) -> Ext4Error {
        Ext4Error::Write { path: self.dest.clone(), source: e }
    }

    /// Writes `data` at byte `off`, buffering runs of adjacent writes.
    pub(crate) fn write_at(&mut self, off: u64, data: &[u8]) -> Result<(), Ext4Error> {
        let adjacent = self.buf_at + self.buf.len() as u64 == off;
        if !adjacent || self.buf.len() + data.len() > BUF {
            self.flush()?;
        }
        if self.buf.is_empty() {
            if data.len() >= BUF / 2 {
                return self.file.write_all_at(data, off).map_err(|e| self.err(e));
            }
            self.buf_at = off;
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Writes out the buffer.
    pub(crate) fn flush(&mut self) -> Result<(), Ext4Error> {
        if !self.buf.is_empty() {
            self.file.write_all_at(&self.buf, self.buf_at).map_err(|e| Ext4Error::Write { path: self.dest.clone(), source: e })?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Flushes and renames the file to its final name.
    pub(crate) fn persist(mut self) -> Result<(), Ext4Error> {
        self.flush()?;
        fs::rename(&self.tmp, &self.dest).map_err(|e| self.err(e))?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempImage {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}
