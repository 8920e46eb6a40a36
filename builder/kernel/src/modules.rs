//! A kernel's modules as found in a [`Tree`]: discovery, dependency
//! information (from `modules.dep` when shipped, else from each module's
//! `.modinfo`), and the load-order closure of a requested list.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use dinv_fstree::{Content, Meta, Node, NodeKind, Replace, Tree, TreePath};

use crate::alias::alias_matches;
use crate::compress::Compression;
use crate::elf::Elf;
use crate::modinfo::{parse_builtin_modinfo, ModInfo};
use crate::KernelError;

pub use crate::names::normalize_name;

/// A module's name from its file name, as kmod derives it: everything
/// before the first `.`, with `-` turned into `_` (`crc32c-intel.ko.xz` →
/// `crc32c_intel`).
fn module_name_of_file(file_name: &str) -> String {
    normalize_name(file_name.split('.').next().unwrap_or(file_name))
}

/// One module file of the kernel.
#[derive(Debug)]
pub struct ModuleFile {
    /// Canonical module name (underscores).
    pub name: String,
    /// Path relative to the modules directory, as `modules.dep` spells it
    /// (`kernel/fs/ext4/ext4.ko.xz`).
    pub rel: String,
    /// Where the file is in the tree.
    pub path: TreePath,
    pub compression: Compression,
    content: Content,
    parsed: OnceLock<Parsed>,
}

/// What is read from a module's ELF, once.
#[derive(Debug)]
struct Parsed {
    info: ModInfo,
    exports: Vec<String>,
    needs: Option<Vec<String>>,
}

impl ModuleFile {
    /// The module's uncompressed ELF bytes.
    pub fn bytes(&self) -> Result<Vec<u8>, KernelError> {
        let bad = |e: std::io::Error| KernelError::ModuleFile {
            path: self.path.to_string(),
            why: format!("cannot read/decompress: {e}"),
        };
        self.compression.decompress(self.content.reader()).map_err(bad)
    }

    /// The file's bytes as stored (possibly compressed).
    pub fn content(&self) -> &Content {
        &self.content
    }

    /// `rel` without the compression suffix (`kernel/fs/ext4/ext4.ko`).
    pub fn uncompressed_rel(&self) -> String {
        let file = self.rel.rsplit('/').next().unwrap_or(&self.rel);
        let stem = Compression::split_module_name(file).map(|(s, _)| s).unwrap_or(file);
        let dir = &self.rel[..self.rel.len() - file.len()];
        format!("{dir}{stem}.ko")
    }

    /// The parsed `.modinfo` (read once, then cached).
    pub fn info(&self) -> Result<&ModInfo, KernelError> {
        Ok(&self.parsed()?.info)
    }

    /// The symbols this module exports, as kmod's depmod reads them: the
    /// `__crc_*` symbols of its symbol table without that prefix (kernels
    /// with modversions), else the strings of `__ksymtab_strings` (empty
    /// ones skipped). Read with [`ModuleFile::info`], once.
    pub fn exported_symbols(&self) -> Result<&[String], KernelError> {
        Ok(&self.parsed()?.exports)
    }

    /// The symbols this module needs from elsewhere, in depmod's order:
    /// the undefined symbols of its symbol table, then `__versions` entries
    /// that name none of them. `None` when the module has no usable
    /// `.symtab`/`.strtab` (depmod then sees no dependencies).
    pub fn needed_symbols(&self) -> Result<Option<&[String]>, KernelError> {
        Ok(self.parsed()?.needs.as_deref())
    }

    fn parsed(&self) -> Result<&Parsed, KernelError> {
        if let Some(p) = self.parsed.get() {
            return Ok(p);
        }
        let bytes = self.bytes()?;
        let bad = |why: String| KernelError::ModuleFile {
            path: self.path.to_string(),
            why,
        };
        let elf = Elf::parse(&bytes).map_err(bad)?;
        let info = ModInfo::from_parsed(&elf).map_err(bad)?;
        let parsed = Parsed {
            info,
            exports: elf.exported_symbols(),
            needs: elf.needed_symbols(),
        };
        Ok(self.parsed.get_or_init(|| parsed))
    }
}

