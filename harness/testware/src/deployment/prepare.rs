//! What an install or upgrade needs from the chart's render before helm runs:
//! the cluster-scoped objects to claim ([`crate::cluster::claims`]) and the API
//! versions the server lacks, translated ([`super::translate`]) or refused.
//! The chart is rendered once for both, with the request's values, release and
//! namespace; a render that fails prepares nothing (helm's own run then says why).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;

use super::request::Apply;
use super::translate::{self, PostRenderer, Translation};
use super::{ChartDeployment, DeployError};
use crate::cluster::claims::{self, Claim};
use crate::manifest::Manifests;

/// What [`ChartDeployment::prepare`] set up for one helm run.
#[derive(Debug, Default)]
pub(super) struct Prepared {
    /// The claim on the cluster-scoped objects this run adds, if any.
    pub(super) claim: Option<Arc<Claim>>,
    /// The post-renderer translating API versions, if any is needed.
    post_renderer: Option<PostRenderer>,
}

impl Prepared {
    /// Arguments helm `major` needs for it (the post-renderer).
    pub(super) fn helm_args(&self, major: u32) -> Vec<OsString> {
        self.post_renderer
            .as_ref()
            .map(|r| r.helm_args(major))
            .unwrap_or_default()
    }

    /// The environment helm `major` needs for it.
    pub(super) fn helm_env(&self, major: u32) -> Vec<(OsString, OsString)> {
        self.post_renderer
            .as_ref()
            .map(|r| r.helm_env(major))
            .unwrap_or_default()
    }
}

impl ChartDeployment {
    /// Renders the chart as the request would install it, then claims its
    /// cluster-scoped objects and plans the translation of API versions the
    /// server does not serve.
    pub(super) async fn prepare(
        &self,
        request: &Apply,
        chart: &Path,
    ) -> Result<Prepared, DeployError> {
        let config = &self.ctx.config;
        if !config.claim_cluster_objects && !config.translate_api_versions {
            return Ok(Prepared::default());
        }
        let options = crate::charts::options::RenderOptions::default()
            .with_values(request.values.clone())
            .release(self.release.clone())
            .namespace(self.namespace.clone());
        let Ok(rendered) = self.helm.template(chart, &options).await else {
            return Ok(Prepared::default());
        };
        let Ok(manifests) = Manifests::parse(&rendered) else {
            return Ok(Prepared::default());
        };
        let post_renderer = match config.translate_api_versions {
            true => self.translations(&manifests).await?,
            false => None,
        };
        let claim = match config.claim_cluster_objects {
            true => self.claim_cluster_objects(&manifests).await?,
            false => None,
        };
        Ok(Prepared {
            claim,
            post_renderer,
        })
    }

    /// The post-renderer for the API versions of `manifests` that the server
    /// lacks (said on stderr and in the case's timeline); `None` if it serves all.
    async fn translations(
        &self,
        manifests: &Manifests,
    ) -> Result<Option<PostRenderer>, DeployError> {
        let mut served: BTreeMap<(String, String), bool> = BTreeMap::new();
        for object in manifests.objects() {
            for version in std::iter::once(object.api_version.as_str()).chain(
                crate::manifest::api_versions::older_with_same_fields(
                    &object.api_version,
                    &object.kind,
                ),
            ) {
                let key = (version.to_owned(), object.kind.clone());
                if let std::collections::btree_map::Entry::Vacant(entry) = served.entry(key) {
                    let known = claims::served_scope(&self.client, version, &object.kind).await;
                    entry.insert(known.is_some());
                }
            }
        }
        let is_served = |version: &str, kind: &str| {
            served
                .get(&(version.to_owned(), kind.to_owned()))
                .copied()
                .unwrap_or(true)
        };
        let server = self
            .client
            .apiserver_version()
            .await
            .map(|v| v.git_version)
            .unwrap_or_else(|_| "unknown".into());
        let translations: Vec<Translation> = match translate::plan(manifests, is_served) {
            Ok(translations) => translations,
            Err(refused) => {
                return Err(DeployError::Unserved {
                    release: self.release.clone(),
                    server,
                    objects: refused,
                })
            }
        };
        if translations.is_empty() {
            return Ok(None);
        }
        let shown: Vec<String> = translations.iter().map(ToString::to_string).collect();
        eprintln!(
            "{}: release {}: the server ({server}) lacks API versions the chart uses; installing them as: {}",
            self.ctx.case,
            self.release,
            shown.join(", ")
        );
        tracing::info!(release = %self.release, %server, translated = %shown.join(", "), "API versions translated for the server");
        PostRenderer::write(&translations)
            .map(Some)
            .map_err(|source| DeployError::PostRenderer {
                release: self.release.clone(),
                source,
            })
    }

    /// Claims the cluster-scoped objects of `manifests` that this case does not
    /// hold yet, waiting while other cases hold them; the runner deletes them
    /// after the case.
    async fn claim_cluster_objects(
        &self,
        manifests: &Manifests,
    ) -> Result<Option<Arc<Claim>>, DeployError> {
        let held: Vec<_> = self
            .ctx
            .scope
            .claims
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .flat_map(|c| c.objects().to_vec())
            .collect();
        let wanted: Vec<_> = claims::cluster_scoped(&self.client, manifests)
            .await
            .into_iter()
            .filter(|o| !held.contains(o))
            .collect();
        if wanted.is_empty() {
            return Ok(None);
        }
        let names: Vec<String> = wanted.iter().map(ToString::to_string).collect();
        tracing::info!(release = %self.release, objects = %names.join(", "), "claiming cluster-scoped objects");
        let claimant = claims::Claimant::of(&self.ctx.config, &self.ctx.case, &self.namespace);
        let claim = Arc::new(
            Claim::acquire(&self.client, claimant, wanted, self.deadline)
                .await
                .map_err(DeployError::Cluster)?,
        );
        self.ctx
            .scope
            .claims
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(claim.clone());
        Ok(Some(claim))
    }
}
