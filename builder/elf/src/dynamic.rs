//! The dynamic linker's view of an ELF file: its class and machine, the
//! program interpreter (`PT_INTERP`) and the dynamic section's `DT_NEEDED`,
//! `DT_SONAME`, `DT_RPATH` and `DT_RUNPATH`. Read from the program headers,
//! as ld.so reads them (section headers may be stripped); every offset is
//! bounds-checked, so hostile bytes give an error, never a panic.

use crate::error::ParseError;

/// `\x7fELF`.
pub const MAGIC: &[u8; 4] = b"\x7fELF";

const PT_LOAD: u64 = 1;
const PT_DYNAMIC: u64 = 2;
const PT_INTERP: u64 = 3;

const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;

/// `e_machine` of x86-64.
pub const EM_X86_64: u16 = 62;

/// 32- or 64-bit objects: a loader only links objects of one class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    Elf32,
    Elf64,
}

/// What the dynamic linker reads from one ELF file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicInfo {
    pub class: Class,
    pub big_endian: bool,
    /// `e_type`: 2 executable, 3 shared object or PIE, 1 relocatable.
    pub file_type: u16,
    /// `e_machine`.
    pub machine: u16,
    /// `PT_INTERP`: the program interpreter (dynamic linker) path.
    pub interpreter: Option<String>,
    /// `DT_NEEDED` names in order.
    pub needed: Vec<String>,
    pub soname: Option<String>,
    /// `DT_RPATH`, split at `:`.
    pub rpath: Vec<String>,
    /// `DT_RUNPATH`, split at `:`.
    pub runpath: Vec<String>,
}

impl DynamicInfo {
    /// Whether a loader of `self` could link `other` (same class, byte
    /// order and machine), as ld.so checks before accepting a candidate.
    pub fn compatible(&self, other: &DynamicInfo) -> bool {
        self.class == other.class && self.big_endian == other.big_endian && self.machine == other.machine
    }
}

/// True when `prefix` starts with the ELF magic.
pub fn is_elf(prefix: &[u8]) -> bool {
    prefix.starts_with(MAGIC)
}

/// Integers of one class and byte order, read at bounds-checked offsets.
struct Reader<'a> {
    data: &'a [u8],
    is64: bool,
    big_endian: bool,
}

impl Reader<'_> {
    fn uint(&self, off: u64, n: usize) -> Result<u64, ParseError> {
        let start = usize::try_from(off).map_err(|_| ParseError::new("offset out of range"))?;
        let bytes = start.checked_add(n).and_then(|end| self.data.get(start..end)).ok_or_else(|| ParseError::new(format!("truncated at offset {off:#x}")))?;
        let fold = |v: u64, b: &u8| (v << 8) | u64::from(*b);
        Ok(if self.big_endian { bytes.iter().fold(0, fold) } else { bytes.iter().rev().fold(0, fold) })
    }

    /// A word: 4 bytes in ELF32, 8 in ELF64 (addresses, offsets, sizes).
    fn word(&self, off: u64) -> Result<u64, ParseError> {
        self.uint(off, if self.is64 { 8 } else { 4 })
    }

    /// The bytes `[off, off + len)`.
    fn bytes(&self, off: u64, len: u64) -> Result<&[u8], ParseError> {
        let range = usize::try_from(off).ok().zip(usize::try_from(len).ok()).and_then(|(o, l)| Some(o..o.checked_add(l)?));
        range.and_then(|r| self.data.get(r)).ok_or_else(|| ParseError::new(format!("{len} bytes at {off:#x} lie past the end of the file")))
    }
}

/// One program header: (type, file offset, virtual address, file size).
type Segment = (u64, u64, u64, u64);

