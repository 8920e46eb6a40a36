//! CA certificates. Debian's `update-ca-certificates` never runs (package
//! scripts don't), so the bundle is built here the same way; the recipe's
//! own CAs are added to the trust store and, per registry, to dockerd's
//! `certs.d`.

use std::path::Path;

use dinv_fstree::{NodeKind, Tree, TreePath};

use super::tree::{err, is_file, read_text, write};
use crate::recipe::CaCertificate;
use crate::Result;

/// The bundle Alpine and Debian both read (OpenSSL, Go's crypto/x509).
pub const BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";
/// Debian's list of enabled CAs (relative to [`SHARE`]; `!` disables one).
pub const CONF: &str = "etc/ca-certificates.conf";
/// Where Debian's ca-certificates package ships its CAs.
pub const SHARE: &str = "usr/share/ca-certificates";
/// Local CAs, added to the bundle after the packaged ones.
pub const LOCAL: &str = "usr/local/share/ca-certificates";

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";

/// Files ending in `.crt` directly or indirectly below `dir`, relative to it, sorted.
fn crt_files(tree: &Tree, dir: &str) -> Vec<String> {
    let root = TreePath::new(dir);
    let prefix = format!("{dir}/");
    tree.subtree(&root)
        .filter(|(p, n)| p.as_str().ends_with(".crt") && matches!(n.kind, NodeKind::File(_) | NodeKind::Hardlink(_) | NodeKind::Symlink(_)))
        .filter_map(|(p, _)| p.as_str().strip_prefix(&prefix).map(str::to_string))
        .collect()
}

fn push_pem(bundle: &mut String, pem: &str) {
    bundle.push_str(pem);
    if !pem.ends_with('\n') {
        bundle.push('\n');
    }
}

/// What Debian's postinst and `update-ca-certificates` produce: the
/// ca-certificates.conf (every shipped CA enabled, as debconf's default
/// does) when absent, and the bundle from the enabled CAs in that file's
/// order, then the local ones. Does nothing unless the package's CAs are
/// in the tree and no bundle exists. Returns the number of CAs bundled.
pub fn debian_bundle(tree: &mut Tree) -> Result<usize> {
    let shipped = crt_files(tree, SHARE);
    if shipped.is_empty() || is_file(tree, BUNDLE) {
        return Ok(0);
    }
    let conf = match read_text(tree, CONF) {
        Some(c) => c,
        None => {
            let c = shipped.iter().map(|s| format!("{s}\n")).collect::<String>();
            write(tree, CONF, c.clone(), 0o644)?;
            c
        }
    };
    let mut bundle = String::new();
    let mut n = 0;
    for line in conf.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('!') || line.starts_with('#') {
            continue;
        }
        match read_text(tree, &format!("{SHARE}/{line}")) {
            Some(pem) => {
                push_pem(&mut bundle, &pem);
                n += 1;
            }
            None => tracing::warn!(ca = line, "listed in /etc/ca-certificates.conf but not in /usr/share/ca-certificates"),
        }
    }
    for local in crt_files(tree, LOCAL) {
        if let Some(pem) = read_text(tree, &format!("{LOCAL}/{local}")) {
            push_pem(&mut bundle, &pem);
            n += 1;
        }
    }
    tree.mkdir_p(&TreePath::new("etc/ssl/certs"), dinv_fstree::Meta::root(0o755)).map_err(|e| err(format!("/etc/ssl/certs: {e}")))?;
    write(tree, BUNDLE, bundle, 0o644)?;
    Ok(n)
}

/// Checks that `text` holds a PEM certificate; the error names `file`.
pub fn check_pem(file: &str, text: &str) -> Result<()> {
    if text.contains(BEGIN) && text.contains("-----END CERTIFICATE-----") {
        Ok(())
    } else {
        Err(err(format!("docker.ca_certificates: {file} holds no PEM certificate ({BEGIN} block)")))
    }
}

/// The local name of a recipe CA: its file name without extension.
fn local_name(file: &str) -> String {
    let p = Path::new(file);
    p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "recipe-ca".into())
}

