//! The entry point: index, prune, search, install_if, order.

use crate::engine::Engine;
use crate::index::Index;
use crate::install_if;
use crate::order::install_order;
use crate::types::{Request, Resolution, Rules, SolveError, Universe};
use crate::viability::Viability;

/// Resolves the requests against the universe: one candidate per needed
/// name, chosen deterministically (see the crate docs for the rules), in
/// install order; or the most useful explanation of why that is impossible.
pub fn solve(universe: &Universe, requests: &[Request]) -> Result<Resolution, SolveError> {
    let ix = Index::new(universe);
    let mut via = Viability::new(universe.candidates.len());
    via.extend(
        &ix,
        requests
            .iter()
            .flat_map(|r| ix.dep_choices(&r.dependency, None)),
    );
    let mut engine = Engine::new(&ix, via);
    if universe.rules == Rules::Apk {
        engine.apk_order(requests);
    }
    for r in requests {
        engine.request(r);
    }
    if !engine.run() {
        return Err(engine.take_error());
    }
    engine.commit();
    install_if::apply(&mut engine);
    tracing::debug!(selected = engine.trail.len(), "resolved");
    Ok(Resolution {
        selected: install_order(&ix, &engine.trail, &engine.reasons),
    })
}
