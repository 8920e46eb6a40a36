//! A PVH-bootable `vmlinux` from a bzImage, so QEMU can start the kernel
//! at its 32-bit PVH entry point: no real-mode setup code and, above all,
//! no in-guest decompression, which under TCG takes seconds.
//!
//! The bzImage's setup header (boot protocol 2.08+) gives the compressed
//! payload's offset and length (`payload_offset` at 0x248,
//! `payload_length` at 0x24c, counted from the end of the setup sectors).
//! The payload decompresses to `vmlinux.bin`: the kernel's ELF with its
//! symbols stripped, followed by relocation data for the decompressor. A
//! kernel built with `CONFIG_PVH` carries a Xen ELF note of type
//! `XEN_ELFNOTE_PHYS32_ENTRY` (18), which QEMU's loader looks for in the
//! `PT_NOTE` segments. We keep the ELF up to the end of its last segment and
//! drop the section headers (QEMU reads program headers only).

use std::io::Read;

/// `XEN_ELFNOTE_PHYS32_ENTRY`.
const PHYS32_ENTRY: u32 = 18;

/// Why a bzImage cannot be turned into a PVH `vmlinux`.
#[derive(Debug, PartialEq, Eq)]
pub enum PvhUnsupported {
    /// Not a bzImage, or boot protocol before 2.08 (no payload fields).
    NotBzImage,
    /// The payload's compression, by its first bytes, is not one we read.
    Compression(&'static str),
    /// The payload did not decompress.
    Corrupt(String),
    /// The decompressed kernel is not a 64-bit little-endian ELF.
    NotElf,
    /// The kernel has no PVH entry note (`CONFIG_PVH` off).
    NoPvhNote,
}

impl std::fmt::Display for PvhUnsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            PvhUnsupported::NotBzImage => f.write_str("not a bzImage with boot protocol 2.08 or later"),
            PvhUnsupported::Compression(c) => write!(f, "its payload is {c}-compressed, which dinv-build does not decompress"),
            PvhUnsupported::Corrupt(why) => write!(f, "its payload does not decompress: {why}"),
            PvhUnsupported::NotElf => f.write_str("its payload is not a 64-bit little-endian ELF"),
            PvhUnsupported::NoPvhNote => f.write_str("it has no PVH entry note (the kernel was built without CONFIG_PVH)"),
        }
    }
}

/// Largest decompressed kernel accepted (a guard against hostile input).
const MAX_VMLINUX: u64 = 512 << 20;

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The compressed payload of a bzImage.
fn payload(bz: &[u8]) -> Result<&[u8], PvhUnsupported> {
    if bz.get(0x202..0x206) != Some(b"HdrS") || le16(bz, 0x206).map_or(true, |v| v < 0x208) {
        return Err(PvhUnsupported::NotBzImage);
    }
    let setup_sects = match bz[0x1f1] {
        0 => 4,
        n => n as usize,
    };
    let off = le32(bz, 0x248).ok_or(PvhUnsupported::NotBzImage)? as usize;
    let len = le32(bz, 0x24c).ok_or(PvhUnsupported::NotBzImage)? as usize;
    let start = (setup_sects + 1) * 512 + off;
    bz.get(start..start.checked_add(len).ok_or(PvhUnsupported::NotBzImage)?).ok_or(PvhUnsupported::NotBzImage)
}

/// A reader that decompresses the payload, by its first bytes.
fn decompressor(p: &[u8]) -> Result<Box<dyn Read + '_>, PvhUnsupported> {
    if p.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Ok(Box::new(liblzma::read::XzDecoder::new(p)))
    } else if p.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::GzDecoder::new(p)))
    } else if p.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        // One frame: the kernel's build appends the uncompressed size
        // (4 bytes, `size_append`) after it, which is no zstd frame (Debian's
        // 6.12 kernels are zstd-compressed; 6.1's were xz).
        let d = zstd::stream::read::Decoder::new(p).map_err(|e| PvhUnsupported::Corrupt(e.to_string()))?.single_frame();
        Ok(Box::new(d))
    } else {
        let name = if p.starts_with(b"BZh") {
            "bzip2"
        } else if p.starts_with(&[0x02, 0x21, 0x4c, 0x18]) {
            "lz4"
        } else if p.starts_with(&[0x89, b'L', b'Z', b'O']) {
            "lzo"
        } else if p.first() == Some(&0x5d) {
            "lzma"
        } else {
            "unknown"
        };
        Err(PvhUnsupported::Compression(name))
    }
}

/// Program headers of a 64-bit ELF whose first bytes are `head`:
/// (type, file offset, file size) each.
fn program_headers(head: &[u8]) -> Option<Vec<(u32, u64, u64)>> {
    let (phoff, phentsize, phnum) = (le64(head, 0x20)? as usize, le16(head, 0x36)? as usize, le16(head, 0x38)? as usize);
    if phentsize < 56 || phoff > head.len() || phnum * phentsize > head.len() - phoff {
        return None;
    }
    (0..phnum)
        .map(|i| {
            let ph = &head[phoff + i * phentsize..phoff + (i + 1) * phentsize];
            Some((le32(ph, 0)?, le64(ph, 8)?, le64(ph, 32)?))
        })
        .collect()
}