/// What [`ModuleSet::decompress_in`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decompressed {
    /// Modules now stored uncompressed.
    pub modules: usize,
    /// Their size as they were stored, compressed.
    pub stored_bytes: u64,
    /// Their size now.
    pub bytes: u64,
}

/// What [`ModuleSet::strip_signatures_in`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unsigned {
    /// Modules whose signature was cut off.
    pub modules: usize,
    /// The bytes that went.
    pub bytes: u64,
}

/// What ends a signed module (the kernel's `MODULE_SIG_STRING`).
pub const MODULE_SIG_MAGIC: &[u8] = b"~Module signature appended~\n";

/// A module's bytes without its appended signature: before the magic comes
/// the 12-byte `struct module_signature`, whose last field is the
/// big-endian length of the PKCS#7 blob before it. `None` for an unsigned
/// module; an error for a trailer that does not add up.
pub fn without_signature(bytes: &[u8]) -> Result<Option<&[u8]>, String> {
    let Some(rest) = bytes.strip_suffix(MODULE_SIG_MAGIC) else { return Ok(None) };
    let Some(body) = rest.len().checked_sub(12) else {
        return Err("the signature trailer is cut short".into());
    };
    let sig_len = u32::from_be_bytes(rest[body + 8..body + 12].try_into().expect("4 bytes")) as usize;
    let Some(elf) = body.checked_sub(sig_len) else {
        return Err(format!("the signature's length ({sig_len} bytes) is more than the file holds"));
    };
    Ok(Some(&rest[..elf]))
}

/// The order to load modules in, from [`ModuleSet::closure`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Closure {
    /// Canonical names, every module after all of its dependencies.
    pub modules: Vec<String>,
    /// Requested names that are built into the kernel (nothing to load).
    pub builtin: Vec<String>,
    /// Soft dependencies that matched nothing, as (module, softdep); modprobe
    /// ignores those too.
    pub unresolved_softdeps: Vec<(String, String)>,
}

/// All modules of one kernel release in a tree.
#[derive(Debug)]
pub struct ModuleSet {
    release: String,
    dir: TreePath,
    modules: BTreeMap<String, ModuleFile>,
    /// Built-in modules by name, with their info when
    /// `modules.builtin.modinfo` is shipped (for aliases).
    builtin: BTreeMap<String, ModInfo>,
    /// Dependencies from a shipped `modules.dep` (by module name).
    dep_file: Option<BTreeMap<String, Vec<String>>>,
    /// Whether the tree already has a `modules.builtin`.
    builtin_file_shipped: bool,
    /// The shipped `modules.builtin`, `modules.builtin.modinfo` and
    /// `modules.order`, as read (depmod's binary indexes and module order
    /// come from them).
    builtin_text: Option<Vec<u8>>,
    builtin_modinfo: Option<Vec<u8>>,
    order: Option<Vec<u8>>,
    alias_index: OnceLock<Vec<(String, String)>>,
}

/// What a name (module, built-in or alias) stands for.
enum Lookup {
    Modules(Vec<String>),
    Builtin,
    Nothing,
}

