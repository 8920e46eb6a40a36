//! Users and groups from the recipe, merged into /etc/passwd, /etc/group
//! and /etc/shadow (what `addgroup`/`adduser` in package scripts would do).

use dinv_fstree::{Meta, Tree, TreePath};

use crate::recipe::{Group, User};
use crate::{Error, Result};

fn read_lines(tree: &Tree, path: &str) -> Vec<String> {
    tree.read_file(&TreePath::new(path)).map(|b| String::from_utf8_lossy(&b).lines().map(str::to_string).collect()).unwrap_or_default()
}

fn field(line: &str, i: usize) -> Option<&str> {
    line.split(':').nth(i)
}

fn write(tree: &mut Tree, path: &str, lines: &[String], mode: u32, gid: u32) -> Result<()> {
    let mut text = lines.join("\n");
    text.push('\n');
    let p = TreePath::new(path);
    let mut meta = tree.get(&p).map(|n| n.meta.clone()).unwrap_or_else(|| Meta::root(mode));
    meta.gid = tree.get(&p).map(|n| n.meta.gid).unwrap_or(gid);
    tree.write_file(&p, text, meta).map_err(|e| Error::stage(crate::error::Stage::Configure, e))
}

/// Adds the recipe's groups and users. An existing entry with the same name
/// must have the same id (or the recipe is wrong for this distribution);
/// group members are merged.
pub fn apply(tree: &mut Tree, groups: &[Group], users: &[User]) -> Result<()> {
    if groups.is_empty() && users.is_empty() {
        return Ok(());
    }
    let mut group = read_lines(tree, "etc/group");
    for g in groups {
        match group.iter_mut().find(|l| field(l, 0) == Some(g.name.as_str())) {
            Some(line) => {
                let gid = field(line, 2).unwrap_or("");
                if gid != g.gid.to_string() {
                    return Err(Error::stage(
                        crate::error::Stage::Configure,
                        format!("groups: {} has gid {gid} in the packages' /etc/group, the recipe says {}", g.name, g.gid),
                    ));
                }
                let mut members: Vec<String> = field(line, 3).unwrap_or("").split(',').filter(|m| !m.is_empty()).map(str::to_string).collect();
                for m in &g.members {
                    if !members.contains(m) {
                        members.push(m.clone());
                    }
                }
                *line = format!("{}:x:{}:{}", g.name, g.gid, members.join(","));
            }
            None => {
                if let Some(other) = group.iter().find(|l| field(l, 2) == Some(g.gid.to_string().as_str())) {
                    return Err(Error::stage(crate::error::Stage::Configure, format!("groups: gid {} of {} is taken by {:?}", g.gid, g.name, field(other, 0).unwrap_or(""))));
                }
                group.push(format!("{}:x:{}:{}", g.name, g.gid, g.members.join(",")));
            }
        }
    }
    let mut passwd = read_lines(tree, "etc/passwd");
    let mut shadow = read_lines(tree, "etc/shadow");
    for u in users {
        let gid = u.gid.unwrap_or(u.uid);
        let home = u.home.clone().unwrap_or_else(|| format!("/home/{}", u.name));
        let shell = u.shell.clone().unwrap_or_else(|| "/sbin/nologin".into());
        let line = format!("{}:x:{}:{}:{}:{}:{}", u.name, u.uid, gid, u.name, home, shell);
        match passwd.iter_mut().find(|l| field(l, 0) == Some(u.name.as_str())) {
            Some(existing) => *existing = line,
            None => passwd.push(line),
        }
        if !shadow.iter().any(|l| field(l, 0) == Some(u.name.as_str())) {
            shadow.push(format!("{}:!::0:::::", u.name));
        }
        if !group.iter().any(|l| field(l, 2) == Some(gid.to_string().as_str())) {
            group.push(format!("{}:x:{}:", u.name, gid));
        }
        for g in &u.groups {
            let line = group
                .iter_mut()
                .find(|l| field(l, 0) == Some(g.as_str()))
                .ok_or_else(|| Error::stage(crate::error::Stage::Configure, format!("users: {} is to join group {g}, which does not exist", u.name)))?;
            let members = field(line, 3).unwrap_or("");
            if !members.split(',').any(|m| m == u.name) {
                let sep = if members.is_empty() { "" } else { "," };
                line.push_str(&format!("{sep}{}", u.name));
            }
        }
    }
    write(tree, "etc/group", &group, 0o644, 0)?;
    if !users.is_empty() {
        write(tree, "etc/passwd", &passwd, 0o644, 0)?;
        // Alpine's /etc/shadow is root:shadow 0640; keep what the package set.
        write(tree, "etc/shadow", &shadow, 0o640, 42)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> Tree {
        let mut t = Tree::new();
        t.write_file(&TreePath::new("etc/group"), "root:x:0:root\nwheel:x:10:root\n", Meta::root(0o644)).unwrap();
        t.write_file(&TreePath::new("etc/passwd"), "root:x:0:0:root:/root:/bin/ash\n", Meta::root(0o644)).unwrap();
        t
    }

    #[test]
    fn adds_groups_and_users() {
        let mut t = tree();
        let groups = [Group { name: "docker".into(), gid: 101, members: vec![] }];
        let users = [User { name: "ci".into(), uid: 1000, gid: None, groups: vec!["docker".into(), "wheel".into()], home: None, shell: None }];
        apply(&mut t, &groups, &users).unwrap();
        let g = String::from_utf8(t.read_file(&TreePath::new("etc/group")).unwrap()).unwrap();
        assert_eq!(g, "root:x:0:root\nwheel:x:10:root,ci\ndocker:x:101:ci\nci:x:1000:\n");
        let p = String::from_utf8(t.read_file(&TreePath::new("etc/passwd")).unwrap()).unwrap();
        assert!(p.ends_with("ci:x:1000:1000:ci:/home/ci:/sbin/nologin\n"), "{p}");
        assert!(t.read_file(&TreePath::new("etc/shadow")).is_some());
    }

    #[test]
    fn clashing_ids_are_errors() {
        let mut t = tree();
        let e = apply(&mut t, &[Group { name: "docker".into(), gid: 10, members: vec![] }], &[]).unwrap_err();
        assert!(e.to_string().contains("gid 10 of docker is taken by \"wheel\""), "{e}");
        let e = apply(&mut t, &[Group { name: "wheel".into(), gid: 11, members: vec![] }], &[]).unwrap_err();
        assert!(e.to_string().contains("wheel has gid 10"), "{e}");
    }
}
