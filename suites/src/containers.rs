//! What component cases share: the images a chart deploys, free loopback ports,
//! and containers started on the host's network, labelled with the run.

use testcontainers::runners::AsyncRunner as _;
use testcontainers::{ContainerAsync, GenericImage, ImageExt as _};
use testware::cluster::labels;
use testware::{Ctx, Rendered};

/// The image (name, tag) of `container` in `kind`/`workload` of a rendered chart.
///
/// # Errors
/// The workload or container is missing, or its image has no tag.
pub fn chart_image(
    rendered: &Rendered,
    kind: &str,
    workload: &str,
    container: &str,
) -> anyhow::Result<(String, String)> {
    let reference = rendered
        .pod_template(kind, workload)?
        .container(container)
        .and_then(|c| c.image.clone())
        .ok_or_else(|| {
            anyhow::anyhow!("{kind}/{workload} has no container {container} with an image")
        })?;
    let (name, tag) = reference
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("{kind}/{workload}: image {reference} has no tag"))?;
    Ok((name.to_owned(), tag.to_owned()))
}

/// Loopback ports nobody listens on now (bound together, then released).
///
/// # Errors
/// No port can be bound.
pub fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    let listeners: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

/// Starts one container of `image` on the host's network, labelled with the run
/// (so `ci/container-engine down` finds what a killed run left behind).
///
/// # Errors
/// The engine refuses (the message hints at loading the images when one is missing).
pub async fn start(
    ctx: &Ctx,
    image: &(String, String),
    request: impl FnOnce(
        testcontainers::core::ContainerRequest<GenericImage>,
    ) -> testcontainers::core::ContainerRequest<GenericImage>,
) -> anyhow::Result<ContainerAsync<GenericImage>> {
    let (name, tag) = image;
    let base = GenericImage::new(name.as_str(), tag.as_str())
        // Network mode host, set directly: `with_network("host")` asks the engine for
        // a network of that name, which podman's API does not list.
        .with_host_config_modifier(|host| host.network_mode = Some("host".to_owned()))
        .with_label(labels::MANAGED_BY, labels::MANAGER)
        .with_label(labels::RUN_ID, ctx.config.run_id.as_str())
        .with_label(labels::CASE, ctx.case.as_str());
    request(base).start().await.map_err(|e| {
        let text = e.to_string();
        let hint = if text.contains("pull") || text.contains("image") {
            " (hint: the image must be in the engine: `ci/images load --provider podman` loads this repository's images)"
        } else {
            ""
        };
        anyhow::anyhow!("starting a container of {name}:{tag} failed: {text}{hint}")
    })
}

/// The last eight lines a container wrote to stderr, joined by ` / `.
pub async fn log_tail(container: &ContainerAsync<GenericImage>) -> String {
    match container.stderr_to_vec().await {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().rev().take(8).collect();
            lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
        }
        Err(e) => format!("(unreadable: {e})"),
    }
}
