//! A case: a name, a tier, marks, an optional quarantine, a timeout and a body.

use std::future::Future;
use std::time::Duration;

use super::body::{BoxedBody, CaseResult};
use super::inject::CaseFn;
use super::Ctx;

/// Where a case runs: decides what it needs and when CI runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Renders charts and checks manifests; needs helm, no cluster.
    NoDeploy,
    /// Deploys into a real cluster.
    ChartDeploy,
    /// Runs the chart's images as containers of a container engine (Docker's API:
    /// Docker, or podman's service), with `testcontainers`; needs no cluster.
    Component,
}

impl Tier {
    /// The tier's mark name, as used in mark expressions.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::NoDeploy => "no_deploy",
            Tier::ChartDeploy => "chart_deploy",
            Tier::Component => "component",
        }
    }

    /// What the tier's cases need from outside the test process, if anything.
    pub fn requirement(self) -> Option<&'static str> {
        match self {
            Tier::NoDeploy => None,
            Tier::ChartDeploy => Some("cluster"),
            Tier::Component => Some("container engine"),
        }
    }

    pub(crate) fn default_timeout(self) -> Duration {
        match self {
            Tier::NoDeploy => Duration::from_secs(120),
            Tier::ChartDeploy => Duration::from_secs(600),
            Tier::Component => Duration::from_secs(300),
        }
    }
}

/// The mark every quarantined case carries.
pub const QUARANTINE_MARK: &str = "quarantine";

/// A case that runs and is reported but whose failure does not fail the build.
#[derive(Debug, Clone)]
pub struct Quarantine {
    reason: String,
    ticket: Option<String>,
    expires: Option<String>,
}

impl Quarantine {
    /// Quarantines a case, saying why.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            ticket: None,
            expires: None,
        }
    }

    /// The issue that tracks the fix.
    pub fn ticket(mut self, ticket: impl Into<String>) -> Self {
        self.ticket = Some(ticket.into());
        self
    }

    /// The last day (`YYYY-MM-DD`, UTC) the quarantine holds; after it the case
    /// fails the run, so quarantine cannot become permanent by neglect.
    pub fn expires(mut self, date: impl Into<String>) -> Self {
        self.expires = Some(date.into());
        self
    }

    pub(crate) fn describe(&self) -> String {
        let mut text = format!("reason: {}", self.reason);
        if let Some(t) = &self.ticket {
            text.push_str(&format!("; ticket: {t}"));
        }
        if let Some(e) = &self.expires {
            text.push_str(&format!("; expires: {e}"));
        }
        text
    }

    /// `Err` with the explanation when the quarantine no longer holds on `today`.
    pub(crate) fn check_expiry(&self, today: time::Date) -> Result<(), String> {
        let Some(expires) = &self.expires else {
            return Ok(());
        };
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let date = time::Date::parse(expires, &format).map_err(|e| {
            format!("invalid quarantine expiry {expires:?} (expected YYYY-MM-DD): {e}")
        })?;
        if today > date {
            return Err(format!(
                "quarantine expired on {expires} ({}): fix the case and lift the quarantine, or renew it with a new date",
                self.describe()
            ));
        }
        Ok(())
    }

    pub(crate) fn properties(&self) -> Vec<(String, String)> {
        let mut p = vec![("quarantine.reason".to_owned(), self.reason.clone())];
        p.extend(
            self.ticket
                .iter()
                .map(|t| ("quarantine.ticket".to_owned(), t.clone())),
        );
        p.extend(
            self.expires
                .iter()
                .map(|e| ("quarantine.expires".to_owned(), e.clone())),
        );
        p
    }
}

/// One registered case: a name, a tier, marks, an optional quarantine and an async body.
pub struct Case {
    pub(crate) name: String,
    pub(crate) tier: Tier,
    pub(crate) marks: Vec<String>,
    pub(crate) quarantine: Option<Quarantine>,
    pub(crate) timeout: Duration,
    pub(crate) body: BoxedBody,
}

impl Case {
    /// A case that runs containers of a container engine.
    pub fn component<F, Fut>(name: impl Into<String>, body: F) -> Self
    where
        F: FnOnce(Ctx) -> Fut + Send + 'static,
        Fut: Future<Output = CaseResult> + Send + 'static,
    {
        Self::new(Tier::Component, name, body)
    }

    /// A case of the given tier whose body takes the case's [`Ctx`] (for cases
    /// generated from data; a case function is registered with [`crate::cases!`]).
    pub fn new<F, Fut>(tier: Tier, name: impl Into<String>, body: F) -> Self
    where
        F: FnOnce(Ctx) -> Fut + Send + 'static,
        Fut: Future<Output = CaseResult> + Send + 'static,
    {
        // A body taking the context is a case function with one parameter.
        Self::from_fn::<(Ctx,)>(tier, name, body)
    }

    /// A case that needs no cluster.
    pub fn no_deploy<F, Fut>(name: impl Into<String>, body: F) -> Self
    where
        F: FnOnce(Ctx) -> Fut + Send + 'static,
        Fut: Future<Output = CaseResult> + Send + 'static,
    {
        Self::new(Tier::NoDeploy, name, body)
    }

    /// A case that needs a cluster.
    pub fn chart_deploy<F, Fut>(name: impl Into<String>, body: F) -> Self
    where
        F: FnOnce(Ctx) -> Fut + Send + 'static,
        Fut: Future<Output = CaseResult> + Send + 'static,
    {
        Self::new(Tier::ChartDeploy, name, body)
    }

    /// A case of the given tier whose body is a function that asks for what it
    /// needs by type (see [`FromCtx`](super::FromCtx)); what [`crate::cases!`] registers.
    pub fn from_fn<Args>(tier: Tier, name: impl Into<String>, body: impl CaseFn<Args>) -> Self {
        Self::with_body(tier, name.into(), body.into_body())
    }

    /// A case whose body is a [`ParamCaseFn`](super::ParamCaseFn): `param`
    /// first, then what it asks for by type; what the `for` form of
    /// [`crate::cases!`] registers.
    pub fn from_param_fn<P, Args>(
        tier: Tier,
        name: impl Into<String>,
        param: P,
        body: impl super::ParamCaseFn<P, Args>,
    ) -> Self {
        Self::with_body(tier, name.into(), body.into_body_with(param))
    }

    fn with_body(tier: Tier, name: String, body: BoxedBody) -> Self {
        Self {
            name,
            tier,
            marks: Vec::new(),
            quarantine: None,
            timeout: tier.default_timeout(),
            body,
        }
    }

    /// The case's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a mark (for selection with `--mark`).
    pub fn mark(mut self, mark: impl Into<String>) -> Self {
        self.marks.push(mark.into());
        self
    }

    /// Quarantines the case.
    pub fn quarantine(mut self, quarantine: Quarantine) -> Self {
        self.quarantine = Some(quarantine);
        self
    }

    /// The whole case, cleanup included, must end within this time (default:
    /// 2 min for no_deploy, 10 min for chart_deploy).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The tier followed by the marks, `quarantine` last: what `--mark` matches.
    pub fn all_marks(&self) -> Vec<String> {
        let mut marks = vec![self.tier.as_str().to_owned()];
        marks.extend(self.marks.iter().filter(|m| *m != QUARANTINE_MARK).cloned());
        if self.quarantine.is_some() {
            marks.push(QUARANTINE_MARK.to_owned());
        }
        marks
    }
}
