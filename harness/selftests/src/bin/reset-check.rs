//! The check of `testware cluster reset` that `ci/test` runs around it, on the
//! cluster in `KUBECONFIG` (a reset deletes every namespace made since `up`, so
//! it cannot run beside other cases):
//!
//! ```text
//! reset-check plant    # a namespace with a ConfigMap, and a ClusterRole, as tests make them
//! testware cluster reset
//! reset-check verify   # they are gone; kube-system, default and the cluster's nodes are not
//! ```
//!
//! `verify` exits 1 naming what a reset left behind or took away.

use std::process::ExitCode;

use anyhow::{bail, Context as _};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, ListParams, PostParams};

/// The name every planted object carries.
const PLANTED: &str = "testware-reset-check";

/// What to do.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Mode {
    /// Make a namespace with a ConfigMap, and a ClusterRole.
    Plant,
    /// Fail unless they are gone and the cluster's own objects are not.
    Verify,
}

/// `reset-check plant|verify`.
#[derive(clap::Parser)]
struct Args {
    /// plant before the reset, verify after it.
    #[arg(value_enum)]
    mode: Mode,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let Args { mode } = clap::Parser::parse();
    let outcome = async {
        let client = kube::Client::try_default()
            .await
            .context("no cluster (hint: KUBECONFIG from `testware cluster up`)")?;
        match mode {
            Mode::Plant => plant(&client).await,
            Mode::Verify => verify(&client).await,
        }
    };
    match outcome.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reset-check {mode:?}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn object<K: serde::de::DeserializeOwned>(json: serde_json::Value) -> anyhow::Result<K> {
    Ok(serde_json::from_value(json)?)
}

async fn plant(client: &kube::Client) -> anyhow::Result<()> {
    let create = PostParams::default();
    let namespace: Namespace = object(serde_json::json!({"metadata": {"name": PLANTED}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&create, &namespace)
        .await
        .context("creating the namespace")?;
    let config_map: ConfigMap = object(serde_json::json!({
        "metadata": {"name": PLANTED}, "data": {"made-by": "a test"}
    }))?;
    Api::<ConfigMap>::namespaced(client.clone(), PLANTED)
        .create(&create, &config_map)
        .await
        .context("creating the ConfigMap")?;
    let role: ClusterRole = object(serde_json::json!({
        "metadata": {"name": PLANTED},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    }))?;
    Api::<ClusterRole>::all(client.clone())
        .create(&create, &role)
        .await
        .context("creating the ClusterRole")?;
    println!("planted namespace {PLANTED} (with a ConfigMap) and ClusterRole {PLANTED}");
    Ok(())
}

async fn verify(client: &kube::Client) -> anyhow::Result<()> {
    let mut wrong = Vec::new();
    let namespaces = Api::<Namespace>::all(client.clone());
    if namespaces.get_opt(PLANTED).await?.is_some() {
        wrong.push(format!("namespace {PLANTED} is still there"));
    }
    if Api::<ClusterRole>::all(client.clone())
        .get_opt(PLANTED)
        .await?
        .is_some()
    {
        wrong.push(format!("ClusterRole {PLANTED} is still there"));
    }
    for kept in ["kube-system", "default"] {
        if namespaces.get_opt(kept).await?.is_none() {
            wrong.push(format!("namespace {kept} is gone"));
        }
    }
    if Api::<Node>::all(client.clone())
        .list_metadata(&ListParams::default())
        .await?
        .items
        .is_empty()
    {
        wrong.push("no node is left".to_owned());
    }
    if !wrong.is_empty() {
        bail!("the reset {}", wrong.join("; "));
    }
    println!("the reset removed what was planted and kept the cluster's own");
    Ok(())
}