impl ModuleSet {
    /// Finds `/lib/modules/<release>` or `/usr/lib/modules/<release>`
    /// (following symlinks such as a merged-/usr `lib -> usr/lib`) and
    /// indexes every `.ko`, `.ko.gz`, `.ko.xz`, `.ko.zst` below it.
    pub fn load(tree: &Tree, release: &str) -> Result<ModuleSet, KernelError> {
        let dir = ["lib/modules", "usr/lib/modules"]
            .iter()
            .filter_map(|base| tree.resolve(&TreePath::new(&format!("{base}/{release}"))))
            .find(|p| tree.get(p).is_some_and(|n| n.is_dir()))
            .ok_or_else(|| KernelError::NoModulesDir { release: release.to_string() })?;
        let mut modules: BTreeMap<String, ModuleFile> = BTreeMap::new();
        for (path, node) in tree.subtree(&dir) {
            let content = match &node.kind {
                NodeKind::File(c) => c.clone(),
                NodeKind::Hardlink(_) => match tree.resolve(path).and_then(|p| follow_hardlink(tree, &p)) {
                    Some(c) => c,
                    None => continue,
                },
                _ => continue,
            };
            let Some((_, compression)) = Compression::split_module_name(path.file_name()) else {
                continue;
            };
            let rel = path.as_str()[dir.as_str().len() + 1..].to_string();
            // depmod never looks into (or at) anything named build or source.
            if rel.split('/').any(|c| c == "build" || c == "source") {
                continue;
            }
            let name = module_name_of_file(path.file_name());
            let file = ModuleFile {
                name: name.clone(),
                rel,
                path: path.clone(),
                compression,
                content,
                parsed: OnceLock::new(),
            };
            // depmod's rule for duplicates: updates/ overrides everything.
            match modules.get(&name) {
                Some(existing) if !file.rel.starts_with("updates/") || existing.rel.starts_with("updates/") => {}
                _ => {
                    modules.insert(name, file);
                }
            }
        }
        let read = |name: &str| tree.read_file(&dir.join(name).expect("constant name"));
        let builtin_modinfo = read("modules.builtin.modinfo");
        let mut builtin: BTreeMap<String, ModInfo> = builtin_modinfo.as_deref().map(parse_builtin_modinfo).unwrap_or_default();
        let builtin_text = read("modules.builtin");
        let builtin_file_shipped = builtin_text.is_some();
        if let Some(text) = &builtin_text {
            for line in String::from_utf8_lossy(text).lines() {
                let file = line.trim().rsplit('/').next().unwrap_or("");
                if let Some((stem, _)) = Compression::split_module_name(file) {
                    builtin.entry(normalize_name(stem)).or_default();
                }
            }
        }
        let dep_file = read("modules.dep").map(|b| parse_modules_dep(&String::from_utf8_lossy(&b)));
        let order = read("modules.order");
        Ok(ModuleSet {
            release: release.to_string(),
            dir,
            modules,
            builtin,
            dep_file,
            builtin_file_shipped,
            builtin_text,
            builtin_modinfo,
            order,
            alias_index: OnceLock::new(),
        })
    }

    /// The kernel release (`uname -r`) these modules belong to.
    pub fn release(&self) -> &str {
        &self.release
    }

    /// The modules directory in the tree (symlinks resolved).
    pub fn dir(&self) -> &TreePath {
        &self.dir
    }

    /// A module by name (`-` and `_` equivalent).
    pub fn get(&self, name: &str) -> Option<&ModuleFile> {
        self.modules.get(&normalize_name(name))
    }

    /// All module files, by canonical name.
    pub fn iter(&self) -> impl Iterator<Item = &ModuleFile> {
        self.modules.values()
    }

    /// Number of module files.
    pub fn len(&self) -> usize {
        self.modules.len()
    }

