//! The build's stages, each checked by the host's own tools.

mod build_stages;
mod guest_config;
mod image_stage;
mod runtime_keep;
