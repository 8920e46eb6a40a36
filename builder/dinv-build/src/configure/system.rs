//! Base system files: host name, hosts, fstab, `/etc/modules` (the
//! recipe's `guest.modules`, and the modules the kernel check needs that
//! the initramfs does not load), the serial console (inittab, securetty)
//! and, for OpenRC guests, Alpine's network interfaces.

use dinv_fstree::{Meta, Tree, TreePath};

use super::tree::{err, read_text, write};
use crate::recipe::{GuestSection, Init};
use crate::Result;

/// fstab for the root filesystem, by label: the launcher attaches disks by
/// serial and virtio-mmio does not enumerate them in command-line order, so
/// the root is not always `/dev/vda`.
pub fn fstab(root_label: &str) -> String {
    format!("LABEL={root_label} / ext4 rw,relatime 0 1\n")
}

/// Alpine's ifupdown configuration: loopback and DHCP on eth0 (QEMU's user network).
pub const INTERFACES: &str = "auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n";

/// Alpine-style inittab for a guest whose only console is ttyS0.
pub const INITTAB: &str = "\
# /etc/inittab (DinV guest: OpenRC, serial console only)

::sysinit:/sbin/openrc sysinit
::sysinit:/sbin/openrc boot
::wait:/sbin/openrc default

# The serial console is the only terminal a microVM has.
ttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100

::ctrlaltdel:/sbin/reboot
::shutdown:/sbin/openrc shutdown
";

