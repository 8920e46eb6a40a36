//! The closure of paths in a tree: each path given (a file, symlink or
//! directory, with everything below it), every symlink followed on the way
//! and its target, and for every ELF file reached its program interpreter
//! and its `DT_NEEDED` libraries, found where ld.so would find them, and
//! theirs in turn. Symlinks are resolved inside the tree (absolute targets
//! from its root, `..` stopping there), never on the host.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use dinv_fstree::{Content, NodeKind, Tree, TreePath};

use crate::dynamic::{self, Class, DynamicInfo};
use crate::error::{ClosureError, ParseError};
use crate::search;

/// Hard links followed before giving up (they never chain in a valid tree).
const MAX_HOPS: usize = 40;

/// `raw` with `.` and `..` folded away by name alone (for showing where a
/// library was found; the walk itself follows symlinks first).
fn lexical(raw: &str) -> TreePath {
    let mut parts: Vec<&str> = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    TreePath::new(&parts.join("/"))
}

/// One library found for one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The `DT_NEEDED` name.
    pub name: String,
    /// Where ld.so finds it (the directory searched plus the name; may be a symlink).
    pub path: TreePath,
}

/// Something still to keep: a path as named, whether it must exist, and
/// the `DT_RPATH` directories of the objects that led to it.
struct Pending {
    path: String,
    strict: bool,
    loader_rpath: Rc<Vec<String>>,
}

/// The closure being built over one tree.
pub struct Closure<'t> {
    tree: &'t Tree,
    keep: BTreeSet<TreePath>,
    /// Directories whose subtrees are in `keep`, and files already examined.
    done: BTreeSet<TreePath>,
    objects: BTreeMap<TreePath, Vec<Resolved>>,
    system_dirs: HashMap<(Class, bool, u16), Rc<Vec<String>>>,
    /// Parsed ELF files by resolved path (`None`: not ELF).
    parsed: HashMap<TreePath, Option<Rc<DynamicInfo>>>,
    /// Files inside kept directories that start like ELF but do not parse
    /// (firmware images for other machines, say): kept, not followed.
    unreadable: Vec<(TreePath, ParseError)>,
}

impl<'t> Closure<'t> {
    pub fn new(tree: &'t Tree) -> Self {
        Closure { tree, keep: BTreeSet::new(), done: BTreeSet::new(), objects: BTreeMap::new(), system_dirs: HashMap::new(), parsed: HashMap::new(), unreadable: Vec::new() }
    }

    /// Adds `path` and everything it needs. An error names what is missing:
    /// `path` itself, an interpreter, or a library (with the object that needs it).
    pub fn add(&mut self, path: &TreePath) -> Result<(), ClosureError> {
        let mut queue = vec![Pending { path: path.absolute(), strict: true, loader_rpath: Rc::new(Vec::new()) }];
        while let Some(p) = queue.pop() {
            self.keep_path(p, &mut queue)?;
        }
        Ok(())
    }

    /// Every node to keep, with the ancestors of each (the root excluded).
    pub fn paths(&self) -> BTreeSet<TreePath> {
        let mut all = self.keep.clone();
        for p in &self.keep {
            all.extend(p.ancestors());
        }
        all.remove(&TreePath::root());
        all
    }

    /// Files in kept directories that look like ELF but do not parse.
    pub fn unreadable(&self) -> &[(TreePath, ParseError)] {
        &self.unreadable
    }

    /// The ELF objects reached, each with the libraries it needs as resolved.
    pub fn objects(&self) -> &BTreeMap<TreePath, Vec<Resolved>> {
        &self.objects
    }

    /// Follows `raw` (absolute, may hold `..`) through the tree from its
    /// root, recording every symlink passed into `keep` when `record` is
    /// set; the path of the node it ends at, if any.
    fn walk(&mut self, raw: &str, record: bool) -> Option<TreePath> {
        let mut links = Vec::new();
        let end = self.tree.resolve_traced(raw, |l| links.push(l.clone()))?;
        if record {
            self.keep.extend(links);
        }
        Some(end)
    }

