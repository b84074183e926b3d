//! Containers outside the cluster under test: the container engine the
//! component tier needs ([`engine`]), and the images the library builds on
//! demand for its helpers and imports into the cluster ([`images`]).

pub mod engine;
pub mod images;
