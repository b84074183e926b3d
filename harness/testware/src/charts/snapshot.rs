//! Snapshots of renders, with insta: a chart rendered with one value set, its
//! volatile fields redacted, held against a `.snap` file that insta writes and
//! `cargo insta review` reviews. insta decides what happens on a difference: in
//! CI (`CI` set) a missing or stale snapshot fails with its diff and nothing is
//! written; elsewhere the new render is left beside it as `.snap.new` for
//! review, and the case still fails; `INSTA_UPDATE=always` accepts renders as
//! they are. A snapshot is never written silently where CI runs.
//!
//! Volatile fields are found two ways. By rule: `checksum/…` annotations,
//! Secret data, `caBundle` fields and PEM blocks anywhere (which also keeps
//! keys and passwords out of committed files), plus the caller's insta
//! selectors ([`Snapshots::redact`]). And by rendering twice: whatever differs
//! between two renders of the same inputs (`randAlphaNum` names, `genCA`
//! certificates, `now`) is `[volatile]`.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use serde_json::{Map, Value};

use crate::chart::{ChartSet, ValueSet};
use crate::charts::options::RenderOptions;
use crate::manifest::Manifests;
use crate::runner::Case;

/// Why a snapshot did not match.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// There is no snapshot yet.
    #[error("no snapshot {} to compare the render with: {}", file.display(), hint(pending.as_deref()))]
    Missing {
        /// The snapshot that should be there.
        file: PathBuf,
        /// The render, written for review (not in CI).
        pending: Option<PathBuf>,
    },
    /// The render differs from the snapshot.
    #[error("the render differs from snapshot {} (insta's diff is printed above): {}", file.display(), hint(pending.as_deref()))]
    Stale {
        /// The snapshot.
        file: PathBuf,
        /// The render, written for review (not in CI).
        pending: Option<PathBuf>,
    },
    /// A redaction rule is not an insta selector.
    #[error("redaction {selector:?} is not an insta selector (e.g. [].object.metadata.annotations.rollme): {message}")]
    Selector {
        /// The rule as given.
        selector: String,
        /// insta's complaint.
        message: String,
    },
}

fn hint(pending: Option<&Path>) -> String {
    match pending {
        Some(new) => format!(
            "the render is in {}; review it with `cargo insta review` in a cargo workspace, or accept every render as it is with INSTA_UPDATE=always",
            new.display()
        ),
        None => "in CI none is written: run the check where CI is unset, review the render and commit the snapshot".into(),
    }
}

/// A directory of render snapshots and the redactions applied before comparing.
///
/// ```no_run
/// # async fn example() -> anyhow::Result<()> {
/// use testware::charts::snapshot::Snapshots;
/// use testware::{ChartSet, ValueSet};
/// let charts = ChartSet::new("charts");
/// let snapshots = Snapshots::new("snapshots").redact("[].object.metadata.annotations.rollme")?;
/// snapshots.assert_render(&charts, "web", &ValueSet::defaults()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Snapshots {
    dir: PathBuf,
    redactions: Vec<String>,
}

impl Snapshots {
    /// Snapshots kept in `dir` (made absolute against the current directory).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        Self {
            dir: std::path::absolute(&dir).unwrap_or(dir),
            redactions: Vec::new(),
        }
    }

    /// Also replaces what insta selector `selector` picks with `[redacted]`; the
    /// snapshot is a list of `{template, object}`, so a rule reads like
    /// `[].object.metadata.labels.build`.
    ///
    /// # Errors
    /// `selector` is not an insta selector.
    pub fn redact(mut self, selector: impl Into<String>) -> Result<Self, SnapshotError> {
        let selector = selector.into();
        quietly(|| insta::Settings::new().add_redaction(&selector, "[redacted]")).map_err(
            |message| SnapshotError::Selector {
                selector: selector.clone(),
                message,
            },
        )?;
        self.redactions.push(selector);
        Ok(self)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of snapshot `name`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.snap"))
    }

    /// Holds `document` against snapshot `name` (described by `description`
    /// in the file), as insta's `assert_yaml_snapshot!` does, with this set's
    /// redactions; a difference is an error, not a panic.
    ///
    /// # Errors
    /// The snapshot is missing or stale.
    pub fn assert(
        &self,
        name: &str,
        description: &str,
        document: &Value,
    ) -> Result<(), SnapshotError> {
        let file = self.file(name);
        let existed = file.is_file();
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(&self.dir);
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_description(description);
        for selector in &self.redactions {
            settings.add_redaction(selector, "[redacted]");
        }
        let outcome = quietly(|| {
            settings.bind(|| insta::assert_yaml_snapshot!(name, document));
        });
        let pending = Some(file.with_extension("snap.new")).filter(|p| p.is_file());
        match outcome {
            Ok(()) => Ok(()),
            Err(_) if existed => Err(SnapshotError::Stale { file, pending }),
            Err(_) => Err(SnapshotError::Missing { file, pending }),
        }
    }

    /// Renders `chart` with `values` twice, redacts what differs and the
    /// volatile fields ([`document`]), and holds it against snapshot
    /// [`name`]`(chart, values)`.
    ///
    /// # Errors
    /// The chart does not render, or the snapshot is missing or stale.
    pub async fn assert_render(
        &self,
        charts: &ChartSet,
        chart: &str,
        values: &ValueSet,
    ) -> anyhow::Result<()> {
        let doc = stable_document(charts, chart, &values.options()).await?;
        let description = format!("chart {chart}, values {}", values.label);
        Ok(self.assert(&name(chart, values), &description, &doc)?)
    }
}

