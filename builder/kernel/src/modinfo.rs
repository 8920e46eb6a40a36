//! A module's `.modinfo` ELF section: name, dependencies, aliases, softdeps.

use std::collections::BTreeMap;

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
            let Some((k, v)) = item.split_once('=') else { continue };
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
        Ok(ModInfo::parse_section(find_section(elf, ".modinfo")?.ok_or("no .modinfo section")?))
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
        let Some(dot) = item.iter().position(|b| *b == b'.') else { continue };
        let name = crate::modules::normalize_name(&String::from_utf8_lossy(&item[..dot]));
        let sect = per.entry(name).or_default();
        sect.extend_from_slice(&item[dot + 1..]);
        sect.push(0);
    }
    per.into_iter().map(|(k, v)| (k, ModInfo::parse_section(&v))).collect()
}

/// The bytes of a named section of a 32- or 64-bit, little- or big-endian
/// ELF file; `Ok(None)` when the file has no such section.
fn find_section<'a>(elf: &'a [u8], wanted: &str) -> Result<Option<&'a [u8]>, String> {
    if elf.len() < 52 || &elf[..4] != b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    let is64 = match elf[4] {
        1 => false,
        2 => true,
        c => return Err(format!("unknown ELF class {c}")),
    };
    let le = match elf[5] {
        1 => true,
        2 => false,
        d => return Err(format!("unknown ELF data encoding {d}")),
    };
    let rd = |off: usize, n: usize| -> Result<u64, String> {
        let b = elf.get(off..off + n).ok_or_else(|| format!("truncated ELF (reading {n} bytes at {off})"))?;
        let mut v = 0u64;
        for i in 0..n {
            let byte = if le { b[n - 1 - i] } else { b[i] };
            v = (v << 8) | byte as u64;
        }
        Ok(v)
    };
    let (shoff, shentsize, shnum, shstrndx) = if is64 {
        (rd(0x28, 8)?, rd(0x3A, 2)?, rd(0x3C, 2)?, rd(0x3E, 2)?)
    } else {
        (rd(0x20, 4)?, rd(0x2E, 2)?, rd(0x30, 2)?, rd(0x32, 2)?)
    };
    let section = |i: u64| -> Result<(u64, u64, u64), String> {
        let base = (shoff + i * shentsize) as usize;
        if is64 {
            Ok((rd(base, 4)?, rd(base + 24, 8)?, rd(base + 32, 8)?))
        } else {
            Ok((rd(base, 4)?, rd(base + 16, 4)?, rd(base + 20, 4)?))
        }
    };
    let bytes_of = |off: u64, size: u64| -> Result<&'a [u8], String> {
        elf.get(off as usize..(off + size) as usize).ok_or_else(|| format!("section at {off}+{size} lies past the end of the file"))
    };
    if shstrndx >= shnum {
        return Err("bad section name table index".into());
    }
    let (_, stroff, strsize) = section(shstrndx)?;
    let strtab = bytes_of(stroff, strsize)?;
    for i in 0..shnum {
        let (name_off, off, size) = section(i)?;
        let name = strtab.get(name_off as usize..).unwrap_or_default();
        let name = &name[..name.iter().position(|b| *b == 0).unwrap_or(name.len())];
        if name == wanted.as_bytes() {
            return Ok(Some(bytes_of(off, size)?));
        }
    }
    Ok(None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal ELF64 LE relocatable with a `.modinfo` section holding
    /// `modinfo` (shared with other tests that need fake modules).
    pub(crate) fn fake_module(modinfo: &str) -> Vec<u8> {
        let strtab = b"\0.modinfo\0.shstrtab\0";
        let mut sect = modinfo.replace('\n', "\0").into_bytes();
        sect.push(0);
        let mut f = vec![0u8; 64];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[6] = 1;
        f[16] = 1; // ET_REL
        let modinfo_off = f.len() as u64;
        f.extend_from_slice(&sect);
        let strtab_off = f.len() as u64;
        f.extend_from_slice(strtab);
        while f.len() & 7 != 0 {
            f.push(0);
        }
        let shoff = f.len() as u64;
        let mut sh = |name: u32, typ: u32, off: u64, size: u64| {
            let mut h = [0u8; 64];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&typ.to_le_bytes());
            h[24..32].copy_from_slice(&off.to_le_bytes());
            h[32..40].copy_from_slice(&size.to_le_bytes());
            f.extend_from_slice(&h);
        };
        sh(0, 0, 0, 0);
        sh(1, 1, modinfo_off, sect.len() as u64);
        sh(10, 3, strtab_off, strtab.len() as u64);
        f[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        f[0x34..0x36].copy_from_slice(&64u16.to_le_bytes());
        f[0x3A..0x3C].copy_from_slice(&64u16.to_le_bytes());
        f[0x3C..0x3E].copy_from_slice(&3u16.to_le_bytes());
        f[0x3E..0x40].copy_from_slice(&2u16.to_le_bytes());
        f
    }

    #[test]
    fn parses_fields_from_an_elf() {
        let elf = fake_module("license=GPL\ndepends=jbd2,mbcache,crc16\nalias=fs-ext4\nalias=ext3\nsoftdep=pre: crc32c post: foo bar\nname=ext4\nvermagic=6.1.0 SMP mod_unload");
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
