//! The closure of real binaries of this machine, checked against `ldd`
//! (glibc's own resolver, used here only as an oracle): this host's
//! library directories and linker configuration are copied into a tree
//! (as references to the host files), and each binary's closure must hold
//! exactly the files ldd says the binary loads.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use dinv_elf::{parse, Class, Closure, EM_X86_64};
use dinv_fstree::{BackingFile, Content, Meta, Node, NodeKind, Replace, Tree, TreePath};

/// Copies `host` (a file, symlink or directory, `depth` levels down) into
/// the tree at the same path; files become ranges of the host files.
fn load(t: &mut Tree, host: &Path, depth: usize) {
    let Ok(meta) = fs::symlink_metadata(host) else { return };
    let path = TreePath::new(host.to_str().unwrap());
    if meta.file_type().is_symlink() {
        let target = fs::read_link(host).unwrap();
        t.symlink(&path, target.to_str().unwrap()).unwrap();
    } else if meta.is_dir() {
        t.mkdir_p(&path, Meta::root(0o755)).unwrap();
        if depth > 0 {
            for e in fs::read_dir(host).unwrap().flatten() {
                load(t, &e.path(), depth - 1);
            }
        }
    } else if meta.is_file() {
        let Ok(file) = BackingFile::open(host) else { return };
        let node = Node::new(NodeKind::File(Content::Range { file, offset: 0, len: meta.len() }), Meta::root(0o755));
        t.insert(path, node, Replace::Allow).unwrap();
    }
}

/// The parts of this host a dynamic linker reads.
fn host_tree(binaries: &[&str]) -> Tree {
    let mut t = Tree::new();
    for top in ["/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"] {
        if fs::symlink_metadata(top).is_ok_and(|m| m.file_type().is_symlink()) {
            load(&mut t, Path::new(top), 0);
        }
    }
    load(&mut t, Path::new("/etc/ld.so.conf"), 0);
    load(&mut t, Path::new("/etc/ld.so.conf.d"), 1);
    for dir in ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib", "/usr/local/lib"] {
        // Through merged-/usr symlinks the real directory is loaded once.
        let real = fs::canonicalize(dir).ok();
        if let Some(real) = real.filter(|r| !t.contains(&TreePath::new(r.to_str().unwrap()))) {
            load(&mut t, &real, 1);
        }
    }
    for b in binaries {
        let real = fs::canonicalize(b).unwrap();
        load(&mut t, &real, 0);
        if real != Path::new(b) {
            let path = TreePath::new(b);
            if t.resolve(&path).is_none() {
                t.symlink(&path, real.to_str().unwrap()).unwrap();
            }
        }
    }
    t
}

/// What ldd says `binary` loads: the real path of each library and of
/// the program interpreter (the vDSO has no file).
fn ldd(binary: &str) -> BTreeSet<String> {
    let out = Command::new("ldd").arg(binary).output().expect("ldd (libc-bin) is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut files = BTreeSet::new();
    for line in text.lines() {
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else { continue };
        assert!(!line.contains("not found"), "ldd {binary}: {line}");
        files.insert(fs::canonicalize(path).unwrap().to_string_lossy().into_owned());
    }
    files
}

/// The regular files in the closure of `binary`, without the binary itself.
fn closure_files(t: &Tree, binary: &str) -> BTreeSet<String> {
    let mut c = Closure::new(t);
    c.add(&TreePath::new(binary)).unwrap_or_else(|e| panic!("closure of {binary}: {e}"));
    let real = fs::canonicalize(binary).unwrap();
    c.paths()
        .into_iter()
        .filter(|p| matches!(t.get(p).map(|n| &n.kind), Some(NodeKind::File(_))))
        .map(|p| p.absolute())
        .filter(|p| Path::new(p) != real)
        .collect()
}

/// Dynamically linked binaries present here; `/usr/bin/ls` always is.
fn binaries() -> Vec<&'static str> {
    let candidates = ["/usr/bin/ls", "/usr/sbin/e2fsck", "/usr/bin/qemu-system-x86_64", "/usr/bin/python3", "/usr/bin/apt-get", "/usr/bin/tar", "/usr/bin/curl"];
    let found: Vec<&str> = candidates.into_iter().filter(|b| Path::new(b).is_file()).collect();
    assert!(found.contains(&"/usr/bin/ls"));
    found
}

#[test]
fn closures_match_ldd() {
    let bins = binaries();
    let t = host_tree(&bins);
    for b in &bins {
        let expected = ldd(b);
        assert!(expected.len() >= 2, "ldd {b} names the interpreter and libc at least: {expected:?}");
        assert_eq!(closure_files(&t, b), expected, "closure of {b}");
        eprintln!("{b}: {} files, as ldd says", expected.len());
    }
}

#[test]
fn parses_this_hosts_binaries() {
    let ls = fs::read("/usr/bin/ls").unwrap();
    let info = parse(&ls).unwrap();
    assert_eq!((info.class, info.big_endian, info.machine), (Class::Elf64, false, EM_X86_64));
    assert_eq!(info.interpreter.as_deref(), Some("/lib64/ld-linux-x86-64.so.2"));
    assert!(info.needed.contains(&"libc.so.6".to_string()), "{:?}", info.needed);
    let libc = fs::read(fs::canonicalize("/lib/x86_64-linux-gnu/libc.so.6").unwrap()).unwrap();
    let info = parse(&libc).unwrap();
    assert_eq!(info.soname.as_deref(), Some("libc.so.6"));
    assert!(info.needed.iter().any(|n| n.starts_with("ld-linux")), "{:?}", info.needed);
}

#[test]
fn a_static_binary_needs_nothing() {
    // The host's docker CLI when it is static; otherwise the dynamic linker itself.
    let candidates = ["/usr/local/bin/docker", "/lib64/ld-linux-x86-64.so.2"];
    let b = candidates.into_iter().find(|b| fs::read(b).ok().and_then(|d| parse(&d).ok()).is_some_and(|i| i.interpreter.is_none() && i.needed.is_empty())).expect("a static ELF file");
    let t = host_tree(&[b]);
    assert!(closure_files(&t, b).is_empty());
}