/// The [`document`] of `chart` rendered with `options`, with what differs from
/// a second render (which skips every cache: only helm running again shows
/// what changes between runs) as `[volatile]`.
///
/// # Errors
/// The chart does not render.
pub async fn stable_document(
    charts: &ChartSet,
    chart: &str,
    options: &RenderOptions,
) -> anyhow::Result<Value> {
    let rendered = charts.render(chart, options.clone()).await?;
    let again = charts
        .renderer()
        .await?
        .helm()
        .template(&charts.dir(chart), options)
        .await?;
    let mut doc = document(&rendered.manifests);
    redact_differences(&mut doc, &document(&Manifests::parse(&again)?));
    Ok(doc)
}

/// `<chart>__<value set>`, the value set's path with `/` as `__` (the
/// snapshot's file name without `.snap`).
pub fn name(chart: &str, values: &ValueSet) -> String {
    let label: String = values
        .label
        .replace('/', "__")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{chart}__{label}")
}

/// The render as a snapshot sees it: a list of `{template, object}` in render
/// order, with the fields that change without a change of inputs or hold
/// secrets replaced: `checksum/…` annotations (`[checksum]`), a Secret's
/// `data` and `stringData` values (`[secret]`), `caBundle` (`[ca bundle]`) and
/// PEM blocks (`[pem]`).
pub fn document(manifests: &Manifests) -> Value {
    Value::Array(
        manifests
            .objects()
            .iter()
            .map(|o| {
                let mut object = o.raw.clone();
                redact_fields(&mut object, o.kind == "Secret");
                let mut entry = Map::new();
                entry.insert("template".into(), Value::String(o.source.clone()));
                entry.insert("object".into(), object);
                Value::Object(entry)
            })
            .collect(),
    )
}

fn redact_fields(object: &mut Value, secret: bool) {
    if let Value::Object(fields) = object {
        for (key, value) in fields.iter_mut() {
            match (key.as_str(), &mut *value) {
                ("data" | "stringData", Value::Object(data)) if secret => {
                    for v in data.values_mut() {
                        *v = Value::String("[secret]".into());
                    }
                }
                ("annotations", Value::Object(notes)) => {
                    for (k, v) in notes.iter_mut() {
                        if k.starts_with("checksum/") {
                            *v = Value::String("[checksum]".into());
                        } else {
                            redact_fields(v, false);
                        }
                    }
                }
                ("caBundle", Value::String(_)) => *value = Value::String("[ca bundle]".into()),
                _ => redact_fields(value, false),
            }
        }
    } else if let Value::Array(items) = object {
        items.iter_mut().for_each(|v| redact_fields(v, false));
    } else if let Value::String(s) = object {
        if s.contains("-----BEGIN ") {
            *s = "[pem]".into();
        }
    }
}

