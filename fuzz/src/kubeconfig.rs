//! Kubeconfigs (`--kubeconfig`, `KUBECONFIG`): any text parses or is refused,
//! and a parsed one gives a client configuration or an error, never a panic.
//! (Loading a configuration reads the files it names; it runs no command.)

/// Panics where the input shows a bug.
pub fn check(data: &[u8]) {
    // libFuzzer's `&str` targets skip input that is not UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(kubeconfig) = kube::config::Kubeconfig::from_yaml(text) else {
        return;
    };
    let options = kube::config::KubeConfigOptions::default();
    let _ = futures::executor::block_on(kube::Config::from_custom_kubeconfig(kubeconfig, &options));
}
