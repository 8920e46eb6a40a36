//! Behaviour of `dinv_solver::solve` on small, hand-built universes.

mod common;

mod choice;
mod determinism;
mod failures;
mod install_if;
mod matching;
mod order;
