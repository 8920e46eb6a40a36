//! apk install_if: after the main resolution, add every package whose
//! install_if constraints are all met by the selection, until nothing changes.

use std::collections::HashSet;

use crate::engine::Engine;

/// Adds install_if packages (and their dependencies) to a finished selection.
/// Names are visited in order and, per name, the preferred candidate whose
/// install_if is met; one that cannot be installed is skipped with a warning,
/// as apk does, rather than failing the whole resolution.
pub(crate) fn apply(eng: &mut Engine<'_>) {
    let ix = eng.ix;
    let mut names: Vec<&str> = ix
        .cands
        .iter()
        .filter(|c| !c.install_if.is_empty() || !c.install_if_not.is_empty())
        .map(|c| c.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut tried = HashSet::new();
    loop {
        let mut added = false;
        for &name in &names {
            if eng.name_selected(name) {
                continue;
            }
            for &c in ix.real(name) {
                let cand = ix.cand(c);
                if (cand.install_if.is_empty() && cand.install_if_not.is_empty()) || tried.contains(&c) || !eng.install_if_met(c)
                {
                    continue;
                }
                tried.insert(c);
                match eng.add_install_if(c) {
                    Ok(()) => {
                        added = true;
                        break;
                    }
                    Err(e) => tracing::warn!(package = name, "install_if package skipped: {e}"),
                }
            }
        }
        if !added {
            break;
        }
    }
}
