//! apk-tools 2.14 decides names in a fixed order, and which name comes
//! first decides what a virtual name gets: if `dbus:org.freedesktop.Secrets`
//! is decided before `kwallet5` (also asked for), it takes its own best
//! provider (`gnome-keyring`, `k:100`) and both end up installed; decided
//! after, `kwallet5` already holds it. Reproducing the order is the only
//! way to install the same set.
//!
//! apk numbers names as its depth-first discovery from the world finishes
//! them (a name after everything found below it), then decides the names
//! the world asks for first, then the rest from the highest number down,
//! that is from the world towards the leaves. Names that only
//! unversioned, priority-less providers offer come last (apk cannot pick
//! for them on its own). [`discovery_order`] computes the numbers,
//! walking exactly what apk walks: for a name, the dependencies of each of
//! its providers not walked before (index order), then the names whose
//! install_if mentions a provider or something a provider provides, and
//! the names the providers provide.

use crate::hash::FastMap;
use crate::index::Index;

/// One step of the walk (an explicit stack: dependency chains in a real
/// index are deeper than a thread's stack would like).
enum Step<'u> {
    /// Discover a name (nothing if already seen).
    Enter(&'u str),
    /// Walk the dependencies of the name's providers from the `i`-th on.
    Depends(&'u str, usize),
    /// The install_if and provides part for the name's providers.
    Related(&'u str),
    /// A provided name: walked (with its install_if names) if still unseen.
    Provided(&'u str),
    /// Everything below the name is done: number it.
    Exit(&'u str),
}

/// Finishing number of every name discovered from `world`, in apk's
/// discovery order (world names sorted as apk sorts them: case-insensitive,
/// then exact).
pub(crate) fn discovery_order<'u>(ix: &Index<'u>, world: &[&'u str]) -> FastMap<&'u str, u32> {
    let mut world = world.to_vec();
    world.sort_by(|a, b| a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase()).then(a.cmp(b)));
    let mut seen_name: FastMap<&str, ()> = FastMap::default();
    let mut seen_pkg = vec![false; ix.cands.len()];
    let mut order: FastMap<&str, u32> = FastMap::default();
    let mut stack: Vec<Step> = Vec::new();
    for root in world {
        stack.push(Step::Enter(root));
        while let Some(step) = stack.pop() {
            match step {
                Step::Enter(name) => {
                    if seen_name.insert(name, ()).is_none() {
                        stack.push(Step::Exit(name));
                        stack.push(Step::Related(name));
                        stack.push(Step::Depends(name, 0));
                    }
                }
                Step::Depends(name, i) => {
                    let provs = ix.offering(name);
                    let Some(&c) = provs.get(i) else { continue };
                    stack.push(Step::Depends(name, i + 1));
                    if !std::mem::replace(&mut seen_pkg[c as usize], true) {
                        let cand = ix.cand(c);
                        let deps = cand.depends.iter().flat_map(|d| &d.alternatives).chain(&cand.conflicts);
                        let names: Vec<&str> = deps.map(|k| k.name.as_str()).collect();
                        stack.extend(names.into_iter().rev().map(Step::Enter));
                    }
                }
                Step::Related(name) => {
                    let mut steps = Vec::new();
                    for &c in ix.offering(name) {
                        let cand = ix.cand(c);
                        steps.extend(ix.install_if_on(&cand.name).iter().map(|&n| Step::Enter(n)));
                        steps.extend(cand.provides.iter().map(|p| Step::Provided(p.name.as_str())));
                    }
                    stack.extend(steps.into_iter().rev());
                }
                Step::Provided(name) => {
                    if !seen_name.contains_key(name) {
                        stack.extend(ix.install_if_on(name).iter().rev().map(|&n| Step::Enter(n)));
                        stack.push(Step::Enter(name));
                    }
                }
                Step::Exit(name) => {
                    let n = order.len() as u32 + 1;
                    order.insert(name, n);
                }
            }
        }
    }
    order
}
