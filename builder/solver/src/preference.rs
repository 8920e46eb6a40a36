//! apk-tools 2.14's order of preference among the candidates for one name
//! (builder/solver/PREFERENCE.md says where each rule comes from).
//!
//! apk does not sort: it walks the providers of a name in the order the
//! indexes listed them and keeps a candidate only when it beats the best so
//! far. The comparison is not a total order (a provide without a version
//! ties with every version), so a sort could disagree with that walk;
//! [`apk_order`] repeats the walk instead, each pass taking the next best.

use std::cmp::Ordering;

use crate::matching::provide_ok;
use crate::types::{Candidate, Constraint, Op, VersionScheme};

/// One candidate offering a name: its own name, or a provide.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Offer<'u> {
    /// Index of the candidate.
    pub cand: u32,
    /// The candidate.
    pub c: &'u Candidate,
    /// The version it offers the name at: its own version for its own name,
    /// the provide's version otherwise (`None` for a provide without one).
    pub version: Option<&'u str>,
}

impl<'u> Offer<'u> {
    /// How `c` offers `k`'s name, if it does (version and tag not checked).
    pub fn of(cand: u32, c: &'u Candidate, k: &Constraint) -> Option<Offer<'u>> {
        if c.name == k.name {
            return Some(Offer { cand, c, version: Some(&c.version) });
        }
        let p = c.provides.iter().find(|p| p.name == k.name)?;
        Some(Offer { cand, c, version: p.version.as_deref() })
    }
}

/// The rule that decided between two offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decided {
    /// From a repository with the tag asked for (none for an untagged name).
    Tag,
    /// A higher version of the name asked for.
    ProvidedVersion,
    /// The same package, a higher version.
    Version,
    /// A higher `k:` provider priority.
    Priority,
    /// An earlier repository.
    Repository,
    /// Nothing else differs: the index lists it first.
    IndexOrder,
}

/// apk's comparison of two offers for `k`'s name: `Greater` when `a` is
/// preferred, with the rule that decided.
///
/// Rules in apk's order (solver.c's provider comparison, for a fresh root
/// without `--latest`, `--upgrade` or pinning beyond repository tags):
/// 1. from the repositories the request's tag points at (untagged ones for
///    an untagged name);
/// 2. the higher version of the requested name (a provide's version);
///    a provide without a version ties with anything here;
/// 3. for two versions of one package, the higher version;
/// 4. the higher provider priority (`k:`);
/// 5. the earlier repository.
pub(crate) fn apk_compare(scheme: &dyn VersionScheme, k: &Constraint, a: &Offer, b: &Offer) -> (Ordering, Decided) {
    let preferred = |o: &Offer| o.c.repo_tag.as_deref() == k.tag.as_deref();
    let steps: [(Decided, &dyn Fn() -> Ordering); 5] = [
        (Decided::Tag, &|| preferred(a).cmp(&preferred(b))),
        (Decided::ProvidedVersion, &|| match (a.version, b.version) {
            (Some(va), Some(vb)) => scheme.compare(va, vb),
            _ => Ordering::Equal,
        }),
        (Decided::Version, &|| {
            if a.c.name == b.c.name {
                scheme.compare(&a.c.version, &b.c.version)
            } else {
                Ordering::Equal
            }
        }),
        (Decided::Priority, &|| a.c.provider_priority.cmp(&b.c.provider_priority)),
        (Decided::Repository, &|| b.c.repo.cmp(&a.c.repo)),
    ];
    for (rule, cmp) in steps {
        let ord = cmp();
        if ord != Ordering::Equal {
            return (ord, rule);
        }
    }
    (Ordering::Equal, Decided::IndexOrder)
}

/// The offers in apk's preference order: each position holds the winner of
/// apk's walk over what is left, the walk keeping the first of equals.
/// `offers` must be in index order.
pub(crate) fn apk_order(scheme: &dyn VersionScheme, k: &Constraint, mut offers: Vec<Offer>) -> Vec<u32> {
    let mut out = Vec::with_capacity(offers.len());
    while !offers.is_empty() {
        let mut best = 0;
        for i in 1..offers.len() {
            if apk_compare(scheme, k, &offers[i], &offers[best]).0 == Ordering::Greater {
                best = i;
            }
        }
        out.push(offers.remove(best).cand);
    }
    out
}

