//! What the harness does, as `tracing` events: helm commands with their
//! duration, waits with what they saw, retries. Shown on stderr with `RUST_LOG`
//! (e.g. `RUST_LOG=testware=debug`; off by default), and kept per case — every
//! event inside the case's span — for its failure bundle (`timeline.txt`,
//! redacted like the rest of the bundle).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use tracing::field::{Field, Visit};
use tracing::{span, Event, Level, Subscriber};
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer;

/// Name of the span a case runs in; its field `case` names the case.
pub const CASE_SPAN: &str = "case";

/// Lines of each case's timeline, by case name.
fn timelines() -> &'static Mutex<HashMap<String, Vec<String>>> {
    static TIMELINES: OnceLock<Mutex<HashMap<String, Vec<String>>>> = OnceLock::new();
    TIMELINES.get_or_init(Mutex::default)
}

/// Installs the process's subscriber: `RUST_LOG`'s events to stderr, and the
/// case timelines (debug and above from the harness, info and above from the
/// rest). Does nothing when a subscriber is installed already.
pub fn init() {
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("off")));
    let timeline = CaseTimeline.with_filter(
        Targets::new()
            .with_default(Level::INFO)
            .with_target("testware", Level::DEBUG),
    );
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(timeline)
        .try_init();
}

/// The span case `case` runs in: events inside it join its timeline.
pub fn case_span(case: &str) -> tracing::Span {
    tracing::info_span!(CASE_SPAN, case = case)
}

/// The timeline of `case` so far, one line an event, oldest first.
pub fn lines(case: &str) -> Vec<String> {
    timelines()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(case)
        .cloned()
        .unwrap_or_default()
}

/// Forgets the timeline of `case` (when the case is over).
pub fn forget(case: &str) {
    timelines()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(case);
}

/// Kept in a case span's extensions.
struct CaseKey {
    case: String,
    started: Instant,
}

/// The layer that files events under the case whose span they are in.
struct CaseTimeline;

impl<S> Layer<S> for CaseTimeline
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != CASE_SPAN {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(span), Some(case)) = (ctx.span(id), fields.case) {
            span.extensions_mut().insert(CaseKey {
                case,
                started: Instant::now(),
            });
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        for span in scope.from_root() {
            let extensions = span.extensions();
            let Some(key) = extensions.get::<CaseKey>() else {
                continue;
            };
            let mut fields = Fields::default();
            event.record(&mut fields);
            let meta = event.metadata();
            let line = format!(
                "{:>9.3} s {:<5} {}: {}",
                key.started.elapsed().as_secs_f64(),
                meta.level(),
                meta.target(),
                fields.text
            );
            timelines()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(key.case.clone())
                .or_default()
                .push(line);
            return;
        }
    }
}

/// An event's message and fields as one line (`message k=v …`); a span's `case`.
#[derive(Default)]
struct Fields {
    text: String,
    case: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "case" {
            self.case = Some(value.to_owned());
        }
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        if field.name() == "message" {
            let _ = write!(self.text, "{value:?}");
        } else {
            let _ = write!(self.text, "{}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_inside_a_case_span_join_its_timeline_and_others_do_not() {
        init();
        tracing::info!("outside any case");
        case_span("t::one").in_scope(|| {
            tracing::info!(command = "helm version", seconds = 0.25, "helm ran");
            tracing::debug!(what = "pod web-0 ready", "wait ended");
            tracing::trace!("below the timeline's level");
        });
        let lines = lines("t::one");
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(
            lines[0].contains(
                "INFO  testware::report::timeline::tests: helm ran command=helm version seconds=0.25"
            ),
            "{lines:#?}"
        );
        assert!(lines[1].contains("DEBUG"), "{lines:#?}");
        forget("t::one");
        assert!(super::lines("t::one").is_empty());
    }
}