/// Lines of `existing` followed by every wanted line it lacks.
pub fn merge_lines(existing: Option<&str>, wanted: &[&str]) -> String {
    let mut lines: Vec<String> = existing.unwrap_or("").lines().map(str::to_string).collect();
    for w in wanted {
        if !lines.iter().any(|l| l.trim() == *w) {
            lines.push(w.to_string());
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// `/etc/hosts`: the package's lines (or localhost) plus the host name.
pub fn hosts(existing: Option<&str>, hostname: &str) -> String {
    let base = existing.filter(|e| !e.trim().is_empty()).unwrap_or("127.0.0.1\tlocalhost localhost.localdomain\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    let named = base.lines().any(|l| !l.trim_start().starts_with('#') && l.split_whitespace().skip(1).any(|n| n == hostname));
    let mut text = base.trim_end().to_string();
    text.push('\n');
    if !named {
        text.push_str(&format!("127.0.1.1\t{hostname}\n"));
    }
    text
}

/// Writes the base system files.
pub fn apply(tree: &mut Tree, guest: &GuestSection, root_label: &str) -> Result<()> {
    write(tree, "etc/hostname", format!("{}\n", guest.hostname), 0o644)?;
    let h = hosts(read_text(tree, "etc/hosts").as_deref(), &guest.hostname);
    write(tree, "etc/hosts", h, 0o644)?;
    write(tree, "etc/fstab", fstab(root_label), 0o644)?;
    let modules: Vec<&str> = guest.modules.iter().map(String::as_str).collect();
    let m = merge_lines(read_text(tree, "etc/modules").as_deref(), &modules);
    write(tree, "etc/modules", m, 0o644)?;
    let s = merge_lines(read_text(tree, "etc/securetty").as_deref(), &["ttyS0"]);
    write(tree, "etc/securetty", s, 0o644)?;
    if guest.init == Init::Openrc {
        write(tree, "etc/network/interfaces", INTERFACES, 0o644)?;
        write(tree, "etc/inittab", INITTAB, 0o644)?;
    }
    Ok(())
}

/// Appends to `/etc/modules` every name not listed yet (creating the file
/// if needed), keeping the file's metadata.
pub fn merge_modules(tree: &mut Tree, names: &[String], mtime: i64) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let path = TreePath::new("etc/modules");
    let resolved = tree.resolve(&path).unwrap_or_else(|| path.clone());
    let mut text = tree.read_file(&resolved).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let mut listed: Vec<String> = text
        .lines()
        .filter_map(|l| l.split('#').next().and_then(|l| l.split_whitespace().next()))
        .map(dinv_kernel::normalize_name)
        .collect();
    let mut added = false;
    for n in names {
        let norm = dinv_kernel::normalize_name(n);
        if !listed.contains(&norm) {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(n);
            text.push('\n');
            listed.push(norm);
            added = true;
        }
    }
    if !added {
        return Ok(());
    }
    let meta = tree.get(&resolved).map(|n| n.meta.clone()).unwrap_or(Meta { mtime, ..Meta::root(0o644) });
    tree.write_file(&resolved, text, meta).map_err(|e| err(format!("writing /{resolved}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dinv_fstree::{Meta, TreePath};

    fn guest(init: &str) -> GuestSection {
        toml::from_str(&format!("source = \"x\"\npackages = []\ninit = \"{init}\"\nhostname = \"box\"\nmodules = [\"af_packet\", \"9pnet\"]\n")).unwrap()
    }

    #[test]
    fn openrc_guest_gets_console_network_and_merged_modules() {
        let mut t = Tree::new();
        t.write_file(&TreePath::new("etc/modules"), "af_packet\nipv6\n", Meta::root(0o644)).unwrap();
        t.write_file(&TreePath::new("etc/hosts"), "127.0.0.1\tlocalhost\n", Meta::root(0o644)).unwrap();
        apply(&mut t, &guest("openrc"), "dinv-root").unwrap();
        assert_eq!(read_text(&t, "etc/modules").unwrap(), "af_packet\nipv6\n9pnet\n");
        assert_eq!(read_text(&t, "etc/hosts").unwrap(), "127.0.0.1\tlocalhost\n127.0.1.1\tbox\n");
        assert_eq!(read_text(&t, "etc/hostname").unwrap(), "box\n");
        assert_eq!(read_text(&t, "etc/fstab").unwrap(), "LABEL=dinv-root / ext4 rw,relatime 0 1\n");
        assert!(read_text(&t, "etc/inittab").unwrap().contains("ttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100"));
        assert!(read_text(&t, "etc/network/interfaces").unwrap().contains("iface eth0 inet dhcp"));
        assert_eq!(read_text(&t, "etc/securetty").unwrap(), "ttyS0\n");
        // Running it twice changes nothing.
        let before = read_text(&t, "etc/hosts");
        apply(&mut t, &guest("openrc"), "dinv-root").unwrap();
        assert_eq!(read_text(&t, "etc/hosts"), before);
    }

    #[test]
    fn dinv_guest_has_no_inittab() {
        let mut t = Tree::new();
        apply(&mut t, &guest("dinv"), "dinv-root").unwrap();
        assert!(read_text(&t, "etc/inittab").is_none());
        assert!(read_text(&t, "etc/network/interfaces").is_none());
        assert_eq!(read_text(&t, "etc/modules").unwrap(), "af_packet\n9pnet\n");
    }

    #[test]
    fn etc_modules_gets_only_missing_names() {
        let mut t = Tree::new();
        merge_modules(&mut t, &["overlay".into(), "veth".into()], 5).unwrap();
        assert_eq!(t.read_file(&TreePath::new("etc/modules")).unwrap(), b"overlay\nveth\n");
        assert_eq!(t.get(&TreePath::new("etc/modules")).unwrap().meta.mtime, 5);
        t.write_file(&TreePath::new("etc/modules"), "# boot\naf_packet\nbr-netfilter opt=1", Meta::root(0o600)).unwrap();
        merge_modules(&mut t, &["br_netfilter".into(), "overlay".into(), "af_packet".into()], 5).unwrap();
        assert_eq!(t.read_file(&TreePath::new("etc/modules")).unwrap(), b"# boot\naf_packet\nbr-netfilter opt=1\noverlay\n");
        assert_eq!(t.get(&TreePath::new("etc/modules")).unwrap().meta.mode, 0o600, "existing metadata is kept");
        merge_modules(&mut t, &["9p".into(), "9p".into()], 5).unwrap();
        assert!(t.read_file(&TreePath::new("etc/modules")).unwrap().ends_with(b"overlay\n9p\n"), "a name asked twice is listed once");
    }
}