/// apk picks a provider on its own only when it offers the name with a
/// version or has a provider priority; a package that merely lists the name
/// (`p:name`, no `k:`) serves only once it is installed for another reason.
pub(crate) fn auto_selectable(scheme: &dyn VersionScheme, c: &Candidate, k: &Constraint) -> bool {
    c.name == k.name
        || c.provider_priority > 0
        || c.provides.iter().any(|p| p.version.is_some() && provide_ok(scheme, p, k))
}

/// Why `a` was chosen over `b` for `k`, for `resolve`'s reasons.
pub(crate) fn explain(decided: Decided, k: &Constraint, a: &Offer, b: &Offer) -> String {
    match decided {
        Decided::Tag => match &k.tag {
            Some(t) => format!("from the repository tagged @{t}"),
            None => "from an untagged repository".to_string(),
        },
        Decided::ProvidedVersion => format!(
            "higher provided version of {} ({} > {})",
            k.name,
            a.version.unwrap_or_default(),
            b.version.unwrap_or_default()
        ),
        Decided::Version => format!("higher version ({} > {})", a.c.version, b.c.version),
        Decided::Priority => format!(
            "higher provider priority of {} (k:{} > k:{})",
            k.name, a.c.provider_priority, b.c.provider_priority
        ),
        Decided::Repository => "earlier repository".to_string(),
        Decided::IndexOrder => "listed first in the index".to_string(),
    }
}