/// Replaces with `[volatile]` every value of `doc` that differs in `other`, a
/// render of the same inputs: a differing scalar, or a list or map whose shape
/// differs (as a whole).
pub fn redact_differences(doc: &mut Value, other: &Value) {
    match (&mut *doc, other) {
        (Value::Object(a), Value::Object(b)) if a.len() == b.len() => {
            for (key, value) in a.iter_mut() {
                match b.get(key) {
                    Some(theirs) => redact_differences(value, theirs),
                    None => *value = Value::String("[volatile]".into()),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (mine, theirs) in a.iter_mut().zip(b) {
                redact_differences(mine, theirs);
            }
        }
        (mine, theirs) if mine != theirs => *mine = Value::String("[volatile]".into()),
        _ => {}
    }
}

/// A case `snapshot::<chart>::<value set>` for every chart of `charts` × every
/// value set of it ([`crate::HelmChart::value_sets`]), each holding its render
/// against `snapshots`. A chart set whose root cannot be read gives one
/// failing case that says so.
pub fn cases(charts: &Arc<ChartSet>, snapshots: Snapshots) -> Vec<Case> {
    let snapshots = Arc::new(snapshots);
    let names = match charts.names() {
        Ok(names) => names,
        Err(e) => {
            let message = crate::error_chain(&e);
            return vec![Case::no_deploy("snapshot::charts", move |_| async move {
                anyhow::bail!("{message}")
            })];
        }
    };
    names
        .into_iter()
        .flat_map(|chart| {
            let sets = charts
                .open(&chart)
                .map(|c| c.value_sets())
                .unwrap_or_default();
            sets.into_iter().map(move |values| (chart.clone(), values))
        })
        .map(|(chart, values)| {
            let charts = charts.clone();
            let snapshots = snapshots.clone();
            Case::no_deploy(
                format!("snapshot::{chart}::{}", values.label),
                move |_| async move { snapshots.assert_render(&charts, &chart, &values).await },
            )
        })
        .collect()
}

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, turning a panic into its message without printing it: insta
/// reports a failed assertion (after printing its diff) and a bad selector by
/// panicking. Other threads' panics print as before.
fn quietly(f: impl FnOnce()) -> Result<(), String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let outcome = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    outcome.map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panicked".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(text: &str) -> Manifests {
        Manifests::parse(text).unwrap()
    }

    #[test]
    fn volatile_fields_are_redacted_by_rule() {
        let m = render(
            "---\n# Source: c/templates/s.yaml\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  annotations:\n    checksum/config: abc\n    team: x\ndata:\n  password: cGFzcw==\n---\n# Source: c/templates/w.yaml\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: w\nwebhooks:\n- name: w.example.org\n  clientConfig:\n    caBundle: LS0t\n  admissionReviewVersions: [v1]\n  sideEffects: None\n---\n# Source: c/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  ca.crt: |\n    -----BEGIN CERTIFICATE-----\n    MIIB\n    -----END CERTIFICATE-----\n  plain: kept\n",
        );
        let doc = document(&m);
        assert_eq!(doc[0]["template"], "c/templates/s.yaml");
        assert_eq!(doc[0]["object"]["data"]["password"], "[secret]");
        assert_eq!(
            doc[0]["object"]["metadata"]["annotations"]["checksum/config"],
            "[checksum]"
        );
        assert_eq!(doc[0]["object"]["metadata"]["annotations"]["team"], "x");
        assert_eq!(
            doc[1]["object"]["webhooks"][0]["clientConfig"]["caBundle"],
            "[ca bundle]"
        );
        assert_eq!(doc[2]["object"]["data"]["ca.crt"], "[pem]");
        // A ConfigMap's data is not a Secret's: kept.
        assert_eq!(doc[2]["object"]["data"]["plain"], "kept");
    }

    #[test]
    fn what_differs_between_renders_is_volatile() {
        let mut a =
            json!([{"object": {"metadata": {"name": "job-x1"}, "spec": {"n": 1, "list": [1, 2]}}}]);
        let b =
            json!([{"object": {"metadata": {"name": "job-q9"}, "spec": {"n": 1, "list": [1]}}}]);
        redact_differences(&mut a, &b);
        assert_eq!(
            a,
            json!([{"object": {"metadata": {"name": "[volatile]"}, "spec": {"n": 1, "list": "[volatile]"}}}])
        );
    }

    #[test]
    fn names_are_file_names() {
        let values = ValueSet::file("ci/offline values.yaml", "x");
        assert_eq!(name("efd", &values), "efd__ci__offline_values.yaml");
        assert_eq!(name("efd", &ValueSet::defaults()), "efd__default");
    }

    #[test]
    fn a_bad_selector_is_an_error_not_a_panic() {
        let err = Snapshots::new("/nonexistent")
            .redact("not a selector[")
            .unwrap_err();
        assert!(matches!(err, SnapshotError::Selector { .. }), "{err}");
        assert!(Snapshots::new("/x")
            .redact("[].object.metadata.name")
            .is_ok());
    }
}
