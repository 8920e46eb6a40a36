//! The index files kmod's `depmod` writes for a kernel's modules, generated
//! at build time so the guest never has to run depmod (package triggers do
//! not run in our builds). kmod's `modprobe` reads only the binary indexes;
//! busybox's and dinv-guest's read the text files.
//!
//! Every file is meant to be byte-identical to what `depmod -b ROOT RELEASE`
//! of kmod 30 writes for the same tree (no `-F`/`-E`: no kernel symbols,
//! no symbol versions checked). The rules, read from kmod's
//! `tools/depmod.c`, `libkmod/libkmod-elf.c`, `shared/hash.c` and
//! `shared/util.c` (tags v30 and v34.2) and reimplemented here:
//!
//! * **Modules.** Every `.ko`, `.ko.gz`, `.ko.xz`, `.ko.zst` below the
//!   modules directory, except below anything named `build` or `source`.
//!   A module's name is its file name up to the first `.`, `-` → `_`.
//! * **Module order.** depmod first lists modules in the iteration order of
//!   its module-name hash table (see [`crate::kmod_hash`]), then, if
//!   `modules.order` exists, stably sorts them: modules whose path (with
//!   `.ko` for any compression suffix) is a line of `modules.order` come
//!   first, by line number (kmod 30: the last line naming a module counts;
//!   kmod 34: the first), then all others in hash-table order (glibc's
//!   `qsort` is a stable merge sort here). A `modules.order` whose last
//!   line lacks its newline is "corrupted" and ignored entirely. Without
//!   `modules.order` the hash-table order stands; we reproduce it exactly
//!   (real kernels ship `modules.order`, so this only matters for odd
//!   trees). A module's *index* (`idx`) is its position in this order; it
//!   is the priority of its values in the `.bin` indexes.
//! * **Symbols.** A module exports the `__crc_*` symbols of its symbol
//!   table, minus that prefix (modversions kernels), or, if it has none,
//!   the non-empty strings of `__ksymtab_strings`
//!   ([`ModuleFile::exported_symbols`]). Modules are read in module order
//!   and a symbol exported twice belongs to the *last* exporter. No symbol
//!   prefix (`-P`) is stripped: none of our architectures has one.
//! * **Dependencies.** A module depends on the owner of every symbol it
//!   needs ([`ModuleFile::needed_symbols`]; a leading `.` is ignored, as on
//!   PPC64), each owner once, in first-need order; symbols nobody exports
//!   (the kernel's own) are ignored. Then a topological sort numbers the
//!   modules: the modules nobody depends on, in module order, form a stack;
//!   the top is popped and numbered next, and each of its dependencies
//!   whose last user that was is pushed. A module's `modules.dep` line lists
//!   all its direct and indirect dependencies by that number, so users
//!   come before what they use. A cycle is an error (depmod fails too).
//!   *Not depmod:* a module without a symbol table (only our test fakes;
//!   the kernel cannot load those) depends on what the shipped
//!   `modules.dep` or its `depends=` say, so fake kernels keep their
//!   dependencies.
//! * **Text files** list modules in module order: `modules.dep`
//!   (`path: dep dep`, paths as stored, compressed suffix included),
//!   `modules.alias` and `modules.softdep` (each `alias=`/`softdep=` of
//!   `.modinfo`, in section order, verbatim), `modules.symbols` (in the
//!   order of depmod's symbol hash table) and `modules.devname` (below).
//! * **`.bin` indexes** ([`crate::kmod_index`]): `modules.dep.bin` maps each
//!   module name to its `modules.dep` line without the newline;
//!   `modules.alias.bin` maps each alias, with `-` → `_` outside `[...]`
//!   (an alias with an unmatched bracket is skipped), to module names;
//!   `modules.symbols.bin` maps `symbol:NAME` to the owner. Priorities are
//!   module indexes. `modules.builtin.bin` maps the name of each
//!   `modules.builtin` line starting with a letter (file name up to the
//!   first `.`, `-` → `_`) to an empty value of priority 0;
//!   `modules.builtin.alias.bin` maps each normalised `NAME.alias=VALUE`
//!   of `modules.builtin.modinfo` to `NAME` (as spelled there), priority 0,
//!   so equal aliases list their modules newest first.
//! * **Missing inputs.** Without `modules.builtin` (shipped, or generated
//!   here from `modules.builtin.modinfo`'s `file=` entries) depmod still
//!   creates `modules.builtin.bin`, but empty (0 bytes); likewise
//!   `modules.builtin.alias.bin` without `modules.builtin.modinfo`.
//!   `modules.devname` with no device names is an empty file, too.
//! * **`modules.devname`**: for each module (in order) with an
//!   `alias=devname:NAME` and an `alias=char-major-MAJ-MIN` or
//!   `alias=block-major-MAJ-MIN` (the last of each kind before both are
//!   seen), `MODULE NAME cMAJ:MIN` (or `b`), after a header line written
//!   before the first entry only.
//!
//! kmod 30 → 34.2 (checked in the source): the text files and the trie's
//! contents are the same, but kmod 34 (a) also writes `modules.weakdep`
//! (`weakdep MODULE VALUE` per `weakdep=`, under its own header), which
//! libkmod 34 reads like `modules.softdep` (we write it too; kmod 30
//! ignores it); (b) writes the `.bin` tries in pre-order instead of
//! post-order (different bytes, same lookups: readers follow offsets, so
//! kmod 34 reads our kmod 30 layout); (c) lets the first, not the last,
//! `modules.order` line of a module count; (d) rejects a
//! `__ksymtab_strings` that does not end in NUL. Neither writes a text
//! `modules.builtin.alias`; we write one for busybox-style readers.

use std::collections::HashMap;
use std::fmt::Write;

use dinv_fstree::{Meta, Tree, TreePath};

use crate::kmod_hash::{sort_in_hash_order, MODULE_BUCKETS, SYMBOL_BUCKETS};
use crate::kmod_index::KmodIndex;
use crate::{KernelError, ModuleFile, ModuleSet};

/// One generated file: its path in the guest tree and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedFile {
    pub path: TreePath,
    pub bytes: Vec<u8>,
}

/// Every file kmod's `depmod` (version 30) writes, in the order it writes
/// them; [`depmod_files`] produces each of them byte for byte.
pub const KMOD_DEPMOD_FILES: [&str; 10] = [
    "modules.dep",
    "modules.dep.bin",
    "modules.alias",
    "modules.alias.bin",
    "modules.softdep",
    "modules.symbols",
    "modules.symbols.bin",
    "modules.builtin.bin",
    "modules.builtin.alias.bin",
    "modules.devname",
];

