//! Just enough ELF to read a kernel module the way kmod's depmod does
//! (sections by name, exported and needed symbols), following the rules of
//! kmod's `libkmod/libkmod-elf.c` (v30; v34.2 agrees except where noted).

/// A parsed (uncompressed) 32- or 64-bit, little- or big-endian ELF file.
pub(crate) struct Elf<'a> {
    data: &'a [u8],
    is64: bool,
    le: bool,
    machine: u16,
    shoff: u64,
    shnum: u16,
    shentsize: u16,
    /// The section-name string table (non-empty, NUL-terminated).
    names: &'a [u8],
}

const EM_SPARC: u16 = 2;
const EM_SPARCV9: u16 = 43;
const STT_REGISTER: u8 = 13;
const SHN_UNDEF: u64 = 0;
/// One `__versions` entry: a CRC word then a NUL-padded name, 64 bytes.
const MODVERSION_LEN: usize = 64;

/// A symbol table entry: (name offset in `.strtab`, `st_info`, `st_shndx`).
type Symbol = (u64, u8, u64);

impl<'a> Elf<'a> {
    /// Checks the header as kmod does: magic, class, data encoding, section
    /// header size and bounds, and a NUL-terminated section-name table.
    pub(crate) fn parse(data: &'a [u8]) -> Result<Elf<'a>, String> {
        if data.len() <= 16 || &data[..4] != b"\x7fELF" {
            return Err("not an ELF file".into());
        }
        let is64 = match data[4] {
            1 => false,
            2 => true,
            c => return Err(format!("unknown ELF class {c}")),
        };
        if data.len() <= if is64 { 64 } else { 52 } {
            return Err("truncated ELF header".into());
        }
        let le = match data[5] {
            1 => true,
            2 => false,
            d => return Err(format!("unknown ELF data encoding {d}")),
        };
        let mut elf = Elf {
            data,
            is64,
            le,
            machine: 0,
            shoff: 0,
            shnum: 0,
            shentsize: 0,
            names: &[],
        };
        let hdr = |elf: &Elf, off32: u64, off64: u64, n32: usize, n64: usize| elf.uint(if is64 { off64 } else { off32 }, if is64 { n64 } else { n32 });
        elf.machine = hdr(&elf, 0x12, 0x12, 2, 2).unwrap_or(0) as u16;
        elf.shoff = hdr(&elf, 0x20, 0x28, 4, 8).ok_or("truncated ELF header")?;
        elf.shentsize = hdr(&elf, 0x2E, 0x3A, 2, 2).ok_or("truncated ELF header")? as u16;
        elf.shnum = hdr(&elf, 0x30, 0x3C, 2, 2).ok_or("truncated ELF header")? as u16;
        let shstrndx = hdr(&elf, 0x32, 0x3E, 2, 2).ok_or("truncated ELF header")? as u16;
        if elf.shentsize != if is64 { 64 } else { 40 } {
            return Err(format!("unexpected ELF section header size {}", elf.shentsize));
        }
        let end = (elf.shnum as u64).checked_mul(elf.shentsize as u64).and_then(|s| s.checked_add(elf.shoff));
        match end {
            Some(e) if e <= data.len() as u64 => {}
            _ => return Err("truncated ELF (section headers lie past the end of the file)".into()),
        }
        let (_, off, size) = elf.section_info(shstrndx).ok_or("bad ELF section name table")?;
        let names = &data[off as usize..(off + size) as usize];
        if names.last() != Some(&0) {
            return Err("ELF section name table does not end with NUL".into());
        }
        elf.names = names;
        Ok(elf)
    }

    fn uint(&self, off: u64, n: usize) -> Option<u64> {
        let b = self.data.get(usize::try_from(off).ok()?..usize::try_from(off).ok()?.checked_add(n)?)?;
        let mut v = 0u64;
        for i in 0..n {
            v = (v << 8) | if self.le { b[n - 1 - i] } else { b[i] } as u64;
        }
        Some(v)
    }

    /// (name offset, file offset, size) of section `i`, if it lies inside the file.
    fn section_info(&self, i: u16) -> Option<(u64, u64, u64)> {
        if i == 0 || i >= self.shnum {
            return None;
        }
        let base = self.shoff + i as u64 * self.shentsize as u64;
        let (name, off, size) = if self.is64 {
            (self.uint(base, 4)?, self.uint(base + 24, 8)?, self.uint(base + 32, 8)?)
        } else {
            (self.uint(base, 4)?, self.uint(base + 16, 4)?, self.uint(base + 20, 4)?)
        };
        (off.checked_add(size)? <= self.data.len() as u64).then_some((name, off, size))
    }

    /// The first section (after the null one) with this name.
    pub(crate) fn section(&self, wanted: &str) -> Option<&'a [u8]> {
        (1..self.shnum).find_map(|i| {
            let (name, off, size) = self.section_info(i)?;
            let name = self.names.get(name as usize..)?;
            let name = &name[..name.iter().position(|b| *b == 0)?];
            (name == wanted.as_bytes()).then(|| &self.data[off as usize..(off + size) as usize])
        })
    }

