//! Install order and reasons.

use crate::common::*;

#[test]
fn dependencies_come_before_dependents() {
    let u = vec![
        pkg("a", "1").dep("c").dep("b"),
        pkg("b", "1").dep("d"),
        pkg("c", "1").dep("d"),
        pkg("d", "1"),
    ];
    assert_eq!(resolve(u, &["a"]).unwrap(), ["d-1", "b-1", "c-1", "a-1"]);
}

#[test]
fn independent_packages_are_ordered_by_name() {
    let u = vec![pkg("zsh", "1"), pkg("attr", "1"), pkg("musl", "1")];
    assert_eq!(
        resolve(u, &["zsh", "musl", "attr"]).unwrap(),
        ["attr-1", "musl-1", "zsh-1"]
    );
}

#[test]
fn cycles_are_broken_by_name_and_still_precede_their_dependents() {
    let u = vec![
        pkg("c", "1").dep("b"),
        pkg("a", "1").dep("b"),
        pkg("b", "1").dep("a"),
        pkg("base", "1"),
    ];
    assert_eq!(resolve(u.clone(), &["c"]).unwrap(), ["a-1", "b-1", "c-1"]);
    // The cycle waits for its own outside dependency.
    let mut u2 = u;
    u2[1] = pkg("a", "1").dep("b").dep("base");
    assert_eq!(
        resolve(u2, &["c"]).unwrap(),
        ["base-1", "a-1", "b-1", "c-1"]
    );
}

#[test]
fn three_cycle_starts_with_the_first_name() {
    let u = vec![
        pkg("y", "1").dep("z"),
        pkg("z", "1").dep("x"),
        pkg("x", "1").dep("y"),
    ];
    assert_eq!(resolve(u, &["z"]).unwrap(), ["x-1", "z-1", "y-1"]);
}

#[test]
fn reasons_from_every_parent_are_kept_sorted_and_unique() {
    let u = vec![
        pkg("b", "1").dep("lib"),
        pkg("a", "1").dep("lib"),
        pkg("lib", "1"),
    ];
    assert_eq!(
        reasons_of(u, &["b", "a", "lib", "lib"], "lib"),
        [
            "a depends on lib",
            "b depends on lib",
            "requested (recipe packages)"
        ]
    );
}

#[test]
fn reason_names_the_dependency_as_written() {
    let u = vec![
        pkg("app", "1").dep("so:libz.so.1 | zlib>=1"),
        pkg("zlib", "1.3").provides("so:libz.so.1=1.3"),
    ];
    assert_eq!(
        reasons_of(u, &["app"], "zlib"),
        ["app depends on so:libz.so.1 | zlib>=1"]
    );
}
