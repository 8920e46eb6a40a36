//! Times `solve` on a synthetic, seeded universe of 60,000 candidates shaped
//! like a distribution: a core of widely used libraries, leaf packages that
//! depend on the core and on a few neighbours, virtual names with several
//! providers, versioned `so:` provides, alternatives, a few conflicts and
//! install_if packages.
//!
//! `cargo run --release -p dinv-solver --example solve_bench`

use std::cmp::Ordering;
use std::time::Instant;

use dinv_solver::{
    solve, Candidate, Constraint, Dependency, Op, Provide, Request, Universe, VersionScheme,
};

const CANDIDATES: usize = 60_000;
const CORE: usize = 300;
const VIRTUALS: usize = 2_000;

/// Small linear congruential generator: reproducible without extra crates.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Dotted numeric versions (`1.10 > 1.9`).
struct Dotted;

impl VersionScheme for Dotted {
    fn compare(&self, a: &str, b: &str) -> Ordering {
        let parse = |v: &str| {
            v.split('.')
                .map(|p| p.parse::<u64>().unwrap_or(0))
                .collect::<Vec<_>>()
        };
        parse(a).cmp(&parse(b))
    }
}

fn any(name: String) -> Dependency {
    Dependency::single(Constraint::any(name))
}

fn universe(rng: &mut Lcg) -> Vec<Candidate> {
    // About three candidates in four are a package's only version.
    let names = CANDIDATES * 3 / 4;
    let mut out = Vec::with_capacity(CANDIDATES);
    for n in 0..CANDIDATES {
        let i = if n < names { n } else { rng.below(names) };
        let version = format!("{}.{}", 1 + rng.below(3), rng.below(20));
        let mut c = Candidate {
            name: format!("pkg{i}"),
            version: version.clone(),
            arch: "x86_64".into(),
            provides: vec![Provide {
                name: format!("so:libpkg{i}.so.1"),
                version: Some(version.clone()),
            }],
            depends: Vec::new(),
            conflicts: Vec::new(),
            install_if: Vec::new(),
            install_if_not: Vec::new(),
            provider_priority: rng.below(3) as u32,
            repo: rng.below(3),
            repo_tag: None,
            essential: false,
            mention: 0,
        };
        // Every virtual name gets a few providers, with random priorities.
        if i % 10 == 0 {
            c.provides.push(Provide {
                name: format!("virt{}", (i / 10) % VIRTUALS),
                version: None,
            });
        }
        // Core packages depend only on lower core packages.
        let deps = if i < CORE { rng.below(3) } else { rng.below(5) };
        for _ in 0..deps {
            let roll = rng.below(100);
            let dep = if i < CORE || roll < 60 {
                let t = rng.below(i.clamp(1, CORE));
                if t == i {
                    continue;
                }
                if roll < 30 {
                    any(format!("so:libpkg{t}.so.1"))
                } else {
                    Dependency::single(Constraint::versioned(format!("pkg{t}"), Op::Ge, "1.0"))
                }
            } else if roll < 85 {
                any(format!("pkg{}", i - 1 - rng.below(i.min(60))))
            } else if roll < 92 {
                any(format!("virt{}", rng.below(VIRTUALS)))
            } else {
                let a = format!("pkg{}", rng.below(names));
                let b = format!("pkg{}", rng.below(CORE));
                Dependency {
                    alternatives: vec![Constraint::any(a), Constraint::any(b)],
                }
            };
            c.depends.push(dep);
        }
        if rng.below(100) == 0 {
            c.conflicts.push(Constraint::versioned(
                format!("pkg{}", rng.below(names)),
                Op::Lt,
                "2.0",
            ));
        }
        if rng.below(100) == 0 {
            c.install_if = vec![
                Constraint::any(format!("pkg{}", rng.below(CORE))),
                Constraint::any(format!("pkg{}", rng.below(names))),
            ];
        }
        out.push(c);
    }
    out
}

fn main() {
    let mut rng = Lcg(0x5eed);
    let start = Instant::now();
    let candidates = universe(&mut rng);
    println!(
        "generated {} candidates in {:?}",
        candidates.len(),
        start.elapsed()
    );
    let scheme = Dotted;
    let universe = Universe {
        candidates: candidates.into(),
        scheme: &scheme,
        rules: dinv_solver::Rules::Generic,
    };
    let names = CANDIDATES * 3 / 4;
    for round in 0..5 {
        let requests: Vec<Request> = (0..10)
            .map(|_| Request {
                dependency: any(format!("pkg{}", CORE + rng.below(names - CORE))),
                reason: "bench".into(),
            })
            .collect();
        let start = Instant::now();
        let result = solve(&universe, &requests);
        let took = start.elapsed();
        match result {
            Ok(r) => println!(
                "round {round}: {} packages selected in {took:?}",
                r.selected.len()
            ),
            Err(e) => println!("round {round}: failed in {took:?}: {e}"),
        }
    }
}
