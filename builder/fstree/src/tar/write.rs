//! A deterministic tar writer: ustar headers, PAX records only where a value
//! does not fit (or is asked for), numeric owners, no host data.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use crate::{NodeKind, Tree, TreePath};

/// Header fields of one member to write.
#[derive(Clone, Debug)]
pub struct Header {
    pub path: String,
    pub typeflag: u8,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub size: u64,
    pub link: String,
    pub dev_major: u32,
    pub dev_minor: u32,
    /// Extra PAX records written before the member, in this order (sorted
    /// by key for determinism).
    pub pax: BTreeMap<String, Vec<u8>>,
}

impl Header {
    /// A header for a member of the given type with root ownership, mode 0644.
    pub fn new(path: &str, typeflag: u8) -> Self {
        Header {
            path: path.to_string(),
            typeflag,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
            size: 0,
            link: String::new(),
            dev_major: 0,
            dev_minor: 0,
            pax: BTreeMap::new(),
        }
    }
}

/// The magic of a header block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Magic {
    /// POSIX ustar: `ustar\0` + version `00`.
    Ustar,
    /// GNU tar's own format: `ustar  \0`.
    Gnu,
}

/// One 512-byte header block: `name` and `h.link` are cut at 100 bytes
/// (longer values travel in PAX or GNU records before the block), numeric
/// owners, owner names `root` only for GNU blocks (as GNU tar writes them).
pub fn header_block(name: &[u8], h: &Header, typeflag: u8, size: u64, magic: Magic) -> [u8; 512] {
    let mut b = [0u8; 512];
    let n = name.len().min(100);
    b[..n].copy_from_slice(&name[..n]);
    octal(&mut b[100..108], (h.mode & 0o7777) as u64);
    octal(&mut b[108..116], h.uid as u64);
    octal(&mut b[116..124], h.gid as u64);
    octal(&mut b[124..136], size);
    octal(&mut b[136..148], h.mtime.max(0) as u64);
    b[156] = typeflag;
    let l = h.link.as_bytes();
    let ln = l.len().min(100);
    b[157..157 + ln].copy_from_slice(&l[..ln]);
    match magic {
        Magic::Ustar => {
            b[257..263].copy_from_slice(b"ustar\0");
            b[263..265].copy_from_slice(b"00");
        }
        Magic::Gnu => {
            b[257..265].copy_from_slice(b"ustar  \0");
            b[265..269].copy_from_slice(b"root");
            b[297..301].copy_from_slice(b"root");
        }
    }
    octal(&mut b[329..337], h.dev_major as u64);
    octal(&mut b[337..345], h.dev_minor as u64);
    b[148..156].copy_from_slice(b"        ");
    let sum: u32 = b.iter().map(|&x| x as u32).sum();
    b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    b
}

/// Writes tar members to `W`.
pub struct TarBuilder<W: Write> {
    out: W,
    written: u64,
}

