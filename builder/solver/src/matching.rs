//! Whether one candidate meets one constraint (name, provides, version, tag).

use std::cmp::Ordering;

use crate::types::{Candidate, Constraint, Op, Provide, VersionScheme};

/// Whether `version` satisfies the constraint's operator and version.
pub(crate) fn version_ok(scheme: &dyn VersionScheme, version: &str, k: &Constraint) -> bool {
    let ord = match k.op {
        Op::Any => return true,
        Op::Fuzzy => return scheme.fuzzy_matches(version, &k.version),
        _ => scheme.compare(version, &k.version),
    };
    match k.op {
        Op::Lt => ord == Ordering::Less,
        Op::Le => ord != Ordering::Greater,
        Op::Eq => ord == Ordering::Equal,
        Op::Ge => ord != Ordering::Less,
        Op::Gt => ord == Ordering::Greater,
        Op::Any | Op::Fuzzy => unreachable!("handled above"),
    }
}

/// Whether a provide satisfies the constraint (Debian rule: an unversioned
/// provide only satisfies unversioned constraints).
pub(crate) fn provide_ok(scheme: &dyn VersionScheme, p: &Provide, k: &Constraint) -> bool {
    p.name == k.name
        && match &p.version {
            Some(v) => version_ok(scheme, v, k),
            None => k.op == Op::Any,
        }
}

/// Whether the candidate satisfies the constraint by name or by a provide,
/// ignoring repository tags.
pub(crate) fn candidate_matches(scheme: &dyn VersionScheme, c: &Candidate, k: &Constraint) -> bool {
    (c.name == k.name && version_ok(scheme, &c.version, k))
        || c.provides.iter().any(|p| provide_ok(scheme, p, k))
}

/// Whether a candidate's repository tag lets it serve the constraint: tagged
/// repositories serve only constraints carrying their tag, or dependencies of
/// a package from a repository with the same tag (`ctx`).
pub(crate) fn tag_eligible(c: &Candidate, k: &Constraint, ctx: Option<&str>) -> bool {
    match c.repo_tag.as_deref() {
        None => true,
        Some(t) => k.tag.as_deref() == Some(t) || ctx == Some(t),
    }
}

#[cfg(test)]
mod tests {
    use crate::fuzzy::fuzzy_ok;

    #[test]
    fn fuzzy_matches_at_component_boundaries_only() {
        for v in ["1.2", "1.2.5", "1.2-r3", "1.2_rc1", "1.2a"] {
            assert!(fuzzy_ok(v, "1.2"), "{v} should match ~1.2");
        }
        for v in ["1.20", "1.3", "1", "11.2", "0.1.2"] {
            assert!(!fuzzy_ok(v, "1.2"), "{v} should not match ~1.2");
        }
        assert!(fuzzy_ok("1.2.3", "1.2."));
        assert!(
            !fuzzy_ok("1.2ab", "1.2a"),
            "a letter after a letter is not a boundary"
        );
        assert!(fuzzy_ok("anything", ""));
    }
}
