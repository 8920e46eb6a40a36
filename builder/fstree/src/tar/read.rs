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
                // `checked_shl` only checks the shift amount: test the top byte.
                if v >> 56 != 0 {
                    return Err(TarError::Header { offset, why: format!("{what} too large") });
                }
                v = (v << 8) | b as u64;
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

/// At most this much of a member is allocated before its bytes arrive.
const PREALLOC_LIMIT: u64 = 1 << 20;

/// PAX (`x`, `g`) and GNU long-name (`L`, `K`) bodies larger than this are
/// refused: names are at most a few KiB, xattrs at most 64 KiB each.
const MAX_EXTENSION_BYTES: u64 = 8 << 20;

/// Global PAX records (`g`) apply to every later member and are copied
/// into each; real archives carry a comment or two.
const MAX_GLOBAL_PAX_BYTES: u64 = 64 << 10;

/// Largest member size accepted: data plus padding must fit in a `u64`
/// stream position (real limits are far lower, this only rules out
/// overflow).
const MAX_MEMBER_SIZE: u64 = i64::MAX as u64;

/// Zero bytes after `size` data bytes up to the next block boundary.
fn padding(size: u64) -> u64 {
    (512 - size % 512) % 512
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

    /// Reads `size` data bytes and the padding after them. The buffer grows
    /// with what the stream actually holds: the size field is untrusted, so
    /// it must not decide an allocation on its own.
    fn read_member_data(&mut self, size: u64) -> Result<Vec<u8>, TarError> {
        let mut v = Vec::with_capacity(size.min(PREALLOC_LIMIT) as usize);
        let got = (&mut self.inner).take(size).read_to_end(&mut v)?;
        self.pos += got as u64;
        if (got as u64) < size {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "tar member data ends early").into());
        }
        self.skip(padding(size))?;
        Ok(v)
    }

    /// Reads the body of a PAX or GNU extension header, refusing sizes no
    /// real archive has.
    fn read_extension(&mut self, size: u64, offset: u64, typeflag: u8) -> Result<Vec<u8>, TarError> {
        if size > MAX_EXTENSION_BYTES {
            return Err(TarError::Header {
                offset,
                why: format!("{:?} extension header of {size} bytes is too large (at most {MAX_EXTENSION_BYTES})", typeflag as char),
            });
        }
        self.read_member_data(size)
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

    /// Streams the current member's data into `out` (call once, right
    /// after [`TarReader::next_entry`]), without holding it in memory.
    pub fn copy_data(&mut self, entry: &TarEntry, out: &mut dyn io::Write) -> Result<u64, TarError> {
        if self.pending == 0 && entry.size > 0 {
            return Err(TarError::Header { offset: self.pos, why: "member data already consumed".into() });
        }
        self.pending = 0;
        let got = io::copy(&mut (&mut self.inner).take(entry.size), out)?;
        self.pos += got;
        if got < entry.size {
            return Err(TarError::Truncated { path: entry.path.clone() });
        }
        self.skip(padding(entry.size))?;
        Ok(got)
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
            if size > MAX_MEMBER_SIZE {
                return Err(TarError::Header { offset, why: format!("member size {size} is too large") });
            }
            match typeflag {
                b'x' | b'g' => {
                    let data = self.read_extension(size, offset, typeflag)?;
                    for (k, v) in parse_pax(&data, offset)? {
                        if typeflag == b'g' {
                            self.global_pax.insert(k.clone(), v.clone());
                        }
                        pax.insert(k, v);
                    }
                    // Global records are copied into every later member:
                    // keep them small, or a few MiB of them times every
                    // 512-byte member is a quadratic blow-up.
                    let global: usize = self.global_pax.iter().map(|(k, v)| k.len() + v.len()).sum();
                    if global as u64 > MAX_GLOBAL_PAX_BYTES {
                        return Err(TarError::Header {
                            offset,
                            why: format!("global PAX records total {global} bytes, more than {MAX_GLOBAL_PAX_BYTES}"),
                        });
                    }
                    continue;
                }
                b'L' => {
                    let mut d = self.read_extension(size, offset, typeflag)?;
                    while d.last() == Some(&0) {
                        d.pop();
                    }
                    long_name = Some(d);
                    continue;
                }
                b'K' => {
                    let mut d = self.read_extension(size, offset, typeflag)?;
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
            self.pending = data_size + padding(data_size);
            return Ok(Some(entry));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar::{header_block, Header, Magic};
    use std::io::Cursor;

    /// A header block for `name` whose 12-byte size field is `size_field`,
    /// with its checksum fixed.
    fn block_with_size(name: &str, typeflag: u8, size_field: &[u8; 12]) -> Vec<u8> {
        let mut b = header_block(name.as_bytes(), &Header::new(name, typeflag), typeflag, 0, Magic::Gnu);
        b[124..136].copy_from_slice(size_field);
        b[148..156].copy_from_slice(b"        ");
        let sum: u32 = b.iter().map(|&x| x as u32).sum();
        b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        b.to_vec()
    }

    fn read_all(bytes: &[u8]) -> Result<usize, TarError> {
        let mut r = TarReader::new(Cursor::new(bytes));
        let mut n = 0;
        while let Some(e) = r.next_entry()? {
            r.read_data(&e)?;
            n += 1;
        }
        Ok(n)
    }

    /// Found by fuzzing (tar_reader): a base-256 size of 2^62 made
    /// `read_member_data` allocate `vec![0; size]` before reading
    /// (capacity overflow panic; smaller sizes a multi-GiB allocation).
    #[test]
    fn huge_size_field_is_an_error_not_an_allocation() {
        let mut ff = [0xffu8; 12];
        ff[0] = 0xbf; // base-256, largest positive value that fits
        for size_field in [ff, *b"77777777777\0", *b"00000100000\0"] {
            let mut t = block_with_size("big", b'0', &size_field);
            t.extend_from_slice(&[7u8; 1024]);
            let e = read_all(&t).unwrap_err();
            assert!(matches!(e, TarError::Truncated { .. } | TarError::Header { .. }), "{size_field:?}: {e}");
        }
        // The same sizes on extension headers: refused before reading.
        for typeflag in [b'x', b'g', b'L', b'K'] {
            let t = block_with_size("ext", typeflag, b"77777777777\0");
            let e = read_all(&t).unwrap_err().to_string();
            assert!(e.contains("too large"), "{}: {e}", typeflag as char);
        }
    }

    #[test]
    fn size_overflow_is_refused() {
        // Base-256 fields wider than 64 bits.
        let mut wide = [0u8; 12];
        wide[0] = 0x80;
        wide[2] = 1; // 2^72
        let e = read_all(&block_with_size("w", b'0', &wide)).unwrap_err().to_string();
        assert!(e.contains("size too large"), "{e}");
        // A PAX size so large that data + padding overflows the position.
        let record = "29 size=18446744073709551615\n";
        let mut t = block_with_size("PaxHeaders/a", b'x', format!("{:011o}\0", record.len()).as_bytes().try_into().unwrap());
        t.extend_from_slice(record.as_bytes());
        t.resize(1024, 0);
        t.extend_from_slice(&block_with_size("a", b'0', b"00000000000\0"));
        let e = read_all(&t).unwrap_err().to_string();
        assert!(e.contains("too large"), "{e}");
    }

    fn pax_member(typeflag: u8, records: &[u8]) -> Vec<u8> {
        let mut t = block_with_size("PaxHeaders/g", typeflag, format!("{:011o}\0", records.len()).as_bytes().try_into().unwrap());
        t.extend_from_slice(records);
        t.resize(t.len().next_multiple_of(512), 0);
        t
    }

    /// Found by reading the code while fuzzing (tar_reader): every member
    /// starts from a copy of the global PAX records, so megabytes of `g`
    /// records followed by many small members took quadratic time.
    #[test]
    fn global_pax_records_are_bounded() {
        let record = |k: &str, v: &str| {
            let body = k.len() + v.len() + 3;
            let mut len = body + 1;
            while body + len.to_string().len() != len {
                len = body + len.to_string().len();
            }
            format!("{len} {k}={v}\n")
        };
        // One big global header.
        let big = record("comment", &"c".repeat(70 << 10));
        let e = read_all(&pax_member(b'g', big.as_bytes())).unwrap_err().to_string();
        assert!(e.contains("global PAX records total"), "{e}");
        // Many small ones adding up.
        let mut t = Vec::new();
        for i in 0..40 {
            t.extend(pax_member(b'g', record(&format!("k{i}"), &"v".repeat(2000)).as_bytes()));
        }
        let e = read_all(&t).unwrap_err().to_string();
        assert!(e.contains("global PAX records total"), "{e}");
        // Per-member (`x`) records of that size are still fine.
        let mut t = pax_member(b'x', big.as_bytes());
        t.extend(block_with_size("a", b'0', b"00000000000\0"));
        assert_eq!(read_all(&t).unwrap(), 1);
        // And a small global header still applies to every member.
        let mut t = pax_member(b'g', record("uid", "7").as_bytes());
        t.extend(block_with_size("a", b'0', b"00000000000\0"));
        t.extend(block_with_size("b", b'0', b"00000000000\0"));
        let mut r = TarReader::new(Cursor::new(&t));
        assert_eq!(r.next_entry().unwrap().unwrap().uid, 7);
        assert_eq!(r.next_entry().unwrap().unwrap().uid, 7);
    }

    #[test]
    fn short_data_is_still_truncated() {
        let mut t = block_with_size("a", b'0', b"00000000010\0");
        t.extend_from_slice(b"abc");
        let mut r = TarReader::new(Cursor::new(&t));
        let e = r.next_entry().unwrap().unwrap();
        assert!(matches!(r.read_data(&e), Err(TarError::Truncated { .. })));
    }

    #[test]
    fn data_streams_out_and_the_next_member_follows() {
        let mut tar = crate::tar::TarBuilder::new(Vec::new());
        for (name, body) in [("a", &b"first member"[..]), ("b", b"second")] {
            let mut h = Header::new(name, b'0');
            h.size = body.len() as u64;
            tar.append(&h, &mut &body[..]).unwrap();
        }
        let bytes = tar.finish().unwrap();
        let mut r = TarReader::new(Cursor::new(&bytes));
        let a = r.next_entry().unwrap().unwrap();
        let mut out = Vec::new();
        assert_eq!(r.copy_data(&a, &mut out).unwrap(), 12);
        assert_eq!(out, b"first member");
        assert!(r.copy_data(&a, &mut Vec::new()).is_err(), "read once");
        let b = r.next_entry().unwrap().unwrap();
        assert_eq!((b.path.as_str(), r.read_data(&b).unwrap()), ("b", b"second".to_vec()));
        let mut t = block_with_size("c", b'0', b"00000000010\0");
        t.extend_from_slice(b"abc");
        let mut r = TarReader::new(Cursor::new(&t));
        let e = r.next_entry().unwrap().unwrap();
        assert!(matches!(r.copy_data(&e, &mut Vec::new()), Err(TarError::Truncated { .. })));
    }
}