fn octal(field: &mut [u8], v: u64) -> bool {
    let width = field.len() - 1;
    let s = format!("{:0width$o}", v, width = width);
    if s.len() > width {
        return false;
    }
    field[..width].copy_from_slice(s.as_bytes());
    field[width] = 0;
    true
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    // "LEN key=value\n" where LEN counts itself.
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    loop {
        let l = body + len.to_string().len();
        if l == len {
            break;
        }
        len = l;
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

impl<W: Write> TarBuilder<W> {
    pub fn new(out: W) -> Self {
        TarBuilder { out, written: 0 }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn raw_header(&mut self, name: &[u8], h: &Header, typeflag: u8, size: u64) -> io::Result<()> {
        self.out.write_all(&header_block(name, h, typeflag, size, Magic::Ustar))?;
        self.written += 512;
        Ok(())
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let pad = ((512 - size % 512) % 512) as usize;
        if pad > 0 {
            self.out.write_all(&[0u8; 512][..pad])?;
            self.written += pad as u64;
        }
        Ok(())
    }

    /// Appends one member; `data` must yield exactly `h.size` bytes.
    pub fn append(&mut self, h: &Header, data: &mut dyn Read) -> io::Result<()> {
        let mut pax = h.pax.clone();
        if h.path.len() > 100 || !h.path.is_ascii() {
            pax.insert("path".into(), h.path.as_bytes().to_vec());
        }
        if h.link.len() > 100 || !h.link.is_ascii() {
            pax.insert("linkpath".into(), h.link.as_bytes().to_vec());
        }
        if h.size >= 0o77777777777 {
            pax.insert("size".into(), h.size.to_string().into_bytes());
        }
        if h.uid as u64 > 0o7777777 {
            pax.insert("uid".into(), h.uid.to_string().into_bytes());
        }
        if h.gid as u64 > 0o7777777 {
            pax.insert("gid".into(), h.gid.to_string().into_bytes());
        }
        if !pax.is_empty() {
            let mut body = Vec::new();
            for (k, v) in &pax {
                body.extend_from_slice(&pax_record(k, v));
            }
            let name = format!("PaxHeaders/{}", h.path.rsplit('/').next().unwrap_or("x"));
            let ph = Header {
                mode: 0o644,
                uid: 0,
                gid: 0,
                link: String::new(),
                ..h.clone()
            };
            self.raw_header(&name.as_bytes()[..name.len().min(100)], &ph, b'x', body.len() as u64)?;
            self.out.write_all(&body)?;
            self.written += body.len() as u64;
            self.pad(body.len() as u64)?;
        }
        let size_field = if h.size >= 0o77777777777 { 0 } else { h.size };
        let mut hh = h.clone();
        if hh.link.len() > 100 {
            hh.link.truncate(100);
        }
        self.raw_header(h.path.as_bytes(), &hh, h.typeflag, size_field)?;
        let copied = io::copy(&mut data.take(h.size), &mut self.out)?;
        if copied != h.size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{}: content shorter than its size", h.path),
            ));
        }
        self.written += copied;
        self.pad(h.size)
    }

    /// Writes the end-of-archive marker (two zero blocks) and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 1024])?;
        self.written += 1024;
        Ok(self.out)
    }

    /// Returns the writer without an end marker (apk segments).
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Options for [`write_tree`].
#[derive(Clone, Debug, Default)]
pub struct TreeTarOptions {
    /// Replace every mtime by this value.
    pub mtime: Option<i64>,
    /// Only this subtree (paths stay absolute-relative to the root).
    pub under: Option<TreePath>,
    /// Leave out the root directory entry (`./`).
    pub skip_root: bool,
}

/// Writes a tree (or a subtree) as tar members in tree order: parents before
/// children, names without a leading `/`, directories with a trailing `/`,
/// xattrs as `SCHILY.xattr.*`, hard links as type `1` members pointing at
/// the first name.
pub fn write_tree<W: Write>(tree: &Tree, tar: &mut TarBuilder<W>, opts: &TreeTarOptions) -> io::Result<()> {
    let root = opts.under.clone().unwrap_or_else(TreePath::root);
    for (path, node) in tree.subtree(&root) {
        if path.is_root() {
            if opts.skip_root {
                continue;
            }
        }
        let name = if path.is_root() {
            "./".to_string()
        } else if node.is_dir() {
            format!("{}/", path.as_str())
        } else {
            path.as_str().to_string()
        };
        let (typeflag, size, link, dev) = match &node.kind {
            NodeKind::Dir => (b'5', 0, String::new(), (0, 0)),
            NodeKind::File(c) => (b'0', c.len(), String::new(), (0, 0)),
            NodeKind::Symlink(t) => (b'2', 0, t.clone(), (0, 0)),
            NodeKind::Hardlink(t) => (b'1', 0, t.as_str().to_string(), (0, 0)),
            NodeKind::CharDevice { major, minor } => (b'3', 0, String::new(), (*major, *minor)),
            NodeKind::BlockDevice { major, minor } => (b'4', 0, String::new(), (*major, *minor)),
            NodeKind::Fifo => (b'6', 0, String::new(), (0, 0)),
        };
        let mut pax = BTreeMap::new();
        for (k, v) in &node.meta.xattrs {
            pax.insert(format!("SCHILY.xattr.{k}"), v.clone());
        }
        let h = Header {
            path: name,
            typeflag,
            mode: node.meta.mode,
            uid: node.meta.uid,
            gid: node.meta.gid,
            mtime: opts.mtime.unwrap_or(node.meta.mtime),
            size,
            link,
            dev_major: dev.0,
            dev_minor: dev.1,
            pax,
        };
        match &node.kind {
            NodeKind::File(c) => tar.append(&h, &mut c.reader())?,
            _ => tar.append(&h, &mut io::empty())?,
        }
    }
    Ok(())
}
