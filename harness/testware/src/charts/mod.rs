//! Charts and helm: a repository's charts rendered once and cached
//! ([`chart`]; across runs on disk: [`render_cache`]), the helm CLI adapter
//! ([`helm`]), snapshots of renders ([`snapshot`]), template coverage over value sets ([`coverage`]), charts changed since a git ref ([`changes`]) and what each helm action is given ([`options`]). Installing a chart into a cluster is
//! [`crate::deployment`]'s.

pub mod changes;
pub mod chart;
pub mod coverage;
pub mod dependencies;
pub mod helm;
pub mod options;
pub mod render_cache;
pub mod snapshot;
