//! Containers outside the cluster under test: the container engine the
//! component tier needs ([`engine`]), what an image is made of and how its
//! archive is built — the one image pipeline, which the embedded cluster uses
//! too ([`image`]) — and the images the library builds on demand for its
//! helpers and imports into the cluster ([`images`]).

pub mod engine;
pub mod image;
pub mod images;
