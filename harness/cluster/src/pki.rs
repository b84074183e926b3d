//! The cluster's PKI, generated at `up`: a CA, the API server's serving
//! certificate, the service-account key pair, and a client certificate for every
//! component (RBAC and Node authorization rely on their CN and O).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// Where the PKI files are.
#[derive(Debug, Clone)]
pub struct Pki {
    dir: PathBuf,
}

/// A client identity: common name and organisation (group).
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    /// File stem under the PKI directory.
    pub file: &'static str,
    /// Certificate CN (the user name).
    pub cn: &'static str,
    /// Certificate O (the group), if any.
    pub org: Option<&'static str>,
}

impl Pki {
    /// The PKI in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `<dir>/<name>`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `true` when the CA exists (the PKI was generated before).
    pub fn exists(&self) -> bool {
        self.path("ca.crt").is_file() && self.path("ca.key").is_file()
    }

    /// Generates everything: the CA, the API server and kubelet serving
    /// certificates (for `node_ip`, `node_name` and the service IP), the
    /// service-account keys and the client certificates of `clients`; for each
    /// of `extra_nodes` (name, address) a kubelet serving certificate
    /// `kubelet-<name>` and client certificate `kubelet-client-<name>`.
    ///
    /// # Errors
    /// Key generation or writing a file fails.
    pub fn generate(
        &self,
        node_ip: IpAddr,
        node_name: &str,
        service_ip: IpAddr,
        clients: &[Identity],
        extra_nodes: &[(String, IpAddr)],
    ) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let validity = |p: &mut CertificateParams| {
            let now = time::OffsetDateTime::now_utc();
            p.not_before = now - time::Duration::hours(1);
            p.not_after = now + time::Duration::days(365);
        };

        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "testware-local-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut ca_params);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
        self.write("ca.crt", &ca.pem())?;
        self.write_key("ca.key", &ca.key().serialize_pem())?;

        // One leaf certificate signed by the CA: serving (with SANs) or client (with a group).
        let issue = |file: &str,
                     cn: &str,
                     org: Option<&str>,
                     sans: Vec<String>,
                     usages: Vec<ExtendedKeyUsagePurpose>|
         -> anyhow::Result<()> {
            let mut p = CertificateParams::new(sans)?;
            p.distinguished_name.push(DnType::CommonName, cn);
            if let Some(org) = org {
                p.distinguished_name.push(DnType::OrganizationName, org);
            }
            p.extended_key_usages = usages;
            p.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            validity(&mut p);
            let key = KeyPair::generate()?;
            let cert = p.signed_by(&key, &ca)?;
            self.write(&format!("{file}.crt"), &cert.pem())?;
            self.write_key(&format!("{file}.key"), &key.serialize_pem())
        };
        let apiserver_sans = vec![
            "kubernetes".into(),
            "kubernetes.default".into(),
            "kubernetes.default.svc".into(),
            "kubernetes.default.svc.cluster.local".into(),
            "localhost".into(),
            "127.0.0.1".into(),
            node_ip.to_string(),
            service_ip.to_string(),
        ];
        issue(
            "apiserver",
            "kube-apiserver",
            None,
            apiserver_sans,
            vec![ExtendedKeyUsagePurpose::ServerAuth],
        )?;
        let loopback = || vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        // etcd serves clients and its peer port with TLS; the same certificate
        // authenticates it as a peer, so it is a client certificate too.
        issue(
            "etcd-server",
            "etcd",
            None,
            loopback(),
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )?;
        // The secure ports of the controller manager and the scheduler serve
        // with certificates of this CA, so their health is checked with it.
        for (file, cn) in [
            ("controller-manager-serving", "kube-controller-manager"),
            ("scheduler-serving", "kube-scheduler"),
        ] {
            issue(
                file,
                cn,
                None,
                loopback(),
                vec![ExtendedKeyUsagePurpose::ServerAuth],
            )?;
        }
        let kubelet_cn = format!("system:node:{node_name}");
        issue(
            "kubelet",
            &kubelet_cn,
            None,
            vec![node_name.into(), node_ip.to_string()],
            vec![ExtendedKeyUsagePurpose::ServerAuth],
        )?;
        for (name, ip) in extra_nodes {
            let cn = format!("system:node:{name}");
            issue(
                &format!("kubelet-{name}"),
                &cn,
                None,
                vec![name.clone(), ip.to_string()],
                vec![ExtendedKeyUsagePurpose::ServerAuth],
            )?;
            issue(
                &format!("kubelet-client-{name}"),
                &cn,
                Some("system:nodes"),
                Vec::new(),
                vec![ExtendedKeyUsagePurpose::ClientAuth],
            )?;
        }
        for id in clients {
            issue(
                id.file,
                id.cn,
                id.org,
                Vec::new(),
                vec![ExtendedKeyUsagePurpose::ClientAuth],
            )?;
        }

        let sa = KeyPair::generate()?;
        self.write_key("sa.key", &sa.serialize_pem())?;
        self.write("sa.pub", &sa.public_key_pem())?;
        Ok(())
    }

    /// A kubeconfig for `id` against `server`, with the certificates embedded.
    ///
    /// # Errors
    /// A PKI file cannot be read.
    pub fn kubeconfig(&self, id: &Identity, server: &str) -> anyhow::Result<String> {
        self.kubeconfig_of(id.file, id.cn, server)
    }

    /// A kubeconfig for the certificate `<file>.crt` of user `user` against `server`.
    ///
    /// # Errors
    /// A PKI file cannot be read.
    pub fn kubeconfig_of(&self, file: &str, user: &str, server: &str) -> anyhow::Result<String> {
        use std::fmt::Write as _;
        let b64 = |name: &str| -> anyhow::Result<String> {
            let bytes =
                std::fs::read(self.path(name)).with_context(|| format!("reading {name}"))?;
            Ok(base64(&bytes))
        };
        let mut text = String::new();
        let _ = write!(
            text,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: testware-local\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: {user}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\ncontexts:\n- name: testware-local\n  context:\n    cluster: testware-local\n    user: {user}\ncurrent-context: testware-local\n",
            ca = b64("ca.crt")?,
            cert = b64(&format!("{file}.crt"))?,
            key = b64(&format!("{file}.key"))?,
        );
        Ok(text)
    }

    fn write(&self, name: &str, text: &str) -> anyhow::Result<()> {
        let path = self.path(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    }

    fn write_key(&self, name: &str, text: &str) -> anyhow::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.path(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        file.write_all(text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// Standard base64 with padding (kubeconfig `*-data` fields).
pub fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Reads a file under the PKI dir for callers that only hold a path.
pub fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn generated_pki_yields_a_kubeconfig_with_embedded_credentials() {
        let dir = std::env::temp_dir().join(format!("pki-test-{}", std::process::id()));
        let pki = Pki::new(&dir);
        let admin = Identity {
            file: "admin",
            cn: "testware-admin",
            org: Some("system:masters"),
        };
        pki.generate(
            "172.31.255.254".parse().unwrap(),
            "testware",
            "10.96.0.1".parse().unwrap(),
            &[admin],
            &[("testware-2".to_owned(), "172.31.254.10".parse().unwrap())],
        )
        .unwrap();
        assert!(dir.join("kubelet-client-testware-2.crt").is_file());
        assert!(pki.exists());
        let config = pki
            .kubeconfig(&admin, "https://172.31.255.254:6443")
            .unwrap();
        assert!(config.contains("server: https://172.31.255.254:6443"));
        assert!(config.contains("client-key-data: "));
        let key_mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.join("admin.key"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(key_mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
