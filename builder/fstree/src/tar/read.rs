//! A streaming tar reader (ustar, GNU long names, PAX) that reports where
//! each member's data starts, so unpacked archives in the cache can back
//! tree contents without copying.

use std::collections::BTreeMap;
use std::io::{self, Read};

/// The type of a tar member, as far as the tree cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryType {
    Regular,
    Hardlink,
    Symlink,
    CharDevice,
    BlockDevice,
    Dir,
    Fifo,
}

/// One archive member with its metadata resolved (PAX and GNU extensions
/// applied).
#[derive(Clone, Debug)]
pub struct TarEntry {
    /// The member name exactly as in the archive (after PAX/GNU long names).
    pub path: String,
    pub entry_type: EntryType,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub size: u64,
    /// Byte offset of the data within the (uncompressed) stream.
    pub data_offset: u64,
    /// Symlink target or hard-link target name.
    pub link: String,
    pub dev_major: u32,
    pub dev_minor: u32,
    /// `SCHILY.xattr.*` records, by attribute name.
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// Every PAX record of this member (e.g. `APK-TOOLS.checksum.SHA1`).
    pub pax: BTreeMap<String, Vec<u8>>,
}

/// Errors from reading a tar stream.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("tar header at offset {offset}: checksum mismatch")]
    Checksum { offset: u64 },
    #[error("tar header at offset {offset}: {why}")]
    Header { offset: u64, why: String },
    #[error("tar member {path:?} is truncated")]
    Truncated { path: String },
    #[error("tar: {0}")]
    Io(#[from] io::Error),
}

/// Reads members one by one. Data of the current member is skipped
/// automatically by the next call to [`TarReader::next_entry`] unless read
/// with [`TarReader::read_data`].
pub struct TarReader<R: Read> {
    inner: R,
    pos: u64,
    /// Data bytes (plus padding) of the current member not yet consumed.
    pending: u64,
    global_pax: BTreeMap<String, Vec<u8>>,
    done: bool,
}

fn parse_octal(field: &[u8], offset: u64, what: &str) -> Result<u64, TarError> {
    // GNU base-256 for values that do not fit in octal.
    if let Some(&first) = field.first() {
        if first & 0x80 != 0 {
            let mut v: u64 = (first & 0x3f) as u64;
            for &b in &field[1..] {
                v = v.checked_shl(8).ok_or_else(|| TarError::Header { offset, why: format!("{what} too large") })? | b as u64;
            }
            return Ok(v);
        }
    }
    let s: Vec<u8> = field.iter().copied().take_while(|&b| b != 0).collect();
    let s = std::str::from_utf8(&s).map_err(|_| TarError::Header { offset, why: format!("{what} is not text") })?;
    let s = s.trim_matches(|c: char| c == ' ' || c == '\0');
    if s.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(s, 8).map_err(|_| TarError::Header { offset, why: format!("{what} {s:?} is not octal") })
}

fn cstr(field: &[u8]) -> Vec<u8> {
    field.iter().copied().take_while(|&b| b != 0).collect()
}

