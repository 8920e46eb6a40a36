//! File contents as references to bytes that already exist (in the cache or
//! in memory), so the tree never holds a copy of every file.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An open, read-only backing file (usually an unpacked tar in the cache)
/// that many tree entries point into.
pub struct BackingFile {
    path: PathBuf,
    file: File,
}

impl BackingFile {
    pub fn open(path: &Path) -> io::Result<Arc<BackingFile>> {
        Ok(Arc::new(BackingFile { path: path.to_path_buf(), file: File::open(path)? }))
    }

    /// Wraps an already open file; `path` is where it lives (or will live
    /// once renamed into place).
    pub fn from_file(path: &Path, file: File) -> Arc<BackingFile> {
        Arc::new(BackingFile { path: path.to_path_buf(), file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads exactly `buf.len()` bytes at `offset`.
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
}

/// The bytes of a regular file.
#[derive(Clone)]
pub enum Content {
    /// Bytes held in memory (generated files, small overlays).
    Bytes(Arc<[u8]>),
    /// A range of a backing file.
    Range { file: Arc<BackingFile>, offset: u64, len: u64 },
}

impl Content {
    pub fn from_bytes(b: impl Into<Vec<u8>>) -> Self {
        Content::Bytes(Arc::from(b.into().into_boxed_slice()))
    }

    pub fn len(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::Range { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads `buf.len()` bytes starting at `pos` within this content.
    pub fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        let end = pos + buf.len() as u64;
        if end > self.len() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of file content"));
        }
        match self {
            Content::Bytes(b) => {
                buf.copy_from_slice(&b[pos as usize..end as usize]);
                Ok(())
            }
            Content::Range { file, offset, .. } => file.read_exact_at(buf, offset + pos),
        }
    }

    /// The whole content in memory (for small files: configs, scripts).
    pub fn to_vec(&self) -> io::Result<Vec<u8>> {
        let mut v = vec![0u8; self.len() as usize];
        self.read_at(&mut v, 0)?;
        Ok(v)
    }

    /// A streaming reader over the content.
    pub fn reader(&self) -> ContentReader<'_> {
        ContentReader { content: self, pos: 0 }
    }
}

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Content::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Content::Range { file, offset, len } => {
                write!(f, "Range({}@{}+{})", file.path.display(), offset, len)
            }
        }
    }
}

/// Sequential reader returned by [`Content::reader`].
pub struct ContentReader<'a> {
    content: &'a Content,
    pos: u64,
}

impl Read for ContentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.content.len() - self.pos;
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.content.read_at(&mut buf[..n], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}
