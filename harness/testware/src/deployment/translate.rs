//! API versions a chart uses that the server does not serve, translated for an
//! install to an older version of the same kind that takes the same fields
//! ([`api_versions::SAME_FIELDS`]): `policy/v1` PodDisruptionBudgets on a 1.20
//! server become `policy/v1beta1`. Done by a helm post-renderer — an awk
//! program (POSIX awk, on every machine helm runs on) that rewrites the
//! top-level `apiVersion:` line of each such document and passes everything
//! else through byte for byte. Kinds of built-in groups with no such older
//! version are refused before helm runs, naming the kind, the version and the
//! server's version.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::manifest::api_versions;
use crate::manifest::Manifests;

/// One object's API version rewritten for the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    /// `kind`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// The version the chart wrote.
    pub from: String,
    /// The version the server gets.
    pub to: String,
}

impl std::fmt::Display for Translation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} {} -> {}",
            self.kind, self.name, self.from, self.to
        )
    }
}

/// Whether `group` is one of Kubernetes' own (the core group, `apps`,
/// `*.k8s.io`, …), whose versions the server's release decides.
fn built_in(api_version: &str) -> bool {
    match api_version.rsplit_once('/') {
        None => true,
        Some((group, _)) => !group.contains('.') || group.ends_with(".k8s.io"),
    }
}

/// What to translate in `manifests` for a server that serves
/// `(api_version, kind)` when `served` says so; `Err` lists, as
/// `Kind/name apiVersion`, the objects of built-in groups the server does not
/// serve in any version with the same fields. Kinds a CustomResourceDefinition
/// of the same render defines are left to it.
///
/// # Errors
/// Objects that can be neither served nor translated.
pub fn plan(
    manifests: &Manifests,
    served: impl Fn(&str, &str) -> bool,
) -> Result<Vec<Translation>, Vec<String>> {
    let defined: Vec<String> = manifests
        .objects()
        .iter()
        .filter(|o| o.kind == "CustomResourceDefinition")
        .filter_map(|o| o.raw["spec"]["names"]["kind"].as_str().map(str::to_owned))
        .collect();
    let mut translations = Vec::new();
    let mut refused = Vec::new();
    for object in manifests.objects() {
        let (api_version, kind) = (object.api_version.as_str(), object.kind.as_str());
        if served(api_version, kind) || defined.iter().any(|d| d == kind) {
            continue;
        }
        match api_versions::older_with_same_fields(api_version, kind) {
            Some(older) if served(older, kind) => translations.push(Translation {
                kind: kind.to_owned(),
                name: object.name().to_owned(),
                from: api_version.to_owned(),
                to: older.to_owned(),
            }),
            _ if built_in(api_version) => refused.push(format!("{} {api_version}", object.id())),
            _ => {}
        }
    }
    match refused.is_empty() {
        true => Ok(translations),
        false => Err(refused),
    }
}

