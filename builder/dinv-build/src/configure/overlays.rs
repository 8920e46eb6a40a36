//! `[[overlays]]` directories and `[[files]]` entries copied into the
//! guest. Ownership and modes come from the recipe, never from the host
//! (the build is rootless: host owners mean nothing in the guest).
//!
//! - New directories get `dir_mode` (0755); directories that already exist
//!   in the tree keep their owner and mode unless `modes` names them.
//! - Files get `file_mode` (0644); a host file with any execute bit gets
//!   execute wherever `file_mode` grants read (0644 → 0755).
//! - `modes` keys are guest paths (after `dest`, `.j2` dropped); one that
//!   matches nothing is an error (a typo would otherwise pass silently).
//! - Symlinks are copied as symlinks; a relative target climbing above the
//!   guest root is refused. FIFOs, sockets and devices are refused.
//! - `*.j2` files are rendered (see `template.rs`) and lose the suffix.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use dinv_fstree::{Content, Meta, Node, NodeKind, Replace, Tree, TreePath};
use minijinja::Value;

use super::template;
use super::tree::{err, landing};
use crate::recipe::{vfs, ExtraFile, Overlay, Recipe};
use crate::{Error, Result};

/// Copies every overlay, then every `[[files]]` entry.
pub fn apply(tree: &mut Tree, recipe: &Recipe) -> Result<()> {
    if recipe.overlays.is_empty() && recipe.files.is_empty() {
        return Ok(());
    }
    let ctx = template::context(recipe)?;
    for (i, o) in recipe.overlays.iter().enumerate() {
        let n = copy_overlay(tree, i, o, &ctx)?;
        tracing::info!(overlay = %o.path, entries = n, "overlay");
    }
    for (i, f) in recipe.files.iter().enumerate() {
        add_file(tree, i, f, &ctx)?;
    }
    Ok(())
}

/// Renders every template of the recipe's overlays and `[[files]]` into a
/// scratch tree, as the build would: `check` runs it, so a bad template
/// fails there. The error names the recipe key and the message.
pub fn check(recipe: &Recipe) -> std::result::Result<(), (String, String)> {
    let strip = |e: Error| match e {
        Error::Stage { failure, .. } => failure.to_string(),
        other => other.to_string(),
    };
    let ctx = template::context(recipe).map_err(|e| ("docker".to_string(), strip(e)))?;
    for (i, o) in recipe.overlays.iter().enumerate() {
        copy_overlay(&mut Tree::new(), i, o, &ctx).map_err(|e| (format!("overlays[{i}].path"), strip(e)))?;
    }
    for (i, f) in recipe.files.iter().enumerate() {
        add_file(&mut Tree::new(), i, f, &ctx).map_err(|e| (format!("files[{i}]"), strip(e)))?;
    }
    Ok(())
}

/// True when a relative symlink target at `link` climbs above the root.
pub fn target_escapes(link: &TreePath, target: &str) -> bool {
    if target.starts_with('/') {
        return false;
    }
    let mut depth = link.components().count() as i64 - 1;
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

struct Copy<'a> {
    index: usize,
    overlay: &'a Overlay,
    ctx: &'a Value,
    origin: Arc<str>,
    used: BTreeSet<String>,
    count: usize,
}