    fn keep_path(&mut self, p: Pending, queue: &mut Vec<Pending>) -> Result<(), ClosureError> {
        let Some(real) = self.walk(&p.path, true) else {
            return if p.strict { Err(ClosureError::Missing { path: p.path }) } else { Ok(()) };
        };
        let node = self.tree.get(&real).expect("walk ends at a node");
        if node.is_dir() {
            if !self.done.insert(real.clone()) {
                return Ok(());
            }
            // Collected first: examining files reads the tree while `keep` grows.
            let below: Vec<(TreePath, NodeKind)> = self.tree.subtree(&real).map(|(q, n)| (q.clone(), n.kind.clone())).collect();
            for (q, kind) in below {
                self.keep.insert(q.clone());
                match kind {
                    // Targets outside the directory are kept too, if they exist.
                    NodeKind::Symlink(_) => queue.push(Pending { path: q.absolute(), strict: false, loader_rpath: p.loader_rpath.clone() }),
                    NodeKind::File(_) | NodeKind::Hardlink(_) => match self.examine(&q.absolute(), &q, &p.loader_rpath, queue) {
                        Err(ClosureError::Parse { path, source }) => self.unreadable.push((path, source)),
                        other => other?,
                    },
                    _ => {}
                }
            }
            return Ok(());
        }
        self.keep.insert(real.clone());
        self.examine(&p.path, &real, &p.loader_rpath, queue)
    }

    /// The regular file behind `real` (itself, or a hard link's target).
    fn file(&self, real: &TreePath) -> Option<(TreePath, &'t Content)> {
        let mut path = real.clone();
        for _ in 0..MAX_HOPS {
            match &self.tree.get(&path)?.kind {
                NodeKind::File(c) => return Some((path, c)),
                NodeKind::Hardlink(t) => path = t.clone(),
                _ => return None,
            }
        }
        None
    }

    /// What the dynamic linker reads from `real`, when it is an ELF file.
    fn info(&mut self, real: &TreePath) -> Result<Option<Rc<DynamicInfo>>, ClosureError> {
        if let Some(known) = self.parsed.get(real) {
            return Ok(known.clone());
        }
        let Some((_, content)) = self.file(real) else { return Ok(None) };
        let mut magic = [0u8; 4];
        let info = if content.len() < 4 || content.read_at(&mut magic, 0).is_err() || !dynamic::is_elf(&magic) {
            None
        } else {
            let bytes = content.to_vec().map_err(|source| ClosureError::Read { path: real.clone(), source })?;
            Some(Rc::new(dynamic::parse(&bytes).map_err(|source| ClosureError::Parse { path: real.clone(), source })?))
        };
        self.parsed.insert(real.clone(), info.clone());
        Ok(info)
    }

    /// Queues what the ELF file at `real` (reached as `named`) needs.
    fn examine(&mut self, named: &str, real: &TreePath, loader_rpath: &Rc<Vec<String>>, queue: &mut Vec<Pending>) -> Result<(), ClosureError> {
        if !self.done.insert(real.clone()) {
            return Ok(());
        }
        // A hard link needs the file it names.
        if let Some((data, _)) = self.file(real).filter(|(d, _)| d != real) {
            self.keep.insert(data);
        }
        let Some(info) = self.info(real)? else { return Ok(()) };
        if let Some(interp) = &info.interpreter {
            let Some(target) = self.walk(interp, true) else {
                return Err(ClosureError::Interpreter { object: real.clone(), interpreter: interp.clone() });
            };
            queue.push(Pending { path: target.absolute(), strict: true, loader_rpath: Rc::new(Vec::new()) });
        }
        // $ORIGIN: ld.so takes the directory of the name it opened (for
        // libraries) or of the resolved executable; either is tried.
        let mut origins = vec![named.rsplit_once('/').map(|(d, _)| d).unwrap_or("").to_string()];
        origins.push(real.parent().map(|d| d.absolute()).unwrap_or_else(|| "/".into()));
        let origins = search::dedup(origins.into_iter().map(|o| if o.is_empty() { "/".into() } else { o }).collect());
        let own_rpath = search::expand(&info.rpath, &origins);
        let chain: Rc<Vec<String>> = Rc::new(own_rpath.iter().chain(loader_rpath.iter()).cloned().collect());
        let mut dirs: Vec<String> = if info.runpath.is_empty() { chain.to_vec() } else { Vec::new() };
        dirs.extend(search::expand(&info.runpath, &origins));
        dirs.extend(self.system_dirs(&info).iter().cloned());
        let dirs = search::dedup(dirs);
        let mut found = Vec::new();
        for name in &info.needed {
            let path = if name.contains('/') {
                // A name with a slash is a path, used as is.
                Some(name.clone()).filter(|n| n.starts_with('/'))
            } else {
                self.search(&info, name, &dirs)
            };
            let Some(path) = path else {
                return Err(ClosureError::Unresolved { object: real.clone(), library: name.clone(), searched: dirs });
            };
            found.push(Resolved { name: name.clone(), path: lexical(&path) });
            queue.push(Pending { path, strict: true, loader_rpath: chain.clone() });
        }
        self.objects.insert(real.clone(), found);
        Ok(())
    }

