//! The plain-text index files depmod writes (`modules.dep`, `modules.alias`,
//! `modules.softdep`, `modules.builtin`, `modules.builtin.alias`), generated
//! at build time so the guest never has to run depmod.

use std::collections::HashMap;
use std::fmt::Write;

use dinv_fstree::{Meta, Tree, TreePath};

use crate::{KernelError, ModuleSet};

/// One generated file: its path in the guest tree and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedFile {
    pub path: TreePath,
    pub bytes: Vec<u8>,
}

/// Generates the index files for every module of `set`, placed in its
/// modules directory. `modules.builtin` is only generated when the kernel
/// did not ship one and `modules.builtin.modinfo` names the files. The
/// binary `.bin` indexes are not written (busybox modprobe reads the text
/// files; kmod needs the `.bin` ones).
pub fn depmod_files(set: &ModuleSet) -> Result<Vec<GeneratedFile>, KernelError> {
    let mut memo: HashMap<String, Vec<String>> = HashMap::new();
    let mut dep = String::new();
    let mut alias = String::from("# Aliases extracted from modules themselves.\n");
    let mut softdep = String::from("# Soft dependencies extracted from modules themselves.\n");
    let mut by_rel: Vec<_> = set.iter().collect();
    by_rel.sort_by(|a, b| a.rel.cmp(&b.rel));
    for m in by_rel {
        let deps = all_dependencies(set, &m.name, &mut memo, &mut Vec::new())?;
        let _ = write!(dep, "{}:", m.rel);
        // depmod lists the deepest dependencies last; modprobe loads the
        // line from the end, so write the load order reversed.
        for d in deps.iter().rev() {
            let _ = write!(dep, " {}", set.get(d).expect("closure only holds known modules").rel);
        }
        dep.push('\n');
        let info = m.info()?;
        for a in &info.aliases {
            let _ = writeln!(alias, "alias {} {}", a, m.name);
        }
        // One line per `softdep=` entry, verbatim, as depmod writes them.
        for (_, v) in info.raw.iter().filter(|(k, _)| k == "softdep") {
            let _ = writeln!(softdep, "softdep {} {}", m.name, v);
        }
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
    let at = |name: &str, text: String| GeneratedFile { path: set.dir().join(name).expect("constant name"), bytes: text.into_bytes() };
    let mut out = vec![at("modules.dep", dep), at("modules.alias", alias), at("modules.softdep", softdep), at("modules.builtin.alias", builtin_alias)];
    if !set.has_modules_builtin() && !builtin.is_empty() {
        out.push(at("modules.builtin", builtin));
    }
    Ok(out)
}

/// Transitive hard dependencies of `name` in load order (without itself).
fn all_dependencies(set: &ModuleSet, name: &str, memo: &mut HashMap<String, Vec<String>>, stack: &mut Vec<String>) -> Result<Vec<String>, KernelError> {
    if let Some(d) = memo.get(name) {
        return Ok(d.clone());
    }
    if let Some(pos) = stack.iter().position(|s| s == name) {
        let mut cycle = stack[pos..].to_vec();
        cycle.push(name.to_string());
        return Err(KernelError::ModuleCycle { release: set.release().to_string(), cycle });
    }
    stack.push(name.to_string());
    let m = set.get(name).expect("called with known modules");
    let mut out: Vec<String> = Vec::new();
    for d in set.depends(m)? {
        if set.get(&d).is_none() {
            if set.is_builtin(&d) {
                continue;
            }
            return Err(KernelError::ModuleNotFound {
                release: set.release().to_string(),
                module: d,
                why: format!("is needed by {} ({}) but is not under {} and not built in", name, m.rel, set.dir()),
            });
        }
        for x in all_dependencies(set, &d, memo, stack)?.into_iter().chain([d.clone()]) {
            if !out.contains(&x) {
                out.push(x);
            }
        }
    }
    stack.pop();
    memo.insert(name.to_string(), out.clone());
    Ok(out)
}

/// Writes generated files into a tree (root-owned, 0644, at `mtime`),
/// replacing files of the same name.
pub fn add_to_tree(tree: &mut Tree, files: &[GeneratedFile], mtime: i64) -> Result<(), KernelError> {
    for f in files {
        let meta = Meta { mtime, ..Meta::root(0o644) };
        tree.write_file(&f.path, f.bytes.clone(), meta).map_err(KernelError::tree(format!("adding {}", f.path)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::tests::fake_tree;

    #[test]
    fn writes_depmod_text_files() {
        let mut t = fake_tree(
            "6.1-t",
            &[
                ("kernel/v/virtio_ring.ko", "name=virtio_ring\ndepends="),
                ("kernel/v/virtio.ko.xz", "name=virtio\ndepends=virtio_ring"),
                ("kernel/b/virtio_blk.ko", "name=virtio_blk\ndepends=virtio,virtio_ring\nalias=virtio:d00000002v*"),
                ("kernel/fs/ext4.ko", "name=ext4\ndepends=unix\nsoftdep=pre: crc32c\nalias=fs-ext4\nalias=ext3"),
            ],
        );
        t.write_file(&TreePath::new("usr/lib/modules/6.1-t/modules.builtin.modinfo"), "unix.file=net/unix/unix\0unix.alias=net-pf-1\0", Meta::root(0o644))
            .unwrap();
        let set = ModuleSet::load(&t, "6.1-t").unwrap();
        let files = depmod_files(&set).unwrap();
        let get = |n: &str| String::from_utf8(files.iter().find(|f| f.path.file_name() == n).unwrap().bytes.clone()).unwrap();
        assert_eq!(
            get("modules.dep"),
            "kernel/b/virtio_blk.ko: kernel/v/virtio.ko.xz kernel/v/virtio_ring.ko\nkernel/fs/ext4.ko:\nkernel/v/virtio.ko.xz: kernel/v/virtio_ring.ko\nkernel/v/virtio_ring.ko:\n"
        );
        assert_eq!(
            get("modules.alias"),
            "# Aliases extracted from modules themselves.\nalias virtio:d00000002v* virtio_blk\nalias fs-ext4 ext4\nalias ext3 ext4\n"
        );
        assert!(get("modules.softdep").ends_with("\nsoftdep ext4 pre: crc32c\n"));
        assert_eq!(get("modules.builtin"), "kernel/net/unix/unix.ko\n");
        assert_eq!(get("modules.builtin.alias"), "alias net-pf-1 unix\n");
        assert!(files.iter().all(|f| f.path.as_str().starts_with("usr/lib/modules/6.1-t/")));

        // Round trip: a set loaded with the generated modules.dep agrees.
        add_to_tree(&mut t, &files, 7).unwrap();
        let again = ModuleSet::load(&t, "6.1-t").unwrap();
        assert!(again.has_modules_dep() && again.has_modules_builtin());
        assert_eq!(again.closure(&["virtio_blk"]).unwrap().modules, set.closure(&["virtio_blk"]).unwrap().modules);
        assert_eq!(t.get(&TreePath::new("lib/modules/6.1-t/modules.dep")).map(|n| n.meta.mtime), None, "lib is a symlink");
        assert_eq!(t.get(&TreePath::new("usr/lib/modules/6.1-t/modules.dep")).unwrap().meta.mtime, 7);
    }
}