impl Copy<'_> {
    fn key(&self) -> String {
        format!("overlays[{}]", self.index)
    }

    /// Owner and mode for a guest path: the `modes` override, else the defaults.
    fn meta(&mut self, guest: &TreePath, default_mode: u32) -> Meta {
        let o = self.overlay;
        let mut m = Meta::root(default_mode);
        m.uid = o.uid;
        m.gid = o.gid;
        if let Some(ov) = o.modes.get(&guest.absolute()) {
            self.used.insert(guest.absolute());
            if let Some(mode) = ov.mode {
                m.mode = mode & 0o7777;
            }
            m.uid = ov.uid.unwrap_or(m.uid);
            m.gid = ov.gid.unwrap_or(m.gid);
        }
        m
    }

    fn insert(&mut self, tree: &mut Tree, host: &Path, guest: &TreePath, kind: NodeKind, meta: Meta) -> Result<()> {
        let at = landing(tree, guest);
        let node = Node::new(kind, meta).with_origin(&self.origin);
        tree.insert(at, node, Replace::Allow).map_err(|e| err(format!("{}: {}: {e}", self.key(), host.display())))?;
        self.count += 1;
        Ok(())
    }

    fn walk(&mut self, tree: &mut Tree, host_dir: &Path, guest_dir: &TreePath) -> Result<()> {
        let key = self.key();
        // Sorted, so the tree (and any conflict message) is the same on every
        // host. The overlay may be embedded in dinv-build (`dinv:...`).
        let entries = vfs::entries(host_dir).map_err(Error::io(host_dir))?;
        for entry in entries {
            let host = entry.path;
            let name = entry.name.into_string().map_err(|n| err(format!("{key}: {}: file name {n:?} is not UTF-8", host_dir.display())))?;
            match entry.kind {
                vfs::Kind::Dir => {
                    let guest = guest_dir.join(&name).map_err(|e| err(format!("{key}: {}: {e}", host.display())))?;
                    self.dir(tree, &host, &guest)?;
                    self.walk(tree, &host, &guest)?;
                }
                vfs::Kind::File { executable } => {
                    let bytes = vfs::read(&host).map_err(Error::io(&host))?;
                    let (name, bytes) = match name.strip_suffix(template::SUFFIX) {
                        Some(stem) if !stem.is_empty() => {
                            let text = String::from_utf8(bytes).map_err(|_| err(format!("{key}: template {} is not UTF-8", host.display())))?;
                            (stem.to_string(), template::render(&host.display().to_string(), &text, self.ctx)?.into_bytes())
                        }
                        _ => (name, bytes),
                    };
                    let guest = guest_dir.join(&name).map_err(|e| err(format!("{key}: {}: {e}", host.display())))?;
                    let base = self.overlay.file_mode.unwrap_or(0o644) & 0o7777;
                    let mode = if executable { base | ((base & 0o444) >> 2) } else { base };
                    let meta = self.meta(&guest, mode);
                    self.insert(tree, &host, &guest, NodeKind::File(Content::from_bytes(bytes)), meta)?;
                }
                vfs::Kind::Symlink(target) => {
                    let guest = guest_dir.join(&name).map_err(|e| err(format!("{key}: {}: {e}", host.display())))?;
                    let target = target.to_str().ok_or_else(|| err(format!("{key}: symlink {} has a non-UTF-8 target", host.display())))?.to_string();
                    if target.is_empty() || target.contains('\0') || target_escapes(&guest, &target) {
                        return Err(err(format!("{key}: symlink {} -> {target} points outside the guest root", host.display())));
                    }
                    let meta = self.meta(&guest, 0o777);
                    self.insert(tree, &host, &guest, NodeKind::Symlink(target), meta)?;
                }
                vfs::Kind::Special(what) => {
                    return Err(err(format!("{key}: {} is {what}; overlays hold only files, directories and symlinks", host.display())));
                }
            }
        }
        Ok(())
    }

    /// A directory: created with the overlay's meta, or kept (with its
    /// meta) when the tree has one, possibly behind a symlink.
    fn dir(&mut self, tree: &mut Tree, host: &Path, guest: &TreePath) -> Result<()> {
        let at = landing(tree, guest);
        let real = tree.resolve(&at).filter(|p| tree.get(p).is_some_and(|n| n.is_dir()));
        let overridden = self.overlay.modes.contains_key(&guest.absolute());
        match real {
            Some(_) if !overridden => Ok(()),
            Some(real) => {
                let meta = self.meta(guest, self.overlay.dir_mode.unwrap_or(0o755));
                let node = tree.get_mut(&real).expect("resolved");
                node.meta = Meta { mtime: node.meta.mtime, xattrs: node.meta.xattrs.clone(), ..meta };
                Ok(())
            }
            None => {
                let meta = self.meta(guest, self.overlay.dir_mode.unwrap_or(0o755));
                self.insert(tree, host, guest, NodeKind::Dir, meta)
            }
        }
    }
}