/// Generates depmod's files for every module of `set`, placed in its
/// modules directory: `modules.dep`, `.dep.bin`, `.alias`, `.alias.bin`,
/// `.softdep`, `.weakdep`, `.symbols`, `.symbols.bin`, `.builtin.bin`,
/// `.builtin.alias.bin`, `.devname` (as kmod's depmod writes them, see the
/// module documentation), plus a text `modules.builtin.alias`, and
/// `modules.builtin` when the kernel did not ship one and
/// `modules.builtin.modinfo` names the files.
pub fn depmod_files(set: &ModuleSet) -> Result<Vec<GeneratedFile>, KernelError> {
    let d = Depmod::new(set)?;
    let index_err = |file: &str| {
        let file = file.to_string();
        move |why: String| KernelError::ModuleFile {
            path: format!("{}/{file}", set.dir()),
            why,
        }
    };

    let mut dep = String::new();
    let mut dep_bin = KmodIndex::new();
    let mut alias = String::from("# Aliases extracted from modules themselves.\n");
    let mut alias_bin = KmodIndex::new();
    let mut softdep = String::from("# Soft dependencies extracted from modules themselves.\n");
    let mut weakdep = String::from("# Weak dependencies extracted from modules themselves.\n");
    let mut devname = String::new();
    for (idx, m) in d.mods.iter().enumerate() {
        let mut line = format!("{}:", m.rel);
        for &x in &d.all_deps[idx] {
            let _ = write!(line, " {}", d.mods[x].rel);
        }
        dep_bin.insert(&m.name, &line, idx as u32).map_err(index_err("modules.dep.bin"))?;
        dep.push_str(&line);
        dep.push('\n');
        let info = m.info()?;
        for (k, v) in &info.raw {
            match k.as_str() {
                "alias" => {
                    let _ = writeln!(alias, "alias {v} {}", m.name);
                    if let Some(a) = normalize_alias(v) {
                        alias_bin.insert(&a, &m.name, idx as u32).map_err(index_err("modules.alias.bin"))?;
                    }
                }
                "softdep" => {
                    let _ = writeln!(softdep, "softdep {} {v}", m.name);
                }
                "weakdep" => {
                    let _ = writeln!(weakdep, "weakdep {} {v}", m.name);
                }
                _ => {}
            }
        }
        if let Some(line) = devname_line(&m.name, info.raw.iter().filter(|(k, _)| k == "alias").map(|(_, v)| v.as_str())) {
            if devname.is_empty() {
                devname.push_str("# Device nodes to trigger on-demand module loading.\n");
            }
            devname.push_str(&line);
        }
    }

    let mut symbols = String::from("# Aliases for symbols, used by symbol_request().\n");
    let mut symbols_bin = KmodIndex::new();
    let mut owned: Vec<(&str, usize)> = d.owner.iter().map(|(s, o)| (s.as_str(), *o)).collect();
    sort_in_hash_order(&mut owned, SYMBOL_BUCKETS, |(s, _)| s);
    for (sym, owner) in owned {
        let name = &d.mods[owner].name;
        let _ = writeln!(symbols, "alias symbol:{sym} {name}");
        symbols_bin
            .insert(&format!("symbol:{sym}"), name, owner as u32)
            .map_err(index_err("modules.symbols.bin"))?;
    }

    let mut builtin_alias = String::new();
    let mut builtin = String::new();
    for (name, info) in set.builtin() {
        for a in &info.aliases {
            let _ = writeln!(builtin_alias, "alias {a} {name}");
        }
        if let Some((_, file)) = info.raw.iter().find(|(k, _)| k == "file") {
            let _ = writeln!(builtin, "kernel/{file}.ko");
        }
    }
    let generate_builtin = !set.has_modules_builtin() && !builtin.is_empty();
    let builtin_text: Option<&[u8]> = if generate_builtin { Some(builtin.as_bytes()) } else { set.builtin_text() };
    let builtin_bin = match builtin_text {
        Some(text) => builtin_index(text).map_err(index_err("modules.builtin.bin"))?.to_bytes(),
        None => Vec::new(),
    };
    let builtin_alias_bin = match set.builtin_modinfo() {
        Some(modinfo) => builtin_alias_index(modinfo).map_err(index_err("modules.builtin.alias.bin"))?.to_bytes(),
        None => Vec::new(),
    };

    let at = |name: &str, bytes: Vec<u8>| GeneratedFile {
        path: set.dir().join(name).expect("constant name"),
        bytes,
    };
    let mut out = vec![
        at("modules.dep", dep.into_bytes()),
        at("modules.dep.bin", dep_bin.to_bytes()),
        at("modules.alias", alias.into_bytes()),
        at("modules.alias.bin", alias_bin.to_bytes()),
        at("modules.softdep", softdep.into_bytes()),
        at("modules.weakdep", weakdep.into_bytes()),
        at("modules.symbols", symbols.into_bytes()),
        at("modules.symbols.bin", symbols_bin.to_bytes()),
        at("modules.builtin.bin", builtin_bin),
        at("modules.builtin.alias.bin", builtin_alias_bin),
        at("modules.devname", devname.into_bytes()),
        at("modules.builtin.alias", builtin_alias.into_bytes()),
    ];
    if generate_builtin {
        out.push(at("modules.builtin", builtin.into_bytes()));
    }
    Ok(out)
}

/// The modules in depmod's order with everything computed from them.
struct Depmod<'a> {
    /// Modules in depmod's order; a module's position is its `idx`.
    mods: Vec<&'a ModuleFile>,
    /// Symbol → index of the module that owns it.
    owner: HashMap<String, usize>,
    /// Per module: all direct and indirect dependencies, in `modules.dep` order.
    all_deps: Vec<Vec<usize>>,
}