    /// True when the kernel has no loadable modules.
    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }

    /// True when `name` is built into the kernel (per `modules.builtin`).
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains_key(&normalize_name(name))
    }

    /// Built-in modules with what `modules.builtin.modinfo` says about them.
    pub fn builtin(&self) -> &BTreeMap<String, ModInfo> {
        &self.builtin
    }

    /// True when dependencies come from a shipped `modules.dep`.
    pub fn has_modules_dep(&self) -> bool {
        self.dep_file.is_some()
    }

    /// True when the tree already has a `modules.builtin`.
    pub fn has_modules_builtin(&self) -> bool {
        self.builtin_file_shipped
    }

    /// The shipped `modules.order` (one module path per line, the order
    /// `make modules_install` lists them), if any.
    pub fn modules_order(&self) -> Option<&[u8]> {
        self.order.as_deref()
    }

    /// The shipped `modules.builtin`, if any.
    pub(crate) fn builtin_text(&self) -> Option<&[u8]> {
        self.builtin_text.as_deref()
    }

    /// The shipped `modules.builtin.modinfo`, if any.
    pub(crate) fn builtin_modinfo(&self) -> Option<&[u8]> {
        self.builtin_modinfo.as_deref()
    }

    /// Canonical names of the modules whose path below the modules
    /// directory starts with `prefix` (`kernel/net/netfilter/`), sorted.
    pub fn under(&self, prefix: &str) -> Vec<String> {
        self.modules.values().filter(|m| m.rel.starts_with(prefix)).map(|m| m.name.clone()).collect()
    }

    /// True when `name` is a module, a built-in module, or an alias that
    /// matches one, as modprobe would resolve it.
    pub fn resolves(&self, name: &str) -> Result<bool, KernelError> {
        Ok(!matches!(self.lookup(name)?, Lookup::Nothing))
    }

    /// Keeps only the modules named in `keep` (canonical names) and returns
    /// the others, which the caller removes from the tree. Built-in modules
    /// and the shipped index inputs stay as they are; depmod's files made
    /// afterwards describe exactly the kept set.
    pub fn retain(&mut self, keep: &BTreeSet<String>) -> Vec<ModuleFile> {
        let (kept, dropped): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut self.modules).into_iter().partition(|(n, _)| keep.contains(n));
        self.modules = kept;
        self.alias_index = OnceLock::new();
        dropped.into_values().collect()
    }

    /// Stores every compressed module (`.ko.xz`, `.ko.zst`, `.ko.gz`) of
    /// the set uncompressed in `tree`, as `.ko` beside where it was (same
    /// owner, mode and time), so that modprobe in the guest does not
    /// decompress it at every load. depmod's files made afterwards name
    /// the `.ko` files; the module order is the same (kmod matches
    /// `modules.order` by the `.ko` name either way).
    pub fn decompress_in(&mut self, tree: &mut Tree) -> Result<Decompressed, KernelError> {
        let mut done = Decompressed::default();
        for m in self.modules.values_mut().filter(|m| m.compression != Compression::None) {
            let bytes = m.bytes()?;
            let rel = m.uncompressed_rel();
            let path = self.dir.join(&rel).map_err(|e| KernelError::ModuleFile { path: m.path.to_string(), why: format!("{e}") })?;
            let meta = tree.get(&m.path).map(|n| n.meta.clone()).unwrap_or_else(|| Meta::root(0o644));
            let content = Content::from_bytes(bytes);
            tree.remove(&m.path);
            // The tree and the set share the one copy of the bytes.
            tree.insert(path.clone(), Node::new(NodeKind::File(content.clone()), meta), Replace::Allow).map_err(KernelError::tree(format!("writing {path}")))?;
            done.modules += 1;
            done.stored_bytes += m.content.len();
            done.bytes += content.len();
            m.rel = rel;
            m.path = path;
            m.compression = Compression::None;
            m.content = content;
        }
        Ok(done)
    }

    /// Cuts the appended signature off every uncompressed module of the set
    /// in `tree` (same path, owner, mode and time). The kernel then loads
    /// them without checking a signature, as it does for any unsigned
    /// module unless `module.sig_enforce` or lockdown asks otherwise (and
    /// marks itself tainted, `E`). Compressed modules are left as they are.
    pub fn strip_signatures_in(&mut self, tree: &mut Tree) -> Result<Unsigned, KernelError> {
        let mut done = Unsigned::default();
        for m in self.modules.values_mut().filter(|m| m.compression == Compression::None) {
            let bytes = m.bytes()?;
            let elf = without_signature(&bytes).map_err(|why| KernelError::ModuleFile { path: m.path.to_string(), why })?;
            let Some(elf) = elf else { continue };
            let content = Content::from_bytes(elf.to_vec());
            done.modules += 1;
            done.bytes += (bytes.len() - elf.len()) as u64;
            let node = tree.get_mut(&m.path).ok_or_else(|| KernelError::ModuleFile { path: m.path.to_string(), why: "not in the tree".into() })?;
            // The tree and the set share the one copy of the bytes.
            node.kind = NodeKind::File(content.clone());
            m.content = content;
        }
        Ok(done)
    }

    /// Direct dependencies of a module (from `modules.dep` if shipped, else
    /// its `depends=`), as canonical names.
    pub fn depends(&self, m: &ModuleFile) -> Result<Vec<String>, KernelError> {
        if let Some(deps) = self.dep_file.as_ref().and_then(|d| d.get(&m.name)) {
            return Ok(deps.clone());
        }
        Ok(m.info()?.depends.iter().map(|d| normalize_name(d)).collect())
    }

    /// Every (alias pattern, module) pair of the loadable modules, reading
    /// each module's `.modinfo` on first use.
    pub fn aliases(&self) -> Result<&[(String, String)], KernelError> {
        if let Some(a) = self.alias_index.get() {
            return Ok(a);
        }
        let mut index = Vec::new();
        for m in self.modules.values() {
            for a in &m.info()?.aliases {
                index.push((a.clone(), m.name.clone()));
            }
        }
        Ok(self.alias_index.get_or_init(|| index))
    }

    /// Resolves a name the way modprobe does: module name, built-in name,
    /// module aliases (all matches, sorted), built-in aliases.
    fn lookup(&self, name: &str) -> Result<Lookup, KernelError> {
        let norm = normalize_name(name);
        if self.modules.contains_key(&norm) {
            return Ok(Lookup::Modules(vec![norm]));
        }
        if self.builtin.contains_key(&norm) {
            return Ok(Lookup::Builtin);
        }
        let mut hits: BTreeSet<String> = BTreeSet::new();
        for (pattern, module) in self.aliases()? {
            if alias_matches(pattern, name) {
                hits.insert(module.clone());
            }
        }
        if !hits.is_empty() {
            return Ok(Lookup::Modules(hits.into_iter().collect()));
        }
        if self.builtin.values().any(|i| i.aliases.iter().any(|a| alias_matches(a, name))) {
            return Ok(Lookup::Builtin);
        }
        Ok(Lookup::Nothing)
    }

    /// The requested modules (names or aliases) plus everything they need,
    /// in load order: dependencies and `softdep pre:` first, `softdep
    /// post:` after. Deterministic for the same kernel and request.
    pub fn closure<S: AsRef<str>>(&self, requested: &[S]) -> Result<Closure, KernelError> {
        let mut walk = Walk {
            set: self,
            state: HashMap::new(),
            stack: Vec::new(),
            out: Closure::default(),
        };
        for r in requested {
            let r = r.as_ref();
            match self.lookup(r)? {
                Lookup::Modules(ms) => {
                    for m in ms {
                        walk.visit(&m, false)?;
                    }
                }
                Lookup::Builtin => {
                    if !walk.out.builtin.iter().any(|b| b == r) {
                        walk.out.builtin.push(r.to_string());
                    }
                }
                Lookup::Nothing => {
                    return Err(KernelError::ModuleNotFound {
                        release: self.release.clone(),
                        module: r.to_string(),
                        why: format!("is not a module under {}, not built in, and matches no module alias", self.dir),
                    })
                }
            }
        }
        Ok(walk.out)
    }
}