/// Adds one recipe CA: `/usr/local/share/ca-certificates/<name>.crt`, the
/// bundle, and `/etc/docker/certs.d/<registry>/ca.crt` for a registry CA.
pub fn add_certificate(tree: &mut Tree, file: &str, pem: &str, registry: Option<&str>) -> Result<()> {
    check_pem(file, pem)?;
    let name = local_name(file);
    write(tree, &format!("{LOCAL}/{name}.crt"), pem, 0o644)?;
    let mut bundle = read_text(tree, BUNDLE).unwrap_or_default();
    if !bundle.contains(pem.trim()) {
        if !bundle.is_empty() && !bundle.ends_with('\n') {
            bundle.push('\n');
        }
        push_pem(&mut bundle, pem);
        write(tree, BUNDLE, bundle, 0o644)?;
    }
    if let Some(reg) = registry {
        if reg.is_empty() || reg.contains('/') || reg.contains("..") {
            return Err(err(format!("docker.ca_certificates: registry {reg:?} for {file} must be host[:port]")));
        }
        write(tree, &format!("etc/docker/certs.d/{reg}/ca.crt"), pem, 0o644)?;
    }
    Ok(())
}

/// Builds Debian's bundle if needed, then adds the recipe's CAs.
pub fn apply(tree: &mut Tree, certs: &[CaCertificate]) -> Result<()> {
    let n = debian_bundle(tree)?;
    if n > 0 {
        tracing::info!(certificates = n, "built /{BUNDLE}");
    }
    for c in certs {
        let pem = crate::recipe::vfs::read_to_string(std::path::Path::new(&c.file)).map_err(|e| err(format!("docker.ca_certificates: cannot read {}: {e}", c.file)))?;
        add_certificate(tree, &c.file, &pem, c.registry.as_deref())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dinv_fstree::Meta;

    fn pem(tag: &str) -> String {
        format!("{BEGIN}\n{tag}\n-----END CERTIFICATE-----\n")
    }

    #[test]
    fn debian_bundle_follows_the_conf_order_and_skips_disabled() {
        let mut t = Tree::new();
        for n in ["a", "b", "c"] {
            t.write_file(&TreePath::new(&format!("{SHARE}/mozilla/{n}.crt")), pem(n), Meta::root(0o644)).unwrap();
        }
        t.write_file(&TreePath::new(CONF), "# comment\nmozilla/c.crt\n!mozilla/b.crt\nmozilla/a.crt\n", Meta::root(0o644)).unwrap();
        t.write_file(&TreePath::new(&format!("{LOCAL}/corp.crt")), pem("corp"), Meta::root(0o644)).unwrap();
        assert_eq!(debian_bundle(&mut t).unwrap(), 3);
        assert_eq!(read_text(&t, BUNDLE).unwrap(), format!("{}{}{}", pem("c"), pem("a"), pem("corp")));
        // An existing bundle is left alone.
        assert_eq!(debian_bundle(&mut t).unwrap(), 0);
    }

    #[test]
    fn missing_conf_enables_every_shipped_ca() {
        let mut t = Tree::new();
        for n in ["b", "a"] {
            t.write_file(&TreePath::new(&format!("{SHARE}/mozilla/{n}.crt")), pem(n), Meta::root(0o644)).unwrap();
        }
        assert_eq!(debian_bundle(&mut t).unwrap(), 2);
        assert_eq!(read_text(&t, CONF).unwrap(), "mozilla/a.crt\nmozilla/b.crt\n");
        assert_eq!(read_text(&t, BUNDLE).unwrap(), format!("{}{}", pem("a"), pem("b")));
    }

    #[test]
    fn recipe_ca_lands_in_store_bundle_and_certs_d() {
        let mut t = Tree::new();
        t.write_file(&TreePath::new(BUNDLE), pem("alpine").trim_end(), Meta::root(0o644)).unwrap();
        add_certificate(&mut t, "/r/corp-ca.pem", &pem("corp"), Some("registry.corp:5000")).unwrap();
        assert_eq!(read_text(&t, BUNDLE).unwrap(), format!("{}{}", pem("alpine"), pem("corp")));
        assert_eq!(read_text(&t, &format!("{LOCAL}/corp-ca.crt")).unwrap(), pem("corp"));
        assert_eq!(read_text(&t, "etc/docker/certs.d/registry.corp:5000/ca.crt").unwrap(), pem("corp"));
        let e = add_certificate(&mut t, "/r/key.pem", "-----BEGIN PRIVATE KEY-----\n", None).unwrap_err().to_string();
        assert!(e.contains("/r/key.pem holds no PEM certificate"), "{e}");
    }
}
