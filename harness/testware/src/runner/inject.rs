//! Case functions that ask for what they need by type, as rstest fixtures do:
//! `async fn f(ctx: Ctx, ns: Arc<TestNamespace>) -> CaseResult` gets the case's
//! context and a fresh namespace; [`crate::cases!`] registers such functions under
//! their own names.

use std::future::Future;
use std::sync::Arc;

use super::body::{BoxedBody, CaseResult};
use super::Ctx;
use crate::charts::chart::ChartSet;
use crate::charts::helm::Helm;
use crate::cluster::namespace::TestNamespace;

/// Something a case function can take as a parameter: built from the case's
/// [`Ctx`] before the body runs (a failure fails the case with the error).
pub trait FromCtx: Sized + Send + 'static {
    /// Builds the value for the case.
    fn from_ctx(ctx: &Ctx) -> impl Future<Output = anyhow::Result<Self>> + Send;
}

/// The case's context itself.
impl FromCtx for Ctx {
    async fn from_ctx(ctx: &Ctx) -> anyhow::Result<Self> {
        Ok(ctx.clone())
    }
}

/// A fresh namespace, deleted by the runner when the case ends (see
/// [`Ctx::create_namespace`]).
impl FromCtx for Arc<TestNamespace> {
    async fn from_ctx(ctx: &Ctx) -> anyhow::Result<Self> {
        ctx.create_namespace().await
    }
}

/// The suite's charts (see [`super::Suite::charts`]).
impl FromCtx for Arc<ChartSet> {
    async fn from_ctx(ctx: &Ctx) -> anyhow::Result<Self> {
        ctx.charts()
    }
}

/// The cluster client.
impl FromCtx for kube::Client {
    async fn from_ctx(ctx: &Ctx) -> anyhow::Result<Self> {
        Ok(ctx.client().await?)
    }
}

/// The located, version-checked helm.
impl FromCtx for Arc<Helm> {
    async fn from_ctx(ctx: &Ctx) -> anyhow::Result<Self> {
        Ok(ctx.helm().await?)
    }
}

/// An async function usable as a case body: up to four parameters, each
/// [`FromCtx`], returning a [`CaseResult`]. `Args` only tells the impls apart.
pub trait CaseFn<Args>: Send + 'static {
    /// The body the runner calls once.
    fn into_body(self) -> BoxedBody;
}

/// An async function usable as the body of a parametrized case (pytest's
/// `parametrize`): the case's parameter `P` first, then up to four [`FromCtx`]
/// parameters; see the `for` form of [`crate::cases!`].
pub trait ParamCaseFn<P, Args>: Send + 'static {
    /// The body the runner calls once, with `param`.
    fn into_body_with(self, param: P) -> BoxedBody;
}

macro_rules! impl_case_fn {
    ($($arg:ident),*) => {
        impl<F, Fut, $($arg,)*> CaseFn<($($arg,)*)> for F
        where
            F: FnOnce($($arg),*) -> Fut + Send + 'static,
            Fut: Future<Output = CaseResult> + Send + 'static,
            $($arg: FromCtx,)*
        {
            #[allow(non_snake_case, unused_variables)]
            fn into_body(self) -> BoxedBody {
                Box::new(move |ctx: Ctx| {
                    Box::pin(async move {
                        $(let $arg = <$arg as FromCtx>::from_ctx(&ctx).await?;)*
                        self($($arg),*).await
                    })
                })
            }
        }

        impl<F, Fut, P, $($arg,)*> ParamCaseFn<P, ($($arg,)*)> for F
        where
            F: FnOnce(P, $($arg),*) -> Fut + Send + 'static,
            Fut: Future<Output = CaseResult> + Send + 'static,
            P: Send + 'static,
            $($arg: FromCtx,)*
        {
            #[allow(non_snake_case, unused_variables)]
            fn into_body_with(self, param: P) -> BoxedBody {
                Box::new(move |ctx: Ctx| {
                    Box::pin(async move {
                        $(let $arg = <$arg as FromCtx>::from_ctx(&ctx).await?;)*
                        self(param, $($arg),*).await
                    })
                })
            }
        }
    };
}

impl_case_fn!();
impl_case_fn!(A);
impl_case_fn!(A, B);
impl_case_fn!(A, B, C);
impl_case_fn!(A, B, C, D);

/// Cases from case functions, each named after its function.
///
/// `cases![tier: f, g]` or, with marks, `cases![tier(mark, …): f, g]`, where the
/// tier is `no_deploy` or `chart_deploy`. Gives a `Vec<Case>` for
/// [`super::Suite::cases`]; a single case that needs more (a quarantine, a
/// timeout) is `Case::from_fn(…)` with the builder.
///
/// Parametrized, as pytest's `parametrize`: `cases![tier(marks…) for PARAMS: f, g]`
/// runs every function once per `(id, param)` of `PARAMS` (anything iterable;
/// one token, so an expression goes in parentheses), as case `f::<id>`, with
/// `param` (cloned) as its first argument — `async fn f(param: P, ctx: Ctx, …)`.
///
/// ```no_run
/// use std::sync::Arc;
/// use testware::namespace::TestNamespace;
/// use testware::{cases, CaseResult, Ctx, Suite};
///
/// async fn namespace_is_empty(ctx: Ctx, ns: Arc<TestNamespace>) -> CaseResult {
///     let pods = ns.api::<testware::k8s_openapi::api::core::v1::Pod>();
///     let list = pods.list(&Default::default()).await?;
///     anyhow::ensure!(list.items.is_empty(), "{}: pods in a new namespace", ctx.case);
///     Ok(())
/// }
///
/// fn main() -> std::process::ExitCode {
///     Suite::new("example")
///         .cases(cases![chart_deploy(smoke): namespace_is_empty])
///         .run()
/// }
/// ```
#[macro_export]
macro_rules! cases {
    (@tier no_deploy) => { $crate::Tier::NoDeploy };
    (@tier chart_deploy) => { $crate::Tier::ChartDeploy };
    (@tier component) => { $crate::Tier::Component };
    (@one $tier:ident [$($mark:ident)*] $case:ident) => {
        $crate::Case::from_fn($crate::cases!(@tier $tier), stringify!($case), $case)
            $(.mark(stringify!($mark)))*
    };
    (@all $tier:ident $marks:tt $($case:ident)+) => {
        vec![$($crate::cases!(@one $tier $marks $case)),+]
    };
    (@one_with $tier:ident [$($mark:ident)*] $case:ident $id:ident $param:ident) => {
        $crate::Case::from_param_fn(
            $crate::cases!(@tier $tier),
            format!("{}::{}", stringify!($case), $id),
            ::std::clone::Clone::clone(&$param),
            $case,
        )
        $(.mark(stringify!($mark)))*
    };
    (@all_with $tier:ident $marks:tt $params:tt $($case:ident)+) => {{
        let mut cases = ::std::vec::Vec::new();
        for (id, param) in $params {
            $(cases.push($crate::cases!(@one_with $tier $marks $case id param));)+
        }
        cases
    }};
    ($tier:ident $(($($mark:ident),* $(,)?))? for $params:tt : $($case:ident),+ $(,)?) => {
        $crate::cases!(@all_with $tier [$($($mark)*)?] $params $($case)+)
    };
    ($tier:ident $(($($mark:ident),* $(,)?))? : $($case:ident),+ $(,)?) => {
        $crate::cases!(@all $tier [$($($mark)*)?] $($case)+)
    };
}