/// The PVH entry point in a `PT_NOTE` segment's bytes.
fn pvh_entry(notes: &[u8]) -> Option<u64> {
    let mut at = 0;
    while at + 12 <= notes.len() {
        let (namesz, descsz, kind) = (le32(notes, at)? as usize, le32(notes, at + 4)? as usize, le32(notes, at + 8)?);
        let name_at = at + 12;
        let desc_at = name_at + namesz.div_ceil(4) * 4;
        let name = notes.get(name_at..name_at + namesz)?;
        if kind == PHYS32_ENTRY && name.starts_with(b"Xen") {
            let d = notes.get(desc_at..desc_at + descsz)?;
            return match descsz {
                4 => le32(d, 0).map(u64::from),
                8 => le64(d, 0),
                _ => None,
            };
        }
        at = desc_at + descsz.div_ceil(4) * 4;
    }
    None
}

/// Writes a PVH-bootable ELF kernel made from `bzimage` to `out` (an
/// empty file, open for reading too), streaming, and returns its PVH entry point. `Ok(Err(_))`
/// says why this kernel cannot boot by PVH (then boot the bzImage as it
/// is; `out` holds nothing useful); `Err` is an I/O error on `out`.
pub fn write_pvh_vmlinux(bzimage: &[u8], out: &mut std::fs::File) -> std::io::Result<Result<u64, PvhUnsupported>> {
    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::fs::FileExt;
    let mut reader = match payload(bzimage).and_then(decompressor) {
        Ok(r) => r.take(MAX_VMLINUX),
        Err(e) => return Ok(Err(e)),
    };
    // io::copy reports both sides' errors alike; tell them apart.
    let mut buf = vec![0u8; 1 << 20];
    let mut written = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Ok(Err(PvhUnsupported::Corrupt(e.to_string()))),
        };
        out.write_all(&buf[..n])?;
        written += n as u64;
    }
    let mut head = vec![0u8; written.min(64 << 10) as usize];
    out.read_exact_at(&mut head, 0)?;
    // ELF64, little-endian, x86-64.
    if !head.starts_with(b"\x7fELF\x02\x01") || le16(&head, 0x12) != Some(62) {
        return Ok(Err(PvhUnsupported::NotElf));
    }
    let Some(phdrs) = program_headers(&head) else { return Ok(Err(PvhUnsupported::NotElf)) };
    let mut entry = None;
    for &(kind, off, size) in &phdrs {
        if kind == 4 && entry.is_none() && off.checked_add(size).is_some_and(|e| e <= written) && size <= 1 << 20 {
            let mut notes = vec![0u8; size as usize];
            out.read_exact_at(&mut notes, off)?;
            entry = pvh_entry(&notes);
        }
    }
    let Some(entry) = entry else { return Ok(Err(PvhUnsupported::NoPvhNote)) };
    let end = phdrs.iter().map(|&(_, off, size)| off.saturating_add(size)).max().unwrap_or(0);
    if end > written {
        return Ok(Err(PvhUnsupported::NotElf));
    }
    out.set_len(end)?;
    // No section headers: e_shoff, e_shnum, e_shstrndx.
    out.write_all_at(&[0; 8], 0x28)?;
    out.write_all_at(&[0; 4], 0x3c)?;
    out.seek(SeekFrom::End(0))?;
    Ok(Ok(entry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pvh_vmlinux(bz: &[u8]) -> Result<(Vec<u8>, u64), PvhUnsupported> {
        let mut f = tempfile::tempfile().unwrap();
        let entry = write_pvh_vmlinux(bz, &mut f).unwrap()?;
        let mut out = Vec::new();
        use std::io::Seek;
        f.rewind().unwrap();
        f.read_to_end(&mut out).unwrap();
        Ok((out, entry))
    }

    /// A minimal ELF64 with one PT_LOAD and one PT_NOTE holding `notes`.
    fn elf(notes: &[u8], trailing: usize) -> Vec<u8> {
        let mut e = vec![0u8; 0x40 + 2 * 56];
        e[..6].copy_from_slice(b"\x7fELF\x02\x01");
        e[0x12..0x14].copy_from_slice(&62u16.to_le_bytes());
        e[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        e[0x28..0x30].copy_from_slice(&0x1234u64.to_le_bytes());
        e[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        e[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes());
        e[0x3c..0x40].copy_from_slice(&[7, 0, 6, 0]);
        let body = e.len() as u64;
        let load = [1u32.to_le_bytes().to_vec(), vec![0; 4], body.to_le_bytes().to_vec(), vec![0; 16], 16u64.to_le_bytes().to_vec(), vec![0; 16]].concat();
        let note = [4u32.to_le_bytes().to_vec(), vec![0; 4], (body + 16).to_le_bytes().to_vec(), vec![0; 16], (notes.len() as u64).to_le_bytes().to_vec(), vec![0; 16]].concat();
        e[0x40..0x40 + 56].copy_from_slice(&load);
        e[0x40 + 56..0x40 + 112].copy_from_slice(&note);
        e.extend_from_slice(&[0xaa; 16]);
        e.extend_from_slice(notes);
        e.extend(std::iter::repeat_n(0xee, trailing));
        e
    }

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut n = [(name.len() as u32).to_le_bytes(), (desc.len() as u32).to_le_bytes(), kind.to_le_bytes()].concat();
        n.extend_from_slice(name);
        n.resize(n.len().div_ceil(4) * 4, 0);
        n.extend_from_slice(desc);
        n.resize(n.len().div_ceil(4) * 4, 0);
        n
    }

    /// A bzImage-shaped buffer: setup header fields and the payload.
    fn bzimage(payload: &[u8]) -> Vec<u8> {
        let setup_sects = 3u8;
        let mut b = vec![0u8; (setup_sects as usize + 1) * 512];
        b[0x1f1] = setup_sects;
        b[0x202..0x206].copy_from_slice(b"HdrS");
        b[0x206..0x208].copy_from_slice(&0x20fu16.to_le_bytes());
        b[0x248..0x24c].copy_from_slice(&100u32.to_le_bytes());
        b[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        b.extend(vec![0x90; 100]);
        b.extend_from_slice(payload);
        b.extend_from_slice(&[0; 64]);
        b
    }

    fn gz(b: &[u8]) -> Vec<u8> {
        let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        w.write_all(b).unwrap();
        w.finish().unwrap()
    }

    fn xz(b: &[u8]) -> Vec<u8> {
        let mut w = liblzma::write::XzEncoder::new(Vec::new(), 1);
        w.write_all(b).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn extracts_the_elf_up_to_its_last_segment_and_finds_the_entry() {
        let notes = [note(b"Xen\0", 6, b"linux\0"), note(b"Xen\0", PHYS32_ENTRY, &0x1000850u32.to_le_bytes())].concat();
        let kernel = elf(&notes, 4096);
        for mut payload in [xz(&kernel), gz(&kernel), zstd::encode_all(&kernel[..], 3).unwrap()] {
            // As the kernel's `size_append`: the payload ends with the
            // uncompressed size.
            payload.extend_from_slice(&(kernel.len() as u32).to_le_bytes());
            let (out, entry) = pvh_vmlinux(&bzimage(&payload)).unwrap();
            assert_eq!(entry, 0x1000850);
            assert_eq!(out.len(), kernel.len() - 4096, "trailing relocation data is dropped");
            assert_eq!(&out[0x40..], &kernel[0x40..out.len()]);
            assert_eq!(&out[0x28..0x30], &[0; 8]);
        }
        // A 64-bit descriptor is read too.
        let notes = note(b"Xen\0", PHYS32_ENTRY, &0x2000000u64.to_le_bytes());
        assert_eq!(pvh_vmlinux(&bzimage(&gz(&elf(&notes, 0)))).unwrap().1, 0x2000000);
    }

    #[test]
    fn says_why_a_kernel_cannot_boot_by_pvh() {
        let no_pvh = elf(&note(b"Xen\0", 6, b"linux\0"), 0);
        assert_eq!(pvh_vmlinux(&bzimage(&gz(&no_pvh))).unwrap_err(), PvhUnsupported::NoPvhNote);
        // The note must come from Xen's namespace.
        let other = elf(&note(b"GNU\0", PHYS32_ENTRY, &[0; 4]), 0);
        assert_eq!(pvh_vmlinux(&bzimage(&gz(&other))).unwrap_err(), PvhUnsupported::NoPvhNote);
        assert_eq!(pvh_vmlinux(&bzimage(b"BZh91AY&SY")).unwrap_err(), PvhUnsupported::Compression("bzip2"));
        assert_eq!(pvh_vmlinux(&bzimage(&gz(b"not an elf"))).unwrap_err(), PvhUnsupported::NotElf);
        assert!(matches!(pvh_vmlinux(&bzimage(&[0x1f, 0x8b, 8, 0, 1, 2])).unwrap_err(), PvhUnsupported::Corrupt(_)));
        assert_eq!(pvh_vmlinux(b"\x7fELF").unwrap_err(), PvhUnsupported::NotBzImage);
        let mut old = bzimage(&gz(&no_pvh));
        old[0x206..0x208].copy_from_slice(&0x206u16.to_le_bytes());
        assert_eq!(pvh_vmlinux(&old).unwrap_err(), PvhUnsupported::NotBzImage);
        // Lengths past the end are refused, not read.
        let mut cut = bzimage(&gz(&no_pvh));
        cut[0x24c..0x250].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(pvh_vmlinux(&cut).unwrap_err(), PvhUnsupported::NotBzImage);
    }
}
