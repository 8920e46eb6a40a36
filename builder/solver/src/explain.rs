//! Turning failures into text a user can act on.

use crate::index::Index;
use crate::matching::{provide_ok, version_ok};
use crate::types::{Constraint, Dependency};
use crate::viability::Viability;

/// At most this many versions are listed in `(have …)`.
const MAX_HAVE: usize = 6;

/// Why a selected package keeps a candidate out.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Block<'a> {
    /// Another version of the same name is already selected.
    SameName(u32),
    /// `owner` declares conflict `k`, matched by `target`.
    Conflict {
        owner: u32,
        target: u32,
        k: &'a Constraint,
    },
    /// apk: `other` already holds `name`, and one of the two provides it
    /// with a version.
    SharedName { other: u32, name: &'a str },
}

impl Block<'_> {
    /// The selected package that blocks candidate `c`.
    pub fn other(&self, c: u32) -> u32 {
        match *self {
            Block::SameName(s) | Block::SharedName { other: s, .. } => s,
            Block::Conflict { owner, target, .. } => {
                if owner == c {
                    target
                } else {
                    owner
                }
            }
        }
    }
}

/// Why no candidate at all meets `k` (missing, wrong versions, or only in
/// tagged repositories the constraint may not use).
pub(crate) fn constraint_problem(ix: &Index, k: &Constraint) -> String {
    let real = ix.real(&k.name);
    let provs = ix.providers(&k.name);
    if real.is_empty() && provs.is_empty() {
        return "no provider".to_string();
    }
    // Tags of the candidates whose version fits (all tag-ineligible here).
    let fitting = real
        .iter()
        .filter(|&&i| version_ok(ix.scheme, &ix.cand(i).version, k))
        .chain(
            provs
                .iter()
                .filter(|&&(i, pi)| provide_ok(ix.scheme, &ix.cand(i).provides[pi as usize], k))
                .map(|(i, _)| i),
        )
        .map(|&i| ix.cand(i).repo_tag.as_deref());
    let mut version_matched = false;
    let mut tags: Vec<&str> = Vec::new();
    for tag in fitting {
        version_matched = true;
        if let Some(t) = tag {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
    }
    if version_matched {
        // Every match sits in a tagged repository the constraint may not use.
        tags.sort_unstable();
        let list: Vec<String> = tags.iter().map(|t| format!("@{t}")).collect();
        let first = tags.first().copied().unwrap_or_default();
        return format!(
            "only in repositories tagged {} (ask for {}@{first})",
            list.join(", "),
            k.name
        );
    }
    let mut have: Vec<String> = Vec::new();
    for &i in real {
        let v = &ix.cand(i).version;
        if !have.contains(v) {
            have.push(v.clone());
        }
    }
    for &(i, pi) in provs {
        let c = ix.cand(i);
        let entry = match &c.provides[pi as usize].version {
            Some(v) => format!("{v} via {}", c.name),
            None => format!("unversioned via {}", c.name),
        };
        if !have.contains(&entry) {
            have.push(entry);
        }
    }
    let more = have.len().saturating_sub(MAX_HAVE);
    have.truncate(MAX_HAVE);
    if more > 0 {
        have.push(format!("{more} more"));
    }
    format!(
        "no version matches {} {} (have {})",
        k.op,
        k.version,
        have.join(", ")
    )
}

/// Why no candidate meets any alternative of `dep`.
pub(crate) fn dependency_problem(ix: &Index, dep: &Dependency) -> String {
    match dep.alternatives.as_slice() {
        [] => "empty dependency".to_string(),
        [k] => constraint_problem(ix, k),
        alts => alts
            .iter()
            .map(|k| format!("{k}: {}", constraint_problem(ix, k)))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// Follows a statically dead candidate down to a dependency nothing can
/// meet, appending each step to `chain`; returns the final problem. Each step
/// goes to a candidate that died earlier, so the walk ends.
pub(crate) fn explain_dead(
    ix: &Index,
    via: &Viability,
    mut c: u32,
    chain: &mut Vec<String>,
) -> String {
    'walk: while let Some(rank) = via.death_rank(c) {
        let cand = ix.cand(c);
        let ctx = cand.repo_tag.as_deref();
        for dep in &cand.depends {
            let matches = ix.dep_choices(dep, ctx);
            if matches
                .iter()
                .all(|&m| via.death_rank(m).is_some_and(|r| r < rank))
            {
                match matches.first() {
                    None => {
                        chain.push(dep.to_string());
                        return dependency_problem(ix, dep);
                    }
                    Some(&m) => {
                        chain.push(ix.cand(m).name.clone());
                        c = m;
                        continue 'walk;
                    }
                }
            }
        }
        break;
    }
    "cannot be installed".to_string()
}

/// Why candidate `c`, the preferred way to meet `dep_text`, cannot be added.
pub(crate) fn blocked_problem(ix: &Index, c: u32, block: &Block, dep_text: &str) -> String {
    let cand = ix.cand(c);
    match *block {
        Block::SameName(s) => {
            let s = ix.cand(s);
            format!(
                "{} {} is already selected and only one version can be installed (wanted {})",
                s.name, s.version, cand.version
            )
        }
        Block::SharedName { other, name } => format!(
            "{} conflicts with {} (both provide {name}, and only one package may unless neither gives a version)",
            cand.name,
            ix.cand(other).name
        ),
        Block::Conflict { owner, k, .. } => {
            let other = ix.cand(block.other(c));
            let subject = if cand.name == dep_text {
                String::new()
            } else {
                format!("{} ", cand.name)
            };
            format!(
                "{subject}conflicts with {} ({})",
                other.name,
                conflict_why(ix, owner, k)
            )
        }
    }
}

/// `postfix conflicts with mail-transport-agent`.
pub(crate) fn conflict_why(ix: &Index, owner: u32, k: &Constraint) -> String {
    format!("{} conflicts with {k}", ix.cand(owner).name)
}
