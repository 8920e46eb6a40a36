//! A module's `.modinfo` ELF section: name, dependencies, aliases, softdeps.

use std::collections::BTreeMap;

use crate::elf::Elf;

/// What a module says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModInfo {
    /// `name=` (absent in old kernels; the file name is authoritative then).
    pub name: Option<String>,
    /// `depends=`: modules that must be loaded first, in the order listed.
    pub depends: Vec<String>,
    /// `alias=` patterns (fnmatch globs such as `pci:v00001AF4d*`).
    pub aliases: Vec<String>,
    /// `softdep=` `pre:` names (modules or aliases to load first if present).
    pub softdep_pre: Vec<String>,
    /// `softdep=` `post:` names (to load after).
    pub softdep_post: Vec<String>,
    /// `vermagic=`: the kernel release and flags the module was built for.
    pub vermagic: Option<String>,
    /// Every `key=value` in section order, for anything not broken out above.
    pub raw: Vec<(String, String)>,
}

impl ModInfo {
    /// Parses the NUL-separated `key=value` strings of a `.modinfo` section
    /// (also the format of `modules.builtin.modinfo`, minus the `mod.` prefix).
    pub fn parse_section(section: &[u8]) -> ModInfo {
        let mut info = ModInfo::default();
        for item in section.split(|b| *b == 0).filter(|s| !s.is_empty()) {
            let item = String::from_utf8_lossy(item);
            let Some((k, v)) = item.split_once('=') else {
                continue;
            };
            match k {
                "name" => info.name = Some(v.to_string()),
                "depends" => info.depends.extend(v.split(',').filter(|d| !d.is_empty()).map(str::to_string)),
                "alias" => info.aliases.push(v.to_string()),
                "softdep" => parse_softdep(v, &mut info.softdep_pre, &mut info.softdep_post),
                "vermagic" => info.vermagic = Some(v.to_string()),
                _ => {}
            }
            info.raw.push((k.to_string(), v.to_string()));
        }
        info
    }

    /// Finds and parses `.modinfo` in an (uncompressed) ELF module.
    pub fn from_elf(elf: &[u8]) -> Result<ModInfo, String> {
        ModInfo::from_parsed(&Elf::parse(elf)?)
    }

    pub(crate) fn from_parsed(elf: &Elf) -> Result<ModInfo, String> {
        Ok(ModInfo::parse_section(elf.section(".modinfo").ok_or("no .modinfo section")?))
    }
}

/// `pre: a b post: c` (either part optional, in any order).
fn parse_softdep(v: &str, pre: &mut Vec<String>, post: &mut Vec<String>) {
    let mut target: Option<&mut Vec<String>> = None;
    for word in v.split_whitespace() {
        match word {
            "pre:" => target = Some(&mut *pre),
            "post:" => target = Some(&mut *post),
            w => {
                if let Some(t) = target.as_deref_mut() {
                    t.push(w.to_string());
                }
            }
        }
    }
}

