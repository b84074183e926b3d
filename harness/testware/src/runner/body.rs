//! What a case body is, apart from the case that holds it and the functions that
//! become one ([`super::inject`]), so neither names the other for it.

use std::future::Future;
use std::pin::Pin;

use super::Ctx;

/// What a case body returns; the error chain is printed when it fails.
pub type CaseResult = anyhow::Result<()>;

/// A case body, run once with the case's context.
pub(crate) type BoxedBody = Box<dyn FnOnce(Ctx) -> BoxFuture<CaseResult> + Send>;

/// A boxed future of a case body.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