/// The awk program that rewrites the documents' `apiVersion` per `translations`.
pub fn awk_program(translations: &[Translation]) -> String {
    let mut pairs: Vec<(&str, &str, &str)> = translations
        .iter()
        .map(|t| (t.kind.as_str(), t.from.as_str(), t.to.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let table: String = pairs
        .iter()
        .map(|(kind, from, to)| format!("  to[\"{kind}\", \"{from}\"] = \"{to}\"\n"))
        .collect();
    format!(
        r#"# testware: API versions the server lacks, rewritten to an older version of the same kind
BEGIN {{
{table}  n = 0; api_line = -1
}}
function value(line) {{ sub(/^[A-Za-z]+:[ \t]*/, "", line); gsub(/["' \t\r]/, "", line); return line }}
function flush(   i) {{
  for (i = 0; i < n; i++) {{
    if (i == api_line && ((kind, api) in to)) print "apiVersion: " to[kind, api]
    else print lines[i]
  }}
  n = 0; kind = ""; api = ""; api_line = -1
}}
/^---/ {{ flush(); print; next }}
{{
  if ($0 ~ /^kind:/) kind = value($0)
  if ($0 ~ /^apiVersion:/) {{ api = value($0); api_line = n }}
  lines[n++] = $0
}}
END {{ flush() }}
"#
    )
}

/// The post-renderer of one helm run: the awk program in a file of its own,
/// removed when dropped.
#[derive(Debug)]
pub struct PostRenderer {
    program: PathBuf,
}

impl PostRenderer {
    /// Writes the program for `translations`.
    ///
    /// # Errors
    /// The temporary file cannot be written.
    pub fn write(translations: &[Translation]) -> std::io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let program = std::env::temp_dir().join(format!(
            "testware-post-render-{}-{}.awk",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&program, awk_program(translations))?;
        Ok(Self { program })
    }

    /// helm's arguments that run it.
    pub fn helm_args(&self) -> Vec<OsString> {
        vec![
            "--post-renderer".into(),
            "awk".into(),
            "--post-renderer-args".into(),
            "-f".into(),
            "--post-renderer-args".into(),
            self.program.clone().into(),
        ]
    }
}

impl Drop for PostRenderer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.program);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDER: &str = r#"---
# Source: demo/templates/pdb.yaml
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  minAvailable: 1
---
# Source: demo/templates/hpa.yaml
kind: HorizontalPodAutoscaler
apiVersion: "autoscaling/v2"
metadata:
  name: web
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 2
---
# Source: demo/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "web:1"}]}
"#;

    /// A 1.20 server: no policy/v1, no autoscaling/v2, no CSIStorageCapacity.
    fn served_by_1_20(api_version: &str, kind: &str) -> bool {
        !matches!(
            (api_version, kind),
            ("policy/v1", _)
                | ("autoscaling/v2", _)
                | (_, "CSIStorageCapacity")
                | ("example.com/v1", _)
        )
    }

    #[test]
    fn unserved_versions_with_an_older_twin_are_translated_and_others_refused() {
        let manifests = Manifests::parse(RENDER).unwrap();
        let plan = plan(&manifests, served_by_1_20).unwrap();
        let shown: Vec<String> = plan.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "PodDisruptionBudget/web policy/v1 -> policy/v1beta1",
                "HorizontalPodAutoscaler/web autoscaling/v2 -> autoscaling/v2beta2"
            ]
        );
        assert!(super::plan(&manifests, |_, _| true).unwrap().is_empty());

        let other = "apiVersion: storage.k8s.io/v1\nkind: CSIStorageCapacity\nmetadata: {name: cap}\nstorageClassName: local\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n";
        let refused = super::plan(&Manifests::parse(other).unwrap(), served_by_1_20).unwrap_err();
        // A custom group's kind is the CRD's business, not the release's.
        assert_eq!(refused, ["CSIStorageCapacity/cap storage.k8s.io/v1"]);
    }

    #[test]
    fn the_post_renderer_rewrites_only_the_translated_documents_api_version() {
        let manifests = Manifests::parse(RENDER).unwrap();
        let renderer = PostRenderer::write(&plan(&manifests, served_by_1_20).unwrap()).unwrap();
        let mut awk = std::process::Command::new("awk")
            .args(["-f".as_ref(), renderer.program.as_os_str()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("awk runs");
        use std::io::Write as _;
        awk.stdin
            .take()
            .unwrap()
            .write_all(RENDER.as_bytes())
            .unwrap();
        let out = String::from_utf8(awk.wait_with_output().unwrap().stdout).unwrap();
        let expected = RENDER
            .replace("apiVersion: policy/v1\n", "apiVersion: policy/v1beta1\n")
            .replace(
                "apiVersion: \"autoscaling/v2\"\n",
                "apiVersion: autoscaling/v2beta2\n",
            );
        assert_eq!(out, expected);
        let program = renderer.program.clone();
        drop(renderer);
        assert!(!program.exists());
    }
}