/// Whether `k`, a negated install_if condition, is met under apk's rule:
/// its name must be decided, that is provided by a selected package, and
/// that package must not match `k`. A name nothing selected provides is
/// undecided, so a bare `!name` never triggers an install_if on its own.
pub(crate) fn negation_met<'c>(scheme: &dyn VersionScheme, k: &Constraint, owners: impl IntoIterator<Item = &'c Candidate>) -> bool {
    let mut decided = false;
    for c in owners {
        decided = true;
        let offer = Offer::of(0, c, k);
        let matches = match offer.and_then(|o| o.version) {
            Some(v) => crate::matching::version_ok(scheme, v, k),
            // A provide without a version meets only `!name` with any version.
            None => k.op == Op::Any,
        };
        if matches {
            return false;
        }
    }
    decided
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Provide;

    struct Natural;
    impl VersionScheme for Natural {
        fn compare(&self, a: &str, b: &str) -> Ordering {
            let key = |v: &str| v.split(['.', '-', '_']).map(|p| p.parse::<u64>().unwrap_or(0)).collect::<Vec<_>>();
            key(a).cmp(&key(b))
        }
    }

    fn cand(name: &str, version: &str, provides: &[(&str, Option<&str>)]) -> Candidate {
        Candidate {
            name: name.into(),
            version: version.into(),
            arch: String::new(),
            provides: provides.iter().map(|(n, v)| Provide { name: (*n).into(), version: v.map(Into::into) }).collect(),
            depends: vec![],
            conflicts: vec![],
            install_if: vec![],
            install_if_not: vec![],
            provider_priority: 0,
            repo: 0,
            repo_tag: None,
            essential: false,
            mention: 0,
        }
    }

    fn order(k: &Constraint, cs: &[Candidate]) -> Vec<String> {
        let offers = cs.iter().enumerate().filter_map(|(i, c)| Offer::of(i as u32, c, k)).collect();
        apk_order(&Natural, k, offers).into_iter().map(|i| cs[i as usize].name.clone()).collect()
    }

    #[test]
    fn higher_provided_version_beats_priority() {
        let k = Constraint::any("cmd:ssh");
        let mut openssh = cand("openssh-client-default", "10.0-r9", &[("cmd:ssh", Some("10.0-r9"))]);
        openssh.provider_priority = 2;
        let dropbear = cand("dropbear-ssh", "2025.88-r1", &[("cmd:ssh", Some("2025.88-r1"))]);
        assert_eq!(order(&k, &[openssh, dropbear]), ["dropbear-ssh", "openssh-client-default"]);
    }

    #[test]
    fn priority_decides_between_equal_provided_versions() {
        let k = Constraint::any("cmd:sh");
        let a = cand("ash", "1", &[("cmd:sh", Some("1"))]);
        let mut b = cand("busybox-binsh", "1", &[("cmd:sh", Some("1"))]);
        b.provider_priority = 100;
        assert_eq!(order(&k, &[a, b]), ["busybox-binsh", "ash"]);
    }

    #[test]
    fn a_provide_without_version_ties_on_version_and_goes_by_priority() {
        let k = Constraint::any("mta");
        let mut a = cand("postfix", "3", &[("mta", None)]);
        a.provider_priority = 1;
        let mut b = cand("exim", "4", &[("mta", Some("9"))]);
        b.provider_priority = 0;
        assert_eq!(order(&k, &[b, a]), ["postfix", "exim"]);
    }

    #[test]
    fn a_provider_with_a_higher_version_beats_the_package_of_that_name() {
        let k = Constraint::any("foo");
        let real = cand("foo", "1", &[]);
        let other = cand("foo-ng", "1", &[("foo", Some("2"))]);
        assert_eq!(order(&k, &[real, other]), ["foo-ng", "foo"]);
    }

    #[test]
    fn same_package_goes_by_version_then_earlier_repository_then_index_order() {
        let k = Constraint::any("x");
        let mut old = cand("x", "1", &[]);
        old.repo = 0;
        let mut new = cand("x", "2", &[]);
        new.repo = 1;
        assert_eq!(order(&k, &[old.clone(), new.clone()]), ["x", "x"]);
        let offers = vec![Offer::of(0, &old, &k).unwrap(), Offer::of(1, &new, &k).unwrap()];
        assert_eq!(apk_order(&Natural, &k, offers), [1, 0]);
        let k = Constraint::any("so:libp.so.1");
        let mut a = cand("p1", "1", &[("so:libp.so.1", Some("1"))]);
        a.repo = 1;
        let b = cand("p2", "1", &[("so:libp.so.1", Some("1"))]);
        assert_eq!(order(&k, &[a.clone(), b.clone()]), ["p2", "p1"]);
        a.repo = 0;
        assert_eq!(order(&k, &[a, b]), ["p1", "p2"], "equal in every rule: index order");
    }

    #[test]
    fn the_asked_tag_comes_before_version() {
        let mut k = Constraint::any("foo");
        let main = cand("foo", "2", &[]);
        let mut edge = cand("foo", "1", &[]);
        edge.repo_tag = Some("edge".into());
        edge.repo = 1;
        let offers = |m, e| vec![Offer::of(0, m, &k).unwrap(), Offer::of(1, e, &k).unwrap()];
        assert_eq!(apk_order(&Natural, &k, offers(&main, &edge)), [0, 1]);
        k.tag = Some("edge".into());
        let offers = vec![Offer::of(0, &main, &k).unwrap(), Offer::of(1, &edge, &k).unwrap()];
        assert_eq!(apk_order(&Natural, &k, offers), [1, 0]);
    }

    #[test]
    fn unversioned_provides_without_priority_are_not_auto_selectable() {
        let k = Constraint::any("mta");
        let mut c = cand("postfix", "3", &[("mta", None)]);
        assert!(!auto_selectable(&Natural, &c, &k));
        c.provider_priority = 1;
        assert!(auto_selectable(&Natural, &c, &k));
        let v = cand("exim", "4", &[("mta", Some("4"))]);
        assert!(auto_selectable(&Natural, &v, &k));
        assert!(auto_selectable(&Natural, &cand("mta", "1", &[]), &k));
    }

    #[test]
    fn negations_hold_only_when_decided_against() {
        let pulse = cand("pulseaudio", "16", &[]);
        let any = Constraint::any("pulseaudio");
        assert!(!negation_met(&Natural, &any, []), "undecided");
        assert!(!negation_met(&Natural, &any, [&pulse]));
        let old = Constraint::versioned("pulseaudio", Op::Lt, "10");
        assert!(negation_met(&Natural, &old, [&pulse]), "installed, but not in the versions named");
        let virt = cand("pipewire-pulse", "1", &[("pulseaudio", None)]);
        assert!(!negation_met(&Natural, &any, [&virt]));
        assert!(negation_met(&Natural, &old, [&virt]), "an unversioned provide meets no versioned constraint");
    }
}
