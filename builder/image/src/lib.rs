//! Docker image writers for dinv-build.
//!
//! A [`Tree`](dinv_fstree::Tree) becomes a deterministic compressed tar [`Layer`]
//! (gzip or zstd in content-defined pieces compressed in parallel and
//! reusable from a [`PieceCache`], streamed to a file while hashed); an [`ImageSpec`] plus layers become an
//! OCI image config and manifest, written either as an OCI image layout
//! directory ([`write_oci_layout`]) or as a docker-archive tar that is also
//! an OCI layout ([`write_docker_archive`], like `docker save` of docker 25+).
//! Same inputs, same bytes, same digests.

mod blob;
mod compress;
mod config;
mod docker_archive;
mod error;
mod json;
mod layer;
mod media;
mod manifest;
mod oci;
mod output_file;
mod time;

pub use blob::{sha256_digest, Blob};
pub use compress::{default_threads, Codec, Finished, LayerCompression, PieceCache, PieceStats, PieceWriter, MAX_PIECE, MIN_PIECE};
pub use config::{Healthcheck, ImageSpec};
pub use docker_archive::{write_docker_archive, write_docker_archive_parts};
pub use error::ImageError;
pub use json::to_canonical_json;
pub use layer::{Layer, LayerBuilder, LayerOptions, LayerPieces};
pub use manifest::{ImageDigests, ImageParts};
pub use oci::{write_oci_index_layout, write_oci_layout, write_oci_layout_parts, PlatformImage};
pub use output_file::{output_temp_dir, output_temp_file};
pub use time::rfc3339;

pub use media::{ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, MEDIA_TYPE_CONFIG, MEDIA_TYPE_INDEX, MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_LAYER_ZSTD, MEDIA_TYPE_MANIFEST};
