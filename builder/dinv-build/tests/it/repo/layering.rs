//! No import circles between files, in any crate of the workspace.
//!
//! Every `.rs` file under a crate's `src/` is a node. An edge goes from a
//! file to the module file each of its paths names: `use crate::…`,
//! `use super::…`, `use self::…`, and the same paths written in code
//! (`crate::recipe::load(…)`). A path through a re-export (`pub use
//! error::Result;` in lib.rs) leads to the file that defines the item.
//! `mod` declarations are not edges: a parent declares its children and
//! calls them; children that need shared helpers take them from a sibling.
//! The test fails with every cycle it finds, as `a.rs → b.rs → a.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Module path (`["configure", "kernel"]`) of each source file of one crate.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()) {
            if e.is_dir() {
                if e.file_name().unwrap() != "bin" {
                    stack.push(e);
                }
                continue;
            }
            if e.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = e.strip_prefix(src).unwrap();
            let mut segs: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
            let last = segs.pop().unwrap();
            match last.as_str() {
                "lib.rs" | "main.rs" if segs.is_empty() => {}
                "mod.rs" => {}
                f => segs.push(f.trim_end_matches(".rs").to_string()),
            }
            // main.rs is its own crate root, which uses the library by name.
            if last == "main.rs" && rel.parent() == Some(Path::new("")) {
                continue;
            }
            out.insert(segs, e);
        }
    }
    out
}

/// The source with comments, strings and char literals blanked out.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i += 2;
            while i < b.len() && !b[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'r' && i + 1 < b.len() && (b[i + 1] == b'"' || b[i + 1] == b'#') && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) {
            // Raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while j < b.len() && b[j] == b'#' {
                hashes += 1;
                j += 1;
            }
            if j < b.len() && b[j] == b'"' {
                let end = format!("\"{}", "#".repeat(hashes));
                let rest = &text[j + 1..];
                i = j + 1 + rest.find(&end).map(|k| k + end.len()).unwrap_or(rest.len());
                out.push_str("\"\"");
            } else {
                out.push('r');
                i += 1;
            }
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || (b[i + 1] == b'\\' && b[i + 3..].contains(&b'\''))) {
            // A char literal ('a', '\n'); lifetimes ('a) are left alone.
            let close = b[i + 2..].iter().position(|&c| c == b'\'').unwrap() + i + 2;
            i = close + 1;
            out.push_str("' '");
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// `code` without its `#[cfg(test)] mod … { … }` blocks: unit tests are
/// not part of the import graph (their `super` is the file itself).
fn without_test_modules(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(i) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..i]);
        let after = &rest[i + "#[cfg(test)]".len()..];
        let trimmed = after.trim_start();
        if !(trimmed.starts_with("mod ") || trimmed.starts_with("pub(crate) mod ") || trimmed.starts_with("pub mod ")) {
            rest = after;
            continue;
        }
        let Some(open) = after.find('{').filter(|&o| !after[..o].contains(';')) else {
            rest = after;
            continue;
        };
        let mut depth = 0;
        let mut end = after.len();
        for (j, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + j + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Expands a `use` tree (`a::{b, c::{d, e}}`) into full paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else { return vec![tree.split(" as ").next().unwrap().trim().to_string()] };
    let prefix = tree[..open].trim_end_matches("::").trim();
    let inner = &tree[open + 1..tree.rfind('}').unwrap()];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand(p).into_iter().map(move |q| if q == "self" { prefix.to_string() } else { format!("{prefix}::{q}") }))
        .collect()
}

/// Every crate-relative path a file names: `use` trees and inline paths.
fn paths(code: &str) -> (Vec<String>, Vec<String>) {
    let mut uses = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let before = &rest[..i];
        let boundary = before.is_empty() || before.ends_with(|c: char| c.is_whitespace() || c == ';' || c == '{' || c == '}');
        rest = &rest[i + 4..];
        if !boundary {
            continue;
        }
        let end = rest.find(';').unwrap_or(rest.len());
        let stmt: String = rest[..end].split_whitespace().collect::<Vec<_>>().join(" ");
        let public = before.trim_end().ends_with("pub") || before.trim_end().ends_with(')');
        for p in expand(&stmt) {
            uses.push((public, p));
        }
        rest = &rest[end..];
    }
    let mut inline = Vec::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start).map(|i| i + from) {
            from = i + start.len();
            if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b':') {
                continue;
            }
            let len = code[i..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(code.len() - i);
            let path = code[i..i + len].trim_end_matches(':');
            // `crate::{…}` is a use group, already expanded above.
            if path.split("::").any(|seg| !matches!(seg, "crate" | "super" | "self")) {
                inline.push(path.to_string());
            }
        }
    }
    let public: Vec<String> = uses.iter().filter(|(p, _)| *p).map(|(_, u)| u.clone()).collect();
    let mut all: Vec<String> = uses.into_iter().map(|(_, u)| u).collect();
    all.extend(inline);
    (all, public)
}

