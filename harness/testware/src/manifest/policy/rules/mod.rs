//! The rules, one file each: pure functions over rendered [`Manifests`](super::Manifests)
//! (no I/O), returning violations.

pub mod api_version;
pub mod image;
pub mod labels;
pub mod probes;
pub mod references;
pub mod resources;
pub mod scheduling;
pub mod schema;
pub mod security;
pub mod service;
