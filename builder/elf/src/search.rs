//! Where the dynamic linker looks for a `DT_NEEDED` name without a slash,
//! read from the tree: `DT_RPATH` (of the object and its loaders, unless
//! the object has `DT_RUNPATH`), `DT_RUNPATH`, then the system directories:
//! glibc's `/etc/ld.so.conf` (with its `include` globs), musl's
//! `/etc/ld-musl-<arch>.path`, and both libcs' built-in defaults.

use dinv_fstree::{NodeKind, Tree, TreePath};

use crate::dynamic::{Class, DynamicInfo};

/// Includes nested deeper than this are ignored (a loop in ld.so.conf).
const MAX_INCLUDE_DEPTH: usize = 8;

/// (`e_machine`, Debian multiarch triplet, musl's arch name).
const MACHINES: &[(u16, &str, &str)] = &[
    (3, "i386-linux-gnu", "i386"),
    (21, "powerpc64le-linux-gnu", "powerpc64le"),
    (22, "s390x-linux-gnu", "s390x"),
    (40, "arm-linux-gnueabihf", "armhf"),
    (62, "x86_64-linux-gnu", "x86_64"),
    (183, "aarch64-linux-gnu", "aarch64"),
    (243, "riscv64-linux-gnu", "riscv64"),
];

/// The system directories for objects like `info`, in search order,
/// absolute, each once.
pub fn system_dirs(tree: &Tree, info: &DynamicInfo) -> Vec<String> {
    let mut dirs = Vec::new();
    ld_so_conf(tree, "/etc/ld.so.conf", 0, &mut dirs);
    let machine = MACHINES.iter().find(|m| m.0 == info.machine);
    if let Some((_, _, arch)) = machine {
        if let Some(text) = read_text(tree, &format!("/etc/ld-musl-{arch}.path")) {
            dirs.extend(text.split(['\n', ':']).map(str::trim).filter(|d| d.starts_with('/')).map(str::to_string));
        }
    }
    if let Some((_, triplet, _)) = machine {
        dirs.push(format!("/lib/{triplet}"));
        dirs.push(format!("/usr/lib/{triplet}"));
    }
    let bits = if info.class == Class::Elf64 { "64" } else { "32" };
    dirs.extend([format!("/lib{bits}"), format!("/usr/lib{bits}"), "/lib".into(), "/usr/local/lib".into(), "/usr/lib".into()]);
    dedup(dirs)
}

