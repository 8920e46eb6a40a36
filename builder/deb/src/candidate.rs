//! A `Packages` record as a solver [`Candidate`].

use dinv_solver::Candidate;

use crate::packages::PackageRecord;
use crate::relations::{parse_conflicts, parse_dependencies, parse_provides};
use crate::DebError;

/// Converts a record for installation on `arch`: Depends + Pre-Depends
/// become dependencies, Conflicts + Breaks conflicts, `Essential: yes`
/// `essential`. `repo` is the repository's index in the recipe.
pub fn to_candidate(rec: &PackageRecord, repo: usize, arch: &str) -> Result<Candidate, DebError> {
    let what = |field: &str| format!("package {} {}: {field}", rec.package, rec.version);
    let mut depends = parse_dependencies(&rec.pre_depends, arch, &what("Pre-Depends"))?;
    depends.extend(parse_dependencies(&rec.depends, arch, &what("Depends"))?);
    let mut conflicts = parse_conflicts(&rec.conflicts, arch, &what("Conflicts"))?;
    conflicts.extend(parse_conflicts(&rec.breaks, arch, &what("Breaks"))?);
    Ok(Candidate {
        name: rec.package.clone(),
        version: rec.version.clone(),
        arch: rec.architecture.clone(),
        provides: parse_provides(&rec.provides, &what("Provides"))?,
        depends,
        conflicts,
        install_if: Vec::new(),
        install_if_not: Vec::new(),
        provider_priority: 0,
        repo,
        repo_tag: None,
        essential: rec.essential,
        mention: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dinv_solver::Op;

    #[test]
    fn record_to_candidate() {
        let rec = PackageRecord {
            package: "docker.io".into(),
            version: "20.10.24+dfsg1-1+b3".into(),
            architecture: "amd64".into(),
            pre_depends: "init-system-helpers (>= 1.54~)".into(),
            depends: "adduser, containerd (>= 1.2.6-2~), iptables | nftables".into(),
            conflicts: "docker (<< 1.5~)".into(),
            breaks: "docker-ce [amd64], foo [i386]".into(),
            provides: "docker-engine (= 1)".into(),
            ..Default::default()
        };
        let c = to_candidate(&rec, 2, "amd64").unwrap();
        assert_eq!(c.depends.len(), 4);
        assert_eq!(c.depends[0].alternatives[0].name, "init-system-helpers");
        assert_eq!(c.depends[3].alternatives.len(), 2);
        assert_eq!(c.conflicts.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["docker", "docker-ce"]);
        assert_eq!(c.conflicts[0].op, Op::Lt);
        assert_eq!(c.provides[0].version.as_deref(), Some("1"));
        assert_eq!((c.repo, c.essential, c.arch.as_str()), (2, false, "amd64"));

        let bad = PackageRecord { depends: "a (>= 1".into(), ..rec };
        let e = to_candidate(&bad, 0, "amd64").unwrap_err().to_string();
        assert!(e.contains("docker.io") && e.contains("Depends"), "{e}");
    }
}
