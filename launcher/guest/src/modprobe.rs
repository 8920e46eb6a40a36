//! A small `modprobe` for guests: loads modules with their dependencies
//! from the text `modules.dep` / `modules.alias` / `modules.builtin` files
//! the builder generates. Debian's kmod needs the binary `.bin` indexes
//! that only `depmod` (a package script) writes; this needs none. Installed
//! as `/usr/sbin/modprobe` on dinv-init guests, so the kernel's
//! request_module, dockerd and iptables all load modules through it.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// The text depmod files of one kernel.
#[derive(Debug, Default)]
pub struct ModuleDb {
    dir: PathBuf,
    /// Normalised name → (path relative to `dir`, dependency paths in modules.dep order).
    modules: HashMap<String, (String, Vec<String>)>,
    /// (pattern, module name), in file order.
    aliases: Vec<(String, String)>,
    builtin: BTreeSet<String>,
}

/// `-` and `_` are the same in module names.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

fn module_name(rel: &str) -> String {
    let base = rel.rsplit('/').next().unwrap_or(rel);
    let base = base.split(".ko").next().unwrap_or(base);
    normalize(base)
}

/// fnmatch-style matching with `*`, `?` and `[...]`, as modprobe matches aliases.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some(b'*') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some(b'?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some(b'[') => {
                let Some(end) = p.iter().skip(1).position(|&c| c == b']').map(|i| i + 1) else {
                    return t.first() == Some(&b'[') && go(&p[1..], &t[1..]);
                };
                let Some(&c) = t.first() else { return false };
                let set = &p[1..end];
                let (neg, set) = match set.first() {
                    Some(b'!') | Some(b'^') => (true, &set[1..]),
                    _ => (false, set),
                };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == b'-' {
                        hit |= set[i] <= c && c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == c;
                        i += 1;
                    }
                }
                hit != neg && go(&p[end + 1..], &t[1..])
            }
            Some(&c) => t.first() == Some(&c) && go(&p[1..], &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

impl ModuleDb {
    /// Reads `dir/modules.{dep,alias,builtin}` (missing alias/builtin files are empty).
    pub fn load(dir: &Path) -> io::Result<ModuleDb> {
        let dep = std::fs::read_to_string(dir.join("modules.dep"))?;
        let mut db = ModuleDb { dir: dir.to_path_buf(), ..Default::default() };
        for line in dep.lines() {
            let Some((m, deps)) = line.split_once(':') else { continue };
            let deps: Vec<String> = deps.split_whitespace().map(str::to_string).collect();
            db.modules.insert(module_name(m), (m.trim().to_string(), deps));
        }
        if let Ok(text) = std::fs::read_to_string(dir.join("modules.alias")) {
            for line in text.lines() {
                let mut w = line.split_whitespace();
                if let (Some("alias"), Some(pat), Some(m)) = (w.next(), w.next(), w.next()) {
                    db.aliases.push((pat.to_string(), normalize(m)));
                }
            }
        }
        if let Ok(text) = std::fs::read_to_string(dir.join("modules.builtin")) {
            db.builtin = text.lines().filter(|l| !l.trim().is_empty()).map(module_name).collect();
        }
        Ok(db)
    }

    /// The modules a name stands for: itself, or every module whose alias
    /// pattern matches it (empty when nothing does; built-ins resolve to
    /// themselves and need no loading).
    pub fn resolve(&self, name: &str) -> Vec<String> {
        let n = normalize(name);
        if self.modules.contains_key(&n) || self.builtin.contains(&n) {
            return vec![n];
        }
        let mut out: Vec<String> = Vec::new();
        for (pat, m) in &self.aliases {
            if (glob_match(pat, name) || glob_match(&normalize(pat), &n)) && !out.contains(m) {
                out.push(m.clone());
            }
        }
        out
    }

    /// Files to load for a module, dependencies first (modules.dep lists
    /// them so that the last one is loaded first).
    pub fn load_order(&self, module: &str) -> Vec<PathBuf> {
        let Some((path, deps)) = self.modules.get(module) else { return vec![] };
        let mut v: Vec<PathBuf> = deps.iter().rev().map(|d| self.dir.join(d)).collect();
        v.push(self.dir.join(path));
        v
    }

    /// True when the module is compiled into the kernel.
    pub fn is_builtin(&self, module: &str) -> bool {
        self.builtin.contains(module)
    }
}

/// MODULE_INIT_COMPRESSED_FILE: the kernel decompresses the file itself.
const MODULE_INIT_COMPRESSED_FILE: libc::c_uint = 4;

fn finit(path: &Path, params: &str) -> io::Result<()> {
    let f = std::fs::File::open(path)?;
    let p = std::ffi::CString::new(params).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in parameters"))?;
    let name = path.to_string_lossy();
    let flags = if name.ends_with(".ko") { 0 } else { MODULE_INIT_COMPRESSED_FILE };
    // SAFETY: the fd is open during the call; p is a C string.
    let r = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), p.as_ptr(), flags) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EEXIST) {
            return Ok(());
        }
        return Err(e);
    }
    Ok(())
}

/// The running kernel's module directory.
pub fn module_dir() -> PathBuf {
    // SAFETY: uname fills the zeroed struct.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    unsafe { libc::uname(&mut u) };
    // SAFETY: release is NUL-terminated by the kernel.
    let release = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }.to_string_lossy().into_owned();
    PathBuf::from("/lib/modules").join(release)
}

