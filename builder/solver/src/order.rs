//! Install order: dependencies before dependents, ties and cycles broken by
//! package name.

use std::collections::{BTreeSet, HashMap};

use crate::engine::Reason;
use crate::index::Index;
use crate::preference::{apk_compare, explain, Offer};
use crate::types::Selected;

/// The selection in install order with each package's rendered reasons.
pub(crate) fn install_order(ix: &Index, trail: &[u32], reasons: &[(u32, Reason)]) -> Vec<Selected> {
    let node: HashMap<u32, usize> = trail.iter().enumerate().map(|(i, &c)| (c, i)).collect();
    let n = trail.len();
    let name = |i: usize| ix.cand(trail[i]).name.as_str();
    let mut texts: Vec<Vec<String>> = vec![Vec::new(); n];
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(c, why) in reasons {
        let Some(&i) = node.get(&c) else { continue };
        texts[i].push(render(ix, c, why));
        if let Reason::Depends { parent, .. } = why {
            if let Some(&p) = node.get(&parent) {
                if p != i {
                    deps[p].push(i);
                }
            }
        }
    }
    for d in &mut deps {
        d.sort_unstable();
        d.dedup();
    }
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (p, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(p);
        }
    }
    let component = strongly_connected(&deps);
    let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut done = vec![false; n];
    let mut ready: BTreeSet<(&str, usize)> = (0..n)
        .filter(|&i| waiting[i] == 0)
        .map(|i| (name(i), i))
        .collect();
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        let i = match ready.pop_first() {
            Some((_, i)) => i,
            // Only cycles are left: start the first (by name) package of a
            // cycle whose other dependencies are all installed.
            None => (0..n)
                .filter(|&i| {
                    !done[i]
                        && deps[i]
                            .iter()
                            .all(|&d| done[d] || component[d] == component[i])
                })
                .min_by_key(|&i| name(i))
                .expect("a cycle with no outside dependency exists"),
        };
        if done[i] {
            continue;
        }
        done[i] = true;
        order.push(i);
        for &p in &dependents[i] {
            waiting[p] -= 1;
            if waiting[p] == 0 && !done[p] {
                ready.insert((name(p), p));
            }
        }
    }
    order
        .into_iter()
        .map(|i| {
            let mut reasons = std::mem::take(&mut texts[i]);
            reasons.sort();
            reasons.dedup();
            Selected {
                candidate: trail[i] as usize,
                reasons,
            }
        })
        .collect()
}

/// `requested (recipe packages)`, `docker depends on containerd`,
/// `install_if (docker, openrc)`.
fn render(ix: &Index, chosen: u32, why: Reason) -> String {
    match why {
        Reason::Requested(r) => format!("requested ({r})"),
        Reason::Depends { parent, dep } => format!("{} depends on {dep}", ix.cand(parent).name),
        Reason::Chose { over, k } => {
            let (a, b) = (ix.cand(chosen), ix.cand(over));
            let (oa, ob) = (Offer::of(chosen, a, k), Offer::of(over, b, k));
            let why = match (oa, ob) {
                (Some(oa), Some(ob)) => explain(apk_compare(ix.scheme, k, &oa, &ob).1, k, &oa, &ob),
                _ => "preferred".to_string(),
            };
            format!("chose {} over {}: {why}", a.name, b.name)
        }
        Reason::InstallIf(c) => {
            let ks: Vec<String> = ix
                .cand(c)
                .install_if
                .iter()
                .map(ToString::to_string)
                .collect();
            format!("install_if ({})", ks.join(", "))
        }
    }
}

/// Tarjan's strongly connected components (iterative): component id per node.
fn strongly_connected(adj: &[Vec<usize>]) -> Vec<usize> {
    const NONE: usize = usize::MAX;
    let n = adj.len();
    let (mut index, mut low, mut comp) = (vec![NONE; n], vec![0; n], vec![NONE; n]);
    let mut on_stack = vec![false; n];
    let (mut stack, mut counter, mut comps) = (Vec::new(), 0, 0);
    for root in 0..n {
        if index[root] != NONE {
            continue;
        }
        let mut calls = vec![(root, 0usize)];
        index[root] = counter;
        low[root] = counter;
        counter += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(top) = calls.last_mut() {
            let v = top.0;
            if top.1 < adj[v].len() {
                let w = adj[v][top.1];
                top.1 += 1;
                if index[w] == NONE {
                    index[w] = counter;
                    low[w] = counter;
                    counter += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    calls.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(u, _)) = calls.last() {
                low[u] = low[u].min(low[v]);
            }
            if low[v] == index[v] {
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp[w] = comps;
                    if w == v {
                        break;
                    }
                }
                comps += 1;
            }
        }
    }
    comp
}