    fn system_dirs(&mut self, info: &DynamicInfo) -> Rc<Vec<String>> {
        let tree = self.tree;
        self.system_dirs.entry((info.class, info.big_endian, info.machine)).or_insert_with(|| Rc::new(search::system_dirs(tree, info))).clone()
    }

    /// The first `dir/name` that is an ELF object `info` can link.
    fn search(&mut self, info: &DynamicInfo, name: &str, dirs: &[String]) -> Option<String> {
        for dir in dirs {
            let candidate = format!("{}/{name}", dir.trim_end_matches('/'));
            let Some(real) = self.walk(&candidate, false) else { continue };
            // A file ld.so cannot use (not ELF, damaged, another class or machine) is skipped, as ld.so skips it.
            if self.info(&real).ok().flatten().is_some_and(|h| info.compatible(&h)) {
                return Some(candidate);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::ElfSpec;
    use dinv_fstree::{Meta, Node, Replace};

    fn file(t: &mut Tree, p: &str, bytes: Vec<u8>) {
        t.write_file(&TreePath::new(p), bytes, Meta::root(0o755)).unwrap();
    }

    fn link(t: &mut Tree, p: &str, target: &str) {
        t.symlink(&TreePath::new(p), target).unwrap();
    }

    /// A merged-/usr glibc tree: `/lib` and `/lib64` are symlinks, libraries
    /// are reached through their SONAME links, one in a multiarch
    /// directory named by ld.so.conf.d.
    fn glibc_tree() -> Tree {
        let mut t = Tree::new();
        link(&mut t, "lib", "usr/lib");
        link(&mut t, "lib64", "usr/lib64");
        link(&mut t, "bin", "usr/bin");
        file(&mut t, "etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n".into());
        file(&mut t, "etc/ld.so.conf.d/x86_64-linux-gnu.conf", "/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n".into());
        file(&mut t, "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", ElfSpec { dynamic: false, ..ElfSpec::default() }.bytes());
        link(&mut t, "usr/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
        file(&mut t, "usr/lib/x86_64-linux-gnu/libc.so.6", ElfSpec::library("libc.so.6", &[]).bytes());
        file(&mut t, "usr/lib/x86_64-linux-gnu/libglib-2.0.so.0.7400.6", ElfSpec::library("libglib-2.0.so.0", &["libc.so.6", "libpcre2-8.so.0"]).bytes());
        link(&mut t, "usr/lib/x86_64-linux-gnu/libglib-2.0.so.0", "libglib-2.0.so.0.7400.6");
        file(&mut t, "usr/lib/x86_64-linux-gnu/libpcre2-8.so.0.11.2", ElfSpec::library("libpcre2-8.so.0", &["libc.so.6"]).bytes());
        link(&mut t, "usr/lib/x86_64-linux-gnu/libpcre2-8.so.0", "libpcre2-8.so.0.11.2");
        file(&mut t, "usr/lib/x86_64-linux-gnu/libunused.so.1", ElfSpec::library("libunused.so.1", &["libc.so.6"]).bytes());
        file(&mut t, "usr/bin/qemu", ElfSpec::executable(&["libglib-2.0.so.0", "libc.so.6"]).bytes());
        file(&mut t, "usr/bin/other", ElfSpec::executable(&["libunused.so.1"]).bytes());
        t
    }

    fn closure_of(t: &Tree, roots: &[&str]) -> Result<Vec<String>, ClosureError> {
        let mut c = Closure::new(t);
        for r in roots {
            c.add(&TreePath::new(r))?;
        }
        Ok(c.paths().iter().map(|p| p.as_str().to_string()).collect())
    }

    #[test]
    fn follows_interpreter_needed_and_symlinks_through_merged_usr() {
        let t = glibc_tree();
        let kept = closure_of(&t, &["bin/qemu"]).unwrap();
        assert_eq!(
            kept,
            [
                "bin",
                "lib",
                "lib64",
                "usr",
                "usr/bin",
                "usr/bin/qemu",
                "usr/lib",
                "usr/lib/x86_64-linux-gnu",
                "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                "usr/lib/x86_64-linux-gnu/libc.so.6",
                "usr/lib/x86_64-linux-gnu/libglib-2.0.so.0",
                "usr/lib/x86_64-linux-gnu/libglib-2.0.so.0.7400.6",
                "usr/lib/x86_64-linux-gnu/libpcre2-8.so.0",
                "usr/lib/x86_64-linux-gnu/libpcre2-8.so.0.11.2",
                "usr/lib64",
                "usr/lib64/ld-linux-x86-64.so.2",
            ]
        );
    }

    #[test]
    fn records_what_each_object_needs() {
        let t = glibc_tree();
        let mut c = Closure::new(&t);
        c.add(&TreePath::new("usr/bin/qemu")).unwrap();
        let glib = &c.objects()[&TreePath::new("usr/lib/x86_64-linux-gnu/libglib-2.0.so.0.7400.6")];
        // Found through ld.so.conf.d's first directory, /lib/x86_64-linux-gnu (a path through the /lib symlink).
        assert_eq!(glib.iter().map(|r| (r.name.as_str(), r.path.as_str())).collect::<Vec<_>>(), [("libc.so.6", "lib/x86_64-linux-gnu/libc.so.6"), ("libpcre2-8.so.0", "lib/x86_64-linux-gnu/libpcre2-8.so.0")]);
        assert_eq!(c.objects().len(), 5, "qemu, ld.so, glib, pcre2, libc: {:?}", c.objects().keys());
    }

    #[test]
    fn a_missing_library_names_the_object_and_the_directories() {
        let mut t = glibc_tree();
        t.remove(&TreePath::new("usr/lib/x86_64-linux-gnu/libpcre2-8.so.0.11.2"));
        let e = closure_of(&t, &["usr/bin/qemu"]).unwrap_err().to_string();
        assert!(e.starts_with("/usr/lib/x86_64-linux-gnu/libglib-2.0.so.0.7400.6 needs libpcre2-8.so.0, which is in none of /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib64"), "{e}");
        // A dangling SONAME link is as missing as no link.
        let mut t = glibc_tree();
        t.remove(&TreePath::new("usr/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(closure_of(&t, &["usr/bin/qemu"]).unwrap_err().to_string().contains("needs libc.so.6"));
        let mut t = glibc_tree();
        t.remove(&TreePath::new("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"));
        let e = closure_of(&t, &["usr/bin/qemu"]).unwrap_err().to_string();
        assert_eq!(e, "/usr/bin/qemu: its program interpreter /lib64/ld-linux-x86-64.so.2 is not in the tree");
        assert_eq!(closure_of(&t, &["usr/bin/nope"]).unwrap_err().to_string(), "/usr/bin/nope is not in the tree");
    }

    #[test]
    fn libraries_of_another_class_or_machine_are_skipped() {
        let mut t = glibc_tree();
        // A 32-bit libc earlier in the search order (ld.so.conf's first directory).
        t.remove(&TreePath::new("usr/lib/x86_64-linux-gnu/libc.so.6"));
        file(&mut t, "usr/lib/x86_64-linux-gnu/libc.so.6", ElfSpec { class: Class::Elf32, machine: 3, ..ElfSpec::library("libc.so.6", &[]) }.bytes());
        file(&mut t, "usr/lib/libc.so.6", ElfSpec::library("libc.so.6", &[]).bytes());
        let mut c = Closure::new(&t);
        c.add(&TreePath::new("usr/bin/qemu")).unwrap();
        let libc: Vec<&str> = c.objects()[&TreePath::new("usr/bin/qemu")].iter().filter(|r| r.name == "libc.so.6").map(|r| r.path.as_str()).collect();
        assert_eq!(libc, ["lib/libc.so.6"]);
    }

    #[test]
    fn rpath_runpath_and_origin() {
        let mut t = glibc_tree();
        file(&mut t, "opt/app/lib/libapp.so.1", ElfSpec::library("libapp.so.1", &["libdep.so.1"]).bytes());
        file(&mut t, "opt/app/lib/libdep.so.1", ElfSpec::library("libdep.so.1", &[]).bytes());
        file(&mut t, "opt/rp/libdep.so.1", ElfSpec::library("libdep.so.1", &[]).bytes());
        // RUNPATH with $ORIGIN finds libapp; libapp's own deps use only its
        // own (absent) RUNPATH and the system directories, so libdep must
        // come from the executable's RPATH, which a RUNPATH object ignores...
        let exe = ElfSpec { runpath: vec!["$ORIGIN/../lib".into()], ..ElfSpec::executable(&["libapp.so.1"]) };
        file(&mut t, "opt/app/bin/app", exe.bytes());
        let e = closure_of(&t, &["opt/app/bin/app"]).unwrap_err().to_string();
        assert!(e.contains("libapp.so.1 needs libdep.so.1"), "{e}");
        // ...while an RPATH is inherited by what the object loads.
        let exe = ElfSpec { rpath: vec!["$ORIGIN/../lib".into(), "/opt/rp".into()], ..ElfSpec::executable(&["libapp.so.1"]) };
        file(&mut t, "opt/app/bin/app", exe.bytes());
        let mut c = Closure::new(&t);
        c.add(&TreePath::new("opt/app/bin/app")).unwrap();
        assert_eq!(c.objects()[&TreePath::new("opt/app/lib/libapp.so.1")][0].path.as_str(), "opt/app/lib/libdep.so.1");
        assert!(!c.paths().contains(&TreePath::new("opt/rp/libdep.so.1")));
    }

    #[test]
    fn directories_keep_their_contents_and_link_targets() {
        let mut t = glibc_tree();
        file(&mut t, "usr/share/seabios/bios-256k.bin", vec![0; 64]);
        file(&mut t, "usr/share/qemu/bios-microvm.bin", vec![0; 64]);
        link(&mut t, "usr/share/qemu/bios-256k.bin", "../seabios/bios-256k.bin");
        link(&mut t, "usr/share/qemu/efi-virtio.rom", "/usr/lib/ipxe/qemu/efi-virtio.rom");
        file(&mut t, "usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so", ElfSpec::library("accel-tcg-x86_64.so", &["libglib-2.0.so.0"]).bytes());
        let kept = closure_of(&t, &["usr/share/qemu", "usr/lib/x86_64-linux-gnu/qemu"]).unwrap();
        for p in ["usr/share/qemu/bios-microvm.bin", "usr/share/seabios/bios-256k.bin", "usr/share/qemu/efi-virtio.rom", "usr/lib/x86_64-linux-gnu/libglib-2.0.so.0.7400.6"] {
            assert!(kept.contains(&p.to_string()), "{p}: {kept:?}");
        }
        // A dangling link inside a kept directory stays dangling; nothing else came in.
        assert!(!kept.iter().any(|p| p.contains("ipxe") || p.contains("unused") || p.ends_with("qemu/bios.bin")), "{kept:?}");
    }

    #[test]
    fn hard_links_keep_their_file_and_loops_end() {
        let mut t = glibc_tree();
        t.insert(TreePath::new("usr/bin/qemu-hard"), Node::new(NodeKind::Hardlink(TreePath::new("usr/bin/qemu")), Meta::root(0o755)), Replace::Deny).unwrap();
        let kept = closure_of(&t, &["usr/bin/qemu-hard"]).unwrap();
        assert!(kept.contains(&"usr/bin/qemu".to_string()) && kept.contains(&"usr/lib/x86_64-linux-gnu/libc.so.6".to_string()), "{kept:?}");
        link(&mut t, "loop/a", "b");
        link(&mut t, "loop/b", "a");
        assert!(closure_of(&t, &["loop/a"]).unwrap_err().to_string().contains("/loop/a is not in the tree"));
    }

    #[test]
    fn a_damaged_elf_is_named() {
        let mut t = glibc_tree();
        let mut bytes = ElfSpec::executable(&["libc.so.6"]).bytes();
        bytes.truncate(80);
        file(&mut t, "usr/bin/broken", bytes);
        let e = closure_of(&t, &["usr/bin/broken"]).unwrap_err().to_string();
        assert!(e.starts_with("/usr/bin/broken: malformed ELF: "), "{e}");
        // Inside a kept directory it is kept and reported, not followed.
        let mut c = Closure::new(&t);
        c.add(&TreePath::new("usr/bin")).unwrap();
        assert_eq!(c.unreadable().iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(), ["usr/bin/broken"]);
        assert!(c.paths().contains(&TreePath::new("usr/bin/broken")));
    }
}