/// `crate::a::b` / `super::x` / `self::y` seen from module `here` → absolute segments.
fn absolute(path: &str, here: &[String], is_mod_file: bool) -> Option<Vec<String>> {
    let segs: Vec<&str> = path.split("::").collect();
    let mut base: Vec<String> = match segs[0] {
        "crate" => vec![],
        "self" => here.to_vec(),
        "super" => {
            // In `a/b.rs`, `super` is `a`; in `a/mod.rs` (module `a`) it is the crate root.
            let mut b = here.to_vec();
            let _ = is_mod_file;
            b.pop()?;
            b
        }
        _ => return None,
    };
    let mut i = 1;
    while i < segs.len() && segs[i] == "super" {
        base.pop()?;
        i += 1;
    }
    base.extend(segs[i..].iter().map(|s| s.to_string()));
    Some(base)
}

struct Crate {
    name: String,
    files: BTreeMap<Vec<String>, PathBuf>,
    /// Module → (exported name → absolute path it re-exports).
    reexports: BTreeMap<Vec<String>, BTreeMap<String, Vec<String>>>,
    /// File → absolute paths it names.
    named: BTreeMap<Vec<String>, Vec<Vec<String>>>,
}

fn load_crate(name: &str, src: &Path) -> Crate {
    let files = modules(src);
    let mut reexports = BTreeMap::new();
    let mut named = BTreeMap::new();
    for (m, file) in &files {
        let code = without_test_modules(&code_only(&fs::read_to_string(file).unwrap()));
        let here = m.clone();
        let is_mod = file.file_name().unwrap() == "mod.rs" || file.file_name().unwrap() == "lib.rs";
        let (mut all, public) = paths(&code);
        if is_mod {
            // A module file may name its children without a prefix: `services::apply(…)`.
            let children: Vec<&String> = files.keys().filter(|k| k.len() == here.len() + 1 && k.starts_with(&here)).map(|k| k.last().unwrap()).collect();
            for child in children {
                let needle = format!("{child}::");
                let mut from = 0;
                while let Some(i) = code[from..].find(&needle).map(|i| i + from) {
                    from = i + needle.len();
                    let before = code[..i].chars().next_back();
                    if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                        continue;
                    }
                    let len = code[i..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(code.len() - i);
                    let path = code[i..i + len].trim_end_matches(':');
                    if path.contains("::") {
                        all.push(path.to_string());
                    }
                }
            }
        }
        let resolve = |p: &str| {
            let p = if p.starts_with("crate") || p.starts_with("super") || p.starts_with("self") {
                p.to_string()
            } else if is_mod {
                // `pub use child::X;` in a module file names its child.
                format!("self::{p}")
            } else {
                return None;
            };
            absolute(&p, &here, is_mod)
        };
        let mut map = BTreeMap::new();
        for p in &public {
            if let Some(abs) = resolve(p) {
                let exported = p.rsplit("::").next().unwrap().to_string();
                map.insert(exported, abs);
            }
        }
        reexports.insert(here.clone(), map);
        named.insert(m.clone(), all.iter().filter_map(|p| resolve(p)).collect());
    }
    Crate { name: name.to_string(), files, reexports, named }
}

impl Crate {
    /// The file an absolute path leads to: the deepest module it names,
    /// through re-exports.
    fn target(&self, path: &[String], depth: usize) -> Option<Vec<String>> {
        let mut best = None;
        for n in (0..=path.len()).rev() {
            if self.files.contains_key(&path[..n].to_vec()) {
                best = Some(n);
                break;
            }
        }
        let n = best?;
        let module = path[..n].to_vec();
        if let (Some(next), true) = (path.get(n), depth < 8) {
            if let Some(to) = self.reexports.get(&module).and_then(|m| m.get(next)) {
                let mut full = to.clone();
                full.extend(path[n + 1..].iter().cloned());
                return self.target(&full, depth + 1).or(Some(module));
            }
        }
        Some(module)
    }

    fn edges(&self) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
        let mut g: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
        for (from, paths) in &self.named {
            let set = g.entry(from.clone()).or_default();
            for p in paths {
                if let Some(to) = self.target(p, 0) {
                    if &to != from && self.files.contains_key(&to) {
                        set.insert(to);
                    }
                }
            }
        }
        g
    }

    fn show(&self, m: &[String]) -> String {
        self.files[m].display().to_string()
    }
}

