//! Kubeconfigs (`--kubeconfig`, `KUBECONFIG`): any text parses or is refused,
//! and a parsed one gives a client configuration or an error, never a panic.
//! (Loading a configuration reads the files it names; it runs no command.)
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(kubeconfig) = kube::config::Kubeconfig::from_yaml(text) else {
        return;
    };
    let options = kube::config::KubeConfigOptions::default();
    let _ = futures::executor::block_on(kube::Config::from_custom_kubeconfig(kubeconfig, &options));
});
