//! Error values and their text: the chain from the request down.

use crate::common::*;
use dinv_solver::SolveError;

#[test]
fn missing_provider_deep_in_the_tree_names_the_whole_chain() {
    let u = vec![
        pkg("docker", "25.0").dep("containerd").dep("iptables"),
        pkg("containerd", "1.7").dep("so:libseccomp.so.2"),
        pkg("iptables", "1.8"),
    ];
    match failure(u, &["docker"]) {
        SolveError::Unsatisfiable { chain, problem } => {
            assert_eq!(chain, ["docker", "containerd", "so:libseccomp.so.2"]);
            assert_eq!(problem, "no provider");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn error_text_joins_the_chain_with_arrows() {
    let u = vec![
        pkg("docker", "25.0").dep("containerd"),
        pkg("containerd", "1.7").dep("so:libseccomp.so.2"),
    ];
    assert_eq!(
        failure(u, &["docker"]).to_string(),
        "docker → containerd → so:libseccomp.so.2: no provider"
    );
}

#[test]
fn too_old_version_lists_what_exists() {
    let u = vec![
        pkg("app", "1").dep("libfoo>=2.0"),
        pkg("libfoo", "1.4.1-r0"),
    ];
    assert_eq!(
        failure(u, &["app"]).to_string(),
        "app → libfoo>=2.0: no version matches >= 2.0 (have 1.4.1-r0)"
    );
}

#[test]
fn unknown_request_has_no_provider() {
    let e = failure(vec![pkg("a", "1")], &["nothere"]);
    assert_eq!(e.to_string(), "nothere: no provider");
}

#[test]
fn failing_alternatives_explain_each_one() {
    let u = vec![pkg("app", "1").dep("a | b>=2"), pkg("b", "1")];
    assert_eq!(
        failure(u, &["app"]).to_string(),
        "app → a | b>=2: a: no provider; b>=2: no version matches >= 2 (have 1)"
    );
}

#[test]
fn two_requests_that_conflict_give_a_conflict_error() {
    let u = vec![
        pkg("postfix", "3").provides("mail-transport-agent"),
        pkg("exim4", "4")
            .provides("mail-transport-agent")
            .conflicts("mail-transport-agent"),
    ];
    match failure(u, &["postfix", "exim4"]) {
        SolveError::Conflict { a, b, why } => {
            assert_eq!((a.as_str(), b.as_str()), ("exim4", "postfix"));
            assert_eq!(why, "exim4 conflicts with mail-transport-agent");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn conflict_below_a_request_is_reported_with_its_chain() {
    let u = vec![
        pkg("site", "1"),
        pkg("app", "1").dep("helper"),
        pkg("helper", "1").conflicts("site<2"),
    ];
    assert_eq!(
        failure(u, &["site", "app"]).to_string(),
        "app → helper: conflicts with site (helper conflicts with site<2)"
    );
}

#[test]
fn two_versions_of_one_name_cannot_both_be_installed() {
    let u = vec![
        pkg("a", "1").dep("c=1"),
        pkg("b", "1").dep("c=2"),
        pkg("c", "1"),
        pkg("c", "2"),
    ];
    assert_eq!(
        failure(u, &["a", "b"]).to_string(),
        "b → c=2: c 1 is already selected and only one version can be installed (wanted 2)"
    );
}

#[test]
fn when_every_choice_fails_the_preferred_path_is_reported() {
    let u = vec![
        pkg("site", "1"),
        pkg("app", "1").dep("mta"),
        pkg("exim4", "4").provides("mta").prio(5).dep("exim4-base"),
        pkg("exim4-base", "4").conflicts("site"),
        pkg("postfix", "3").provides("mta").dep("postfix-base"),
        pkg("postfix-base", "3").conflicts("site"),
    ];
    assert_eq!(
        failure(u, &["site", "app"]).to_string(),
        "app → exim4 → exim4-base: conflicts with site (exim4-base conflicts with site)"
    );
}

#[test]
fn provider_that_conflicts_is_named_in_the_problem() {
    let u = vec![
        pkg("site", "1"),
        pkg("app", "1").dep("mta"),
        pkg("exim4", "4").provides("mta").conflicts("site"),
    ];
    assert_eq!(
        failure(u, &["site", "app"]).to_string(),
        "app → mta: exim4 conflicts with site (exim4 conflicts with site)"
    );
}

#[test]
fn unrelated_choice_points_are_not_retried_after_a_conflict() {
    // Both versions of m clash with guard. 40 packages with two versions each
    // open choice points after m's, but none is involved: retrying them all
    // (2^40) would hit the backtracking limit; jumping straight back to m
    // fails at once.
    let mut u = vec![
        pkg("guard", "1"),
        pkg("m", "2").dep("bad"),
        pkg("m", "1").dep("bad-old"),
        pkg("bad", "1").conflicts("guard"),
        pkg("bad-old", "1").conflicts("guard"),
    ];
    let mut root = pkg("root", "1").dep("m");
    for i in 0..40 {
        root = root.dep(&format!("l{i}"));
        u.push(pkg(&format!("l{i}"), "1"));
        u.push(pkg(&format!("l{i}"), "2"));
    }
    u.push(root);
    let e = failure(u, &["guard", "root"]);
    assert_eq!(
        e.to_string(),
        "root → m → bad: conflicts with guard (bad conflicts with guard)"
    );
}

#[test]
fn a_culprit_in_the_middle_is_revisited() {
    // The clash depends on the version of m (choice point in the middle);
    // choice points after it are unrelated. m 2 pulls in a helper that
    // conflicts with the first request; m 1 does not.
    let mut u = vec![
        pkg("guard", "1"),
        pkg("m", "2").dep("bad"),
        pkg("m", "1"),
        pkg("bad", "1").conflicts("guard"),
    ];
    let mut root = pkg("root", "1").dep("m");
    for i in 0..30 {
        root = root.dep(&format!("l{i}"));
        u.push(pkg(&format!("l{i}"), "1"));
        u.push(pkg(&format!("l{i}"), "2"));
    }
    u.push(root);
    let got = resolve_set(u, &["guard", "root"]).unwrap();
    assert!(got.contains(&"m-1".to_string()), "{got:?}");
    assert!(
        got.contains(&"l0-2".to_string()),
        "later choices keep their preferred version: {got:?}"
    );
    assert!(!got.iter().any(|p| p.starts_with("bad-")), "{got:?}");
}
