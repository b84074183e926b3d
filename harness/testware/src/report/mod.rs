//! What a run writes for people and CI: JUnit ([`junit`]), failure bundles
//! ([`diagnostics`]) with the case's [`timeline`], and [`redact`], which keeps
//! secrets out of all of it.

pub mod diagnostics;
pub mod junit;
pub mod redact;
pub mod timeline;
