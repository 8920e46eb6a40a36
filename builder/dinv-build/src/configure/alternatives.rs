//! Debian's `update-alternatives` effects the guest needs (package scripts
//! don't run): iptables and awk, as dpkg would leave them
//! (`/usr/sbin/iptables -> /etc/alternatives/iptables -> /usr/sbin/iptables-nft`),
//! plus `/bin/sh` when no package shipped it.

use std::collections::BTreeMap;

use dinv_fstree::{Tree, TreePath};

use super::tree::symlink;
#[cfg(test)]
use crate::recipe::check_alternative as check;
use crate::recipe::ALTERNATIVES;
use crate::Error;

/// One alternatives group's links, each with a target pattern (`{}` = the
/// choice). Its choices are the recipe's ([`ALTERNATIVES`]).
pub struct AltGroup {
    pub name: &'static str,
    pub links: &'static [(&'static str, &'static str)],
}

impl AltGroup {
    /// The choices, Debian's default (the highest priority) first.
    fn choices(&self) -> &'static [&'static str] {
        ALTERNATIVES.iter().find(|(g, _)| *g == self.name).map(|(_, c)| *c).expect("every group has its choices in the recipe model")
    }
}

/// Why a group could not be set.
#[derive(Debug)]
pub enum AltError {
    /// The recipe chose something the guest does not have.
    NotInstalled { group: &'static str, message: String },
    /// Writing a link failed.
    Tree(Error),
}

impl std::fmt::Display for AltError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AltError::NotInstalled { group, message } => write!(f, "guest.alternatives.{group}: {message}"),
            AltError::Tree(e) => write!(f, "{e}"),
        }
    }
}

impl From<Error> for AltError {
    fn from(e: Error) -> Self {
        AltError::Tree(e)
    }
}

type Result<T, E = AltError> = std::result::Result<T, E>;

/// The groups dinv-build knows, settable with `guest.alternatives`.
pub const GROUPS: &[AltGroup] = &[
    AltGroup {
        name: "iptables",
        links: &[
            ("usr/sbin/iptables", "usr/sbin/iptables-{}"),
            ("usr/sbin/iptables-restore", "usr/sbin/iptables-{}-restore"),
            ("usr/sbin/iptables-save", "usr/sbin/iptables-{}-save"),
            ("usr/sbin/ip6tables", "usr/sbin/ip6tables-{}"),
            ("usr/sbin/ip6tables-restore", "usr/sbin/ip6tables-{}-restore"),
            ("usr/sbin/ip6tables-save", "usr/sbin/ip6tables-{}-save"),
        ],
    },
    AltGroup { name: "awk", links: &[("usr/bin/awk", "usr/bin/{}"), ("usr/bin/nawk", "usr/bin/{}")] },
];

fn exists(tree: &Tree, path: &str) -> bool {
    tree.resolve(&TreePath::new(path)).is_some_and(|p| tree.contains(&p))
}

fn present(tree: &Tree, path: &str) -> bool {
    tree.get(&TreePath::new(path)).is_some() || exists(tree, path)
}

/// Sets one group. An explicit choice replaces what is there and must
/// exist; without one, the first choice present is linked, and only when
/// no package provides the master link already (Alpine ships real files).
/// Returns the choice made, if any.
pub fn set_group(tree: &mut Tree, g: &AltGroup, explicit: Option<&str>) -> Result<Option<String>> {
    let (master, pattern) = g.links[0];
    let choice = match explicit {
        Some(c) => {
            if !exists(tree, &pattern.replace("{}", c)) {
                return Err(AltError::NotInstalled { group: g.name, message: format!("{c:?} chosen, but /{} is not in the guest", pattern.replace("{}", c)) });
            }
            c
        }
        None => {
            if present(tree, master) {
                return Ok(None);
            }
            match g.choices().iter().find(|c| exists(tree, &pattern.replace("{}", c))) {
                Some(c) => c,
                None => return Ok(None),
            }
        }
    };
    for (link, pattern) in g.links {
        let target = pattern.replace("{}", choice);
        if !exists(tree, &target) {
            continue;
        }
        let name = link.rsplit('/').next().unwrap_or(link);
        symlink(tree, &format!("etc/alternatives/{name}"), &format!("/{target}"))?;
        symlink(tree, link, &format!("/etc/alternatives/{name}"))?;
    }
    Ok(Some(choice.to_string()))
}

