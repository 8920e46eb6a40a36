//! Synthetic ELF files for tests and fuzz seeds: an ELF header, one
//! `PT_LOAD` mapping the whole file, `PT_INTERP` and `PT_DYNAMIC` with a
//! string table, in either class and byte order. Not runnable; enough for
//! anything that reads them as ld.so does.

use crate::dynamic::{Class, EM_X86_64};

/// What the generated file declares.
#[derive(Clone, Debug)]
pub struct ElfSpec {
    pub class: Class,
    pub big_endian: bool,
    pub machine: u16,
    /// `e_type` (3: shared object or PIE).
    pub file_type: u16,
    pub interpreter: Option<String>,
    /// Whether there is a `PT_DYNAMIC` at all (a static binary has none).
    pub dynamic: bool,
    pub needed: Vec<String>,
    pub soname: Option<String>,
    pub rpath: Vec<String>,
    pub runpath: Vec<String>,
}

impl Default for ElfSpec {
    /// A 64-bit little-endian x86-64 shared object that needs nothing.
    fn default() -> Self {
        ElfSpec {
            class: Class::Elf64,
            big_endian: false,
            machine: EM_X86_64,
            file_type: 3,
            interpreter: None,
            dynamic: true,
            needed: Vec::new(),
            soname: None,
            rpath: Vec::new(),
            runpath: Vec::new(),
        }
    }
}

/// Where the single `PT_LOAD` maps offset 0.
const BASE: u64 = 0x40_0000;

impl ElfSpec {
    /// An x86-64 executable with glibc's interpreter that needs `needed`.
    pub fn executable(needed: &[&str]) -> Self {
        ElfSpec { interpreter: Some("/lib64/ld-linux-x86-64.so.2".into()), needed: needed.iter().map(|s| s.to_string()).collect(), ..ElfSpec::default() }
    }

    /// An x86-64 shared library `soname` that needs `needed`.
    pub fn library(soname: &str, needed: &[&str]) -> Self {
        ElfSpec { soname: Some(soname.into()), needed: needed.iter().map(|s| s.to_string()).collect(), ..ElfSpec::default() }
    }

    /// The file's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let is64 = self.class == Class::Elf64;
        let word = if is64 { 8 } else { 4 };
        let (ehsize, phentsize) = if is64 { (64u64, 56u64) } else { (52, 32) };
        let mut strtab = vec![0u8];
        let mut add = |s: &str| {
            let off = strtab.len() as u64;
            strtab.extend_from_slice(s.as_bytes());
            strtab.push(0);
            off
        };
        let mut dynamic: Vec<(u64, u64)> = Vec::new();
        for n in &self.needed {
            dynamic.push((1, add(n)));
        }
        if let Some(s) = &self.soname {
            dynamic.push((14, add(s)));
        }
        if !self.rpath.is_empty() {
            dynamic.push((15, add(&self.rpath.join(":"))));
        }
        if !self.runpath.is_empty() {
            dynamic.push((29, add(&self.runpath.join(":"))));
        }
        let phnum = 1 + u64::from(self.interpreter.is_some()) + u64::from(self.dynamic);
        let interp_off = ehsize + phnum * phentsize;
        let interp = self.interpreter.as_ref().map(|i| [i.as_bytes(), b"\0"].concat()).unwrap_or_default();
        let strtab_off = interp_off + interp.len() as u64;
        let dyn_off = (strtab_off + strtab.len() as u64).next_multiple_of(word);
        dynamic.push((5, BASE + strtab_off));
        dynamic.push((10, strtab.len() as u64));
        dynamic.push((0, 0));
        let total = dyn_off + dynamic.len() as u64 * 2 * word;

        let mut out = Vec::with_capacity(total as usize);
        let put = |out: &mut Vec<u8>, v: u64, n: usize| {
            let b = v.to_le_bytes();
            if self.big_endian {
                out.extend(b[..n].iter().rev());
            } else {
                out.extend_from_slice(&b[..n]);
            }
        };
        let w = word as usize;
        out.extend_from_slice(b"\x7fELF");
        out.extend_from_slice(&[if is64 { 2 } else { 1 }, if self.big_endian { 2 } else { 1 }, 1, 0]);
        out.resize(16, 0);
        put(&mut out, u64::from(self.file_type), 2);
        put(&mut out, u64::from(self.machine), 2);
        put(&mut out, 1, 4); // e_version
        put(&mut out, BASE, w); // e_entry
        put(&mut out, ehsize, w); // e_phoff
        put(&mut out, 0, w); // e_shoff: no section headers
        put(&mut out, 0, 4); // e_flags
        put(&mut out, ehsize, 2);
        put(&mut out, phentsize, 2);
        put(&mut out, phnum, 2);
        put(&mut out, 0, 2); // e_shentsize
        put(&mut out, 0, 2); // e_shnum
        put(&mut out, 0, 2); // e_shstrndx
        let phdr = |out: &mut Vec<u8>, p_type: u64, off: u64, size: u64| {
            put(out, p_type, 4);
            if is64 {
                put(out, 4, 4); // p_flags
            }
            put(out, off, w);
            put(out, BASE + off, w); // p_vaddr
            put(out, BASE + off, w); // p_paddr
            put(out, size, w);
            put(out, size, w);
            if !is64 {
                put(out, 4, 4);
            }
            put(out, if p_type == 1 { 0x1000 } else { 1 }, w);
        };
        phdr(&mut out, 1, 0, total);
        if self.interpreter.is_some() {
            phdr(&mut out, 3, interp_off, interp.len() as u64);
        }
        if self.dynamic {
            phdr(&mut out, 2, dyn_off, dynamic.len() as u64 * 2 * word);
        }
        out.extend_from_slice(&interp);
        out.extend_from_slice(&strtab);
        out.resize(dyn_off as usize, 0);
        for (tag, val) in dynamic {
            put(&mut out, tag, w);
            put(&mut out, val, w);
        }
        debug_assert_eq!(out.len() as u64, total);
        out
    }
}