/// Loads `name` (a module or an alias) with its dependencies and `params`.
/// `Ok(false)` when nothing matches the name.
pub fn load(db: &ModuleDb, name: &str, params: &str) -> io::Result<bool> {
    let mods = db.resolve(name);
    if mods.is_empty() {
        return Ok(false);
    }
    for m in mods {
        if db.is_builtin(&m) {
            continue;
        }
        let files = db.load_order(&m);
        let last = files.len().saturating_sub(1);
        for (i, f) in files.iter().enumerate() {
            finit(f, if i == last { params } else { "" }).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", f.display())))?;
        }
    }
    Ok(true)
}

/// `modprobe [-q] [-b] [-a] [-v] [--] NAME [PARAMS...]`, or with `-a`
/// several names. Returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let mut quiet = false;
    let mut all = false;
    let mut names = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--" => {
                names.extend(it.by_ref().cloned());
                break;
            }
            "-q" | "--quiet" => quiet = true,
            "-a" | "--all" => all = true,
            // Blacklists, verbosity and "use blacklist": accepted, nothing to do.
            "-b" | "--use-blacklist" | "-v" | "--verbose" | "-s" | "--syslog" => {}
            s if s.starts_with('-') && s.len() > 1 && s[1..].chars().all(|c| "qbavs".contains(c)) => {
                quiet |= s.contains('q');
                all |= s.contains('a');
            }
            s if s.starts_with('-') => {
                if !quiet {
                    eprintln!("modprobe: option {s} is not supported by dinv-guest");
                }
                return 1;
            }
            s => names.push(s.to_string()),
        }
    }
    if names.is_empty() {
        eprintln!("usage: modprobe [-q] [-a] [--] NAME [PARAMS...]");
        return 1;
    }
    let db = match ModuleDb::load(&module_dir()) {
        Ok(db) => db,
        Err(e) => {
            if !quiet {
                eprintln!("modprobe: {}: {e}", module_dir().join("modules.dep").display());
            }
            return 1;
        }
    };
    let jobs: Vec<(String, String)> =
        if all { names.iter().map(|n| (n.clone(), String::new())).collect() } else { vec![(names[0].clone(), names[1..].join(" "))] };
    let mut code = 0;
    for (name, params) in jobs {
        match load(&db, &name, &params) {
            Ok(true) => {}
            Ok(false) => {
                if !quiet {
                    eprintln!("modprobe: module {name} not found in {}", db.dir.display());
                }
                code = 1;
            }
            Err(e) => {
                if !quiet {
                    eprintln!("modprobe: {name}: {e}");
                }
                code = 1;
            }
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn globs() {
        assert!(glob_match("pci:v00001AF4d*sv*", "pci:v00001AF4d00001042sv00001AF4"));
        assert!(glob_match("nft-chain-2-nat", "nft-chain-2-nat"));
        assert!(glob_match("usb:v0BDAp8153d[3-9]*", "usb:v0BDAp8153d3100"));
        assert!(!glob_match("usb:v0BDAp8153d[3-9]*", "usb:v0BDAp8153d2100"));
        assert!(glob_match("a?c", "abc") && !glob_match("a?c", "ac"));
    }

    fn db() -> (TempDir, ModuleDb) {
        let d = TempDir::new("modprobe");
        std::fs::write(
            d.path().join("modules.dep"),
            "kernel/net/netfilter/nft_chain_nat.ko: kernel/net/netfilter/nf_nat.ko kernel/net/netfilter/nf_conntrack.ko kernel/lib/libcrc32c.ko\n\
             kernel/net/netfilter/nf_nat.ko: kernel/net/netfilter/nf_conntrack.ko kernel/lib/libcrc32c.ko\n\
             kernel/net/netfilter/nf_conntrack.ko: kernel/lib/libcrc32c.ko\n\
             kernel/lib/libcrc32c.ko:\n\
             kernel/fs/9p/9p.ko.xz: kernel/net/9p/9pnet.ko\n\
             kernel/net/9p/9pnet.ko:\n",
        )
        .unwrap();
        std::fs::write(d.path().join("modules.alias"), "# Aliases\nalias nft-chain-2-nat nft_chain_nat\nalias fs-9p 9p\nalias virtio:d00000009v* 9pnet_virtio\n").unwrap();
        std::fs::write(d.path().join("modules.builtin"), "kernel/drivers/virtio/virtio_mmio.ko\n").unwrap();
        let db = ModuleDb::load(d.path()).unwrap();
        (d, db)
    }

    #[test]
    fn resolves_names_aliases_and_builtins() {
        let (_d, db) = db();
        assert_eq!(db.resolve("nft-chain-2-nat"), ["nft_chain_nat"]);
        assert_eq!(db.resolve("nf-nat"), ["nf_nat"]);
        assert_eq!(db.resolve("fs-9p"), ["9p"]);
        assert_eq!(db.resolve("virtio:d00000009v00001AF4"), ["9pnet_virtio"]);
        assert_eq!(db.resolve("virtio-mmio"), ["virtio_mmio"]);
        assert!(db.is_builtin("virtio_mmio"));
        assert!(db.resolve("nonexistent").is_empty());
    }

    #[test]
    fn dependencies_load_first() {
        let (d, db) = db();
        let order: Vec<String> = db
            .load_order("nft_chain_nat")
            .iter()
            .map(|p| p.strip_prefix(d.path()).unwrap().to_string_lossy().rsplit('/').next().unwrap().to_string())
            .collect();
        assert_eq!(order, ["libcrc32c.ko", "nf_conntrack.ko", "nf_nat.ko", "nft_chain_nat.ko"]);
        assert_eq!(db.load_order("9p").last().unwrap().file_name().unwrap(), "9p.ko.xz");
    }
}
