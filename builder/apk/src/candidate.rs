//! Index entries as solver candidates.

use dinv_solver::{Candidate, Constraint, Dependency, Op, Provide};

use crate::{ApkDep, ApkOp, IndexEntry};

/// An index entry uses a dependency form the solver cannot express.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{package}: {field} {dep}: {why}")]
pub struct ConvertError {
    /// `name-version`.
    pub package: String,
    /// `depends`, `provides` or `install_if`.
    pub field: &'static str,
    /// The offending atom.
    pub dep: String,
    /// Why the solver cannot take it.
    pub why: &'static str,
}

fn op(o: ApkOp) -> Option<Op> {
    Some(match o {
        ApkOp::Any => Op::Any,
        ApkOp::Lt => Op::Lt,
        ApkOp::Le => Op::Le,
        ApkOp::Eq => Op::Eq,
        ApkOp::Ge => Op::Ge,
        ApkOp::Gt => Op::Gt,
        ApkOp::Fuzzy => Op::Fuzzy,
        ApkOp::LtFuzzy | ApkOp::GtFuzzy | ApkOp::Checksum => return None,
    })
}

impl IndexEntry {
    /// The solver's view of this entry. `repo` is the repository's position
    /// in the recipe, `repo_tag` its tag (without `@`).
    pub fn to_candidate(&self, repo: usize, repo_tag: Option<&str>) -> Result<Candidate, ConvertError> {
        let fail = |field, d: &ApkDep, why| ConvertError { package: self.label(), field, dep: d.to_string(), why };
        let constraint = |field, d: &ApkDep| -> Result<Constraint, ConvertError> {
            let op = op(d.op).ok_or_else(|| fail(field, d, "operator not supported by the solver"))?;
            Ok(Constraint { name: d.name.clone(), op, version: d.version.clone(), tag: d.tag.clone() })
        };
        let mut depends = Vec::new();
        let mut conflicts = Vec::new();
        for d in &self.depends {
            let c = constraint("depends", d)?;
            if d.conflict {
                conflicts.push(c);
            } else {
                depends.push(Dependency { alternatives: vec![c] });
            }
        }
        let provides = self
            .provides
            .iter()
            .map(|d| match d.op {
                _ if d.conflict => Err(fail("provides", d, "a provide cannot be negated")),
                ApkOp::Any => Ok(Provide { name: d.name.clone(), version: None }),
                ApkOp::Eq => Ok(Provide { name: d.name.clone(), version: Some(d.version.clone()) }),
                _ => Err(fail("provides", d, "a provide can only carry `=version`")),
            })
            .collect::<Result<_, _>>()?;
        let mut install_if = Vec::new();
        let mut install_if_not = Vec::new();
        for d in &self.install_if {
            let c = constraint("install_if", d)?;
            if d.conflict {
                install_if_not.push(c);
            } else {
                install_if.push(c);
            }
        }
        Ok(Candidate {
            name: self.name.clone(),
            version: self.version.clone(),
            arch: self.arch.clone().unwrap_or_default(),
            provides,
            depends,
            conflicts,
            install_if,
            install_if_not,
            provider_priority: self.provider_priority.unwrap_or(0),
            repo,
            repo_tag: repo_tag.map(str::to_string),
            essential: false,
            mention: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::index::parse_text;

    #[test]
    fn converts_an_entry() {
        let e = &parse_text(
            "P:docker\nV:24.0.7-r0\nA:x86_64\nk:3\nD:containerd>=1.7 !docker-legacy<2 so:libc.musl-x86_64.so.1 tini@edge~0.19\n\
p:cmd:docker=24.0.7-r0 so:libdocker.so.1=1 docker-engine\ni:docker openrc\n\n",
        )
        .unwrap()[0];
        let c = e.to_candidate(2, Some("main")).unwrap();
        assert_eq!((c.name.as_str(), c.version.as_str(), c.arch.as_str()), ("docker", "24.0.7-r0", "x86_64"));
        assert_eq!((c.provider_priority, c.repo, c.repo_tag.as_deref()), (3, 2, Some("main")));
        assert_eq!(c.depends.len(), 3);
        let first = &c.depends[0].alternatives[0];
        assert_eq!((first.name.as_str(), first.op, first.version.as_str()), ("containerd", dinv_solver::Op::Ge, "1.7"));
        let tini = &c.depends[2].alternatives[0];
        assert_eq!((tini.op, tini.tag.as_deref()), (dinv_solver::Op::Fuzzy, Some("edge")));
        assert_eq!(c.conflicts.len(), 1);
        assert_eq!((c.conflicts[0].name.as_str(), c.conflicts[0].op), ("docker-legacy", dinv_solver::Op::Lt));
        assert_eq!(c.provides.len(), 3);
        assert_eq!(c.provides[1].version.as_deref(), Some("1"));
        assert_eq!(c.provides[2].version, None);
        assert_eq!(c.install_if.len(), 2);

        let alsa = &parse_text("P:libcanberra-alsa\nV:0.30-r9\ni:libcanberra=0.30-r9 alsa-lib !pulseaudio\n\n").unwrap()[0];
        let c = alsa.to_candidate(0, None).unwrap();
        assert_eq!(c.install_if.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["libcanberra", "alsa-lib"]);
        assert_eq!(c.install_if_not.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["pulseaudio"]);

        let bad = &parse_text("P:x\nV:1\nD:y><Q1abc\n\n").unwrap()[0];
        let err = bad.to_candidate(0, None).unwrap_err();
        assert!(err.to_string().contains("x-1: depends y><Q1abc"), "{err}");
    }
}
