//! Behaviour of `dinv_solver::solve` on small, hand-built universes.

mod common;

mod apt_order;
mod choice;
mod determinism;
mod failures;
mod install_if;
mod matching;
mod order;
