//! The same universe in any order gives the same answer.

use crate::common::*;
use dinv_solver::{solve, Candidate};

fn rich_universe() -> Vec<Candidate> {
    vec![
        pkg("docker", "25.0")
            .dep("containerd")
            .dep("iptables | nftables")
            .dep("so:libc.so"),
        pkg("docker", "24.0").dep("containerd"),
        pkg("containerd", "1.7")
            .dep("runc")
            .dep("so:libseccomp.so.2"),
        pkg("containerd", "1.7").repo(1).dep("runc"),
        pkg("runc", "1.1").dep("containerd"),
        pkg("libseccomp", "2.5").provides("so:libseccomp.so.2=2.5.5"),
        pkg("libseccomp-compat", "2.4").provides("so:libseccomp.so.2=2.4"),
        pkg("musl", "1.2").provides("so:libc.so"),
        pkg("glibc", "2.38").provides("so:libc.so"),
        pkg("iptables", "1.8").conflicts("nft-only"),
        pkg("nftables", "1.0"),
        pkg("nft-only", "1"),
        pkg("awk-user", "1").dep("awk"),
        pkg("gawk", "5").provides("awk"),
        pkg("mawk", "1").provides("awk").prio(3),
        pkg("docker-openrc", "25.0").install_if(&["docker", "openrc"]),
        pkg("openrc", "0.52"),
    ]
}

/// name, version, repo, reasons: everything but the candidate index.
fn fingerprint(cands: Vec<Candidate>, reqs: &[&str]) -> Vec<String> {
    let u = universe(cands);
    let r = solve(&u, &requests(reqs)).expect("solvable");
    r.selected
        .iter()
        .map(|s| {
            let c = &u.candidates[s.candidate];
            format!("{}-{}@{} {:?}", c.name, c.version, c.repo, s.reasons)
        })
        .collect()
}

fn shuffled(mut v: Vec<Candidate>, seed: u64) -> Vec<Candidate> {
    let mut state = seed;
    for i in (1..v.len()).rev() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = (state >> 33) as usize % (i + 1);
        v.swap(i, j);
    }
    v
}

#[test]
fn shuffled_candidates_give_the_same_resolution() {
    let reqs = ["docker", "nft-only", "awk-user", "openrc"];
    let expected = fingerprint(rich_universe(), &reqs);
    assert!(
        expected.iter().any(|l| l.starts_with("nftables-1.0")),
        "{expected:#?}"
    );
    assert!(
        expected.iter().any(|l| l.starts_with("mawk-1")),
        "{expected:#?}"
    );
    assert!(
        expected.iter().any(|l| l.starts_with("containerd-1.7@0")),
        "{expected:#?}"
    );
    for seed in 1..40 {
        assert_eq!(
            fingerprint(shuffled(rich_universe(), seed), &reqs),
            expected,
            "seed {seed}"
        );
    }
}

#[test]
fn shuffled_candidates_give_the_same_error() {
    let mut u = rich_universe();
    // Without libseccomp only the repository-0 containerd is left, and it needs it.
    u.retain(|c| !(c.name.starts_with("libseccomp") || (c.name == "containerd" && c.repo == 1)));
    let reqs = requests(&["docker"]);
    let expected = solve(&universe(u.clone()), &reqs).unwrap_err().to_string();
    assert_eq!(
        expected,
        "docker → containerd → so:libseccomp.so.2: no provider"
    );
    for seed in 1..20 {
        let got = solve(&universe(shuffled(u.clone(), seed)), &reqs)
            .unwrap_err()
            .to_string();
        assert_eq!(got, expected, "seed {seed}");
    }
}