/// A hard link's target content.
fn follow_hardlink(tree: &Tree, path: &TreePath) -> Option<Content> {
    let mut p = path.clone();
    for _ in 0..40 {
        match &tree.get(&p)?.kind {
            NodeKind::File(c) => return Some(c.clone()),
            NodeKind::Hardlink(t) => p = t.clone(),
            _ => return None,
        }
    }
    None
}

/// `kernel/a/x.ko: kernel/b/y.ko kernel/c/z.ko` → x → [y, z].
fn parse_modules_dep(text: &str) -> BTreeMap<String, Vec<String>> {
    let name_of = |rel: &str| {
        let file = rel.rsplit('/').next().unwrap_or(rel);
        Compression::split_module_name(file).map(|(s, _)| normalize_name(s))
    };
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some((m, deps)) = line.split_once(':') else {
            continue;
        };
        let Some(m) = name_of(m.trim()) else { continue };
        out.insert(m, deps.split_whitespace().filter_map(name_of).collect());
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    Visiting,
    Done,
}

/// Depth-first post-order walk that produces the load order.
struct Walk<'a> {
    set: &'a ModuleSet,
    state: HashMap<String, Mark>,
    stack: Vec<String>,
    out: Closure,
}

impl Walk<'_> {
    fn visit(&mut self, name: &str, soft: bool) -> Result<(), KernelError> {
        match self.state.get(name) {
            Some(Mark::Done) => return Ok(()),
            // A soft dependency back into the current chain is ignored (as
            // modprobe does); a hard one is a real cycle.
            Some(Mark::Visiting) if soft => return Ok(()),
            Some(Mark::Visiting) => {
                let start = self.stack.iter().position(|s| s == name).unwrap_or(0);
                let mut cycle = self.stack[start..].to_vec();
                cycle.push(name.to_string());
                return Err(KernelError::ModuleCycle {
                    release: self.set.release.clone(),
                    cycle,
                });
            }
            None => {}
        }
        let set = self.set;
        let m = set.modules.get(name).expect("visit is only called with known modules");
        self.state.insert(name.to_string(), Mark::Visiting);
        self.stack.push(name.to_string());
        let info = m.info()?;
        for pre in &info.softdep_pre {
            self.visit_soft(name, pre)?;
        }
        for dep in set.depends(m)? {
            if set.modules.contains_key(&dep) {
                self.visit(&dep, false)?;
            } else if !set.builtin.contains_key(&dep) {
                return Err(KernelError::ModuleNotFound {
                    release: set.release.clone(),
                    module: dep,
                    why: format!("is needed by {} ({}) but is not under {} and not built in", name, m.rel, set.dir),
                });
            }
        }
        self.stack.pop();
        self.state.insert(name.to_string(), Mark::Done);
        self.out.modules.push(name.to_string());
        for post in &info.softdep_post {
            self.visit_soft(name, post)?;
        }
        Ok(())
    }

    fn visit_soft(&mut self, from: &str, softdep: &str) -> Result<(), KernelError> {
        match self.set.lookup(softdep)? {
            Lookup::Modules(ms) => {
                for m in ms {
                    self.visit(&m, true)?;
                }
            }
            Lookup::Builtin => {}
            Lookup::Nothing => self.out.unresolved_softdeps.push((from.to_string(), softdep.to_string())),
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::modinfo::tests::{fake_module_with, FakeSymbols};
    use dinv_fstree::Meta;

    /// A tree with fake modules: (relative path, modinfo lines).
    pub(crate) fn fake_tree(release: &str, mods: &[(&str, &str)]) -> Tree {
        let with: Vec<(&str, &str, FakeSymbols)> = mods.iter().map(|(r, i)| (*r, *i, FakeSymbols::default())).collect();
        fake_tree_with(release, &with)
    }

    /// A tree with fake modules that also export and need symbols.
    pub(crate) fn fake_tree_with(release: &str, mods: &[(&str, &str, FakeSymbols)]) -> Tree {
        let mut t = Tree::new();
        for (rel, info, syms) in mods {
            let elf = fake_module_with(info, *syms);
            let (_, c) = Compression::split_module_name(rel.rsplit('/').next().unwrap()).unwrap();
            let bytes = match c {
                Compression::None => elf,
                Compression::Zstd => zstd::encode_all(&elf[..], 3).unwrap(),
                Compression::Xz => {
                    use std::io::Write;
                    let mut w = liblzma::write::XzEncoder::new(Vec::new(), 1);
                    w.write_all(&elf).unwrap();
                    w.finish().unwrap()
                }
                Compression::Gzip => {
                    use std::io::Write;
                    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    w.write_all(&elf).unwrap();
                    w.finish().unwrap()
                }
            };
            t.write_file(&TreePath::new(&format!("usr/lib/modules/{release}/{rel}")), bytes, Meta::root(0o644))
                .unwrap();
        }
        t.symlink(&TreePath::new("lib"), "usr/lib").unwrap();
        t
    }

    fn sample() -> Tree {
        let mut t = fake_tree(
            "6.1-test",
            &[
                ("kernel/drivers/virtio/virtio_ring.ko", "name=virtio_ring\ndepends="),
                ("kernel/drivers/virtio/virtio.ko.xz", "name=virtio\ndepends=virtio_ring"),
                (
                    "kernel/drivers/virtio/virtio_mmio.ko.zst",
                    "name=virtio_mmio\ndepends=virtio,virtio_ring\nalias=acpi*:LNRO0005:*",
                ),
                (
                    "kernel/drivers/block/virtio_blk.ko.gz",
                    "name=virtio_blk\ndepends=virtio,virtio_ring\nalias=virtio:d00000002v*",
                ),
                (
                    "kernel/fs/ext4/ext4.ko",
                    "name=ext4\ndepends=jbd2,mbcache,crc16\nsoftdep=pre: crypto-crc32c\nalias=fs-ext4",
                ),
                ("kernel/fs/jbd2/jbd2.ko", "name=jbd2\ndepends=\nsoftdep=pre: crypto-crc32c"),
                ("kernel/fs/mbcache.ko", "name=mbcache\ndepends="),
                ("kernel/lib/crc16.ko", "name=crc16\ndepends="),
                ("kernel/crypto/crc32c_generic.ko", "name=crc32c_generic\nalias=crypto-crc32c\nalias=crc32c"),
                ("kernel/arch/x86/crypto/crc32c-intel.ko", "name=crc32c_intel\nalias=crypto-crc32c\nalias=crc32c"),
                ("kernel/a/loop_a.ko", "name=loop_a\ndepends=loop_b"),
                ("kernel/a/loop_b.ko", "name=loop_b\ndepends=loop_a"),
                ("kernel/a/needs_ghost.ko", "name=needs_ghost\ndepends=ghost"),
                (
                    "kernel/a/needs_builtin.ko",
                    "name=needs_builtin\ndepends=unix\nsoftdep=pre: nothing-matches post: crc16",
                ),
            ],
        );
        t.write_file(
            &TreePath::new("usr/lib/modules/6.1-test/modules.builtin"),
            "kernel/net/unix/unix.ko\n",
            Meta::root(0o644),
        )
        .unwrap();
        t.write_file(
            &TreePath::new("usr/lib/modules/6.1-test/modules.builtin.modinfo"),
            "unix.alias=net-pf-1\0",
            Meta::root(0o644),
        )
        .unwrap();
        t
    }

    #[test]
    fn finds_modules_through_the_lib_symlink() {
        let t = sample();
        let s = ModuleSet::load(&t, "6.1-test").unwrap();
        assert_eq!(s.dir().as_str(), "usr/lib/modules/6.1-test");
        assert_eq!(s.len(), 14);
        let intel = s.get("crc32c-intel").unwrap();
        assert_eq!(intel.name, "crc32c_intel");
        assert_eq!(intel.rel, "kernel/arch/x86/crypto/crc32c-intel.ko");
        assert_eq!(s.get("virtio").unwrap().uncompressed_rel(), "kernel/drivers/virtio/virtio.ko");
        assert_eq!(s.get("virtio_blk").unwrap().info().unwrap().depends, ["virtio", "virtio_ring"]);
        assert!(s.is_builtin("unix") && !s.has_modules_dep());
        let e = ModuleSet::load(&t, "9.9").unwrap_err();
        assert!(e.to_string().contains("/lib/modules/9.9"), "{e}");
    }

    #[test]
    fn closure_puts_dependencies_first() {
        let s = ModuleSet::load(&sample(), "6.1-test").unwrap();
        let c = s.closure(&["virtio_mmio", "virtio-blk", "ext4", "unix"]).unwrap();
        assert_eq!(
            c.modules,
            [
                "virtio_ring",
                "virtio",
                "virtio_mmio",
                "virtio_blk",
                "crc32c_generic",
                "crc32c_intel",
                "jbd2",
                "mbcache",
                "crc16",
                "ext4"
            ]
        );
        assert_eq!(c.builtin, ["unix"]);
        // Same request, same order; aliases resolve too.
        assert_eq!(s.closure(&["virtio_mmio", "virtio-blk", "ext4", "unix"]).unwrap(), c);
        assert_eq!(s.closure(&["fs-ext4"]).unwrap().modules.last().unwrap(), "ext4");
        assert!(s.closure(&["net-pf-1"]).unwrap().modules.is_empty());
        let c = s.closure(&["needs_builtin"]).unwrap();
        assert_eq!(c.modules, ["needs_builtin", "crc16"]);
        assert_eq!(c.unresolved_softdeps, [("needs_builtin".to_string(), "nothing-matches".to_string())]);
    }

    #[test]
    fn retain_keeps_a_closure_and_forgets_the_rest() {
        let mut s = ModuleSet::load(&sample(), "6.1-test").unwrap();
        assert_eq!(s.under("kernel/drivers/virtio/"), ["virtio", "virtio_mmio", "virtio_ring"]);
        assert!(s.under("kernel/sound/").is_empty());
        assert!(s.resolves("virtio-blk").unwrap() && s.resolves("fs-ext4").unwrap() && s.resolves("unix").unwrap());
        assert!(!s.resolves("nope").unwrap());
        let keep: BTreeSet<String> = s.closure(&["virtio_blk"]).unwrap().modules.into_iter().collect();
        let dropped: BTreeSet<String> = s.retain(&keep).into_iter().map(|m| m.name).collect();
        assert_eq!(s.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["virtio", "virtio_blk", "virtio_ring"]);
        assert!(dropped.contains("ext4") && dropped.contains("virtio_mmio") && !dropped.contains("virtio"));
        // Aliases of dropped modules no longer resolve; built-ins still do.
        assert!(!s.resolves("fs-ext4").unwrap() && s.resolves("unix").unwrap());
        assert!(s.closure(&["ext4"]).is_err());
    }

    #[test]
    fn closure_errors_name_the_culprit() {
        let s = ModuleSet::load(&sample(), "6.1-test").unwrap();
        let e = s.closure(&["loop_a"]).unwrap_err().to_string();
        assert!(e.contains("loop_a -> loop_b -> loop_a"), "{e}");
        let e = s.closure(&["needs_ghost"]).unwrap_err().to_string();
        assert!(e.contains("\"ghost\"") && e.contains("needed by needs_ghost"), "{e}");
        let e = s.closure(&["nope"]).unwrap_err().to_string();
        assert!(e.contains("6.1-test") && e.contains("\"nope\""), "{e}");
    }

    #[test]
    fn shipped_modules_dep_wins_over_modinfo() {
        let mut t = sample();
        t.write_file(
            &TreePath::new("usr/lib/modules/6.1-test/modules.dep"),
            "kernel/drivers/block/virtio_blk.ko.gz: kernel/drivers/virtio/virtio.ko.xz kernel/drivers/virtio/virtio_ring.ko\nkernel/drivers/virtio/virtio.ko.xz: kernel/drivers/virtio/virtio_ring.ko\nkernel/drivers/virtio/virtio_ring.ko:\nkernel/fs/mbcache.ko: kernel/lib/crc16.ko\n",
            Meta::root(0o644),
        )
        .unwrap();
        let s = ModuleSet::load(&t, "6.1-test").unwrap();
        assert!(s.has_modules_dep());
        assert_eq!(s.closure(&["mbcache"]).unwrap().modules, ["crc16", "mbcache"]);
        assert_eq!(s.closure(&["virtio_blk"]).unwrap().modules, ["virtio_ring", "virtio", "virtio_blk"]);
    }
}
