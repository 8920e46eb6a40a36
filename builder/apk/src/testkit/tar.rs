//! Tar members as the tools behind real apk files write them. Alpine's own
//! files come in several header styles, and a reader must parse headers
//! before it looks at names; fixtures therefore come in each style.

use std::collections::BTreeMap;

use std::io::Write;

use dinv_fstree::tar::{header_block, Header, Magic, TarBuilder};
use flate2::write::GzEncoder;
use flate2::Compression;

/// The tar header style of generated members.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TarStyle {
    /// GNU tar's posix format, as in Alpine v3.22: every entry is preceded
    /// by a PAX `x` header named `<dir>/PaxHeaders/<name>` whose records
    /// are `mtime=<seconds>.<nanoseconds>`, `ctime=0`, `atime=0` (plus
    /// `SCHILY.xattr.*`, long `path`/`linkpath`), and abuild-tar's
    /// `APK-TOOLS.checksum.SHA1` appended to the same header.
    #[default]
    Pax,
    /// Plain ustar headers, cut by `abuild-tar --cut` (older indexes and
    /// packages): the `.SIGN.*` or `.PKGINFO` header comes first. PAX
    /// headers appear only where a value needs one (checksums, xattrs).
    Ustar,
    /// GNU tar's gnu format: magic `ustar  \0`, and names or link targets
    /// longer than 100 bytes carried by `././@LongLink` records (`L`, `K`)
    /// before the entry. No PAX headers at all.
    Gnu,
}

impl TarStyle {
    /// Every style, for tests that run over all of them.
    pub const ALL: [TarStyle; 3] = [TarStyle::Ustar, TarStyle::Pax, TarStyle::Gnu];
}

/// A tar stream being written in one style.
pub struct StyledTar {
    style: TarStyle,
    out: Vec<u8>,
    entries: u64,
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    // "LEN key=value\n" where LEN counts its own digits.
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while body + len.to_string().len() != len {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

fn pad(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(512), 0);
}

impl StyledTar {
    pub fn new(style: TarStyle) -> Self {
        StyledTar {
            style,
            out: Vec::new(),
            entries: 0,
        }
    }

    fn header(&mut self, name: &[u8], h: &Header, typeflag: u8, size: u64, gnu: bool) {
        let magic = if gnu { Magic::Gnu } else { Magic::Ustar };
        self.out.extend_from_slice(&header_block(name, h, typeflag, size, magic));
    }

    fn data(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
        pad(&mut self.out);
    }

    /// Appends one entry. `h.pax` holds records a PAX-capable writer adds
    /// (xattrs, apk checksums); the GNU style has no place for them and
    /// drops them, as GNU-format archives do.
    pub fn append(&mut self, h: &Header, body: &[u8]) {
        assert_eq!(h.size, body.len() as u64, "testkit: {} size", h.path);
        self.entries += 1;
        match self.style {
            TarStyle::Ustar => {
                let mut plain = TarBuilder::new(std::mem::take(&mut self.out));
                plain.append(h, &mut &body[..]).expect("writing to memory");
                self.out = plain.into_inner();
            }
            TarStyle::Pax => self.append_pax(h, body),
            TarStyle::Gnu => self.append_gnu(h, body),
        }
    }

    fn append_pax(&mut self, h: &Header, body: &[u8]) {
        // Sub-second mtimes, as GNU tar records them; a fixed function of
        // the entry so fixtures stay reproducible.
        let nanos = (self.entries.wrapping_mul(0x9E37_79B9) % 1_000_000_000).max(1);
        let mut records = pax_record("mtime", format!("{}.{nanos:09}", h.mtime).as_bytes());
        records.extend(pax_record("ctime", b"0"));
        records.extend(pax_record("atime", b"0"));
        let (checksums, others): (BTreeMap<_, _>, BTreeMap<_, _>) = h.pax.iter().partition(|(k, _)| k.starts_with("APK-TOOLS."));
        for (k, v) in others {
            records.extend(pax_record(k, v));
        }
        if h.path.len() > 100 {
            records.extend(pax_record("path", h.path.as_bytes()));
        }
        if h.link.len() > 100 {
            records.extend(pax_record("linkpath", h.link.as_bytes()));
        }
        // abuild-tar --hash appends its record to GNU tar's header.
        for (k, v) in checksums {
            records.extend(pax_record(k, v));
        }
        let trimmed = h.path.trim_end_matches('/');
        let (dir, base) = match trimmed.rsplit_once('/') {
            Some((d, b)) => (d, b),
            None => (".", trimmed),
        };
        let xname = format!("{dir}/PaxHeaders/{base}");
        let xh = Header {
            mode: 0o644,
            link: String::new(),
            ..h.clone()
        };
        self.header(xname.as_bytes(), &xh, b'x', records.len() as u64, false);
        self.data(&records);
        self.header(h.path.as_bytes(), h, h.typeflag, h.size, false);
        self.data(body);
    }

