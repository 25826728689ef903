//! A certificate authority made at test time (rcgen) and the TLS side of local fakes: a leaf
//! certificate for `127.0.0.1` and `localhost` signed by the CA, a rustls server configuration
//! offering HTTP/2 by ALPN, and the CA's PEM file for `EXTRA_CA_FILE`.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A test CA with one server certificate; its PEM file lives as long as it does.
pub struct TestCa {
    /// The CA certificate as PEM (what `EXTRA_CA_FILE` points at).
    pub ca_file: PathBuf,
    leaf: CertificateDer<'static>,
    key: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl TestCa {
    pub fn new() -> Self {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "study-mode test CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let leaf_params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("params");
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca, &ca_key)
            .expect("leaf certificate");
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).expect("write the CA");
        Self {
            ca_file,
            leaf: leaf.der().clone(),
            key: leaf_key.serialize_der(),
            _dir: dir,
        }
    }

    /// `EXTRA_CA_FILE`'s value.
    pub fn ca_path(&self) -> &str {
        self.ca_file.to_str().expect("utf-8 path")
    }

    /// A server configuration with the leaf certificate, offering only `h2` by ALPN.
    pub fn h2_server_config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![self.leaf.clone()], key)
            .expect("server certificate");
        config.alpn_protocols = vec![b"h2".to_vec()];
        Arc::new(config)
    }
}
