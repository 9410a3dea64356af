//! A test PKI: a CA the tests generate, and the origin's certificate signed by it.

use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The origin's trust material, written to a temp dir so configs can point at it.
pub struct TestPki {
    _dir: tempfile::TempDir,
    pub ca_pem: String,
    pub ca_path: PathBuf,
    pub server_config: Arc<ServerConfig>,
}

impl TestPki {
    pub fn new() -> Self {
        Self::with_names(&[])
    }

    /// A PKI whose origin certificate also names `extra` (hosts a test maps to its addresses).
    pub fn with_names(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::default();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Gatehouse Test Origin CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf_params = CertificateParams::new(
            vec![
                "localhost".into(),
                "127.0.0.1".into(),
                "127.0.0.2".into(),
                "127.0.0.3".into(),
                "127.0.0.4".into(),
                "::1".into(),
            ]
            .into_iter()
            .chain(extra.iter().map(|name| name.to_string()))
            .collect::<Vec<String>>(),
        )
        .unwrap();
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();

        let ca_path = dir.path().join("origin-ca.pem");
        std::fs::write(&ca_path, ca_cert.pem()).unwrap();
        let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let mut server_config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap();
        server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Self {
            ca_pem: ca_cert.pem(),
            ca_path,
            server_config: Arc::new(server_config),
            _dir: dir,
        }
    }
}