/// Links `/bin/sh` to dash (or bash) when nothing provides it.
pub fn ensure_sh(tree: &mut Tree) -> Result<()> {
    if present(tree, "bin/sh") {
        return Ok(());
    }
    for shell in ["dash", "bash"] {
        if exists(tree, &format!("bin/{shell}")) || exists(tree, &format!("usr/bin/{shell}")) {
            let target = if exists(tree, &format!("bin/{shell}")) { shell.to_string() } else { format!("/usr/bin/{shell}") };
            symlink(tree, "bin/sh", &target)?;
            return Ok(());
        }
    }
    Ok(())
}

/// Applies every group (recipe choices first) and `/bin/sh`.
pub fn apply(tree: &mut Tree, chosen: &BTreeMap<String, String>) -> Result<()> {
    for g in GROUPS {
        if let Some(c) = set_group(tree, g, chosen.get(g.name).map(String::as_str))? {
            tracing::info!(group = g.name, choice = c, "alternative");
        }
    }
    ensure_sh(tree)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dinv_fstree::{Meta, NodeKind};

    fn link(t: &Tree, p: &str) -> Option<String> {
        match &t.get(&TreePath::new(p))?.kind {
            NodeKind::Symlink(s) => Some(s.clone()),
            _ => None,
        }
    }

    fn debian_iptables() -> Tree {
        let mut t = Tree::new();
        t.write_file(&TreePath::new("usr/sbin/xtables-nft-multi"), "x", Meta::root(0o755)).unwrap();
        t.write_file(&TreePath::new("usr/sbin/xtables-legacy-multi"), "x", Meta::root(0o755)).unwrap();
        for base in ["iptables", "ip6tables"] {
            for kind in ["nft", "legacy"] {
                for suffix in ["", "-save", "-restore"] {
                    t.symlink(&TreePath::new(&format!("usr/sbin/{base}-{kind}{suffix}")), &format!("xtables-{kind}-multi")).unwrap();
                }
            }
        }
        t.write_file(&TreePath::new("usr/bin/mawk"), "m", Meta::root(0o755)).unwrap();
        t.write_file(&TreePath::new("usr/bin/dash"), "d", Meta::root(0o755)).unwrap();
        t.mkdir_p(&TreePath::new("usr/bin"), Meta::root(0o755)).unwrap();
        t.symlink(&TreePath::new("bin"), "usr/bin").unwrap();
        t
    }

    #[test]
    fn debian_defaults_follow_priorities() {
        let mut t = debian_iptables();
        apply(&mut t, &BTreeMap::new()).unwrap();
        assert_eq!(link(&t, "usr/sbin/iptables").as_deref(), Some("/etc/alternatives/iptables"));
        assert_eq!(link(&t, "etc/alternatives/iptables").as_deref(), Some("/usr/sbin/iptables-nft"));
        assert_eq!(link(&t, "etc/alternatives/ip6tables-save").as_deref(), Some("/usr/sbin/ip6tables-nft-save"));
        assert_eq!(link(&t, "etc/alternatives/awk").as_deref(), Some("/usr/bin/mawk"));
        // /bin is usr/bin here: the link lands there.
        assert_eq!(link(&t, "usr/bin/sh").as_deref(), Some("dash"));
        assert_eq!(t.read_file(&TreePath::new("bin/sh")).unwrap(), b"d");
    }

    #[test]
    fn explicit_choice_replaces_and_must_exist() {
        let mut t = debian_iptables();
        apply(&mut t, &BTreeMap::new()).unwrap();
        let chosen = BTreeMap::from([("iptables".to_string(), "legacy".to_string())]);
        apply(&mut t, &chosen).unwrap();
        assert_eq!(link(&t, "etc/alternatives/iptables-restore").as_deref(), Some("/usr/sbin/iptables-legacy-restore"));
        let e = apply(&mut Tree::new(), &chosen).unwrap_err().to_string();
        assert!(e.contains("guest.alternatives.iptables") && e.contains("/usr/sbin/iptables-legacy is not in the guest"), "{e}");
        assert!(check("iptables", "ebpf").unwrap_err().contains("choices: nft, legacy"));
        assert!(check("vi", "vim").is_err());
    }

    #[test]
    fn alpine_files_are_left_alone() {
        let mut t = Tree::new();
        t.write_file(&TreePath::new("usr/sbin/iptables"), "real", Meta::root(0o755)).unwrap();
        t.write_file(&TreePath::new("usr/sbin/iptables-legacy"), "l", Meta::root(0o755)).unwrap();
        t.symlink(&TreePath::new("bin/sh"), "/bin/busybox").unwrap();
        apply(&mut t, &BTreeMap::new()).unwrap();
        assert_eq!(t.read_file(&TreePath::new("usr/sbin/iptables")).unwrap(), b"real");
        assert_eq!(link(&t, "bin/sh").as_deref(), Some("/bin/busybox"));
    }
}
