//! The extensions the local cluster writes into its kubeconfig, which the testware
//! library reads: how images go into the cluster, how its nodes are lost or cut off.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::layout::Layout;

/// `kubeconfig` with the cluster's image import command as the extension the
/// testware library reads ([`testware::images::IMPORT_EXTENSION`]): images it
/// builds on demand go straight into this cluster's containerd.
pub(crate) fn with_image_import(kubeconfig: &str, sockets: &[PathBuf]) -> anyhow::Result<String> {
    let mut config: kube::config::Kubeconfig =
        serde_yaml_ng::from_str(kubeconfig).context("parsing the generated kubeconfig")?;
    let command = match sockets {
        [socket] => ["ctr", "--address"]
            .into_iter()
            .map(str::to_owned)
            .chain([socket.display().to_string()])
            .chain(["-n", "k8s.io", "images", "import", "--no-unpack=false"].map(str::to_owned))
            .collect(),
        // Every node's containerd has its own store: the archive goes into each.
        _ => {
            let sockets: Vec<String> = sockets.iter().map(|s| s.display().to_string()).collect();
            vec![
                "sh".to_owned(),
                "-c".to_owned(),
                format!(
                    "for s in {}; do ctr --address \"$s\" -n k8s.io images import --no-unpack=false \"$0\" || exit 1; done",
                    sockets.join(" ")
                ),
                "{archive}".to_owned(),
            ]
        }
    };
    let command = testware::images::ImportExtension { command };
    for cluster in config
        .clusters
        .iter_mut()
        .filter_map(|c| c.cluster.as_mut())
    {
        cluster.extensions = Some(vec![kube::config::NamedExtension {
            name: testware::images::IMPORT_EXTENSION.to_owned(),
            extension: serde_json::to_value(&command)?,
        }]);
    }
    Ok(serde_yaml_ng::to_string(&config)?)
}

/// `kubeconfig` with the command that loses, cuts off and restores nodes, as
/// the extension the testware library reads
/// ([`testware::cluster::faults::NODE_CONTROL_EXTENSION`]): this very
/// executable's `cluster node`, on this state directory.
pub(crate) fn with_node_control(kubeconfig: &str, layout: &Layout) -> anyhow::Result<String> {
    let mut config: kube::config::Kubeconfig =
        serde_yaml_ng::from_str(kubeconfig).context("parsing the generated kubeconfig")?;
    let executable = std::env::current_exe().context("finding the testware executable")?;
    let control = testware::cluster::faults::NodeControl {
        command: vec![
            "env".to_owned(),
            format!("HARNESS_CLUSTER_DIR={}", layout.root.display()),
            executable.display().to_string(),
            "cluster".to_owned(),
            "node".to_owned(),
        ],
    };
    for cluster in config
        .clusters
        .iter_mut()
        .filter_map(|c| c.cluster.as_mut())
    {
        cluster
            .extensions
            .get_or_insert_with(Vec::new)
            .push(kube::config::NamedExtension {
                name: testware::cluster::faults::NODE_CONTROL_EXTENSION.to_owned(),
                extension: serde_json::to_value(&control)?,
            });
    }
    Ok(serde_yaml_ng::to_string(&config)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_names_the_containerd_import_for_the_library() {
        let text = "apiVersion: v1\nkind: Config\nclusters:\n- name: testware-local\n  cluster:\n    server: https://10.0.0.1:6443\ncontexts:\n- name: testware-local\n  context:\n    cluster: testware-local\n    user: admin\ncurrent-context: testware-local\nusers:\n- name: admin\n  user: {}\n";
        let with = with_image_import(text, &[PathBuf::from("/run/c.sock")]).unwrap();
        let config: kube::config::Kubeconfig = serde_yaml_ng::from_str(&with).unwrap();
        let cluster = config.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://10.0.0.1:6443"));
        let extension = &cluster.extensions.as_ref().unwrap()[0];
        assert_eq!(extension.name, testware::images::IMPORT_EXTENSION);
        let command: testware::images::ImportExtension =
            serde_json::from_value(extension.extension.clone()).unwrap();
        assert_eq!(
            command.command.join(" "),
            "ctr --address /run/c.sock -n k8s.io images import --no-unpack=false"
        );
        assert_eq!(config.current_context.as_deref(), Some("testware-local"));
    }
}
