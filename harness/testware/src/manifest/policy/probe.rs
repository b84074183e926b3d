//! The value keys and probe values the scheduling and storage-class rules set.

/// Where a chart takes its node selector, tolerations and storage class: the
/// value keys the scheduling and storage-class rules set. The default is the
/// `global.*` convention of this repository's charts; charts with keys of their
/// own name them (`testware check --node-selector-key …`), several where each
/// component has its own (`controller.nodeSelector`, `webhook.nodeSelector`):
/// the probe value is set at each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueKeys {
    /// Maps of node labels (`global.nodeSelector`).
    pub node_selector: Vec<String>,
    /// Lists of tolerations (`global.tolerations`).
    pub tolerations: Vec<String>,
    /// Storage class names (`global.storageClass`).
    pub storage_class: Vec<String>,
}

impl Default for ValueKeys {
    fn default() -> Self {
        Self {
            node_selector: vec!["global.nodeSelector".into()],
            tolerations: vec!["global.tolerations".into()],
            storage_class: vec!["global.storageClass".into()],
        }
    }
}

/// The values that probe whether scheduling and storage are configurable. The
/// policy suite renders every chart with them (see [`ProbeValues::set_args`]).
#[derive(Debug, Clone)]
pub struct ProbeValues {
    /// Node label key and value for the system node group.
    pub node_selector: (String, String),
    /// Toleration key (operator `Equal`, value = node selector value, effect `NoSchedule`).
    pub toleration_key: String,
    /// Storage class name.
    pub storage_class: String,
    /// The value keys they are set at.
    pub keys: ValueKeys,
}

impl Default for ProbeValues {
    fn default() -> Self {
        Self::at(ValueKeys::default())
    }
}

impl ProbeValues {
    /// The probe values, set at `keys`.
    pub fn at(keys: ValueKeys) -> Self {
        Self {
            node_selector: ("testware.io/node-group".into(), "system".into()),
            toleration_key: "testware.io/node-group".into(),
            storage_class: "testware-policy-probe".into(),
            keys,
        }
    }

    /// The `--set` pairs that apply these values at their keys.
    pub fn set_args(&self) -> Vec<(String, String)> {
        let escaped_key = self.node_selector.0.replace('.', r"\.");
        let ValueKeys {
            node_selector,
            tolerations,
            storage_class,
        } = &self.keys;
        let mut args = Vec::new();
        for key in node_selector {
            args.push((format!("{key}.{escaped_key}"), self.node_selector.1.clone()));
        }
        for key in tolerations {
            args.extend([
                (format!("{key}[0].key"), self.toleration_key.clone()),
                (format!("{key}[0].operator"), "Equal".into()),
                (format!("{key}[0].value"), self.node_selector.1.clone()),
                (format!("{key}[0].effect"), "NoSchedule".into()),
            ]);
        }
        for key in storage_class {
            args.push((key.clone(), self.storage_class.clone()));
        }
        args
    }
}
