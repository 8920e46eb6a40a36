//! What leaves the guest tree besides packages: `rootfs.strip` (what a
//! headless VM never reads), `guest.remove` / `runtime.remove` (paths the
//! recipe names, each of which must exist), and the kernel modules the
//! guest cannot need. Every removal is counted for `report.json`; the SBOM
//! still lists every package.

use dinv_fstree::{NodeKind, Tree, TreePath};
use serde::Serialize;

use crate::recipe::LoadedRecipe;
use crate::Result;

/// Files removed for one reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Removal {
    /// Why, e.g. `rootfs.strip: man pages` or `guest.remove`.
    pub why: String,
    /// Files, symlinks and other non-directories removed.
    pub files: u64,
    /// Bytes of regular-file content removed.
    pub bytes: u64,
}

/// What `rootfs.strip` removes: (reason, directory, what is kept below it).
const STRIP: &[(&str, &str, Keep)] = &[
    ("documentation", "usr/share/doc", Keep::Copyright),
    ("documentation", "usr/share/doc-base", Keep::Nothing),
    ("man pages", "usr/share/man", Keep::Nothing),
    ("info pages", "usr/share/info", Keep::Nothing),
    ("locales", "usr/share/locale", Keep::CLocale),
    ("locales", "usr/lib/locale", Keep::CLocale),
    ("lintian overrides", "usr/share/lintian", Keep::Nothing),
];

#[derive(Clone, Copy)]
enum Keep {
    Nothing,
    /// `usr/share/doc/<package>/copyright`: the licences stay with the binaries.
    Copyright,
    /// `C.UTF-8`/`C.utf8` and `locale.alias`.
    CLocale,
}

impl Keep {
    /// Whether `rel` (the path below the stripped directory) stays.
    fn keeps(self, rel: &[&str]) -> bool {
        match self {
            Keep::Nothing => false,
            Keep::Copyright => rel.len() == 2 && rel[1] == "copyright",
            Keep::CLocale => matches!(rel.first(), Some(&("C.UTF-8" | "C.utf8" | "locale.alias"))),
        }
    }
}

/// `rootfs.strip`: removes docs (but copyright files), man and info pages,
/// locales but C.UTF-8, and lintian overrides. One [`Removal`] per reason
/// that removed anything.
pub fn strip(tree: &mut Tree) -> Vec<Removal> {
    let mut out: Vec<Removal> = Vec::new();
    for (why, dir, keep) in STRIP {
        let dir = TreePath::new(dir);
        if !tree.get(&dir).is_some_and(|n| n.is_dir()) {
            continue;
        }
        let depth = dir.components().count();
        let doomed: Vec<TreePath> = tree
            .subtree(&dir)
            .filter(|(p, n)| !n.is_dir() && !keep.keeps(&p.components().skip(depth).collect::<Vec<_>>()))
            .map(|(p, _)| p.clone())
            .collect();
        let (mut files, mut bytes) = (0, 0);
        for p in &doomed {
            let (f, b) = measure(tree, p);
            files += f;
            bytes += b;
            tree.remove(p);
        }
        remove_empty_dirs(tree, &dir);
        if files == 0 {
            continue;
        }
        match out.iter_mut().find(|r| r.why.ends_with(why)) {
            Some(r) => {
                r.files += files;
                r.bytes += bytes;
            }
            None => out.push(Removal { why: format!("rootfs.strip: {why}"), files, bytes }),
        }
    }
    out
}

/// Removes the recipe's `key` paths (`guest.remove`, `runtime.remove`;
/// syntax validated at load). A path that is not in the tree, directly or
/// through a symlinked parent, is an error pointing at its recipe line.
pub fn remove_paths(l: &LoadedRecipe, tree: &mut Tree, key: &str, paths: &[String]) -> Result<Option<Removal>> {
    let mut total = Removal { why: key.to_string(), files: 0, bytes: 0 };
    for (i, p) in paths.iter().enumerate() {
        let tp = TreePath::parse(p, true).expect("validated when the recipe was loaded");
        let found = if tree.contains(&tp) { Some(tp.clone()) } else { tp.parent().and_then(|d| tree.resolve(&d)).and_then(|d| d.join(tp.file_name()).ok()).filter(|t| tree.contains(t)) };
        let Some(found) = found else {
            return Err(l.error(&format!("{key}[{i}]"), format!("{p:?} is not in the tree (nothing to remove; check the path)")).into());
        };
        let (f, b) = measure(tree, &found);
        tree.remove(&found);
        tracing::debug!(path = %found, files = f, bytes = b, "removed");
        total.files += f;
        total.bytes += b;
    }
    Ok((!paths.is_empty()).then_some(total))
}

