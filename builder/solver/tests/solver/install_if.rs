//! apk install_if: packages added because everything they wait for is there.

use crate::common::*;

fn base() -> Vec<dinv_solver::Candidate> {
    vec![
        pkg("docker", "25.0"),
        pkg("openrc", "0.52"),
        pkg("bash", "5.2"),
        pkg("docker-openrc", "25.0")
            .install_if(&["docker=25.0", "openrc"])
            .dep("openrc-helpers"),
        pkg("openrc-helpers", "1"),
        pkg("docker-openrc-bash", "25.0").install_if(&["docker-openrc", "bash"]),
    ]
}

#[test]
fn install_if_adds_the_package_and_its_dependencies() {
    assert_eq!(
        resolve_set(base(), &["docker", "openrc"]).unwrap(),
        [
            "docker-25.0",
            "docker-openrc-25.0",
            "openrc-0.52",
            "openrc-helpers-1"
        ]
    );
}

#[test]
fn install_if_reason_lists_its_triggers() {
    assert_eq!(
        reasons_of(base(), &["docker", "openrc"], "docker-openrc"),
        ["install_if (docker=25.0, openrc)"]
    );
    assert_eq!(
        reasons_of(base(), &["docker", "openrc"], "openrc-helpers"),
        ["docker-openrc depends on openrc-helpers"]
    );
}

#[test]
fn install_if_waits_for_every_trigger() {
    assert_eq!(resolve_set(base(), &["docker"]).unwrap(), ["docker-25.0"]);
    assert_eq!(
        resolve_set(base(), &["docker", "bash"]).unwrap(),
        ["bash-5.2", "docker-25.0"]
    );
}

#[test]
fn install_if_respects_trigger_versions() {
    let mut u = base();
    u[0] = pkg("docker", "26.0");
    assert_eq!(
        resolve_set(u, &["docker", "openrc"]).unwrap(),
        ["docker-26.0", "openrc-0.52"]
    );
}

#[test]
fn install_if_chains_to_a_fixed_point() {
    assert_eq!(
        resolve_set(base(), &["docker", "openrc", "bash"]).unwrap(),
        [
            "bash-5.2",
            "docker-25.0",
            "docker-openrc-25.0",
            "docker-openrc-bash-25.0",
            "openrc-0.52",
            "openrc-helpers-1"
        ]
    );
    assert_eq!(
        reasons_of(base(), &["docker", "openrc", "bash"], "docker-openrc-bash"),
        ["install_if (docker-openrc, bash)"]
    );
}

#[test]
fn install_if_package_that_cannot_be_installed_is_skipped() {
    let mut u = base();
    u.push(
        pkg("docker-doc", "25.0")
            .install_if(&["docker", "docs"])
            .dep("missing-viewer"),
    );
    u.push(
        pkg("docker-zsh", "25.0")
            .install_if(&["docker"])
            .conflicts("bash"),
    );
    u.push(pkg("docs", "1"));
    assert_eq!(
        resolve_set(u, &["docker", "docs", "bash"]).unwrap(),
        ["bash-5.2", "docker-25.0", "docs-1"]
    );
}

#[test]
fn tagged_install_if_package_needs_a_trigger_from_its_repository() {
    let u = || {
        vec![
            pkg("docker", "25.0"),
            pkg("docker", "27.0").tag("edge").repo(1),
            pkg("docker-extra", "27.0")
                .tag("edge")
                .repo(1)
                .install_if(&["docker"]),
        ]
    };
    assert_eq!(resolve_set(u(), &["docker"]).unwrap(), ["docker-25.0"]);
    assert_eq!(
        resolve_set(u(), &["docker@edge"]).unwrap(),
        ["docker-27.0", "docker-extra-27.0"]
    );
}
