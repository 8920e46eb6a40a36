//! What users do with recipes and outputs.

mod arm64_launcher;
mod attestations;
mod cli_output;
mod customise;
mod locked;
mod out_dir;
mod platforms;
mod push;
mod reproducible;
mod runtime_contract;
mod signing;
mod standalone;
