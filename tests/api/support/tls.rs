//! A certificate authority made at test time (rcgen) and the TLS side of local fakes: a leaf
//! certificate for `127.0.0.1` and `localhost` signed by the CA, a rustls server configuration
//! offering HTTP/2 by ALPN, and the CA's PEM file for `EXTRA_CA_FILE`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// A fake served over TLS by [`serve_h2`].
pub struct TlsServer {
    /// `https://127.0.0.1:PORT`
    pub origin: String,
    /// TCP connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Serves `app` on a free port over TLS with `ca`'s certificate, HTTP/2 only, at most
/// `max_streams` concurrent streams per connection (`SETTINGS_MAX_CONCURRENT_STREAMS`).
pub async fn serve_h2(app: axum::Router, ca: &TestCa, max_streams: u32) -> TlsServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let acceptor = tokio_rustls::TlsAcceptor::from(ca.h2_server_config());
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            counted.fetch_add(1, Ordering::SeqCst);
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                // A client that does not trust the certificate fails the handshake here.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .max_concurrent_streams(max_streams)
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
            });
        }
    });
    TlsServer {
        origin: format!("https://127.0.0.1:{port}"),
        connections,
        task,
    }
}