/// Copies one overlay directory into the tree; returns the number of entries written.
pub fn copy_overlay(tree: &mut Tree, index: usize, o: &Overlay, ctx: &Value) -> Result<usize> {
    let key = format!("overlays[{index}]");
    let root = Path::new(&o.path);
    if !vfs::is_dir(root) {
        return Err(err(format!("{key}.path: overlay directory {} does not exist", o.path)));
    }
    let dest = TreePath::parse(o.dest.as_deref().unwrap_or("/"), true).map_err(|e| err(format!("{key}.dest: {e}")))?;
    let mut c = Copy { index, overlay: o, ctx, origin: Arc::from(format!("overlay:{}", o.path)), used: BTreeSet::new(), count: 0 };
    if !dest.is_root() {
        c.dir(tree, root, &dest)?;
    }
    c.walk(tree, root, &dest)?;
    if let Some(unused) = o.modes.keys().find(|k| !c.used.contains(*k)) {
        return Err(err(format!("{key}.modes: {unused} matches nothing in overlay {} (keys are absolute guest paths)", o.path)));
    }
    Ok(c.count)
}

/// Adds one `[[files]]` entry (a `.j2` source is rendered).
pub fn add_file(tree: &mut Tree, index: usize, f: &ExtraFile, ctx: &Value) -> Result<()> {
    let key = format!("files[{index}]");
    let path = TreePath::parse(&f.path, true).map_err(|e| err(format!("{key}.path: {e}")))?;
    if path.is_root() {
        return Err(err(format!("{key}.path: {:?} names the root directory", f.path)));
    }
    let bytes = match (&f.content, &f.source) {
        (Some(c), None) => c.clone().into_bytes(),
        (None, Some(src)) => {
            let bytes = vfs::read(Path::new(src)).map_err(Error::io(src))?;
            if src.ends_with(template::SUFFIX) {
                let text = String::from_utf8(bytes).map_err(|_| err(format!("{key}.source: template {src} is not UTF-8")))?;
                template::render(src, &text, ctx)?.into_bytes()
            } else {
                bytes
            }
        }
        _ => return Err(err(format!("{key}: give exactly one of `content` or `source`"))),
    };
    let meta = Meta { uid: f.uid, gid: f.gid, ..Meta::root(f.mode) };
    let at = landing(tree, &path);
    let origin: Arc<str> = Arc::from(format!("files:{}", f.path));
    let node = Node::new(NodeKind::File(Content::from_bytes(bytes)), meta).with_origin(&origin);
    tree.insert(at, node, Replace::Allow).map_err(|e| err(format!("{key}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;

    fn ctx() -> Value {
        let r: Recipe = toml::from_str("[image]\nname = \"dinv\"\n[sources.s]\ntype = \"apk\"\nrepositories = []\n[guest]\nsource = \"s\"\npackages = []\nhostname = \"box\"\n").unwrap();
        template::context(&r).unwrap()
    }

    fn overlay(path: &Path) -> Overlay {
        Overlay { path: path.display().to_string(), dest: None, uid: 0, gid: 0, dir_mode: None, file_mode: None, modes: BTreeMap::new() }
    }

    #[test]
    fn escape_detection() {
        assert!(!target_escapes(&TreePath::new("etc/x"), "../usr/bin/y"));
        assert!(target_escapes(&TreePath::new("etc/x"), "../../y"));
        assert!(!target_escapes(&TreePath::new("etc/x"), "/anything/../.."));
        assert!(target_escapes(&TreePath::new("x"), ".."));
    }

    #[test]
    fn copies_with_recipe_modes_templates_and_symlinks() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc/profile.d")).unwrap();
        std::fs::write(d.path().join("etc/motd.j2"), "Welcome to {{ guest.hostname }}\n").unwrap();
        std::fs::write(d.path().join("etc/profile.d/x.sh"), "echo\n").unwrap();
        std::fs::set_permissions(d.path().join("etc/profile.d/x.sh"), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(d.path().join("etc/secret"), "s").unwrap();
        std::os::unix::fs::symlink("motd", d.path().join("etc/motd.link")).unwrap();
        let mut t = Tree::new();
        t.mkdir_p(&TreePath::new("etc"), Meta::root(0o755)).unwrap();
        let mut o = overlay(d.path());
        o.uid = 1000;
        o.modes.insert("/etc/secret".into(), crate::recipe::PathOverride { mode: Some(0o600), uid: Some(0), gid: None });
        assert_eq!(copy_overlay(&mut t, 0, &o, &ctx()).unwrap(), 5);
        assert_eq!(t.read_file(&TreePath::new("etc/motd")).unwrap(), b"Welcome to box\n");
        assert!(t.get(&TreePath::new("etc/motd.j2")).is_none());
        let m = |p: &str| t.get(&TreePath::new(p)).unwrap().meta.clone();
        assert_eq!((m("etc/motd").mode, m("etc/motd").uid), (0o644, 1000));
        assert_eq!(m("etc/profile.d/x.sh").mode, 0o755);
        assert_eq!((m("etc/secret").mode, m("etc/secret").uid), (0o600, 0));
        assert_eq!((m("etc/profile.d").mode, m("etc/profile.d").uid), (0o755, 1000));
        // /etc existed: it keeps root ownership.
        assert_eq!(m("etc").uid, 0);
        assert!(matches!(&t.get(&TreePath::new("etc/motd.link")).unwrap().kind, NodeKind::Symlink(s) if s == "motd"));
        // A typo in `modes` is reported.
        o.modes.insert("/etc/secrte".into(), crate::recipe::PathOverride { mode: Some(0o600), uid: None, gid: None });
        let e = copy_overlay(&mut t, 0, &o, &ctx()).unwrap_err().to_string();
        assert!(e.contains("/etc/secrte matches nothing"), "{e}");
    }

    #[test]
    fn refuses_escapes_and_special_files() {
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("../../../etc/shadow", d.path().join("evil")).unwrap();
        let e = copy_overlay(&mut Tree::new(), 2, &overlay(d.path()), &ctx()).unwrap_err().to_string();
        assert!(e.contains("overlays[2]") && e.contains("points outside the guest root"), "{e}");
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc_mkfifo(c.as_ptr(), 0o644) }, 0);
        let e = copy_overlay(&mut Tree::new(), 0, &overlay(d.path()), &ctx()).unwrap_err().to_string();
        assert!(e.contains("is a FIFO"), "{e}");
        let mut o = overlay(d.path());
        o.dest = Some("/../x".into());
        std::fs::remove_file(&fifo).unwrap();
        assert!(copy_overlay(&mut Tree::new(), 0, &o, &ctx()).unwrap_err().to_string().contains("overlays[0].dest"));
        o.path = d.path().join("missing").display().to_string();
        assert!(copy_overlay(&mut Tree::new(), 0, &o, &ctx()).unwrap_err().to_string().contains("does not exist"));
    }

    extern "C" {
        #[link_name = "mkfifo"]
        fn libc_mkfifo(path: *const std::ffi::c_char, mode: u32) -> i32;
    }

    #[test]
    fn files_entries_inline_and_rendered() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("issue.j2");
        std::fs::write(&src, "{{ image.name }}\n").unwrap();
        let mut t = Tree::new();
        let f = ExtraFile { path: "/etc/issue".into(), content: None, source: Some(src.display().to_string()), mode: 0o600, uid: 0, gid: 5 };
        add_file(&mut t, 0, &f, &ctx()).unwrap();
        assert_eq!(t.read_file(&TreePath::new("etc/issue")).unwrap(), b"dinv\n");
        assert_eq!(t.get(&TreePath::new("etc/issue")).unwrap().meta.gid, 5);
        let f = ExtraFile { path: "/a/../b".into(), content: Some("x".into()), source: None, mode: 0o644, uid: 0, gid: 0 };
        assert!(add_file(&mut t, 1, &f, &ctx()).unwrap_err().to_string().contains("files[1].path"));
    }
}
