//! Locating an installed kernel in a tree: its image, release and config.

use dinv_fstree::{Content, NodeKind, Tree, TreePath};

use crate::kconfig::{KernelConfig, KernelId};
use crate::KernelError;

/// A kernel found under `/boot`.
#[derive(Clone, Debug)]
pub struct KernelPackage {
    /// The release (`uname -r`), e.g. `6.1.0-28-amd64` or `6.6.58-0-virt`.
    pub release: String,
    /// The image path, e.g. `/boot/vmlinuz-6.1.0-28-amd64`.
    pub image_path: TreePath,
    /// The image bytes (bzImage), as stored in the tree.
    pub image: Content,
    /// The shipped `.config`, when there is one.
    pub config: Option<KernelConfig>,
    pub config_path: Option<TreePath>,
    /// The package that installed the image (the tree node's origin).
    pub origin: Option<String>,
}

impl KernelPackage {
    /// The id used in reports: package name (or the image path when the
    /// origin is unknown) and release.
    pub fn id(&self) -> KernelId {
        KernelId {
            package: self.origin.clone().unwrap_or_else(|| self.image_path.to_string()),
            release: self.release.clone(),
        }
    }

    /// The config, or an error saying this kernel shipped none.
    pub fn require_config(&self) -> Result<&KernelConfig, KernelError> {
        self.config
            .as_ref()
            .ok_or_else(|| KernelError::KernelNotFound(format!("{}: no /boot/config-* shipped with the kernel image {}", self.id(), self.image_path)))
    }
}

/// Every kernel image in `/boot` (`vmlinuz-<suffix>`), sorted by path.
/// The release is the suffix when `/lib/modules/<suffix>` exists (Debian),
/// else the modules directory whose `kernel-suffix` file says `-<suffix>`
/// (Alpine's installkernel 4.0 layout), else the one modules directory
/// ending in `-<suffix>` (older Alpine `vmlinuz-virt`), else the version
/// string inside the bzImage.
///
/// The config is `/boot/config-<suffix>` (Debian; older Alpine's
/// `config-virt`) or `/boot/config-<release>` (current Alpine, where the
/// image keeps its short name `vmlinuz-virt`).
pub fn find_kernels(tree: &Tree) -> Result<Vec<KernelPackage>, KernelError> {
    let Some(boot) = tree.resolve(&TreePath::new("boot")) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (path, node) in tree.children(&boot) {
        let Some(suffix) = path.file_name().strip_prefix("vmlinuz-") else {
            continue;
        };
        let NodeKind::File(image) = &node.kind else {
            continue;
        };
        let release = release_for(tree, suffix, image)?;
        let found = [suffix, release.as_str()]
            .iter()
            .filter_map(|name| boot.join(&format!("config-{name}")).ok())
            .find_map(|p| tree.read_file(&p).map(|text| (p, text)));
        let (config_path, config) = match found {
            Some((p, text)) => {
                let config = KernelConfig::parse(&p.to_string(), &String::from_utf8_lossy(&text))?;
                (Some(p), Some(config))
            }
            None => (None, None),
        };
        out.push(KernelPackage {
            release,
            image_path: path.clone(),
            image: image.clone(),
            config_path,
            config,
            origin: node.origin.as_deref().map(str::to_string),
        });
    }
    Ok(out)
}

