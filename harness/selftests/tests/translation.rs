//! Charts written for today's Kubernetes on an older server: API versions the
//! server lacks are translated to an older version of the same kind that takes
//! the same fields (a helm post-renderer), said on stderr and in the timeline;
//! without the translation helm refuses the install; a version with no such
//! twin is refused before helm runs, naming the kind, the version and the
//! server's version. On a server that serves the versions nothing is translated.

use std::sync::Arc;

use kube::api::{DynamicObject, GroupVersionKind};
use testware::{cases, check, check_eq, Ctx, DeployError, Install, RunConfig, Suite};
use testware_selftests::fixture;

fn main() -> std::process::ExitCode {
    Suite::new("translation")
        .cases(cases![chart_deploy:
            modern_api_versions_install_on_an_older_server,
            without_translation_helm_refuses_what_the_server_lacks,
            a_version_without_an_older_twin_is_refused_before_helm,
        ])
        .run()
}

/// Whether the server serves `kind` in `api_version`.
async fn serves(client: &kube::Client, api_version: &str, kind: &str) -> bool {
    testware::cluster::claims::served_scope(client, api_version, kind)
        .await
        .is_some()
}

/// The object `name` of `kind` as the server stores it in `api_version`.
async fn stored(
    client: &kube::Client,
    namespace: &str,
    api_version: &str,
    kind: &str,
    name: &str,
) -> anyhow::Result<DynamicObject> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let (resource, _) =
        kube::discovery::pinned_kind(client, &GroupVersionKind::gvk(group, version, kind)).await?;
    let api: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(client.clone(), namespace, &resource);
    Ok(api.get(name).await?)
}

async fn modern_api_versions_install_on_an_older_server(ctx: Ctx) -> anyhow::Result<()> {
    let client = ctx.client().await?;
    let ns = ctx.create_namespace().await?;
    let release = Install::chart(fixture("api-translation/modern"))
        .release("modern")
        .run(&ctx, &ns)
        .await?;
    let manifest = release.manifest().await?;
    let server = client.apiserver_version().await?.git_version;
    for (kind, newer, older, name) in [
        (
            "PodDisruptionBudget",
            "policy/v1",
            "policy/v1beta1",
            "modern-web",
        ),
        (
            "HorizontalPodAutoscaler",
            "autoscaling/v2",
            "autoscaling/v2beta2",
            "modern-web",
        ),
        ("CronJob", "batch/v1", "batch/v1beta1", "modern-nightly"),
    ] {
        if serves(&client, newer, kind).await {
            println!("{kind}: the server ({server}) serves {newer}: installed as written");
            // Nothing to translate: installed as written.
            check!(
                manifest.contains(&format!("apiVersion: {newer}\nkind: {kind}")),
                "{kind} as written:\n{manifest}"
            );
            stored(&client, ns.name(), newer, kind, name).await?;
        } else {
            println!("{kind}: the server ({server}) lacks {newer}: translated to {older}");
            check!(
                manifest.contains(&format!("apiVersion: {older}\nkind: {kind}")),
                "{kind} translated to {older} in the release's manifest:\n{manifest}"
            );
            let object = stored(&client, ns.name(), older, kind, name).await?;
            check_eq!(object.metadata.name.as_deref(), Some(name));
        }
    }
    // The fields came through: the budget still selects the release's pod.
    let version = if serves(&client, "policy/v1", "PodDisruptionBudget").await {
        "policy/v1"
    } else {
        "policy/v1beta1"
    };
    let budget = stored(
        &client,
        ns.name(),
        version,
        "PodDisruptionBudget",
        "modern-web",
    )
    .await?;
    check_eq!(
        budget.data["spec"]["minAvailable"].as_i64(),
        Some(1),
        "{:?}",
        budget.data
    );
    check_eq!(
        budget.data["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"].as_str(),
        Some("modern")
    );
    Ok(())
}

async fn without_translation_helm_refuses_what_the_server_lacks(ctx: Ctx) -> anyhow::Result<()> {
    let client = ctx.client().await?;
    let mut off = ctx.clone();
    off.config = Arc::new(RunConfig {
        translate_api_versions: false,
        ..(*ctx.config).clone()
    });
    let ns = off.create_namespace().await?;
    let installed = Install::chart(fixture("api-translation/modern"))
        .release("modern")
        .run(&off, &ns)
        .await;
    if serves(&client, "policy/v1", "PodDisruptionBudget").await {
        check!(
            installed.is_ok(),
            "the server serves the chart's versions: {installed:?}"
        );
        return Ok(());
    }
    let Err(error) = installed else {
        anyhow::bail!("the install passed on a server without policy/v1, untranslated");
    };
    let text = testware::error_chain(&error);
    check!(
        text.contains("no matches for kind") && text.contains("in version"),
        "helm says which kind and version the server lacks: {text}"
    );
    Ok(())
}

async fn a_version_without_an_older_twin_is_refused_before_helm(ctx: Ctx) -> anyhow::Result<()> {
    let client = ctx.client().await?;
    let ns = ctx.create_namespace().await?;
    let installed = Install::chart(fixture("api-translation/unserved"))
        .release("unserved")
        .run(&ctx, &ns)
        .await;
    if serves(&client, "storage.k8s.io/v1", "CSIStorageCapacity").await {
        check!(
            installed.is_ok(),
            "the server serves storage.k8s.io/v1: {installed:?}"
        );
        return Ok(());
    }
    let server = client.apiserver_version().await?.git_version;
    match installed {
        Err(error @ DeployError::Unserved { .. }) => {
            let text = error.to_string();
            check!(
                text.contains("CSIStorageCapacity/unserved-capacity storage.k8s.io/v1")
                    && text.contains(&format!("the server ({server})"))
                    && text.contains("hint:"),
                "{text}"
            );
            Ok(())
        }
        other => anyhow::bail!("expected the install to be refused before helm ran, got {other:?}"),
    }
}
