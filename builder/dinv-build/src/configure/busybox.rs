//! Busybox applet symlinks: what busybox's post-install `--install -s`
//! would create.

use dinv_fstree::{NodeKind, Tree, TreePath};

use crate::{Error, Result};

/// Where Alpine's busybox package lists its applets (one path per line).
pub const APPLET_LIST: &str = "etc/busybox-paths.d/busybox";

/// Applets linked when the package ships no list: the ones an Alpine base
/// system and its OpenRC scripts call.
pub const FALLBACK_APPLETS: &[&str] = &[
    "bin/sh", "bin/ash", "bin/cat", "bin/chmod", "bin/chown", "bin/cp", "bin/date", "bin/dd", "bin/df", "bin/dmesg", "bin/echo",
    "bin/grep", "bin/hostname", "bin/kill", "bin/ln", "bin/ls", "bin/mkdir", "bin/mknod", "bin/mount", "bin/mv", "bin/ps",
    "bin/pwd", "bin/rm", "bin/rmdir", "bin/sed", "bin/sleep", "bin/stty", "bin/sync", "bin/touch", "bin/umount", "bin/uname",
    "sbin/getty", "sbin/halt", "sbin/ifconfig", "sbin/init", "sbin/ip", "sbin/modprobe", "sbin/poweroff", "sbin/reboot",
    "sbin/route", "sbin/syslogd", "sbin/udhcpc", "usr/bin/awk", "usr/bin/env", "usr/bin/find", "usr/bin/head", "usr/bin/tail",
    "usr/bin/tr", "usr/bin/wc", "usr/bin/xargs",
];

/// Creates a symlink to `/bin/busybox` for every applet that is not
/// already provided by another package. Returns how many were created.
pub fn link_applets(tree: &mut Tree) -> Result<usize> {
    let busybox = TreePath::new("bin/busybox");
    if !matches!(tree.get(&busybox).map(|n| &n.kind), Some(NodeKind::File(_)) | Some(NodeKind::Hardlink(_))) {
        return Ok(0);
    }
    let listed = tree.read_file(&TreePath::new(APPLET_LIST));
    let text = listed.as_deref().map(String::from_utf8_lossy);
    let applets: Vec<String> = match &text {
        Some(t) => t.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string).collect(),
        None => FALLBACK_APPLETS.iter().map(|s| s.to_string()).collect(),
    };
    let mut n = 0;
    for a in applets {
        let path = TreePath::parse(&a, true)
            .map_err(|e| Error::stage(crate::error::Stage::Configure, format!("{APPLET_LIST}: {e}")))?;
        if path == busybox || tree.contains(&path) {
            continue;
        }
        tree.symlink(&path, "/bin/busybox").map_err(|e| Error::stage(crate::error::Stage::Configure, format!("busybox applet {path}: {e}")))?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dinv_fstree::Meta;

    #[test]
    fn links_listed_applets_but_keeps_real_binaries() {
        let mut t = Tree::new();
        t.write_file(&TreePath::new("bin/busybox"), "bb", Meta::root(0o755)).unwrap();
        t.write_file(&TreePath::new(APPLET_LIST), "/bin/ls\n/bin/mount\n/usr/bin/wget\n", Meta::root(0o644)).unwrap();
        t.write_file(&TreePath::new("bin/mount"), "util-linux mount", Meta::root(0o755)).unwrap();
        assert_eq!(link_applets(&mut t).unwrap(), 2);
        assert!(matches!(&t.get(&TreePath::new("usr/bin/wget")).unwrap().kind, NodeKind::Symlink(s) if s == "/bin/busybox"));
        assert_eq!(t.read_file(&TreePath::new("bin/mount")).unwrap(), b"util-linux mount");
    }

    #[test]
    fn no_busybox_no_links() {
        let mut t = Tree::new();
        assert_eq!(link_applets(&mut t).unwrap(), 0);
        assert_eq!(t.len(), 1);
    }
}