/// Parses what the dynamic linker reads. A file without `PT_DYNAMIC`
/// (static, or not an executable) has no needs.
pub fn parse(data: &[u8]) -> Result<DynamicInfo, ParseError> {
    if !is_elf(data) || data.len() < 16 {
        return Err(ParseError::new("not an ELF file"));
    }
    let class = match data[4] {
        1 => Class::Elf32,
        2 => Class::Elf64,
        c => return Err(ParseError::new(format!("unknown ELF class {c}"))),
    };
    let big_endian = match data[5] {
        1 => false,
        2 => true,
        d => return Err(ParseError::new(format!("unknown ELF data encoding {d}"))),
    };
    let r = Reader { data, is64: class == Class::Elf64, big_endian };
    let file_type = r.uint(0x10, 2)? as u16;
    let machine = r.uint(0x12, 2)? as u16;
    let (phoff, phentsize, phnum) = if r.is64 { (r.uint(0x20, 8)?, r.uint(0x36, 2)?, r.uint(0x38, 2)?) } else { (r.uint(0x1C, 4)?, r.uint(0x2A, 2)?, r.uint(0x2C, 2)?) };
    let mut info = DynamicInfo { class, big_endian, file_type, machine, interpreter: None, needed: Vec::new(), soname: None, rpath: Vec::new(), runpath: Vec::new() };
    if phnum == 0 {
        return Ok(info);
    }
    if phnum == 0xFFFF {
        return Err(ParseError::new("extended program header numbering (PN_XNUM) is not supported"));
    }
    let expected = if r.is64 { 56 } else { 32 };
    if phentsize != expected {
        return Err(ParseError::new(format!("program header size {phentsize}, expected {expected}")));
    }
    let mut segments: Vec<Segment> = Vec::with_capacity(phnum as usize);
    for i in 0..phnum {
        let base = phoff.checked_add(i * phentsize).ok_or_else(|| ParseError::new("program header offset overflows"))?;
        let seg = if r.is64 {
            (r.uint(base, 4)?, r.uint(base + 8, 8)?, r.uint(base + 16, 8)?, r.uint(base + 32, 8)?)
        } else {
            (r.uint(base, 4)?, r.uint(base + 4, 4)?, r.uint(base + 8, 4)?, r.uint(base + 16, 4)?)
        };
        segments.push(seg);
    }
    if let Some(&(_, off, _, size)) = segments.iter().find(|s| s.0 == PT_INTERP) {
        let raw = r.bytes(off, size)?;
        let raw = &raw[..raw.iter().position(|b| *b == 0).unwrap_or(raw.len())];
        let interp = std::str::from_utf8(raw).map_err(|_| ParseError::new("PT_INTERP is not UTF-8"))?;
        if interp.is_empty() {
            return Err(ParseError::new("empty PT_INTERP"));
        }
        info.interpreter = Some(interp.to_string());
    }
    let Some(&(_, dyn_off, _, dyn_size)) = segments.iter().find(|s| s.0 == PT_DYNAMIC) else {
        return Ok(info);
    };
    let entry = if r.is64 { 16 } else { 8 };
    let mut tags: Vec<(u64, u64)> = Vec::new();
    for i in 0..dyn_size / entry {
        let base = dyn_off.checked_add(i * entry).ok_or_else(|| ParseError::new("dynamic entry offset overflows"))?;
        let (tag, val) = (r.word(base)?, r.word(base + entry / 2)?);
        if tag == DT_NULL {
            break;
        }
        tags.push((tag, val));
    }
    let one = |wanted: u64| tags.iter().find(|(t, _)| *t == wanted).map(|(_, v)| *v);
    let strings: Vec<&(u64, u64)> = tags.iter().filter(|(t, _)| [DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH].contains(t)).collect();
    if strings.is_empty() {
        return Ok(info);
    }
    let strtab_addr = one(DT_STRTAB).ok_or_else(|| ParseError::new("dynamic section names strings but has no DT_STRTAB"))?;
    let strsz = one(DT_STRSZ).ok_or_else(|| ParseError::new("dynamic section has no DT_STRSZ"))?;
    // DT_STRTAB is an address: find the file offset through the PT_LOAD that maps it.
    let strtab_off = segments
        .iter()
        .filter(|s| s.0 == PT_LOAD)
        .find_map(|&(_, off, vaddr, filesz)| (strtab_addr >= vaddr && strtab_addr - vaddr < filesz).then(|| off + (strtab_addr - vaddr)))
        .ok_or_else(|| ParseError::new(format!("DT_STRTAB {strtab_addr:#x} lies in no PT_LOAD segment")))?;
    let strtab = r.bytes(strtab_off, strsz)?;
    let string = |off: u64| -> Result<String, ParseError> {
        let s = usize::try_from(off).ok().and_then(|o| strtab.get(o..)).ok_or_else(|| ParseError::new(format!("string offset {off} past DT_STRSZ {strsz}")))?;
        let end = s.iter().position(|b| *b == 0).ok_or_else(|| ParseError::new(format!("string at {off} is not NUL-terminated")))?;
        String::from_utf8(s[..end].to_vec()).map_err(|_| ParseError::new(format!("string at {off} is not UTF-8")))
    };
    let split = |s: String| s.split(':').filter(|d| !d.is_empty()).map(str::to_string).collect::<Vec<_>>();
    for &&(tag, val) in &strings {
        match tag {
            DT_NEEDED => info.needed.push(string(val)?),
            DT_SONAME => info.soname = Some(string(val)?),
            DT_RPATH => info.rpath.extend(split(string(val)?)),
            _ => info.runpath.extend(split(string(val)?)),
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::ElfSpec;

    #[test]
    fn reads_every_field_in_every_class_and_byte_order() {
        for (class, big_endian) in [(Class::Elf64, false), (Class::Elf64, true), (Class::Elf32, false), (Class::Elf32, true)] {
            let spec = ElfSpec {
                class,
                big_endian,
                machine: 3,
                interpreter: Some("/lib/ld-linux.so.2".into()),
                needed: vec!["libm.so.6".into(), "libc.so.6".into()],
                soname: Some("libx.so.1".into()),
                rpath: vec!["/opt/x/lib".into()],
                runpath: vec!["$ORIGIN/../lib".into(), "/usr/lib/x".into()],
                ..ElfSpec::default()
            };
            let info = parse(&spec.bytes()).unwrap();
            assert_eq!((info.class, info.big_endian, info.machine, info.file_type), (class, big_endian, 3, 3));
            assert_eq!(info.interpreter.as_deref(), Some("/lib/ld-linux.so.2"));
            assert_eq!(info.needed, ["libm.so.6", "libc.so.6"]);
            assert_eq!(info.soname.as_deref(), Some("libx.so.1"));
            assert_eq!(info.rpath, ["/opt/x/lib"]);
            assert_eq!(info.runpath, ["$ORIGIN/../lib", "/usr/lib/x"]);
        }
    }

    #[test]
    fn static_files_have_no_needs() {
        let info = parse(&ElfSpec { dynamic: false, interpreter: None, ..ElfSpec::default() }.bytes()).unwrap();
        assert_eq!((info.interpreter, info.needed.len()), (None, 0));
    }

    #[test]
    fn damaged_files_are_errors_not_panics() {
        let good = ElfSpec { needed: vec!["libc.so.6".into()], ..ElfSpec::default() }.bytes();
        assert!(parse(b"\x7fELF").is_err());
        assert!(parse(b"#!/bin/sh\n").unwrap_err().to_string().contains("not an ELF file"));
        let mut bad_class = good.clone();
        bad_class[4] = 9;
        assert!(parse(&bad_class).unwrap_err().to_string().contains("class 9"));
        // Every truncation fails cleanly or parses a prefix that is still whole.
        for len in 0..good.len() {
            let _ = parse(&good[..len]);
        }
        // Flipping any byte never panics.
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0xFF;
            let _ = parse(&b);
        }
    }
}
