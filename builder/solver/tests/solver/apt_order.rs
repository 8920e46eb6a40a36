//! `Rules::Apt`: the generic choices in apt-get's order. Each case is one
//! where meeting obligations breadth first (the generic rules) and apt's
//! depth first give different, equally valid sets; `apt-get install
//! --simulate` gives the depth-first one (tests/it/sources/apt_judge.rs
//! checks that on the real trixie index).

use crate::common::*;
use dinv_solver::{Candidate, Rules};

fn sorted(cands: Vec<Candidate>, reqs: &[&str], rules: Rules) -> Vec<String> {
    resolve_set_with(cands, reqs, rules).expect("solvable")
}

/// icingaweb2-common's case: its first dependency leads, depth first, to a
/// package that provides the name of its second, so apt never installs
/// the real package of that name.
#[test]
fn a_name_provided_on_the_way_down_is_not_installed_again() {
    let u = || {
        vec![
            pkg("app", "1").dep("lib").dep("cli"),
            pkg("lib", "1").dep("json"),
            pkg("cli-impl", "8").provides("json").provides("cli"),
            pkg("cli", "2").dep("cli-impl"),
        ]
    };
    assert_eq!(sorted(u(), &["app"], Rules::Apt), ["app-1", "cli-impl-8", "lib-1"]);
    assert_eq!(sorted(u(), &["app"], Rules::Generic), ["app-1", "cli-2", "cli-impl-8", "lib-1"]);
}

/// apt marks every request before following any one's dependencies, then
/// follows the first request's all the way down before the second's.
#[test]
fn requests_first_then_the_first_requests_dependencies() {
    let u = || {
        vec![
            pkg("a", "1").dep("p"),
            pkg("b", "1").dep("q"),
            pkg("p", "1").dep("r | s"),
            pkg("q", "1").dep("s"),
            pkg("r", "1"),
            pkg("s", "1"),
        ]
    };
    // p's `r | s` is met before q brings s: r is installed.
    assert_eq!(sorted(u(), &["a", "b"], Rules::Apt), ["a-1", "b-1", "p-1", "q-1", "r-1", "s-1"]);
    // The other way round, s is there when p's group is met.
    assert_eq!(sorted(u(), &["b", "a"], Rules::Apt), ["a-1", "b-1", "p-1", "q-1", "s-1"]);
    // A request satisfies a group met later.
    assert_eq!(sorted(u(), &["a", "s"], Rules::Apt), ["a-1", "p-1", "s-1"]);
}

/// A dead end depth first is backtracked like any other choice.
#[test]
fn a_failed_alternative_is_retried_in_apt_order() {
    let u = vec![
        pkg("a", "1").dep("x | y").dep("z"),
        pkg("x", "1").dep("w"),
        pkg("w", "1").conflicts("z"),
        pkg("y", "1"),
        pkg("z", "1"),
    ];
    assert_eq!(sorted(u, &["a"], Rules::Apt), ["a-1", "y-1", "z-1"]);
}
