//! The initramfs: `/init` (dinv-init), the modules needed to reach the root
//! disk, their load order, and dinv-init's settings. No shell, no busybox.

use dinv_fstree::{Content, Meta, Node, NodeKind, Replace, Tree, TreePath};

use crate::cpio::{cpio_bytes, CpioOptions};
use crate::modules::{Closure, ModuleSet};
use crate::{Compression, KernelError};

pub use dinv_contract::initramfs::{InitramfsConfig, CONFIG_PATH, MODULES_PATH};

/// The modules every DinV guest needs before its root is mounted (virtio
/// over MMIO, the virtio disk, ext4); their dependencies are added.
pub const BOOT_MODULES: &[&str] = &["virtio_mmio", "virtio_blk", "ext4"];

/// What goes into an initramfs.
pub struct InitramfsSpec<'a> {
    /// The static dinv-init binary, installed as `/init`.
    pub init_binary: Content,
    /// The kernel's modules.
    pub modules: &'a ModuleSet,
    /// Modules (names or aliases) to load; dependencies are added. Names
    /// that are built in are skipped.
    pub load: Vec<String>,
    pub config: InitramfsConfig,
    /// Timestamp of every entry (SOURCE_DATE_EPOCH).
    pub mtime: i64,
}

/// A built initramfs.
pub struct Initramfs {
    pub tree: Tree,
    /// What gets loaded, in order.
    pub closure: Closure,
}

impl Initramfs {
    /// The gzip-compressed newc archive the kernel takes as `-initrd`.
    pub fn to_cpio(&self) -> Result<Vec<u8>, KernelError> {
        cpio_bytes(&self.tree, &CpioOptions::default()).map_err(KernelError::io("writing the initramfs cpio"))
    }
}

/// Builds the initramfs tree. Modules are stored uncompressed so the
/// kernel loads them without `CONFIG_MODULE_DECOMPRESS`.
pub fn build_initramfs(spec: &InitramfsSpec) -> Result<Initramfs, KernelError> {
    let closure = spec.modules.closure(&spec.load)?;
    let mut tree = Tree::new();
    let meta = |mode: u32| Meta { mtime: spec.mtime, ..Meta::root(mode) };
    tree.implicit_dir_meta = meta(0o755);
    tree.insert(TreePath::root(), Node::new(NodeKind::Dir, meta(0o755)), Replace::Deny).map_err(KernelError::tree("initramfs root"))?;
    for d in ["dev", "proc", "sys", "newroot", "etc/dinv"] {
        tree.mkdir_p(&TreePath::new(d), meta(0o755)).map_err(KernelError::tree(format!("initramfs /{d}")))?;
    }
    // The kernel opens /dev/console for init's stdio before anything is
    // mounted, so the node must be in the archive.
    let console = Node::new(NodeKind::CharDevice { major: 5, minor: 1 }, meta(0o600));
    tree.insert(TreePath::new("dev/console"), console, Replace::Deny).map_err(KernelError::tree("initramfs /dev/console"))?;
    tree.insert(TreePath::new("init"), Node::new(NodeKind::File(spec.init_binary.clone()), meta(0o755)), Replace::Deny)
        .map_err(KernelError::tree("initramfs /init"))?;

    let mut list = String::from("# Loaded in this order by dinv-init (dependencies first).\n");
    for name in &closure.modules {
        let m = spec.modules.get(name).expect("closure holds known modules");
        let rel = format!("lib/modules/{}/{}", spec.modules.release(), m.uncompressed_rel());
        let content = match m.compression {
            Compression::None => m.content().clone(),
            _ => Content::from_bytes(m.bytes()?),
        };
        tree.insert(TreePath::new(&rel), Node::new(NodeKind::File(content), meta(0o644)), Replace::Deny)
            .map_err(KernelError::tree(format!("initramfs module {name}")))?;
        list.push('/');
        list.push_str(&rel);
        list.push('\n');
    }
    tree.write_file(&TreePath::new(MODULES_PATH.trim_start_matches('/')), list, meta(0o644)).map_err(KernelError::tree("initramfs module list"))?;
    let json = serde_json::to_string_pretty(&spec.config).expect("plain struct serialises") + "\n";
    tree.write_file(&TreePath::new(CONFIG_PATH.trim_start_matches('/')), json, meta(0o644)).map_err(KernelError::tree("initramfs config"))?;
    Ok(Initramfs { tree, closure })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::tests::fake_tree;

    #[test]
    fn layout_order_and_config() {
        let t = fake_tree(
            "6.1-t",
            &[
                ("kernel/v/virtio_ring.ko", "name=virtio_ring\ndepends="),
                ("kernel/v/virtio.ko.xz", "name=virtio\ndepends=virtio_ring"),
                ("kernel/v/virtio_mmio.ko.zst", "name=virtio_mmio\ndepends=virtio,virtio_ring"),
                ("kernel/b/virtio_blk.ko.gz", "name=virtio_blk\ndepends=virtio,virtio_ring"),
                ("kernel/fs/ext4.ko", "name=ext4\ndepends="),
                ("kernel/net/unused.ko", "name=unused\ndepends="),
            ],
        );
        let set = ModuleSet::load(&t, "6.1-t").unwrap();
        let spec = InitramfsSpec {
            init_binary: Content::from_bytes(b"\x7fELF init".to_vec()),
            modules: &set,
            load: BOOT_MODULES.iter().map(|s| s.to_string()).collect(),
            config: InitramfsConfig::default(),
            mtime: 1234,
        };
        let ir = build_initramfs(&spec).unwrap();
        assert_eq!(ir.closure.modules, ["virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "ext4"]);
        let list = String::from_utf8(ir.tree.read_file(&TreePath::new(MODULES_PATH.trim_start_matches('/'))).unwrap()).unwrap();
        let paths: Vec<&str> = list.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            paths,
            [
                "/lib/modules/6.1-t/kernel/v/virtio_ring.ko",
                "/lib/modules/6.1-t/kernel/v/virtio.ko",
                "/lib/modules/6.1-t/kernel/v/virtio_mmio.ko",
                "/lib/modules/6.1-t/kernel/b/virtio_blk.ko",
                "/lib/modules/6.1-t/kernel/fs/ext4.ko",
            ]
        );
        // Stored decompressed: every listed module is an ELF file.
        for p in &paths {
            assert!(ir.tree.read_file(&TreePath::new(p)).unwrap().starts_with(b"\x7fELF"), "{p}");
        }
        assert!(ir.tree.get(&TreePath::new("lib/modules/6.1-t/kernel/net/unused.ko")).is_none());
        let cfg: InitramfsConfig = serde_json::from_slice(&ir.tree.read_file(&TreePath::new(CONFIG_PATH.trim_start_matches('/'))).unwrap()).unwrap();
        assert_eq!(cfg, InitramfsConfig::default());
        assert!(matches!(ir.tree.get(&TreePath::new("dev/console")).unwrap().kind, NodeKind::CharDevice { major: 5, minor: 1 }));
        assert_eq!(ir.tree.get(&TreePath::new("init")).unwrap().meta.mode, 0o755);
        assert!(ir.tree.iter().all(|(_, n)| n.meta.mtime == 1234));
        assert_eq!(ir.to_cpio().unwrap(), build_initramfs(&spec).unwrap().to_cpio().unwrap());
    }
}