fn parse_pax(data: &[u8], offset: u64) -> Result<Vec<(String, Vec<u8>)>, TarError> {
    let bad = |why: &str| TarError::Header { offset, why: format!("bad PAX record: {why}") };
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let sp = rest.iter().position(|&b| b == b' ').ok_or_else(|| bad("no length"))?;
        let len: usize = std::str::from_utf8(&rest[..sp]).ok().and_then(|s| s.parse().ok()).ok_or_else(|| bad("length"))?;
        if len > rest.len() || len <= sp + 1 {
            return Err(bad("length out of range"));
        }
        let rec = &rest[sp + 1..len];
        let rec = rec.strip_suffix(b"\n").ok_or_else(|| bad("no newline"))?;
        let eq = rec.iter().position(|&b| b == b'=').ok_or_else(|| bad("no ="))?;
        let key = String::from_utf8(rec[..eq].to_vec()).map_err(|_| bad("key is not UTF-8"))?;
        out.push((key, rec[eq + 1..].to_vec()));
        rest = &rest[len..];
    }
    Ok(out)
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R) -> Self {
        TarReader { inner, pos: 0, pending: 0, global_pax: BTreeMap::new(), done: false }
    }

    /// Bytes consumed from the stream so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Gives back the underlying reader (positioned after what was read).
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn skip(&mut self, mut n: u64) -> Result<(), TarError> {
        let mut buf = [0u8; 16384];
        while n > 0 {
            let k = (n as usize).min(buf.len());
            self.inner.read_exact(&mut buf[..k])?;
            n -= k as u64;
            self.pos += k as u64;
        }
        Ok(())
    }

    /// Reads a whole block, or returns `false` at a clean end of stream.
    fn read_block(&mut self, block: &mut [u8; 512]) -> Result<bool, TarError> {
        let mut got = 0;
        while got < 512 {
            let n = self.inner.read(&mut block[got..])?;
            if n == 0 {
                if got == 0 {
                    return Ok(false);
                }
                return Err(TarError::Header { offset: self.pos, why: "stream ends inside a header".into() });
            }
            got += n;
        }
        self.pos += 512;
        Ok(true)
    }

    fn read_member_data(&mut self, size: u64) -> Result<Vec<u8>, TarError> {
        let mut v = vec![0u8; size as usize];
        self.inner.read_exact(&mut v)?;
        self.pos += size;
        let pad = (512 - size % 512) % 512;
        self.skip(pad)?;
        Ok(v)
    }

    /// Reads the current member's data (call once, right after
    /// [`TarReader::next_entry`]).
    pub fn read_data(&mut self, entry: &TarEntry) -> Result<Vec<u8>, TarError> {
        if self.pending == 0 && entry.size > 0 {
            return Err(TarError::Header { offset: self.pos, why: "member data already consumed".into() });
        }
        self.pending = 0;
        self.read_member_data(entry.size).map_err(|e| match e {
            TarError::Io(ref io) if io.kind() == io::ErrorKind::UnexpectedEof => TarError::Truncated { path: entry.path.clone() },
            e => e,
        })
    }

    /// The next member, or `None` at the end of the archive (two zero blocks
    /// or the end of the stream; apk segments have no end marker).
    pub fn next_entry(&mut self) -> Result<Option<TarEntry>, TarError> {
        if self.pending > 0 {
            let p = self.pending;
            self.pending = 0;
            self.skip(p)?;
        }
        if self.done {
            return Ok(None);
        }
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax: BTreeMap<String, Vec<u8>> = self.global_pax.clone();
        let mut block = [0u8; 512];
        loop {
            let offset = self.pos;
            if !self.read_block(&mut block)? {
                self.done = true;
                return Ok(None);
            }
            if block.iter().all(|&b| b == 0) {
                // End of archive. Consume the second zero block if present.
                self.done = true;
                return Ok(None);
            }
            let stored = parse_octal(&block[148..156], offset, "checksum")?;
            let sum: u64 = block.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { b as u64 }).sum();
            if stored != sum {
                return Err(TarError::Checksum { offset });
            }
            let typeflag = block[156];
            let mut size = parse_octal(&block[124..136], offset, "size")?;
            if let Some(v) = pax.get("size") {
                size = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()).ok_or(TarError::Header {
                    offset,
                    why: "PAX size is not a number".into(),
                })?;
            }
            match typeflag {
                b'x' | b'g' => {
                    let data = self.read_member_data(size)?;
                    for (k, v) in parse_pax(&data, offset)? {
                        if typeflag == b'g' {
                            self.global_pax.insert(k.clone(), v.clone());
                        }
                        pax.insert(k, v);
                    }
                    continue;
                }
                b'L' => {
                    let mut d = self.read_member_data(size)?;
                    while d.last() == Some(&0) {
                        d.pop();
                    }
                    long_name = Some(d);
                    continue;
                }
                b'K' => {
                    let mut d = self.read_member_data(size)?;
                    while d.last() == Some(&0) {
                        d.pop();
                    }
                    long_link = Some(d);
                    continue;
                }
                _ => {}
            }
            let entry_type = match typeflag {
                b'0' | 0 | b'7' => EntryType::Regular,
                b'1' => EntryType::Hardlink,
                b'2' => EntryType::Symlink,
                b'3' => EntryType::CharDevice,
                b'4' => EntryType::BlockDevice,
                b'5' => EntryType::Dir,
                b'6' => EntryType::Fifo,
                t => {
                    return Err(TarError::Header { offset, why: format!("unsupported member type {:?}", t as char) });
                }
            };
            let is_ustar = &block[257..262] == b"ustar";
            let mut name = cstr(&block[0..100]);
            if is_ustar && block[345] != 0 && &block[257..263] == b"ustar\0" {
                let mut full = cstr(&block[345..500]);
                full.push(b'/');
                full.extend_from_slice(&name);
                name = full;
            }
            if let Some(n) = long_name.take() {
                name = n;
            }
            if let Some(p) = pax.get("path") {
                name = p.clone();
            }
            let mut link = cstr(&block[157..257]);
            if let Some(l) = long_link.take() {
                link = l;
            }
            if let Some(l) = pax.get("linkpath") {
                link = l.clone();
            }
            let path = String::from_utf8(name).map_err(|e| TarError::Header {
                offset,
                why: format!("member name {:?} is not UTF-8", String::from_utf8_lossy(e.as_bytes())),
            })?;
            let link = String::from_utf8(link)
                .map_err(|_| TarError::Header { offset, why: format!("link target of {path:?} is not UTF-8") })?;
            let num = |key: &str, field: &[u8], what: &str| -> Result<u64, TarError> {
                match pax.get(key) {
                    Some(v) => std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.split('.').next().and_then(|i| i.parse().ok()))
                        .ok_or(TarError::Header { offset, why: format!("PAX {key} is not a number") }),
                    None => parse_octal(field, offset, what),
                }
            };
            let mode = parse_octal(&block[100..108], offset, "mode")? as u32 & 0o7777;
            let uid = num("uid", &block[108..116], "uid")? as u32;
            let gid = num("gid", &block[116..124], "gid")? as u32;
            let mtime = num("mtime", &block[136..148], "mtime")? as i64;
            let (dev_major, dev_minor) = if is_ustar {
                (parse_octal(&block[329..337], offset, "devmajor")? as u32, parse_octal(&block[337..345], offset, "devminor")? as u32)
            } else {
                (0, 0)
            };
            let xattrs = pax
                .iter()
                .filter_map(|(k, v)| k.strip_prefix("SCHILY.xattr.").map(|n| (n.to_string(), v.clone())))
                .collect();
            // Only regular files carry data; for other types a non-zero size
            // field still occupies blocks and must be skipped.
            let data_size = size;
            let entry = TarEntry {
                path,
                entry_type,
                mode,
                uid,
                gid,
                mtime,
                size: if entry_type == EntryType::Regular { size } else { 0 },
                data_offset: self.pos,
                link,
                dev_major,
                dev_minor,
                xattrs,
                pax,
            };
            self.pending = data_size + (512 - data_size % 512) % 512;
            return Ok(Some(entry));
        }
    }
}