impl<'a> Depmod<'a> {
    fn new(set: &'a ModuleSet) -> Result<Depmod<'a>, KernelError> {
        let mods = module_order(set);
        let pos: HashMap<&str, usize> = mods.iter().enumerate().map(|(i, m)| (m.name.as_str(), i)).collect();

        let mut owner: HashMap<String, usize> = HashMap::new();
        for (i, m) in mods.iter().enumerate() {
            for s in m.exported_symbols()? {
                if !s.is_empty() {
                    owner.insert(s.clone(), i);
                }
            }
        }

        // Direct dependencies, each owner once, in the order first needed.
        let mut deps: Vec<Vec<usize>> = Vec::with_capacity(mods.len());
        let mut users = vec![0usize; mods.len()];
        for m in &mods {
            let mut mine: Vec<usize> = Vec::new();
            let mut add = |d: usize| {
                if !mine.contains(&d) {
                    mine.push(d);
                    users[d] += 1;
                }
            };
            match m.needed_symbols()? {
                Some(needs) => {
                    for s in needs {
                        let s = s.strip_prefix('.').unwrap_or(s);
                        if let Some(&o) = owner.get(s) {
                            add(o);
                        }
                    }
                }
                // No symbol table: not something depmod can read; see the
                // module documentation.
                None => {
                    for d in set.depends(m)? {
                        match pos.get(d.as_str()) {
                            Some(&o) => add(o),
                            None if set.is_builtin(&d) => {}
                            None => {
                                return Err(KernelError::ModuleNotFound {
                                    release: set.release().to_string(),
                                    module: d,
                                    why: format!("is needed by {} ({}) but is not under {} and not built in", m.name, m.rel, set.dir()),
                                })
                            }
                        }
                    }
                }
            }
            deps.push(mine);
        }

        let number = topological_numbers(&deps, users).map_err(|stuck| KernelError::ModuleCycle {
            release: set.release().to_string(),
            cycle: find_cycle(&deps, &stuck).into_iter().map(|i| mods[i].name.clone()).collect(),
        })?;

        let mut all_deps = Vec::with_capacity(mods.len());
        let mut seen = vec![false; mods.len()];
        for i in 0..mods.len() {
            let mut found: Vec<usize> = Vec::new();
            let mut stack: Vec<usize> = deps[i].iter().rev().copied().collect();
            while let Some(d) = stack.pop() {
                if !std::mem::replace(&mut seen[d], true) {
                    found.push(d);
                    stack.extend(deps[d].iter().rev().copied());
                }
            }
            for &d in &found {
                seen[d] = false;
            }
            found.sort_by_key(|&d| number[d]);
            all_deps.push(found);
        }
        Ok(Depmod { mods, owner, all_deps })
    }
}

/// depmod's module order: hash-table order, then stably by `modules.order`.
fn module_order(set: &ModuleSet) -> Vec<&ModuleFile> {
    let mut mods: Vec<&ModuleFile> = set.iter().collect();
    sort_in_hash_order(&mut mods, MODULE_BUCKETS, |m| &m.name);
    let Some(order) = set.modules_order() else {
        return mods;
    };
    // Lines as C's fgets with a PATH_MAX buffer reads them; every one must
    // end with a newline, or depmod ignores the file.
    let lines: Vec<&[u8]> = order.split_inclusive(|b| *b == b'\n').collect();
    if lines.iter().any(|l| l.last() != Some(&b'\n') || l.len() > 4095) {
        return mods;
    }
    let mut line_of: HashMap<&[u8], usize> = HashMap::new();
    for (n, l) in lines.iter().enumerate() {
        // kmod 30: a later line naming the same module wins.
        line_of.insert(&l[..l.len() - 1], n);
    }
    mods.sort_by_key(|m| line_of.get(uncompressed_rel(m).as_bytes()).map_or((1, 0), |&n| (0, n)));
    mods
}

/// The path depmod matches against `modules.order`: the stored path cut
/// after the module name plus three characters (`kernel/a/b.ko.xz` →
/// `kernel/a/b.ko`).
fn uncompressed_rel(m: &ModuleFile) -> &str {
    let dir_len = m.rel.rfind('/').map_or(0, |i| i + 1);
    m.rel.get(..dir_len + m.name.len() + 3).unwrap_or(&m.rel)
}

/// depmod's topological numbering (see the module documentation). `Err`
/// holds the modules left unnumbered (those in or behind a cycle).
fn topological_numbers(deps: &[Vec<usize>], mut users: Vec<usize>) -> Result<Vec<usize>, Vec<usize>> {
    let mut number = vec![usize::MAX; deps.len()];
    let mut stack: Vec<usize> = (0..deps.len()).filter(|&i| users[i] == 0).collect();
    let mut next = 0;
    while let Some(m) = stack.pop() {
        number[m] = next;
        next += 1;
        for &d in &deps[m] {
            users[d] -= 1;
            if users[d] == 0 {
                stack.push(d);
            }
        }
    }
    if next < deps.len() {
        return Err((0..deps.len()).filter(|&i| number[i] == usize::MAX).collect());
    }
    Ok(number)
}

/// A dependency cycle among `stuck` modules, as `a -> b -> ... -> a` (each
/// needs the next). Every stuck module is needed by another stuck one, so
/// walking from needed to needing must come back to itself.
fn find_cycle(deps: &[Vec<usize>], stuck: &[usize]) -> Vec<usize> {
    let needed_by = |m: usize| stuck.iter().copied().find(|&u| deps[u].contains(&m));
    let mut path = vec![stuck[0]];
    loop {
        let Some(u) = needed_by(*path.last().unwrap()) else {
            return path;
        };
        if let Some(at) = path.iter().position(|&p| p == u) {
            let mut cycle: Vec<usize> = path[at..].to_vec();
            cycle.reverse();
            cycle.push(cycle[0]);
            return cycle;
        }
        path.push(u);
    }
}

/// kmod's alias normalisation: `-` → `_`, except inside `[...]`; `None` for
/// an unmatched `]` or an unclosed `[`.
fn normalize_alias(alias: &str) -> Option<String> {
    let mut out = String::with_capacity(alias.len());
    let mut chars = alias.chars();
    while let Some(c) = chars.next() {
        match c {
            '-' => out.push('_'),
            ']' => return None,
            '[' => {
                out.push('[');
                loop {
                    let c = chars.next()?;
                    out.push(c);
                    if c == ']' {
                        break;
                    }
                }
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// A `modules.devname` line for a module with these aliases, if any.
fn devname_line<'v>(module: &str, aliases: impl Iterator<Item = &'v str>) -> Option<String> {
    let mut devname = None;
    let mut dev: Option<(char, u32, u32)> = None;
    for a in aliases {
        if let Some(n) = a.strip_prefix("devname:") {
            devname = Some(n);
        } else if let Some((maj, min)) = scan_major_minor(a, "char-major-") {
            dev = Some(('c', maj, min));
        } else if let Some((maj, min)) = scan_major_minor(a, "block-major-") {
            dev = Some(('b', maj, min));
        }
        if devname.is_some() && dev.is_some() {
            break;
        }
    }
    // depmod only complains about a devname without numbers.
    let (kind, maj, min) = dev?;
    Some(format!("{module} {} {kind}{maj}:{min}\n", devname?))
}

/// `sscanf(value, "<prefix>%u-%u", ..) == 2`.
fn scan_major_minor(value: &str, prefix: &str) -> Option<(u32, u32)> {
    let (maj, rest) = scan_unsigned(value.strip_prefix(prefix)?)?;
    let (min, _) = scan_unsigned(rest.strip_prefix('-')?)?;
    Some((maj, min))
}

/// C's `%u`: optional whitespace and sign, then decimal digits (glibc
/// saturates on overflow, then the value is cut to 32 bits).
fn scan_unsigned(s: &str) -> Option<(u32, &str)> {
    let s = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let v = s[..digits]
        .bytes()
        .try_fold(0u64, |v, d| v.checked_mul(10)?.checked_add((d - b'0') as u64))
        .unwrap_or(u64::MAX);
    let v = if neg { v.wrapping_neg() } else { v };
    Some((v as u32, &s[digits..]))
}

/// `modules.builtin.bin` from the text of `modules.builtin`.
fn builtin_index(text: &[u8]) -> Result<KmodIndex, String> {
    let mut ix = KmodIndex::new();
    for line in text.split_inclusive(|b| *b == b'\n') {
        if !line[0].is_ascii_alphabetic() {
            continue;
        }
        // The file name (the newline included, as fgets leaves it) up to
        // the first '.', '-' → '_'.
        let base = line.rsplit(|b| *b == b'/').next().unwrap_or(line);
        let name: Vec<u8> = base
            .iter()
            .take_while(|b| **b != b'.' && **b != 0)
            .map(|b| if *b == b'-' { b'_' } else { *b })
            .collect();
        if name.is_empty() {
            continue;
        }
        ix.insert(&String::from_utf8_lossy(&name), "", 0)?;
    }
    Ok(ix)
}

/// `modules.builtin.alias.bin` from `modules.builtin.modinfo`
/// (`module.key=value` strings, NUL-separated), read the way depmod's
/// stream parser reads it: module name up to `.`, key up to `=`, value up
/// to NUL; a piece cut short by a NUL (or the end) is dropped.
fn builtin_alias_index(modinfo: &[u8]) -> Result<KmodIndex, String> {
    struct Stream<'b> {
        bytes: &'b [u8],
        pos: usize,
        eof: bool,
    }
    impl<'b> Stream<'b> {
        /// Reads up to `end` (or a NUL, or the end); `Some` only when `end`
        /// ended it. The terminator is consumed.
        fn until(&mut self, end: u8) -> Option<&'b [u8]> {
            let start = self.pos;
            loop {
                let Some(&c) = self.bytes.get(self.pos) else {
                    self.eof = true;
                    return None;
                };
                self.pos += 1;
                if c == end {
                    return Some(&self.bytes[start..self.pos - 1]);
                }
                if c == 0 {
                    return None;
                }
            }
        }
    }
    let mut ix = KmodIndex::new();
    let mut s = Stream {
        bytes: modinfo,
        pos: 0,
        eof: false,
    };
    while !s.eof {
        let Some(module) = s.until(b'.').filter(|m| !m.is_empty()) else {
            continue;
        };
        if s.until(b'=') != Some(b"alias") {
            s.until(0);
            continue;
        }
        let Some(value) = s.until(0).filter(|v| !v.is_empty()) else {
            continue;
        };
        if let Some(alias) = normalize_alias(&String::from_utf8_lossy(value)) {
            ix.insert(&alias, &String::from_utf8_lossy(module), 0)?;
        }
    }
    Ok(ix)
}

/// Writes generated files into a tree (root-owned, 0644, at `mtime`),
/// replacing files of the same name.
pub fn add_to_tree(tree: &mut Tree, files: &[GeneratedFile], mtime: i64) -> Result<(), KernelError> {
    for f in files {
        let meta = Meta { mtime, ..Meta::root(0o644) };
        tree.write_file(&f.path, f.bytes.clone(), meta)
            .map_err(KernelError::tree(format!("adding {}", f.path)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmod_index::lookup;
    use crate::modinfo::tests::FakeSymbols;
    use crate::modules::tests::{fake_tree, fake_tree_with};
    use dinv_fstree::NodeKind;
    use std::process::Command;

    fn get<'f>(files: &'f [GeneratedFile], name: &str) -> &'f [u8] {
        &files.iter().find(|f| f.path.file_name() == name).unwrap_or_else(|| panic!("no {name}")).bytes
    }

    fn text(files: &[GeneratedFile], name: &str) -> String {
        String::from_utf8(get(files, name).to_vec()).unwrap()
    }

    fn module(files: &[GeneratedFile], name: &str) -> usize {
        let dep = text(files, "modules.dep");
        dep.lines()
            .position(|l| {
                l.split(':')
                    .next()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .split('.')
                    .next()
                    .unwrap()
                    .replace('-', "_")
                    == name
            })
            .unwrap()
    }

    /// Writes the modules directory of `t` (plus the `modules.builtin` we
    /// generate, if any: depmod would see it in the finished tree) to a
    /// temporary directory, runs the host's `depmod -b DIR RELEASE` there
    /// and asserts that each of its files equals ours byte for byte.
    fn host_depmod_agrees(t: &Tree, release: &str) -> Vec<GeneratedFile> {
        let set = ModuleSet::load(t, release).unwrap();
        let files = depmod_files(&set).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("lib/modules").join(release);
        let base = set.dir().as_str().len() + 1;
        for (path, node) in t.subtree(set.dir()) {
            if let NodeKind::File(c) = &node.kind {
                let dest = dir.join(&path.as_str()[base..]);
                std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                std::fs::write(dest, c.to_vec().unwrap()).unwrap();
            }
        }
        if let Some(f) = files.iter().find(|f| f.path.file_name() == "modules.builtin") {
            std::fs::write(dir.join("modules.builtin"), &f.bytes).unwrap();
        }
        let out = Command::new("depmod")
            .arg("-b")
            .arg(tmp.path())
            .arg(release)
            .output()
            .expect("depmod (kmod) is needed: apt-get install -y kmod");
        assert!(out.status.success(), "depmod failed: {}", String::from_utf8_lossy(&out.stderr));
        for name in KMOD_DEPMOD_FILES {
            let theirs = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("depmod wrote no {name}: {e}"));
            let ours = get(&files, name);
            if ours != theirs {
                let at = ours.iter().zip(&theirs).position(|(a, b)| a != b).unwrap_or(ours.len().min(theirs.len()));
                let around = |b: &[u8]| String::from_utf8_lossy(&b[at.saturating_sub(40).min(b.len())..(at + 40).min(b.len())]).into_owned();
                panic!(
                    "{name} differs from depmod's at byte {at} (ours {} bytes, depmod's {}):\n ours:   {:?}\n depmod: {:?}",
                    ours.len(),
                    theirs.len(),
                    around(ours),
                    around(&theirs)
                );
            }
        }
        files
    }

    fn syms<'a>(ksymtab: Option<&'a [&'a str]>, crcs: &'a [&'a str], needs: &'a [&'a str]) -> FakeSymbols<'a> {
        FakeSymbols {
            ksymtab,
            crcs,
            needs,
            versions: &[],
            symtab: true,
        }
    }

    const R: &str = "6.1.0-fake";

    /// A tree with most of what depmod looks at: both ways to export
    /// symbols, a symbol exported twice, a need through `__versions` only,
    /// a diamond, compressed modules, modules missing from `modules.order`
    /// and a repeated line in it, aliases that normalise (or do not),
    /// device names, and odd `modules.builtin*` input.
    fn varied_tree() -> Tree {
        let none: &[&str] = &[];
        let mods: Vec<(&str, &str, FakeSymbols)> = vec![
            (
                "kernel/lib/crc16.ko",
                "name=crc16\nlicense=GPL",
                syms(Some(&["crc16", "crc16_table"]), none, none),
            ),
            (
                "kernel/fs/mbcache.ko.xz",
                "name=mbcache",
                syms(None, &["mb_cache_create", "mb_cache_destroy"], &["kmalloc"]),
            ),
            (
                "kernel/fs/jbd2/jbd2.ko.zst",
                "name=jbd2",
                syms(None, &["jbd2_journal_start"], &["crc32c", "kfree"]),
            ),
            (
                "kernel/crypto/crc32c_generic.ko",
                "name=crc32c_generic\nalias=crypto-crc32c\nalias=crc32c",
                syms(Some(&["", "crc32c", "", "crc32c_impl"]), none, none),
            ),
            (
                "kernel/arch/x86/crypto/crc32c-intel.ko",
                "name=crc32c_intel\nalias=crypto-crc32c\nalias=crc32c-intel\nalias=crc32c",
                syms(Some(&["crc32c"]), none, none),
            ),
            (
                "kernel/fs/ext4/ext4.ko",
                "name=ext4\nsoftdep=pre: crc32c\nweakdep=crc16\nalias=fs-ext4\nalias=ext3\nalias=fs-ext3\nalias=fs-ext4",
                syms(None, none, &["jbd2_journal_start", "mb_cache_create", "crc16", "printk"]),
            ),
            (
                "kernel/drivers/block/loop.ko",
                "name=loop\nalias=devname:loop-control\nalias=char-major-10-237\nalias=block-major-7-*",
                syms(None, none, none),
            ),
            (
                "kernel/drivers/net/tun.ko",
                "name=tun\nalias=char-major-10-200\nalias=devname:net/tun\nalias=rtnl-link-tun",
                syms(None, none, none),
            ),
            ("kernel/drivers/misc/lonely.ko", "name=lonely\nalias=devname:lonely", syms(None, none, none)),
            (
                "kernel/drivers/misc/brackets.ko",
                "name=brackets\nalias=pci:v00008086d[0-9A-F]*sv*-x\nalias=usb:v-]bad\nalias=dmi*:bvn[abc-def\nalias=same-alias",
                syms(None, none, none),
            ),
            (
                "kernel/drivers/misc/twin-a.ko",
                "name=twin_a\nalias=same-alias\nalias=virtio:d00000001v*",
                syms(None, none, &["crc16_table"]),
            ),
            (
                "kernel/drivers/misc/twin_b.ko",
                "name=twin_b\nalias=same-alias",
                FakeSymbols {
                    versions: &["module_layout", "shared_fn"],
                    ..syms(Some(&["twin_b_sym"]), none, none)
                },
            ),
            ("kernel/drivers/misc/provider.ko", "name=provider", syms(None, &["shared_fn", "dup_sym"], none)),
            ("kernel/drivers/misc/provider2.ko", "name=provider2", syms(None, &["dup_sym"], none)),
            ("kernel/drivers/misc/user.ko", "name=user", syms(None, none, &["dup_sym", ".shared_fn"])),
            ("kernel/d/top.ko", "name=top", syms(None, none, &["left_fn", "right_fn"])),
            ("kernel/d/left.ko", "name=left", syms(None, &["left_fn"], &["bottom_fn"])),
            ("kernel/d/right.ko", "name=right", syms(None, &["right_fn"], &["bottom_fn"])),
            ("kernel/d/bottom.ko", "name=bottom", syms(None, &["bottom_fn"], none)),
            ("kernel/extra/zzz.ko", "name=zzz", syms(None, none, &["crc16"])),
            ("kernel/extra/aaa.ko", "name=aaa", syms(None, none, none)),
            ("kernel/extra/mmm.ko.xz", "name=mmm\nalias=aaa-alias", syms(None, none, none)),
            ("kernel/build/skipme.ko", "name=skipme", syms(None, none, none)),
            ("kernel/source/x/skiptoo.ko", "name=skiptoo", syms(None, none, none)),
        ];
        let mut t = fake_tree_with(R, &mods);
        let order = [
            "kernel/lib/crc16.ko",
            "kernel/d/bottom.ko",
            "kernel/drivers/misc/provider2.ko",
            "kernel/drivers/misc/provider.ko",
            "kernel/fs/ext4/ext4.ko",
            "kernel/gone/gone.ko",
            "kernel/fs/jbd2/jbd2.ko",
            "kernel/fs/mbcache.ko",
            "kernel/arch/x86/crypto/crc32c-intel.ko",
            "kernel/crypto/crc32c_generic.ko",
            "kernel/drivers/net/tun.ko",
            "kernel/drivers/block/loop.ko",
            "kernel/drivers/misc/lonely.ko",
            "kernel/drivers/misc/user.ko",
            "kernel/drivers/misc/twin_b.ko",
            "kernel/drivers/misc/twin-a.ko",
            "kernel/drivers/misc/brackets.ko",
            "kernel/d/right.ko",
            "kernel/d/top.ko",
            "kernel/d/left.ko",
            // A repeated line: kmod 30 goes by the last one.
            "kernel/lib/crc16.ko",
        ];
        let dir = format!("usr/lib/modules/{R}");
        t.write_file(&TreePath::new(&format!("{dir}/modules.order")), order.join("\n") + "\n", Meta::root(0o644))
            .unwrap();
        let builtin = "kernel/net/unix/unix.ko\nkernel/crypto/crc32c-builtin.ko\n/bad/line.ko\nkernel/drivers/base/firmware_class.ko\nkernel/net/unix/unix.ko\nkernel/lib/zlib_inflate.ko";
        t.write_file(&TreePath::new(&format!("{dir}/modules.builtin")), builtin, Meta::root(0o644))
            .unwrap();
        let modinfo = "unix.alias=net-pf-1\0unix.file=net/unix/unix\0unix.alias=net_pf_1\0crc32c_builtin.alias=crypto-crc32c\0\
            firmware_class.alias=same-alias\0other.alias=net-pf-1\0malformed-no-dot\0bad.nokey\0after.alias=lost\0empty.alias=\0\0\0\
            ok-name.alias=pci:v-[a-b]\0trail.alias=unterminated";
        t.write_file(&TreePath::new(&format!("{dir}/modules.builtin.modinfo")), modinfo, Meta::root(0o644))
            .unwrap();
        t
    }

    #[test]
    fn matches_host_depmod_on_a_varied_tree() {
        let files = host_depmod_agrees(&varied_tree(), R);

        // What that means, spelled out (depmod agreed with all of it):
        let dep = text(&files, "modules.dep");
        let lines: Vec<&str> = dep.lines().collect();
        assert_eq!(lines.len(), 22, "build/ and source/ are skipped:\n{dep}");
        // modules.order order (crc16 by its last line), then the unlisted ones.
        assert_eq!(lines[0], "kernel/d/bottom.ko:");
        assert_eq!(lines[18], "kernel/lib/crc16.ko:");
        let mut tail: Vec<&str> = lines[19..].iter().map(|l| l.split(':').next().unwrap()).collect();
        tail.sort();
        assert_eq!(tail, ["kernel/extra/aaa.ko", "kernel/extra/mmm.ko.xz", "kernel/extra/zzz.ko"]);
        // top needs left, then right; both become free when top is numbered
        // and go on the stack in that order, so right pops (and counts) first.
        assert!(
            lines.contains(&"kernel/d/top.ko: kernel/d/right.ko kernel/d/left.ko kernel/d/bottom.ko"),
            "{dep}"
        );
        // crc32c: crc32c_generic comes after crc32c-intel, so it owns it.
        assert!(lines.contains(&"kernel/fs/jbd2/jbd2.ko.zst: kernel/crypto/crc32c_generic.ko"), "{dep}");
        assert!(lines.contains(&"kernel/drivers/misc/user.ko: kernel/drivers/misc/provider.ko"), "{dep}");
        assert!(
            lines.contains(&"kernel/drivers/misc/twin_b.ko: kernel/drivers/misc/provider.ko"),
            "__versions counts:\n{dep}"
        );
        let symbols = text(&files, "modules.symbols");
        for want in [
            "alias symbol:dup_sym provider\n",
            "alias symbol:crc32c crc32c_generic\n",
            "alias symbol:crc32c_impl crc32c_generic\n",
            "alias symbol:twin_b_sym twin_b\n",
        ] {
            assert!(symbols.contains(want), "{want:?} in\n{symbols}");
        }
        assert_eq!(symbols.lines().count(), 1 + 13);
        assert_eq!(
            text(&files, "modules.devname"),
            "# Device nodes to trigger on-demand module loading.\ntun net/tun c10:200\nloop loop-control c10:237\n"
        );
        assert!(text(&files, "modules.softdep").ends_with("\nsoftdep ext4 pre: crc32c\n"));
        assert_eq!(
            text(&files, "modules.weakdep"),
            "# Weak dependencies extracted from modules themselves.\nweakdep ext4 crc16\n"
        );

        // The indexes, read back.
        let idx = |n: &str| module(&files, n) as u32;
        let alias_bin = get(&files, "modules.alias.bin");
        let s = |v: &[(u32, &str)]| v.iter().map(|(p, x)| (*p, x.to_string())).collect::<Vec<_>>();
        assert_eq!(
            lookup(alias_bin, "same_alias"),
            s(&[(idx("twin_b"), "twin_b"), (idx("twin_a"), "twin_a"), (idx("brackets"), "brackets")])
        );
        assert_eq!(lookup(alias_bin, "pci:v00008086d[0-9A-F]*sv*_x"), s(&[(idx("brackets"), "brackets")]));
        assert_eq!(lookup(alias_bin, "fs_ext4"), s(&[(idx("ext4"), "ext4"), (idx("ext4"), "ext4")]));
        assert!(lookup(alias_bin, "usb:v_]bad").is_empty() && lookup(alias_bin, "usb:v-]bad").is_empty());
        assert_eq!(
            lookup(alias_bin, "crypto_crc32c"),
            s(&[(idx("crc32c_intel"), "crc32c_intel"), (idx("crc32c_generic"), "crc32c_generic")])
        );
        let dep_bin = get(&files, "modules.dep.bin");
        assert_eq!(
            lookup(dep_bin, "twin_a"),
            s(&[(idx("twin_a"), "kernel/drivers/misc/twin-a.ko: kernel/lib/crc16.ko")])
        );
        assert_eq!(
            lookup(get(&files, "modules.symbols.bin"), "symbol:dup_sym"),
            s(&[(idx("provider"), "provider")])
        );
        let builtin_bin = get(&files, "modules.builtin.bin");
        assert_eq!(lookup(builtin_bin, "unix"), s(&[(0, ""), (0, "")]));
        assert_eq!(lookup(builtin_bin, "crc32c_builtin"), s(&[(0, "")]));
        assert_eq!(lookup(builtin_bin, "zlib_inflate"), s(&[(0, "")]));
        assert!(lookup(builtin_bin, "line").is_empty());
        let builtin_alias_bin = get(&files, "modules.builtin.alias.bin");
        // Equal priorities: the newest first.
        assert_eq!(lookup(builtin_alias_bin, "net_pf_1"), s(&[(0, "other"), (0, "unix"), (0, "unix")]));
        assert_eq!(lookup(builtin_alias_bin, "pci:v_[a-b]"), s(&[(0, "ok-name")]));
        assert!(lookup(builtin_alias_bin, "lost").is_empty() && lookup(builtin_alias_bin, "unterminated").is_empty());
    }

    /// Module names that spread over many hash buckets.
    fn many_names() -> Vec<String> {
        let words = ["virtio", "ext4", "nf-nat", "xt_tcp", "snd", "usb-storage", "i2c", "bridge", "veth", "crc"];
        (0..60).map(|i| format!("{}{}", words[i % words.len()], i / words.len())).collect()
    }

    /// Decompressed modules: every `.ko.xz`/`.ko.zst` of the set becomes a
    /// `.ko` with the same ELF and metadata, and the indexes written for
    /// the set afterwards are depmod's for the decompressed tree.
    #[test]
    fn decompressed_modules_match_host_depmod() {
        let mut t = varied_tree();
        let before = ModuleSet::load(&t, R).unwrap();
        // (old path, new path, ELF) of each compressed module.
        let compressed: Vec<(TreePath, TreePath, Vec<u8>)> = before
            .iter()
            .filter(|m| m.compression != crate::Compression::None)
            .map(|m| (m.path.clone(), before.dir().join(&m.uncompressed_rel()).unwrap(), m.bytes().unwrap()))
            .collect();
        assert!(compressed.len() >= 2, "the tree has compressed modules");
        let mut set = before;
        // A module's mode survives (depmod does not care; the tree's owner does).
        t.get_mut(&compressed[0].0).unwrap().meta.mode = 0o600;
        let done = set.decompress_in(&mut t).unwrap();
        assert_eq!(done.modules, compressed.len());
        assert!(done.bytes > done.stored_bytes, "{done:?}");
        for (old, new, elf) in &compressed {
            assert!(!t.contains(old), "{old} is still there");
            assert_eq!(t.read_file(new).as_deref(), Some(&elf[..]), "{new}");
        }
        assert_eq!(t.get(&compressed[0].1).unwrap().meta.mode, 0o600);
        assert!(set.iter().all(|m| m.compression == crate::Compression::None && m.rel.ends_with(".ko")));
        // What the plan writes from the decompressed set equals what depmod
        // writes for the decompressed tree.
        let ours = depmod_files(&set).unwrap();
        let depmods = host_depmod_agrees(&t, R);
        for (a, b) in ours.iter().zip(&depmods) {
            assert_eq!(a.path, b.path);
            assert!(a.bytes == b.bytes, "{} differs between the set and the reloaded tree", a.path);
        }
        assert!(!text(&ours, "modules.dep").contains(".ko."), "{}", text(&ours, "modules.dep"));
    }

    /// A signed module as the kernel's sign-file leaves it: the ELF, the
    /// PKCS#7 blob, `struct module_signature` (algo, hash, id type 2 =
    /// PKCS#7, signer and key id lengths 0, padding, big-endian blob
    /// length) and the magic.
    fn signed(elf: &[u8], blob: &[u8]) -> Vec<u8> {
        let mut out = elf.to_vec();
        out.extend_from_slice(blob);
        out.extend_from_slice(&[0, 0, 2, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&(blob.len() as u32).to_be_bytes());
        out.extend_from_slice(crate::MODULE_SIG_MAGIC);
        out
    }

    /// Stripped modules are their ELF again, byte for byte: the set's, the
    /// tree's and the initramfs's copies; unsigned ones are untouched,
    /// the metadata stays, depmod's files do not change, and a trailer
    /// that does not add up names the module.
    #[test]
    fn stripped_signatures_leave_the_elf() {
        let mut t = varied_tree();
        let plain = ModuleSet::load(&t, R).unwrap();
        let elf = |set: &ModuleSet, name: &str| set.iter().find(|m| m.name == name).unwrap().bytes().unwrap();
        let (crc16, ext4) = (elf(&plain, "crc16"), elf(&plain, "ext4"));
        let path = |name: &str| plain.iter().find(|m| m.name == name).unwrap().path.clone();
        let blob: Vec<u8> = (0..103u8).collect();
        for (name, bytes) in [("crc16", &crc16), ("ext4", &ext4)] {
            let p = path(name);
            let meta = Meta { mode: 0o600, ..t.get(&p).unwrap().meta.clone() };
            t.remove(&p);
            t.write_file(&p, signed(bytes, &blob), meta).unwrap();
        }
        let mut set = ModuleSet::load(&t, R).unwrap();
        set.decompress_in(&mut t).unwrap();
        let indexes = depmod_files(&set).unwrap();
        let done = set.strip_signatures_in(&mut t).unwrap();
        assert_eq!(done, crate::Unsigned { modules: 2, bytes: 2 * (103 + 12 + 28) });
        assert_eq!(t.read_file(&path("crc16")).unwrap(), crc16);
        assert_eq!(t.read_file(&path("ext4")).unwrap(), ext4);
        assert_eq!(elf(&set, "ext4"), ext4);
        assert_eq!(t.get(&path("ext4")).unwrap().meta.mode, 0o600);
        assert_eq!(elf(&set, "mbcache"), elf(&plain, "mbcache"), "unsigned modules stay");
        assert_eq!(depmod_files(&set).unwrap().iter().map(|f| &f.bytes).collect::<Vec<_>>(), indexes.iter().map(|f| &f.bytes).collect::<Vec<_>>());
        assert_eq!(set.strip_signatures_in(&mut t).unwrap(), crate::Unsigned::default(), "nothing left to strip");

        // A blob length beyond the file.
        let mut bad = signed(&crc16, &blob);
        let at = bad.len() - crate::MODULE_SIG_MAGIC.len() - 4;
        bad[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        t.remove(&path("crc16"));
        t.write_file(&path("crc16"), bad, Meta::root(0o644)).unwrap();
        let e = ModuleSet::load(&t, R).unwrap().strip_signatures_in(&mut t).unwrap_err().to_string();
        assert!(e.contains("crc16.ko") && e.contains("more than the file holds"), "{e}");
        assert_eq!(crate::without_signature(b"~Module signature appended~\n"), Err("the signature trailer is cut short".into()));
        assert_eq!(crate::without_signature(&crc16), Ok(None));
    }

    #[test]
    fn matches_host_depmod_without_modules_order_or_builtin_files() {
        // No modules.order: depmod keeps its hash-table order. Module i
        // needs what i/2 and i/3 export: many roots, shared dependencies.
        let names = many_names();
        let exports: Vec<Vec<String>> = (0..names.len()).map(|i| vec![format!("fn_{i}"), format!("var_{i}")]).collect();
        let needs: Vec<Vec<String>> = (0..names.len())
            .map(|i| [i / 2, i / 3].iter().filter(|&&j| j < i).map(|j| format!("fn_{j}")).collect())
            .collect();
        fn as_refs(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        let exports: Vec<Vec<&str>> = exports.iter().map(|v| as_refs(v)).collect();
        let needs: Vec<Vec<&str>> = needs.iter().map(|v| as_refs(v)).collect();
        let rels: Vec<String> = names.iter().enumerate().map(|(i, n)| format!("kernel/m{}/{n}.ko", i % 4)).collect();
        let infos: Vec<String> = names.iter().map(|n| format!("name={}\nalias=dev-{n}", normalize(n))).collect();
        let mods: Vec<(&str, &str, FakeSymbols)> = (0..names.len())
            .map(|i| {
                // Half export through __crc_ symbols, half through __ksymtab_strings.
                let s = if i % 2 == 0 {
                    syms(None, &exports[i], &needs[i])
                } else {
                    syms(Some(&exports[i]), &[], &needs[i])
                };
                (rels[i].as_str(), infos[i].as_str(), s)
            })
            .collect();
        let files = host_depmod_agrees(&fake_tree_with(R, &mods), R);
        assert!(
            get(&files, "modules.builtin.bin").is_empty() && get(&files, "modules.builtin.alias.bin").is_empty(),
            "missing inputs: empty files"
        );
        assert!(get(&files, "modules.devname").is_empty());
        let dep = text(&files, "modules.dep");
        let mut sorted: Vec<&str> = dep.lines().collect();
        sorted.sort();
        assert_ne!(dep.lines().collect::<Vec<_>>(), sorted, "hash order, not path order");
    }

    fn normalize(n: &str) -> String {
        n.replace('-', "_")
    }

    #[test]
    fn a_modules_order_without_final_newline_is_ignored() {
        let none: &[&str] = &[];
        let mods: Vec<(&str, &str, FakeSymbols)> = many_names()[..12]
            .iter()
            .map(|n| {
                (
                    Box::leak(format!("kernel/{n}.ko").into_boxed_str()) as &str,
                    "license=GPL",
                    syms(None, none, none),
                )
            })
            .collect();
        let mut t = fake_tree_with(R, &mods);
        let dir = format!("usr/lib/modules/{R}");
        let listed: Vec<String> = many_names()[..12].iter().rev().map(|n| format!("kernel/{n}.ko")).collect();
        t.write_file(&TreePath::new(&format!("{dir}/modules.order")), listed.join("\n"), Meta::root(0o644))
            .unwrap();
        // modules.builtin.modinfo but no modules.builtin: we write one from
        // the file= entries, and its index with it.
        t.write_file(
            &TreePath::new(&format!("{dir}/modules.builtin.modinfo")),
            "unix.file=net/unix/unix\0unix.alias=net-pf-1\0",
            Meta::root(0o644),
        )
        .unwrap();
        let files = host_depmod_agrees(&t, R);
        let first = text(&files, "modules.dep").lines().next().unwrap().to_string();
        assert_ne!(first, format!("{}:", listed[0]), "the corrupted modules.order must not count");
        assert_eq!(text(&files, "modules.builtin"), "kernel/net/unix/unix.ko\n");
        assert_eq!(lookup(get(&files, "modules.builtin.bin"), "unix"), [(0, String::new())]);

        // With the newline it counts.
        t.write_file(&TreePath::new(&format!("{dir}/modules.order")), listed.join("\n") + "\n", Meta::root(0o644))
            .unwrap();
        let files = host_depmod_agrees(&t, R);
        assert_eq!(text(&files, "modules.dep").lines().next().unwrap(), format!("{}:", listed[0]));
    }

    #[test]
    fn gzip_modules_are_indexed_like_the_others() {
        // The host's kmod may be built without zlib, so compare a tree whose
        // provider is .ko.gz with the same tree holding .ko.xz (which
        // depmod reads, see above): only the suffix may differ.
        let none: &[&str] = &[];
        let outputs = |suffix: &str| {
            let provider = format!("kernel/p/provider.ko.{suffix}");
            let mut t = fake_tree_with(
                R,
                &[
                    (
                        provider.as_str(),
                        "name=provider\nalias=devname:prov\nalias=char-major-9-9",
                        syms(None, &["f", "g"], none),
                    ),
                    ("kernel/u/user.ko", "name=user\nalias=user-alias", syms(None, none, &["g"])),
                    ("kernel/u/other.ko.zst", "name=other", syms(Some(&["h"]), none, &["f", "h2"])),
                ],
            );
            t.write_file(
                &TreePath::new(&format!("usr/lib/modules/{R}/modules.order")),
                "kernel/u/user.ko\nkernel/p/provider.ko\nkernel/u/other.ko\n",
                Meta::root(0o644),
            )
            .unwrap();
            depmod_files(&ModuleSet::load(&t, R).unwrap()).unwrap()
        };
        let (gz, xz) = (outputs("gz"), outputs("xz"));
        assert_eq!(
            text(&gz, "modules.dep"),
            "kernel/u/user.ko: kernel/p/provider.ko.gz\nkernel/p/provider.ko.gz:\nkernel/u/other.ko.zst: kernel/p/provider.ko.gz\n"
        );
        assert_eq!(gz.len(), xz.len());
        for (g, x) in gz.iter().zip(&xz) {
            let mut x = x.bytes.clone();
            for i in 0..x.len().saturating_sub(2) {
                if x[i..].starts_with(b"provider.ko.xz") {
                    x[i + 12..i + 14].copy_from_slice(b"gz");
                }
            }
            assert_eq!(g.bytes, x, "{}", g.path);
        }
        assert_eq!(
            text(&gz, "modules.devname"),
            "# Device nodes to trigger on-demand module loading.\nprovider prov c9:9\n"
        );
    }

    #[test]
    fn without_a_symbol_table_dependencies_come_from_modinfo() {
        let mut t = fake_tree(
            "6.1-t",
            &[
                ("kernel/v/virtio_ring.ko", "name=virtio_ring\ndepends="),
                ("kernel/v/virtio.ko.xz", "name=virtio\ndepends=virtio_ring"),
                (
                    "kernel/b/virtio_blk.ko",
                    "name=virtio_blk\ndepends=virtio,virtio_ring\nalias=virtio:d00000002v*",
                ),
                ("kernel/fs/ext4.ko", "name=ext4\ndepends=unix\nsoftdep=pre: crc32c\nalias=fs-ext4\nalias=ext3"),
            ],
        );
        let dir = "usr/lib/modules/6.1-t";
        t.write_file(
            &TreePath::new(&format!("{dir}/modules.builtin.modinfo")),
            "unix.file=net/unix/unix\0unix.alias=net-pf-1\0",
            Meta::root(0o644),
        )
        .unwrap();
        t.write_file(
            &TreePath::new(&format!("{dir}/modules.order")),
            "kernel/b/virtio_blk.ko\nkernel/fs/ext4.ko\nkernel/v/virtio.ko\nkernel/v/virtio_ring.ko\n",
            Meta::root(0o644),
        )
        .unwrap();
        let set = ModuleSet::load(&t, "6.1-t").unwrap();
        let files = depmod_files(&set).unwrap();
        assert_eq!(
            text(&files, "modules.dep"),
            "kernel/b/virtio_blk.ko: kernel/v/virtio.ko.xz kernel/v/virtio_ring.ko\nkernel/fs/ext4.ko:\nkernel/v/virtio.ko.xz: kernel/v/virtio_ring.ko\nkernel/v/virtio_ring.ko:\n"
        );
        assert_eq!(
            text(&files, "modules.alias"),
            "# Aliases extracted from modules themselves.\nalias virtio:d00000002v* virtio_blk\nalias fs-ext4 ext4\nalias ext3 ext4\n"
        );
        assert!(text(&files, "modules.softdep").ends_with("\nsoftdep ext4 pre: crc32c\n"));
        assert_eq!(text(&files, "modules.builtin"), "kernel/net/unix/unix.ko\n");
        assert_eq!(text(&files, "modules.builtin.alias"), "alias net-pf-1 unix\n");
        assert_eq!(lookup(get(&files, "modules.builtin.alias.bin"), "net_pf_1"), [(0, "unix".to_string())]);
        assert_eq!(lookup(get(&files, "modules.alias.bin"), "fs_ext4"), [(1, "ext4".to_string())]);
        assert!(files.iter().all(|f| f.path.as_str().starts_with("usr/lib/modules/6.1-t/")));

        // Round trip: a set loaded with the generated modules.dep agrees.
        add_to_tree(&mut t, &files, 7).unwrap();
        let again = ModuleSet::load(&t, "6.1-t").unwrap();
        assert!(again.has_modules_dep() && again.has_modules_builtin());
        assert_eq!(again.closure(&["virtio_blk"]).unwrap().modules, set.closure(&["virtio_blk"]).unwrap().modules);
        assert_eq!(
            t.get(&TreePath::new("lib/modules/6.1-t/modules.dep")).map(|n| n.meta.mtime),
            None,
            "lib is a symlink"
        );
        assert_eq!(t.get(&TreePath::new("usr/lib/modules/6.1-t/modules.dep")).unwrap().meta.mtime, 7);

        // A dependency that exists nowhere is still an error there.
        let t = fake_tree("6.1-t", &[("kernel/a.ko", "name=a\ndepends=ghost")]);
        let e = depmod_files(&ModuleSet::load(&t, "6.1-t").unwrap()).unwrap_err().to_string();
        assert!(e.contains("\"ghost\"") && e.contains("needed by a"), "{e}");
    }

    #[test]
    fn dependency_cycles_are_errors() {
        let none: &[&str] = &[];
        let t = fake_tree_with(
            R,
            &[
                ("kernel/a.ko", "name=a", syms(None, &["a_fn"], &["b_fn"])),
                ("kernel/b.ko", "name=b", syms(None, &["b_fn"], &["c_fn"])),
                ("kernel/c.ko", "name=c", syms(None, &["c_fn"], &["a_fn"])),
                ("kernel/user.ko", "name=user", syms(None, none, &["a_fn"])),
            ],
        );
        let e = depmod_files(&ModuleSet::load(&t, R).unwrap()).unwrap_err();
        let KernelError::ModuleCycle { cycle, .. } = &e else { panic!("{e}") };
        assert_eq!(cycle.len(), 4, "{e}");
        assert_eq!(cycle.first(), cycle.last());
        let mut members = cycle[..3].to_vec();
        members.sort();
        assert_eq!(members, ["a", "b", "c"], "{e}");
        // Each needs the next.
        let needs = |x: &str, y: &str| matches!((x, y), ("a", "b") | ("b", "c") | ("c", "a"));
        assert!(cycle.windows(2).all(|w| needs(&w[0], &w[1])), "{e}");
    }

    #[test]
    fn alias_normalisation() {
        assert_eq!(normalize_alias("fs-ext4").as_deref(), Some("fs_ext4"));
        assert_eq!(normalize_alias("pci:v-[0-9]*-[a-]x").as_deref(), Some("pci:v_[0-9]*_[a-]x"));
        assert_eq!(normalize_alias("a[[-]-").as_deref(), Some("a[[-]_"));
        assert_eq!(normalize_alias("bad]-"), None);
        assert_eq!(normalize_alias("open[-"), None);
        assert_eq!(normalize_alias("").as_deref(), Some(""));
    }

    #[test]
    fn devname_lines() {
        let line = |aliases: &[&str]| devname_line("m", aliases.iter().copied());
        assert_eq!(line(&["devname:fuse", "char-major-10-229"]).as_deref(), Some("m fuse c10:229\n"));
        assert_eq!(line(&["block-major-7-0", "devname:loop0"]).as_deref(), Some("m loop0 b7:0\n"));
        // The numbers seen last before both are known; later ones are ignored.
        assert_eq!(
            line(&["char-major-1-2", "block-major-3-4", "devname:x", "char-major-5-6"]).as_deref(),
            Some("m x b3:4\n")
        );
        assert_eq!(line(&["devname:a", "devname:b", "char-major-1-1"]).as_deref(), Some("m b c1:1\n"));
        // Wildcards and junk do not scan; %u takes blanks and a sign.
        assert_eq!(line(&["devname:x", "char-major-10-*"]), None);
        assert_eq!(line(&["devname:x", "char-major- 10-+7z"]).as_deref(), Some("m x c10:7\n"));
        assert_eq!(line(&["devname:x", "char-major-1--1"]).as_deref(), Some("m x c1:4294967295\n"));
        assert_eq!(line(&["devname:only"]), None);
        assert_eq!(line(&["char-major-10-229"]), None);
    }

    #[test]
    fn builtin_inputs_as_depmod_reads_them() {
        let ix = builtin_index(b"kernel/a/b-c.ko\n9bad\n\nkernel/x.y.ko\nkernel/last.ko").unwrap().to_bytes();
        for (k, n) in [("b_c", 1), ("x", 1), ("last", 1), ("9bad", 0), ("bad", 0)] {
            assert_eq!(lookup(&ix, k).len(), n, "{k}");
        }
        let ix = builtin_alias_index(b"\0\0m-1.alias=a-b\0m2.other=x.y=z\0m3.alias=c\0noval\0k.alias\0lost.alias=d\0m4.alias=e")
            .unwrap()
            .to_bytes();
        assert_eq!(lookup(&ix, "a_b"), [(0, "m-1".to_string())]);
        assert_eq!(lookup(&ix, "c"), [(0, "m3".to_string())]);
        // "k.alias" has no '=': its key is cut short and depmod skips the
        // whole next entry; "m4" has no final NUL.
        assert!(lookup(&ix, "d").is_empty() && lookup(&ix, "e").is_empty());
    }
}