/// Strongly connected components with more than one file (Tarjan).
fn cycles(g: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    struct St<'a> {
        g: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        on: BTreeSet<&'a Vec<String>>,
        stack: Vec<&'a Vec<String>>,
        next: usize,
        out: Vec<Vec<Vec<String>>>,
    }
    fn visit<'a>(s: &mut St<'a>, v: &'a Vec<String>) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on.insert(v);
        for w in s.g.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on.remove(w);
                comp.push(w.clone());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                s.out.push(comp);
            }
        }
    }
    let mut s = St { g, index: BTreeMap::new(), low: BTreeMap::new(), on: BTreeSet::new(), stack: Vec::new(), next: 0, out: Vec::new() };
    for v in g.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every crate of the workspace with a `src/` directory (the test support
/// crate keeps its files at its top level).
fn crates() -> Vec<(String, PathBuf)> {
    let root = workspace();
    let mut out = Vec::new();
    for dir in ["builder/fstree", "builder/apk", "builder/solver", "builder/deb", "builder/ext4", "builder/kernel", "builder/elf", "builder/image", "builder/dinv-build", "launcher/launcher", "launcher/init", "launcher/guest", "launcher/contract"] {
        out.push((dir.to_string(), root.join(dir).join("src")));
    }
    out
}

#[test]
fn the_checker_finds_a_planted_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    fs::create_dir_all(src.join("a")).unwrap();
    fs::write(src.join("lib.rs"), "mod a;\nmod b;\npub use b::Thing;\n").unwrap();
    fs::write(src.join("a/mod.rs"), "mod c;\nuse crate::Thing;\npub fn f() { c::g() }\n").unwrap();
    fs::write(src.join("a/c.rs"), "pub fn g() { super::super::b::h() }\n// use crate::a; in a comment is no edge\n").unwrap();
    // A parent calling its child by name, and the child using the parent's helper, is a circle.
    fs::write(src.join("a/c.rs"), "pub fn g() { super::helper() }\n").unwrap();
    fs::write(src.join("a/mod.rs"), "mod c;\npub fn f() { c::g() }\nfn helper() {}\n").unwrap();
    let c = load_crate("t", src);
    assert_eq!(cycles(&c.edges()).len(), 1, "{:?}", c.edges());
    fs::write(src.join("a/mod.rs"), "mod c;\nuse crate::Thing;\npub fn f() { c::g() }\n").unwrap();
    fs::write(src.join("a/c.rs"), "pub fn g() { super::super::b::h() }\n// use crate::a; in a comment is no edge\n").unwrap();
    fs::write(src.join("b.rs"), "pub struct Thing;\npub fn h() { let _ = \"crate::a::f\"; }\n#[cfg(test)]\nmod tests {\n    use super::*;\n    use crate::a::f;\n}\n").unwrap();
    let c = load_crate("t", src);
    assert!(cycles(&c.edges()).is_empty(), "{:?}", c.edges());
    fs::write(src.join("b.rs"), "use crate::a::f;\npub struct Thing;\npub fn h() { f() }\n").unwrap();
    let c = load_crate("t", src);
    let found = cycles(&c.edges());
    assert_eq!(found.len(), 1, "{:?}", c.edges());
    let mut names: Vec<String> = found[0].iter().map(|m| m.join("::")).collect();
    names.sort();
    assert_eq!(names, ["a", "a::c", "b"], "the re-export of Thing leads to b.rs");
}

#[test]
fn no_import_circles_between_files() {
    let mut report = Vec::new();
    for (name, src) in crates() {
        let c = load_crate(&name, &src);
        for comp in cycles(&c.edges()) {
            let files: Vec<String> = comp.iter().map(|m| c.show(m)).collect();
            report.push(format!("{}: {}", c.name, files.join(" ↔ ")));
        }
    }
    assert!(report.is_empty(), "import circles:\n{}", report.join("\n"));
}


/// The builder links none of the three programs it embeds: it shares only
/// the contract with them (the binaries come in through build.rs).
#[test]
fn the_builder_depends_on_the_contract_only() {
    let root = workspace();
    let programs = ["dinv-launcher", "dinv-init", "dinv-guest"];
    for dir in ["builder/fstree", "builder/apk", "builder/solver", "builder/deb", "builder/ext4", "builder/kernel", "builder/elf", "builder/image", "builder/dinv-build", "tests/support", "launcher/contract"] {
        let manifest = fs::read_to_string(root.join(dir).join("Cargo.toml")).unwrap();
        let deps: Vec<&str> = manifest.lines().map(str::trim).filter(|l| !l.starts_with('#')).filter_map(|l| l.split(['=', ' ']).next()).collect();
        for p in programs {
            assert!(!deps.contains(&p), "{dir}/Cargo.toml depends on {p}");
        }
    }
    let build = fs::read_to_string(root.join("builder/dinv-build/Cargo.toml")).unwrap();
    assert!(build.contains("dinv-contract"), "dinv-build shares the contract");
    // Each program is a crate of its own with a binary of the same name.
    for (dir, name) in [("launcher/launcher", "dinv-launcher"), ("launcher/init", "dinv-init"), ("launcher/guest", "dinv-guest")] {
        let m = fs::read_to_string(root.join(dir).join("Cargo.toml")).unwrap();
        assert!(m.contains(&format!("name = \"{name}\"")), "{dir}");
        assert!(root.join(dir).join("src/main.rs").is_file(), "{dir}");
    }
}