/// Parses `modules.builtin.modinfo`: `module.key=value` strings, NUL-separated.
/// Returns each built-in module's info by (underscored) module name.
pub fn parse_builtin_modinfo(bytes: &[u8]) -> BTreeMap<String, ModInfo> {
    let mut per: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for item in bytes.split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let Some(dot) = item.iter().position(|b| *b == b'.') else {
            continue;
        };
        let name = crate::names::normalize_name(&String::from_utf8_lossy(&item[..dot]));
        let sect = per.entry(name).or_default();
        sect.extend_from_slice(&item[dot + 1..]);
        sect.push(0);
    }
    per.into_iter().map(|(k, v)| (k, ModInfo::parse_section(&v))).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// What a fake module holds besides its `.modinfo`.
    #[derive(Clone, Copy, Debug, Default)]
    pub(crate) struct FakeSymbols<'a> {
        /// Exported symbols, as a `__ksymtab_strings` section (`None`: no section).
        pub ksymtab: Option<&'a [&'a str]>,
        /// Exported symbols as `__crc_<name>` symbols (a modversions kernel).
        pub crcs: &'a [&'a str],
        /// Undefined symbols: what the module needs from others.
        pub needs: &'a [&'a str],
        /// Names for a `__versions` section (modversions of what it needs).
        pub versions: &'a [&'a str],
        /// Write `.symtab`/`.strtab` even when `crcs` and `needs` are empty.
        pub symtab: bool,
    }

    /// A minimal ELF64 LE relocatable with a `.modinfo` section holding
    /// `modinfo` (shared with other tests that need fake modules).
    pub(crate) fn fake_module(modinfo: &str) -> Vec<u8> {
        fake_module_with(modinfo, FakeSymbols::default())
    }

    /// A fake module that also exports and needs symbols: valid enough for
    /// kmod's depmod and modprobe, which read only sections and symbols.
    pub(crate) fn fake_module_with(modinfo: &str, syms: FakeSymbols) -> Vec<u8> {
        let mut info = modinfo.replace('\n', "\0").into_bytes();
        info.push(0);
        /// (name, sh_type, bytes, sh_link, sh_info, sh_entsize)
        type Section<'n> = (&'n str, u32, Vec<u8>, u32, u32, u64);
        let mut sections: Vec<Section> = vec![(".modinfo", 1, info, 0, 0, 0)];
        if let Some(exports) = syms.ksymtab {
            let mut b = Vec::new();
            for e in exports {
                b.extend_from_slice(e.as_bytes());
                b.push(0);
            }
            sections.push(("__ksymtab_strings", 1, b, 0, 0, 1));
        }
        if !syms.versions.is_empty() {
            let mut b = Vec::new();
            for (i, v) in syms.versions.iter().enumerate() {
                let mut e = [0u8; 64];
                e[..8].copy_from_slice(&(0xc0de_0000 + i as u64).to_le_bytes());
                e[8..8 + v.len()].copy_from_slice(v.as_bytes());
                b.extend_from_slice(&e);
            }
            sections.push(("__versions", 1, b, 0, 0, 0));
        }
        if syms.symtab || !syms.crcs.is_empty() || !syms.needs.is_empty() {
            let mut strtab = vec![0u8];
            let mut symtab = vec![0u8; 24];
            let mut sym = |name: &str, info: u8, shndx: u16, value: u64| {
                let mut e = [0u8; 24];
                e[0..4].copy_from_slice(&(strtab.len() as u32).to_le_bytes());
                e[4] = info;
                e[6..8].copy_from_slice(&shndx.to_le_bytes());
                e[8..16].copy_from_slice(&value.to_le_bytes());
                strtab.extend_from_slice(name.as_bytes());
                strtab.push(0);
                symtab.extend_from_slice(&e);
            };
            // A local symbol first, as in real modules, then the CRCs
            // (absolute, global) and the undefined imports.
            sym("fake.c", 0x04, 0xfff1, 0);
            for (i, c) in syms.crcs.iter().enumerate() {
                sym(&format!("__crc_{c}"), 0x10, 0xfff1, 0x1234_5678 + i as u64);
            }
            for n in syms.needs {
                sym(n, 0x10, 0, 0);
            }
            let symtab_index = sections.len() as u32 + 1;
            sections.push((".symtab", 2, symtab, symtab_index + 1, 2, 24));
            sections.push((".strtab", 3, strtab, 0, 0, 0));
        }
        let mut names = vec![0u8];
        let mut name_offs = Vec::new();
        for (name, ..) in &sections {
            name_offs.push(names.len() as u32);
            names.extend_from_slice(name.as_bytes());
            names.push(0);
        }
        name_offs.push(names.len() as u32);
        names.extend_from_slice(b".shstrtab\0");
        sections.push((".shstrtab", 3, names, 0, 0, 0));

        let mut f = vec![0u8; 64];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2; // ELFCLASS64
        f[5] = 1; // little-endian
        f[6] = 1; // EV_CURRENT
        f[16] = 1; // ET_REL
        f[18] = 62; // EM_X86_64
        f[20] = 1;
        let mut placed = Vec::new();
        for (_, _, bytes, ..) in &sections {
            while f.len() & 7 != 0 {
                f.push(0);
            }
            placed.push(f.len() as u64);
            f.extend_from_slice(bytes);
        }
        while f.len() & 7 != 0 {
            f.push(0);
        }
        let shoff = f.len() as u64;
        f.extend_from_slice(&[0u8; 64]);
        for (i, (_, typ, bytes, link, info, entsize)) in sections.iter().enumerate() {
            let mut h = [0u8; 64];
            h[0..4].copy_from_slice(&name_offs[i].to_le_bytes());
            h[4..8].copy_from_slice(&typ.to_le_bytes());
            h[24..32].copy_from_slice(&placed[i].to_le_bytes());
            h[32..40].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
            h[40..44].copy_from_slice(&link.to_le_bytes());
            h[44..48].copy_from_slice(&info.to_le_bytes());
            h[48..56].copy_from_slice(&1u64.to_le_bytes());
            h[56..64].copy_from_slice(&entsize.to_le_bytes());
            f.extend_from_slice(&h);
        }
        let shnum = sections.len() as u16 + 1;
        f[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        f[0x34..0x36].copy_from_slice(&64u16.to_le_bytes());
        f[0x3A..0x3C].copy_from_slice(&64u16.to_le_bytes());
        f[0x3C..0x3E].copy_from_slice(&shnum.to_le_bytes());
        f[0x3E..0x40].copy_from_slice(&(shnum - 1).to_le_bytes());
        f
    }

    #[test]
    fn parses_fields_from_an_elf() {
        let elf = fake_module(
            "license=GPL\ndepends=jbd2,mbcache,crc16\nalias=fs-ext4\nalias=ext3\nsoftdep=pre: crc32c post: foo bar\nname=ext4\nvermagic=6.1.0 SMP mod_unload",
        );
        let i = ModInfo::from_elf(&elf).unwrap();
        assert_eq!(i.name.as_deref(), Some("ext4"));
        assert_eq!(i.depends, ["jbd2", "mbcache", "crc16"]);
        assert_eq!(i.aliases, ["fs-ext4", "ext3"]);
        assert_eq!(i.softdep_pre, ["crc32c"]);
        assert_eq!(i.softdep_post, ["foo", "bar"]);
        assert_eq!(i.vermagic.as_deref(), Some("6.1.0 SMP mod_unload"));
        assert!(ModInfo::from_elf(&fake_module("depends=")).unwrap().depends.is_empty());
        assert!(ModInfo::from_elf(b"not an elf at all, but long enough to have a header.........").is_err());
        assert!(ModInfo::from_elf(&elf[..100]).is_err());
    }

    #[test]
    fn builtin_modinfo_groups_by_module() {
        let b = b"ext4.file=fs/ext4/ext4\0ext4.alias=fs-ext4\0crc32c-generic.alias=crypto-crc32c\0";
        let m = parse_builtin_modinfo(b);
        assert_eq!(m.len(), 2);
        assert_eq!(m["ext4"].aliases, ["fs-ext4"]);
        assert_eq!(m["crc32c_generic"].aliases, ["crypto-crc32c"]);
        assert_eq!(m["ext4"].raw[0], ("file".to_string(), "fs/ext4/ext4".to_string()));
    }
}