/// The one kernel in the tree; an error lists what was found otherwise.
pub fn find_kernel(tree: &Tree) -> Result<KernelPackage, KernelError> {
    let mut all = find_kernels(tree)?;
    match all.len() {
        1 => Ok(all.remove(0)),
        0 => Err(KernelError::KernelNotFound(
            "no kernel image /boot/vmlinuz-* in the guest tree; add a kernel package (linux-image-amd64, linux-virt) to the recipe".into(),
        )),
        _ => Err(KernelError::KernelNotFound(format!(
            "more than one kernel in the guest tree ({}); keep one kernel package",
            all.iter().map(|k| k.image_path.to_string()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn release_for(tree: &Tree, suffix: &str, image: &Content) -> Result<String, KernelError> {
    let module_dirs: Vec<String> = ["lib/modules", "usr/lib/modules"]
        .iter()
        .filter_map(|d| tree.resolve(&TreePath::new(d)))
        .flat_map(|d| {
            tree.children(&d)
                .filter(|(_, n)| n.is_dir())
                .map(|(p, _)| p.file_name().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    if module_dirs.iter().any(|d| d == suffix) {
        return Ok(suffix.to_string());
    }
    let tail = format!("-{suffix}");
    let mut by_suffix_file: Vec<&String> = module_dirs
        .iter()
        .filter(|d| {
            ["lib/modules", "usr/lib/modules"].iter().any(|base| {
                let file = TreePath::new(&format!("{base}/{d}/kernel-suffix"));
                tree.read_file(&file).is_some_and(|b| String::from_utf8_lossy(&b).trim() == tail)
            })
        })
        .collect();
    by_suffix_file.dedup();
    if by_suffix_file.len() == 1 {
        return Ok(by_suffix_file[0].clone());
    }
    let mut matching: Vec<&String> = module_dirs.iter().filter(|d| d.ends_with(&tail)).collect();
    matching.dedup();
    if matching.len() == 1 {
        return Ok(matching[0].clone());
    }
    let head = read_head(image, 64 * 1024).map_err(KernelError::io(format!("reading /boot/vmlinuz-{suffix}")))?;
    bzimage_release(&head).ok_or_else(|| {
        KernelError::KernelNotFound(format!(
            "/boot/vmlinuz-{suffix}: cannot tell its release: no /lib/modules/{suffix}, {} modules directories ending in {tail}, and no version string in the image header",
            matching.len()
        ))
    })
}

fn read_head(c: &Content, max: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; c.len().min(max) as usize];
    c.read_at(&mut buf, 0)?;
    Ok(buf)
}

/// The release from an x86 bzImage's setup header (`kernel_version` at
/// 0x20E points to "6.1.0-28-amd64 (builder@host) #1 SMP ...").
pub fn bzimage_release(image: &[u8]) -> Option<String> {
    if image.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let ptr = u16::from_le_bytes([image[0x20E], image[0x20F]]) as usize + 0x200;
    let s = image.get(ptr..)?;
    let end = s.iter().position(|b| *b == 0 || *b == b' ')?;
    let v = std::str::from_utf8(&s[..end]).ok()?;
    (!v.is_empty()).then(|| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dinv_fstree::{Meta, Node, Replace};
    use std::sync::Arc;

    fn image(version: &str) -> Vec<u8> {
        let mut img = vec![0u8; 0x1000];
        img[0x202..0x206].copy_from_slice(b"HdrS");
        img[0x20E..0x210].copy_from_slice(&(0x600u16 - 0x200).to_le_bytes());
        let s = format!("{version} (x@y) #1 SMP\0");
        img[0x600..0x600 + s.len()].copy_from_slice(s.as_bytes());
        img
    }

    fn add(t: &mut Tree, path: &str, bytes: Vec<u8>, origin: &str) {
        let n = Node::new(NodeKind::File(Content::from_bytes(bytes)), Meta::root(0o644)).with_origin(&Arc::from(origin));
        t.insert(TreePath::new(path), n, Replace::Deny).unwrap();
    }

    #[test]
    fn debian_layout() {
        let mut t = Tree::new();
        add(&mut t, "boot/vmlinuz-6.1.0-28-amd64", image("6.1.0-28-amd64"), "linux-image-6.1.0-28-amd64");
        add(
            &mut t,
            "boot/config-6.1.0-28-amd64",
            b"CONFIG_EXT4_FS=m\n".to_vec(),
            "linux-image-6.1.0-28-amd64",
        );
        add(&mut t, "boot/System.map-6.1.0-28-amd64", vec![], "linux-image-6.1.0-28-amd64");
        t.mkdir_p(&TreePath::new("lib/modules/6.1.0-28-amd64"), Meta::root(0o755)).unwrap();
        let k = find_kernel(&t).unwrap();
        assert_eq!(k.release, "6.1.0-28-amd64");
        assert_eq!(k.image.len(), 0x1000);
        assert_eq!(k.config.as_ref().unwrap().get("CONFIG_EXT4_FS"), Some(&crate::ConfigValue::Module));
        assert_eq!(k.id().to_string(), "linux-image-6.1.0-28-amd64 (kernel 6.1.0-28-amd64)");
    }

    #[test]
    fn alpine_installkernel_4_layout() {
        // Alpine v3.22's linux-virt: short image name, config and System.map
        // named by release, the suffix written next to the modules.
        let mut t = Tree::new();
        // An image without a version string: only kernel-suffix can tell.
        add(&mut t, "boot/vmlinuz-virt", b"no setup header here".to_vec(), "linux-virt");
        add(&mut t, "boot/config-6.12.58-0-virt", b"CONFIG_EXT4_FS=m\n".to_vec(), "linux-virt");
        add(&mut t, "boot/System.map-6.12.58-0-virt", vec![], "linux-virt");
        add(&mut t, "lib/modules/6.12.58-0-virt/kernel-suffix", b"-virt\n".to_vec(), "linux-virt");
        // A second modules directory ending in -virt (another kernel's
        // leftovers) does not confuse it: kernel-suffix tells.
        t.mkdir_p(&TreePath::new("lib/modules/6.6.1-0-virt"), Meta::root(0o755)).unwrap();
        let k = find_kernel(&t).unwrap();
        assert_eq!(k.release, "6.12.58-0-virt");
        assert_eq!(k.config_path.as_ref().unwrap().as_str(), "boot/config-6.12.58-0-virt");
        assert_eq!(k.require_config().unwrap().get("CONFIG_EXT4_FS"), Some(&crate::ConfigValue::Module));
        // No config under either name: the clear error stays.
        t.remove(&TreePath::new("boot/config-6.12.58-0-virt"));
        let e = find_kernel(&t).unwrap().require_config().unwrap_err().to_string();
        assert!(e.contains("linux-virt (kernel 6.12.58-0-virt)") && e.contains("no /boot/config-*"), "{e}");
    }

    #[test]
    fn alpine_layout_and_header_fallback() {
        let mut t = Tree::new();
        add(&mut t, "boot/vmlinuz-virt", image("6.6.58-0-virt"), "linux-virt");
        add(&mut t, "boot/config-virt", b"CONFIG_EXT4_FS=m\n".to_vec(), "linux-virt");
        t.mkdir_p(&TreePath::new("lib/modules/6.6.58-0-virt"), Meta::root(0o755)).unwrap();
        let k = find_kernel(&t).unwrap();
        assert_eq!(k.release, "6.6.58-0-virt");
        assert_eq!(k.config_path.as_ref().unwrap().as_str(), "boot/config-virt");
        // Without a modules directory, the image header tells.
        t.remove(&TreePath::new("lib"));
        assert_eq!(find_kernel(&t).unwrap().release, "6.6.58-0-virt");
        add(&mut t, "boot/vmlinuz-lts", b"garbage".to_vec(), "linux-lts");
        let e = find_kernels(&t).unwrap_err().to_string();
        assert!(e.contains("/boot/vmlinuz-lts"), "{e}");
    }

    #[test]
    fn none_or_many() {
        let mut t = Tree::new();
        assert!(find_kernel(&t).unwrap_err().to_string().contains("no kernel image"));
        add(&mut t, "boot/vmlinuz-a", image("a"), "x");
        add(&mut t, "boot/vmlinuz-b", image("b"), "y");
        let e = find_kernel(&t).unwrap_err().to_string();
        assert!(e.contains("/boot/vmlinuz-a, /boot/vmlinuz-b"), "{e}");
    }
}
