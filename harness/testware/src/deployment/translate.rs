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

/// The name of the helm 4 plugin that runs the program.
const PLUGIN: &str = "testware-api-versions";

/// The plugin: awk, given the program by `--post-renderer-args`.
const PLUGIN_YAML: &str = "apiVersion: v1
type: postrenderer/v1
name: testware-api-versions
version: 0.1.0
runtime: subprocess
runtimeConfig:
  platformCommand:
    - command: awk
";

/// The post-renderer of one helm run, in a directory of its own removed when
/// dropped: the awk program, and for helm 4 (whose `--post-renderer` names a
/// `postrenderer/v1` plugin, where helm 3's names a program) the plugin that
/// runs awk on it.
#[derive(Debug)]
pub struct PostRenderer {
    dir: PathBuf,
}

impl PostRenderer {
    /// Writes the program for `translations`, and the plugin.
    ///
    /// # Errors
    /// The temporary files cannot be written.
    pub fn write(translations: &[Translation]) -> std::io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "testware-post-render-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        // Dropped (and so removed) on any error below.
        let renderer = Self { dir };
        let plugin = renderer.plugins().join(PLUGIN);
        std::fs::create_dir_all(&plugin)?;
        std::fs::write(plugin.join("plugin.yaml"), PLUGIN_YAML)?;
        std::fs::write(renderer.program(), awk_program(translations))?;
        Ok(renderer)
    }

    fn program(&self) -> PathBuf {
        self.dir.join("translate.awk")
    }

    fn plugins(&self) -> PathBuf {
        self.dir.join("plugins")
    }

    /// helm's arguments that run it, for helm `major`.
    pub fn helm_args(&self, major: u32) -> Vec<OsString> {
        let renderer = if major >= 4 { PLUGIN } else { "awk" };
        vec![
            "--post-renderer".into(),
            renderer.into(),
            "--post-renderer-args".into(),
            "-f".into(),
            "--post-renderer-args".into(),
            self.program().into(),
        ]
    }

    /// The environment helm `major` needs for them: helm 4 looks for the plugin
    /// in `HELM_PLUGINS` (the run that translates sees no other plugin; it
    /// installs a chart directory, which needs none).
    pub fn helm_env(&self, major: u32) -> Vec<(OsString, OsString)> {
        if major >= 4 {
            vec![("HELM_PLUGINS".into(), self.plugins().into())]
        } else {
            Vec::new()
        }
    }
}

impl Drop for PostRenderer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
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
            .args(["-f".as_ref(), renderer.program().as_os_str()])
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
        let dir = renderer.dir.clone();
        drop(renderer);
        assert!(!dir.exists());
    }

    #[test]
    fn helm_4_runs_the_program_through_its_plugin() {
        let renderer = PostRenderer::write(&[]).unwrap();
        let args = |major| -> Vec<String> {
            renderer
                .helm_args(major)
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        let program = renderer.program().display().to_string();
        assert_eq!(
            args(3),
            [
                "--post-renderer",
                "awk",
                "--post-renderer-args",
                "-f",
                "--post-renderer-args",
                &program
            ]
        );
        assert_eq!(args(4)[1], PLUGIN);
        assert_eq!(args(4)[2..], args(3)[2..]);
        assert!(renderer.helm_env(3).is_empty());
        let env = renderer.helm_env(4);
        assert_eq!(env.len(), 1);
        assert_eq!(env[0].0, "HELM_PLUGINS");
        let manifest = std::path::Path::new(&env[0].1)
            .join(PLUGIN)
            .join("plugin.yaml");
        let plugin: serde_json::Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
        assert_eq!(plugin["name"], PLUGIN);
        assert_eq!(plugin["type"], "postrenderer/v1");
    }
}