    fn append_gnu(&mut self, h: &Header, body: &[u8]) {
        let long = |this: &mut Self, value: &str, typeflag: u8| {
            let mut v = value.as_bytes().to_vec();
            v.push(0);
            let lh = Header {
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: 0,
                ..Header::new("././@LongLink", typeflag)
            };
            this.header(b"././@LongLink", &lh, typeflag, v.len() as u64, true);
            this.data(&v);
        };
        if h.link.len() > 100 {
            long(self, &h.link, b'K');
        }
        if h.path.len() > 100 {
            long(self, &h.path, b'L');
        }
        self.header(h.path.as_bytes(), h, h.typeflag, h.size, true);
        self.data(body);
    }

    /// Appends a bare extension header and its body (`g`, `x`, `L`, `K`),
    /// for tests that place one where no tool of this style would.
    pub fn extension(&mut self, typeflag: u8, name: &str, body: &[u8]) {
        let h = Header {
            size: body.len() as u64,
            ..Header::new(name, typeflag)
        };
        self.header(name.as_bytes(), &h, typeflag, h.size, self.style == TarStyle::Gnu);
        self.data(body);
    }

    /// The stream without end-of-archive blocks (`abuild-tar --cut`).
    pub fn cut(self) -> Vec<u8> {
        self.out
    }

    /// The stream with the two zero blocks that end an archive.
    pub fn finish(self) -> Vec<u8> {
        let mut v = self.cut();
        v.extend_from_slice(&[0u8; 1024]);
        v
    }
}

/// One gzip member of `data` (header without name or time, as `gzip` on a
/// pipe writes it).
pub fn gzip(data: &[u8], level: u32) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::with_capacity(data.len() / 3 + 64), Compression::new(level));
    e.write_all(data).expect("writing to memory");
    e.finish().expect("writing to memory")
}

#[cfg(test)]
mod tests {
    use super::*;
    use dinv_fstree::tar::{EntryType, TarReader};
    use std::io::Cursor;

    fn file(path: &str, body: &[u8]) -> Header {
        let mut h = Header::new(path, b'0');
        h.size = body.len() as u64;
        h.mtime = 1_760_000_000;
        h
    }

    #[test]
    fn pax_style_matches_the_v3_22_signature_layout() {
        let name = ".SIGN.RSA.alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub";
        let mut t = StyledTar::new(TarStyle::Pax);
        t.append(&file(name, &[7u8; 512]), &[7u8; 512]);
        let bytes = t.cut();
        // x header, 52-byte record block (padded), the entry, its data; no end blocks.
        assert_eq!(bytes.len(), 512 * 4);
        assert_eq!(bytes[156], b'x');
        assert_eq!(&bytes[..name.len() + 13], format!("./PaxHeaders/{name}").as_bytes());
        assert_eq!(&bytes[257..265], b"ustar\x0000");
        assert_eq!(&bytes[124..136], b"00000000064\0", "52-byte body");
        let records = std::str::from_utf8(&bytes[512..564]).unwrap();
        assert!(
            records.starts_with("30 mtime=1760000000.") && records.ends_with("\n11 ctime=0\n11 atime=0\n"),
            "{records:?}"
        );
        assert_eq!(bytes[1024 + 156], b'0');
        assert_eq!(&bytes[1024..1024 + name.len()], name.as_bytes());
        let mut r = TarReader::new(Cursor::new(&bytes));
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!((e.path.as_str(), e.mtime, e.entry_type), (name, 1_760_000_000, EntryType::Regular));
        assert!(r.next_entry().unwrap().is_none());
    }

    #[test]
    fn gnu_style_uses_long_link_records() {
        let long = format!("usr/share/{}/file", "d".repeat(110));
        let mut t = StyledTar::new(TarStyle::Gnu);
        t.append(&file(&long, b"x"), b"x");
        let mut link = Header::new("l", b'2');
        link.link = long.clone();
        t.append(&link, b"");
        let bytes = t.finish();
        assert_eq!(&bytes[..13], b"././@LongLink");
        assert_eq!(bytes[156], b'L');
        assert_eq!(&bytes[257..265], b"ustar  \0");
        let mut r = TarReader::new(Cursor::new(&bytes));
        assert_eq!(r.next_entry().unwrap().unwrap().path, long);
        let l = r.next_entry().unwrap().unwrap();
        assert_eq!((l.path.as_str(), l.link.as_str()), ("l", long.as_str()));
        assert!(r.next_entry().unwrap().is_none());
    }
}