    /// A NUL-terminated string starting at `off` in the file.
    fn cstr(&self, off: u64) -> &'a [u8] {
        let s = self.data.get(off as usize..).unwrap_or_default();
        &s[..s.iter().position(|b| *b == 0).unwrap_or(s.len())]
    }

    /// `.strtab` and `.symtab` with each symbol's (name offset, info, section index).
    fn symbols(&self) -> Option<(&'a [u8], Vec<Symbol>)> {
        let strtab = self.section(".strtab")?;
        let symtab = self.section(".symtab")?;
        let len = if self.is64 { 24 } else { 16 };
        if symtab.len() % len != 0 {
            return None;
        }
        let base = symtab.as_ptr() as usize - self.data.as_ptr() as usize;
        let syms = (1..symtab.len() / len)
            .map(|i| {
                let at = (base + i * len) as u64;
                if self.is64 {
                    (self.uint(at, 4).unwrap(), self.data[at as usize + 4], self.uint(at + 6, 2).unwrap())
                } else {
                    (self.uint(at, 4).unwrap(), self.data[at as usize + 12], self.uint(at + 14, 2).unwrap())
                }
            })
            .collect();
        Some((strtab, syms))
    }

    fn strtab_name(&self, strtab: &'a [u8], name_off: u64) -> &'a [u8] {
        let base = strtab.as_ptr() as usize - self.data.as_ptr() as usize;
        self.cstr(base as u64 + name_off)
    }

    /// The symbols the module exports, as depmod reads them
    /// (`kmod_elf_get_symbols`): the names of the `__crc_*` symbols of the
    /// symbol table with that prefix removed (modversions kernels), or, when
    /// there are none (or no usable symbol table), the strings of the
    /// `__ksymtab_strings` section, leading NUL padding skipped and empty
    /// strings dropped. kmod 30 also takes an unterminated last string;
    /// kmod 34 then rejects the whole section (no real module has one).
    pub(crate) fn exported_symbols(&self) -> Vec<String> {
        if let Some((strtab, syms)) = self.symbols() {
            if syms.iter().all(|(name, _, _)| *name < strtab.len() as u64) {
                let crcs: Vec<String> = syms
                    .iter()
                    .filter_map(|(name, _, _)| self.strtab_name(strtab, *name).strip_prefix(b"__crc_"))
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .collect();
                if !crcs.is_empty() {
                    return crcs;
                }
            }
        }
        let Some(mut s) = self.section("__ksymtab_strings") else {
            return Vec::new();
        };
        while s.len() > 1 && s[0] == 0 {
            s = &s[1..];
        }
        if s.len() <= 1 {
            return Vec::new();
        }
        s.split(|b| *b == 0)
            .filter(|n| !n.is_empty())
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect()
    }

    /// The symbols the module needs, in depmod's order
    /// (`kmod_elf_get_dependency_symbols`): every undefined, non-empty
    /// symbol of the symbol table in table order (on SPARC, minus register
    /// symbols), then the `__versions` entries no such symbol named
    /// (`module_layout`). `None` when there is no usable symbol table: depmod
    /// then finds no dependencies at all.
    pub(crate) fn needed_symbols(&self) -> Option<Vec<String>> {
        let versions = self.section("__versions").filter(|v| v.len() % MODVERSION_LEN == 0).unwrap_or_default();
        let crc_len = if self.is64 { 8 } else { 4 };
        let version_names: Vec<&[u8]> = versions
            .chunks_exact(MODVERSION_LEN)
            .map(|e| {
                let n = &e[crc_len..];
                &n[..n.iter().position(|b| *b == 0).unwrap_or(n.len())]
            })
            .collect();
        let mut visited = vec![false; version_names.len()];
        let (strtab, syms) = self.symbols()?;
        let sparc = self.machine == EM_SPARC || self.machine == EM_SPARCV9;
        let mut out = Vec::new();
        for (name_off, info, shndx) in syms {
            if shndx != SHN_UNDEF || (sparc && info & 0xf == STT_REGISTER) {
                continue;
            }
            if name_off >= strtab.len() as u64 {
                return None;
            }
            let name = self.strtab_name(strtab, name_off);
            if name.is_empty() {
                continue;
            }
            if let Some(i) = version_names.iter().position(|v| *v == name) {
                visited[i] = true;
            }
            out.push(String::from_utf8_lossy(name).into_owned());
        }
        for (name, seen) in version_names.iter().zip(visited) {
            if !seen {
                out.push(String::from_utf8_lossy(name).into_owned());
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modinfo::tests::{fake_module, fake_module_with, FakeSymbols};

    fn parsed(syms: FakeSymbols) -> (Vec<String>, Option<Vec<String>>) {
        let bytes = fake_module_with("name=m", syms);
        let elf = Elf::parse(&bytes).unwrap();
        assert_eq!(elf.section(".modinfo"), Some(&b"name=m\0"[..]));
        (elf.exported_symbols(), elf.needed_symbols())
    }

    #[test]
    fn exports_prefer_crc_symbols_over_ksymtab_strings() {
        let both = FakeSymbols {
            ksymtab: Some(&["from_strings"]),
            crcs: &["b", "a"],
            ..Default::default()
        };
        assert_eq!(parsed(both).0, ["b", "a"]);
        // No __crc_ symbol (or no symbol table): the strings, padding and
        // empty strings skipped.
        let strings = FakeSymbols {
            ksymtab: Some(&["", "", "x", "", "y"]),
            symtab: true,
            ..Default::default()
        };
        assert_eq!(parsed(strings).0, ["x", "y"]);
        assert_eq!(
            parsed(FakeSymbols {
                ksymtab: Some(&["z"]),
                ..Default::default()
            })
            .0,
            ["z"]
        );
        // An unterminated last string still counts (kmod 30; kmod 34 would
        // drop the section).
        let mut odd = fake_module_with(
            "name=m",
            FakeSymbols {
                ksymtab: Some(&["", "q"]),
                ..Default::default()
            },
        );
        let sect = odd.windows(3).position(|w| w == b"\0q\0").unwrap();
        odd[sect + 2] = b'r'; // "\0qr": padding, then "qr" without its NUL
        assert_eq!(Elf::parse(&odd).unwrap().exported_symbols(), ["qr"]);
        assert!(parsed(FakeSymbols::default()).0.is_empty());
    }

    #[test]
    fn needs_are_undefined_symbols_then_unreferenced_versions() {
        let s = FakeSymbols {
            crcs: &["mine"],
            needs: &["printk", "other_fn"],
            versions: &["module_layout", "printk", "only_versioned"],
            ..Default::default()
        };
        assert_eq!(parsed(s).1.unwrap(), ["printk", "other_fn", "module_layout", "only_versioned"]);
        assert_eq!(
            parsed(FakeSymbols {
                symtab: true,
                ..Default::default()
            })
            .1,
            Some(vec![])
        );
        assert_eq!(parsed(FakeSymbols::default()).1, None, "no symbol table");
        assert_eq!(Elf::parse(&fake_module("x=y")).unwrap().needed_symbols(), None);
    }

    #[test]
    fn rejects_what_kmod_rejects() {
        let good = fake_module("name=m");
        assert!(Elf::parse(&good).is_ok());
        assert!(Elf::parse(&good[..good.len() - 1]).is_err(), "section headers cut off");
        let mut bad = good.clone();
        bad[0x3A] = 40; // wrong section header size for ELF64
        assert!(Elf::parse(&bad).is_err());
        let mut bad = good.clone();
        bad[4] = 3;
        assert!(Elf::parse(&bad).is_err());
        assert!(Elf::parse(b"\x7fELF").is_err());
    }
}
