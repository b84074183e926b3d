//! Waiting for conditions: watches for the common cases, explained timeouts.

use std::time::Duration;

use crate::cluster::ClusterError;
use crate::explain::explain_pod;

/// Waits until the pod `name` is Ready, by watching it.
///
/// # Errors
/// [`ClusterError::Timeout`] with the pod's last phase and container states.
pub async fn wait_pod_ready(
    pods: &kube::Api<k8s_openapi::api::core::v1::Pod>,
    name: &str,
    timeout: Duration,
) -> Result<(), ClusterError> {
    use k8s_openapi::api::core::v1::Pod;
    let ready = |pod: Option<&Pod>| {
        pod.and_then(|p| p.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    let waited = tokio::time::timeout(
        timeout,
        kube::runtime::wait::await_condition(pods.clone(), name, ready),
    )
    .await;
    match waited {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(ClusterError::Timeout {
            what: format!("pod {name} to be ready"),
            after: timeout,
            last: e.to_string(),
        }),
        Err(_) => Err(ClusterError::Timeout {
            what: format!("pod {name} to be ready"),
            after: timeout,
            last: explain_pod(pods, name).await,
        }),
    }
}