/// Non-directories and file bytes at and below `path`.
pub fn measure(tree: &Tree, path: &TreePath) -> (u64, u64) {
    tree.subtree(path).fold((0, 0), |(f, b), (_, n)| match &n.kind {
        NodeKind::Dir => (f, b),
        NodeKind::File(c) => (f + 1, b + c.len()),
        _ => (f + 1, b),
    })
}

/// Removes the directories below `dir` that hold nothing (deepest first).
fn remove_empty_dirs(tree: &mut Tree, dir: &TreePath) {
    let mut dirs: Vec<TreePath> = tree.subtree(dir).filter(|(p, n)| n.is_dir() && *p != dir).map(|(p, _)| p.clone()).collect();
    dirs.reverse();
    for d in dirs {
        if tree.children(&d).next().is_none() {
            tree.remove(&d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dinv_fstree::Meta;

    fn tree(files: &[(&str, usize)]) -> Tree {
        let mut t = Tree::new();
        for (p, n) in files {
            t.write_file(&TreePath::new(p), vec![b'x'; *n], Meta::root(0o644)).unwrap();
        }
        t
    }

    fn paths(t: &Tree) -> Vec<String> {
        t.iter().filter(|(_, n)| !n.is_dir()).map(|(p, _)| p.as_str().to_string()).collect()
    }

    #[test]
    fn strips_docs_man_info_locales_lintian_and_counts_them() {
        let mut t = tree(&[
            ("usr/share/doc/bash/copyright", 10),
            ("usr/share/doc/bash/changelog.Debian.gz", 100),
            ("usr/share/doc/bash/examples/x.sh", 5),
            ("usr/share/man/man1/bash.1.gz", 50),
            ("usr/share/man/de/man1/bash.1.gz", 40),
            ("usr/share/info/bash.info.gz", 30),
            ("usr/share/locale/de/LC_MESSAGES/bash.mo", 20),
            ("usr/share/locale/C.UTF-8/LC_MESSAGES/x.mo", 7),
            ("usr/share/locale/locale.alias", 3),
            ("usr/lib/locale/C.utf8/LC_CTYPE", 9),
            ("usr/lib/locale/de_DE.utf8/LC_CTYPE", 11),
            ("usr/share/lintian/overrides/bash", 4),
            ("usr/bin/bash", 1000),
        ]);
        let r = strip(&mut t);
        assert_eq!(
            paths(&t),
            [
                "usr/bin/bash",
                "usr/lib/locale/C.utf8/LC_CTYPE",
                "usr/share/doc/bash/copyright",
                "usr/share/locale/C.UTF-8/LC_MESSAGES/x.mo",
                "usr/share/locale/locale.alias",
            ]
        );
        let get = |w: &str| r.iter().find(|x| x.why == format!("rootfs.strip: {w}")).map(|x| (x.files, x.bytes));
        assert_eq!(get("documentation"), Some((2, 105)));
        assert_eq!(get("man pages"), Some((2, 90)));
        assert_eq!(get("info pages"), Some((1, 30)));
        assert_eq!(get("locales"), Some((2, 31)));
        assert_eq!(get("lintian overrides"), Some((1, 4)));
        // Emptied directories go; the stripped roots stay.
        assert!(!t.contains(&TreePath::new("usr/share/doc/bash/examples")));
        assert!(!t.contains(&TreePath::new("usr/share/man/man1")));
        assert!(t.contains(&TreePath::new("usr/share/man")));
        // Nothing left to strip: nothing reported.
        assert!(strip(&mut t).is_empty());
    }
}
