//! Which candidate wins when several could: priorities, reuse, alternatives,
//! conflicts and backtracking.

use crate::common::*;

#[test]
fn highest_provider_priority_wins_over_name_order() {
    let u = vec![
        pkg("app", "1").dep("cmd:sh"),
        pkg("ash", "1").provides("cmd:sh").prio(10),
        pkg("busybox-binsh", "1").provides("cmd:sh").prio(100),
    ];
    assert_eq!(
        resolve_set(u, &["app"]).unwrap(),
        ["app-1", "busybox-binsh-1"]
    );
}

#[test]
fn equal_priority_providers_go_by_name_then_version() {
    let u = vec![
        pkg("app", "1").dep("awk"),
        pkg("mawk", "1.3").provides("awk"),
        pkg("gawk", "5.0").provides("awk"),
        pkg("gawk", "5.2").provides("awk"),
    ];
    assert_eq!(resolve_set(u, &["app"]).unwrap(), ["app-1", "gawk-5.2"]);
}

#[test]
fn real_package_is_preferred_to_providers_of_its_name() {
    let u = vec![
        pkg("app", "1").dep("foo"),
        pkg("foo", "1"),
        pkg("afoo", "9").provides("foo=2").prio(50),
    ];
    assert_eq!(resolve_set(u, &["app"]).unwrap(), ["app-1", "foo-1"]);
}

#[test]
fn already_selected_provider_is_reused() {
    // `app` is processed before `mawk` is requested, but virtual names wait
    // until real names are done, so awk is met by the requested mawk.
    let u = || {
        vec![
            pkg("app", "1").dep("awk"),
            pkg("gawk", "5").provides("awk"),
            pkg("mawk", "1").provides("awk"),
        ]
    };
    assert_eq!(
        resolve_set(u(), &["app", "mawk"]).unwrap(),
        ["app-1", "mawk-1"]
    );
    assert_eq!(resolve_set(u(), &["app"]).unwrap(), ["app-1", "gawk-5"]);
}

#[test]
fn alternatives_take_the_first_that_can_be_met() {
    let u = || {
        vec![
            pkg("app", "1").dep("exim4 | postfix"),
            pkg("postfix", "3.7"),
            pkg("exim4", "4.96"),
        ]
    };
    assert_eq!(resolve_set(u(), &["app"]).unwrap(), ["app-1", "exim4-4.96"]);
    let mut no_exim = u();
    no_exim.retain(|c| c.name != "exim4");
    assert_eq!(
        resolve_set(no_exim, &["app"]).unwrap(),
        ["app-1", "postfix-3.7"]
    );
}

#[test]
fn alternatives_prefer_one_already_selected() {
    let u = vec![
        pkg("app", "1").dep("exim4 | postfix"),
        pkg("postfix", "3.7"),
        pkg("exim4", "4.96"),
    ];
    assert_eq!(
        resolve_set(u, &["app", "postfix"]).unwrap(),
        ["app-1", "postfix-3.7"]
    );
}

#[test]
fn alternative_with_a_missing_dependency_is_skipped() {
    let u = vec![
        pkg("app", "1").dep("fast | slow"),
        pkg("fast", "1").dep("libgone"),
        pkg("slow", "1"),
    ];
    assert_eq!(resolve_set(u, &["app"]).unwrap(), ["app-1", "slow-1"]);
}

#[test]
fn conflict_forces_the_second_provider() {
    let u = vec![
        pkg("app", "1").dep("mta"),
        pkg("exim4", "4")
            .provides("mta")
            .prio(5)
            .conflicts("base-mail"),
        pkg("postfix", "3").provides("mta"),
        pkg("base-mail", "1"),
    ];
    assert_eq!(
        resolve_set(u, &["base-mail", "app"]).unwrap(),
        ["app-1", "base-mail-1", "postfix-3"]
    );
}

#[test]
fn conflict_declared_by_the_selected_side_is_honoured() {
    let u = vec![
        pkg("app", "1").dep("mta"),
        pkg("exim4", "4").provides("mta").prio(5),
        pkg("postfix", "3").provides("mta"),
        pkg("base-mail", "1").conflicts("exim4"),
    ];
    assert_eq!(
        resolve_set(u, &["base-mail", "app"]).unwrap(),
        ["app-1", "base-mail-1", "postfix-3"]
    );
}

#[test]
fn versioned_conflict_picks_an_older_version() {
    let u = vec![
        pkg("lib", "2.0"),
        pkg("lib", "1.0"),
        pkg("guard", "1").conflicts("lib>=2"),
    ];
    assert_eq!(
        resolve_set(u, &["guard", "lib"]).unwrap(),
        ["guard-1", "lib-1.0"]
    );
}

#[test]
fn deep_conflict_backtracks_to_an_earlier_choice() {
    // exim4 is chosen first; only its dependency clashes, two levels down.
    let u = vec![
        pkg("app", "1").dep("mta"),
        pkg("exim4", "4").provides("mta").prio(5).dep("exim4-base"),
        pkg("exim4-base", "4").dep("exim4-config"),
        pkg("exim4-config", "4").conflicts("site-config"),
        pkg("postfix", "3").provides("mta"),
        pkg("site-config", "1"),
    ];
    assert_eq!(
        resolve_set(u, &["site-config", "app"]).unwrap(),
        ["app-1", "postfix-3", "site-config-1"]
    );
}

#[test]
fn one_version_per_name_backtracks_to_an_older_version() {
    // b takes the newest c first; a then needs c=1, so b's choice is revisited.
    let u = vec![
        pkg("b", "1").dep("c>=1"),
        pkg("a", "1").dep("c=1"),
        pkg("c", "1"),
        pkg("c", "2"),
    ];
    assert_eq!(resolve_set(u, &["b", "a"]).unwrap(), ["a-1", "b-1", "c-1"]);
}

#[test]
fn a_package_never_conflicts_with_itself() {
    // Debian's Provides/Conflicts/Replaces on one virtual name.
    let u = vec![
        pkg("app", "1").dep("mail-transport-agent"),
        pkg("postfix", "3")
            .provides("mail-transport-agent")
            .conflicts("mail-transport-agent"),
    ];
    assert_eq!(resolve_set(u, &["app"]).unwrap(), ["app-1", "postfix-3"]);
}

#[test]
fn a_package_meets_its_own_dependency_through_a_provide() {
    let u = vec![pkg("libc", "1").provides("so:libc.so").dep("so:libc.so")];
    assert_eq!(resolve_set(u, &["libc"]).unwrap(), ["libc-1"]);
}

#[test]
fn statically_broken_provider_is_never_tried() {
    let u = vec![
        pkg("app", "1").dep("v"),
        pkg("best", "1").provides("v").prio(9).dep("mid"),
        pkg("mid", "1").dep("missing"),
        pkg("other", "1").provides("v"),
    ];
    assert_eq!(resolve_set(u, &["app"]).unwrap(), ["app-1", "other-1"]);
}