/// `dirs` without repeats (the first occurrence stays) or trailing slashes.
pub(crate) fn dedup(dirs: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(dirs.len());
    for d in dirs {
        let d = match d.trim_end_matches('/') {
            "" => "/".to_string(),
            t => t.to_string(),
        };
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

/// `$ORIGIN` and `${ORIGIN}` replaced by each of `origins` (directories,
/// absolute). Entries with other tokens (`$LIB`, `$PLATFORM`) or relative
/// ones (relative to the process's working directory) are left out: no
/// tree path stands for them.
pub fn expand(entries: &[String], origins: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for e in entries {
        if e.contains("$ORIGIN") || e.contains("${ORIGIN}") {
            for o in origins {
                out.push(e.replace("${ORIGIN}", o).replace("$ORIGIN", o));
            }
        } else {
            out.push(e.clone());
        }
    }
    out.retain(|d| d.starts_with('/') && !d.contains('$'));
    out
}

/// A regular file's text, following symlinks in the tree.
fn read_text(tree: &Tree, abs: &str) -> Option<String> {
    let p = TreePath::parse(abs, true).ok()?;
    tree.read_file(&p).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// The directories `file` (an ld.so.conf) names, in order, following its
/// `include` lines; a missing file names none.
fn ld_so_conf(tree: &Tree, file: &str, depth: usize, dirs: &mut Vec<String>) {
    let Some(text) = read_text(tree, file) else { return };
    let base = file.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(patterns) = line.strip_prefix("include").filter(|r| r.starts_with([' ', '\t'])) {
            if depth >= MAX_INCLUDE_DEPTH {
                continue;
            }
            for pattern in patterns.split_whitespace() {
                let pattern = if pattern.starts_with('/') { pattern.to_string() } else { format!("{base}/{pattern}") };
                for included in glob(tree, &pattern) {
                    ld_so_conf(tree, &included, depth + 1, dirs);
                }
            }
        } else if line.starts_with('/') {
            dirs.push(line.to_string());
        }
        // `hwcap` lines and anything else name no directory.
    }
}

/// The files matching `pattern` (wildcards in its last component only),
/// sorted by name, as glob(3) sorts them.
fn glob(tree: &Tree, pattern: &str) -> Vec<String> {
    let (dir, name) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    if !name.contains(['*', '?']) {
        return vec![pattern.to_string()];
    }
    let Some(real) = TreePath::parse(dir, true).ok().and_then(|d| tree.resolve(&d)) else { return Vec::new() };
    if !tree.get(&real).is_some_and(|n| matches!(n.kind, NodeKind::Dir)) {
        return Vec::new();
    }
    let mut names: Vec<&str> = tree.children(&real).map(|(p, _)| p.file_name()).filter(|n| wildcard(name.as_bytes(), n.as_bytes())).collect();
    names.sort_unstable();
    names.into_iter().map(|n| format!("{dir}/{n}")).collect()
}

/// Shell wildcard match: `*` any run, `?` one byte, anything else itself;
/// a leading `.` is matched only literally.
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'.') && pattern.first() != Some(&b'.') {
        return false;
    }
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((sp, sn)) = star {
            p = sp + 1;
            n = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::ElfSpec;
    use dinv_fstree::Meta;

    fn write(t: &mut Tree, p: &str, text: &str) {
        t.write_file(&TreePath::new(p), text, Meta::root(0o644)).unwrap();
    }

    #[test]
    fn wildcards_match_as_glob_does() {
        for (p, n, ok) in [("*.conf", "libc.conf", true), ("*.conf", "libc.conf.bak", false), ("*.conf", ".hidden.conf", false), ("x?.conf", "x8.conf", true), ("*", "", true), ("a*b*c", "aXXbYc", true), ("a*b*c", "aXXbY", false)] {
            assert_eq!(wildcard(p.as_bytes(), n.as_bytes()), ok, "{p} ~ {n}");
        }
    }

    #[test]
    fn ld_so_conf_includes_in_name_order_then_defaults() {
        let mut t = Tree::new();
        write(&mut t, "etc/ld.so.conf", "# comment\ninclude /etc/ld.so.conf.d/*.conf\n/opt/first\n");
        write(&mut t, "etc/ld.so.conf.d/x86_64-linux-gnu.conf", "# Multiarch support\n/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n");
        write(&mut t, "etc/ld.so.conf.d/fakeroot.conf", "/usr/lib/x86_64-linux-gnu/libfakeroot\n");
        write(&mut t, "etc/ld.so.conf.d/ignored.txt", "/nope\n");
        let info = crate::parse(&ElfSpec::default().bytes()).unwrap();
        let dirs = system_dirs(&t, &info);
        assert_eq!(
            dirs[..6],
            ["/usr/lib/x86_64-linux-gnu/libfakeroot", "/usr/local/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/opt/first", "/lib64"]
        );
        assert!(dirs.ends_with(&["/usr/lib64".into(), "/lib".into(), "/usr/local/lib".into(), "/usr/lib".into()]), "{dirs:?}");
    }

    #[test]
    fn musl_path_file_and_include_loops() {
        let mut t = Tree::new();
        write(&mut t, "etc/ld-musl-x86_64.path", "/lib:/usr/lib\n/opt/musl\n");
        write(&mut t, "etc/ld.so.conf", "include ld.so.conf\n");
        let info = crate::parse(&ElfSpec::default().bytes()).unwrap();
        assert_eq!(system_dirs(&t, &info)[..4], ["/lib", "/usr/lib", "/opt/musl", "/lib/x86_64-linux-gnu"]);
    }

    #[test]
    fn origin_expands_and_unknown_tokens_drop_out() {
        let e = ["$ORIGIN/../lib".to_string(), "${ORIGIN}".into(), "$LIB/x".into(), "rel/dir".into(), "/abs".into()];
        assert_eq!(expand(&e, &["/opt/a/bin".into()]), ["/opt/a/bin/../lib", "/opt/a/bin", "/abs"]);
    }
}
