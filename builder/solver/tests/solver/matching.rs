//! Which candidates meet which constraints.

use crate::common::*;
use dinv_solver::{Constraint, Dependency, Op};

#[test]
fn simple_chain_pulls_every_dependency() {
    let u = vec![
        pkg("docker", "25.0").dep("containerd").dep("iptables"),
        pkg("containerd", "1.7").dep("runc"),
        pkg("runc", "1.1"),
        pkg("iptables", "1.8"),
        pkg("unrelated", "1.0"),
    ];
    assert_eq!(
        resolve_set(u, &["docker"]).unwrap(),
        ["containerd-1.7", "docker-25.0", "iptables-1.8", "runc-1.1"]
    );
}

#[test]
fn each_operator_picks_the_highest_matching_version() {
    let universe = || {
        vec![
            pkg("lib", "1.0"),
            pkg("lib", "1.5"),
            pkg("lib", "1.10"),
            pkg("lib", "2.0"),
        ]
    };
    let pick = |c: &str| resolve(universe(), &[c]).unwrap();
    assert_eq!(pick("lib"), ["lib-2.0"]);
    assert_eq!(pick("lib<1.5"), ["lib-1.0"]);
    assert_eq!(pick("lib<=1.5"), ["lib-1.5"]);
    assert_eq!(pick("lib=1.5"), ["lib-1.5"]);
    assert_eq!(pick("lib>=1.5"), ["lib-2.0"]);
    assert_eq!(pick("lib>1.0"), ["lib-2.0"]);
    assert_eq!(pick("lib~1"), ["lib-1.10"]);
}

#[test]
fn strictly_greater_with_no_match_fails() {
    let u = vec![pkg("lib", "1.0"), pkg("lib", "2.0")];
    let e = failure(u, &["lib>2.0"]);
    assert_eq!(
        e.to_string(),
        "lib>2.0: no version matches > 2.0 (have 2.0, 1.0)"
    );
}

#[test]
fn less_than_uses_the_version_scheme_not_text_order() {
    // Text order would put 1.10 below 1.9.
    let u = vec![pkg("lib", "1.9"), pkg("lib", "1.10")];
    assert_eq!(resolve(u.clone(), &["lib<1.10"]).unwrap(), ["lib-1.9"]);
    assert_eq!(resolve(u, &["lib>1.9"]).unwrap(), ["lib-1.10"]);
}

#[test]
fn fuzzy_constraint_stays_within_the_version_prefix() {
    let u = vec![
        pkg("py", "3.11.8"),
        pkg("py", "3.12.1"),
        pkg("py", "3.1"),
        pkg("py", "3.110"),
    ];
    assert_eq!(resolve(u.clone(), &["py~3.11"]).unwrap(), ["py-3.11.8"]);
    assert_eq!(resolve(u.clone(), &["py~3.1"]).unwrap(), ["py-3.1"]);
    assert_eq!(resolve(u, &["py~3"]).unwrap(), ["py-3.110"]);
}

#[test]
fn unversioned_provide_meets_only_unversioned_constraints() {
    let u = || {
        vec![
            pkg("app", "1").dep("mta"),
            pkg("postfix", "3.7").provides("mta"),
        ]
    };
    assert_eq!(
        resolve_set(u(), &["app"]).unwrap(),
        ["app-1", "postfix-3.7"]
    );
    let mut versioned = u();
    versioned[0] = pkg("app", "1").dep("mta>=1");
    let e = failure(versioned, &["app"]);
    assert_eq!(
        e.to_string(),
        "app → mta>=1: no version matches >= 1 (have unversioned via postfix)"
    );
}

#[test]
fn versioned_provide_is_compared_with_its_own_version() {
    let u = || {
        vec![
            pkg("app", "1").dep("so:libfoo.so.1>=1.2"),
            pkg("libfoo", "9.9").provides("so:libfoo.so.1=1.2.3"),
        ]
    };
    assert_eq!(resolve_set(u(), &["app"]).unwrap(), ["app-1", "libfoo-9.9"]);
    let mut too_new = u();
    too_new[0] = pkg("app", "1").dep("so:libfoo.so.1>=1.3");
    let e = failure(too_new, &["app"]);
    assert_eq!(
        e.to_string(),
        "app → so:libfoo.so.1>=1.3: no version matches >= 1.3 (have 1.2.3 via libfoo)"
    );
    // A versioned provide also meets an unversioned constraint.
    assert_eq!(
        resolve_set(u(), &["so:libfoo.so.1"]).unwrap(),
        ["libfoo-9.9"]
    );
}

#[test]
fn equal_versions_prefer_the_lower_repository_index() {
    let u = vec![
        pkg("a", "1.0").repo(2),
        pkg("a", "1.0").repo(1),
        pkg("a", "0.9").repo(0),
    ];
    let uni = universe(u);
    let r = dinv_solver::solve(&uni, &requests(&["a"])).unwrap();
    assert_eq!(r.selected.len(), 1);
    assert_eq!(uni.candidates[r.selected[0].candidate].repo, 1);
}

#[test]
fn tagged_repository_serves_only_tagged_constraints() {
    let u = || {
        vec![
            pkg("foo", "1.0"),
            pkg("foo", "2.0").tag("edge").repo(1),
            pkg("bar", "1.0").tag("edge").repo(1),
        ]
    };
    assert_eq!(resolve(u(), &["foo"]).unwrap(), ["foo-1.0"]);
    assert_eq!(resolve(u(), &["foo@edge"]).unwrap(), ["foo-2.0"]);
    assert_eq!(
        failure(u(), &["bar"]).to_string(),
        "bar: only in repositories tagged @edge (ask for bar@edge)"
    );
    assert_eq!(resolve(u(), &["bar@edge"]).unwrap(), ["bar-1.0"]);
}

#[test]
fn dependencies_of_a_tagged_package_may_use_its_repository() {
    let u = || {
        vec![
            pkg("tool", "2.0").tag("edge").repo(1).dep("libnew"),
            pkg("libnew", "1.0").tag("edge").repo(1),
            pkg("old", "1.0").dep("libnew"),
        ]
    };
    assert_eq!(
        resolve_set(u(), &["tool@edge"]).unwrap(),
        ["libnew-1.0", "tool-2.0"]
    );
    // An untagged package may not reach into the tagged repository.
    assert_eq!(
        failure(u(), &["old"]).to_string(),
        "old → libnew: only in repositories tagged @edge (ask for libnew@edge)"
    );
}

#[test]
fn constraint_text_is_apk_style() {
    assert_eq!(Constraint::any("busybox").to_string(), "busybox");
    assert_eq!(
        Constraint::versioned("musl", Op::Ge, "1.2").to_string(),
        "musl>=1.2"
    );
    assert_eq!(
        Constraint::versioned("py3", Op::Fuzzy, "3.11").to_string(),
        "py3~3.11"
    );
    assert_eq!(k("docker@edge").to_string(), "docker@edge");
    assert_eq!(k("docker@edge<26").to_string(), "docker@edge<26");
    for (op, s) in [(Op::Lt, "<"), (Op::Le, "<="), (Op::Eq, "="), (Op::Gt, ">")] {
        assert_eq!(
            Constraint::versioned("x", op, "1").to_string(),
            format!("x{s}1")
        );
    }
    let d = Dependency {
        alternatives: vec![k("default-mta"), k("mail-transport-agent")],
    };
    assert_eq!(d.to_string(), "default-mta | mail-transport-agent");
}
