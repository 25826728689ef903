//! The outbound HTTP clients' common ground: the extra CA certificates every client trusts
//! (`EXTRA_CA_FILE`) and the one builder all of them start from.
//!
//! Owns: reading and checking `EXTRA_CA_FILE` once at start (a missing, unreadable or invalid
//! file is a settings error naming it, so `check-config` reports it too) and
//! [`Outbound::client_builder`], the `reqwest::ClientBuilder` of every outbound client (model,
//! SSO/JWKS/userinfo, GitHub, metering, learner profiles), with the extra roots added to the
//! built-in webpki roots and the service's `User-Agent`. Each client adds its own timeouts and
//! redirect policy. Imports only `config`; it knows no feature.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{Env, SettingDoc};

/// Variables read by this module.
pub const SETTINGS: &[SettingDoc] = &[SettingDoc::new(
    "EXTRA_CA_FILE",
    "unset: the built-in (webpki) roots only",
    "PEM file of extra CA certificates trusted by every outbound client (model, SSO, GitHub, metering, learner profiles), besides the built-in roots; for internal endpoints. Read at start: a missing or invalid file stops the service.",
)];

/// The trust shared by every outbound client. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Outbound {
    /// `EXTRA_CA_FILE` as given; `None` = no extra roots.
    pub extra_ca_file: Option<PathBuf>,
    extra_roots: Arc<[reqwest::Certificate]>,
}

impl Outbound {
    /// Reads `EXTRA_CA_FILE`; a problem is recorded on `env`, naming the variable.
    pub fn from_env(env: &mut Env) -> Self {
        let Some(path) = env.string("EXTRA_CA_FILE").map(PathBuf::from) else {
            return Self::default();
        };
        match load_roots(&path) {
            Ok(roots) => Self {
                extra_ca_file: Some(path),
                extra_roots: roots.into(),
            },
            Err(message) => {
                env.error("EXTRA_CA_FILE", message);
                Self::default()
            }
        }
    }

    /// How many extra CA certificates every client trusts.
    pub fn extra_roots(&self) -> usize {
        self.extra_roots.len()
    }

    /// The builder every outbound client starts from: the built-in roots plus the extra ones,
    /// the service's `User-Agent`.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        self.extra_roots.iter().cloned().fold(
            reqwest::Client::builder()
                .user_agent(concat!("study-mode-api/", env!("CARGO_PKG_VERSION"))),
            reqwest::ClientBuilder::add_root_certificate,
        )
    }
}

/// The certificates of the PEM file at `path`, each checked to be usable as a trust anchor.
fn load_roots(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, String> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    let roots = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("`{shown}` is not a PEM file of certificates: {e}"))?;
    if roots.is_empty() {
        return Err(format!(
            "`{shown}` holds no certificate (`-----BEGIN CERTIFICATE-----` blocks)"
        ));
    }
    // reqwest parses the DER only when a client is built: build one now, so a bad certificate
    // is a settings error instead of a client that silently falls back to the defaults.
    for (i, root) in roots.iter().enumerate() {
        reqwest::Client::builder()
            .add_root_certificate(root.clone())
            .build()
            .map_err(|e| format!("certificate {} of `{shown}` is not usable: {e}", i + 1))?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbound(path: &std::path::Path) -> Result<Outbound, String> {
        let mut env = Env::from_map([("EXTRA_CA_FILE", path.to_str().expect("utf-8"))]);
        let o = Outbound::from_env(&mut env);
        env.finish().map(|()| o).map_err(|e| e.to_string())
    }

    #[test]
    fn unset_means_no_extra_roots() {
        let mut env = Env::from_map([("PORT", "0")]);
        assert_eq!(Outbound::from_env(&mut env).extra_roots(), 0);
        assert!(env.finish().is_ok());
    }

    #[test]
    fn a_missing_file_is_an_error_naming_the_setting() {
        let err = outbound(std::path::Path::new("/nonexistent/ca.pem")).expect_err("missing");
        assert!(err.contains("EXTRA_CA_FILE"), "{err}");
        assert!(err.contains("cannot read `/nonexistent/ca.pem`"), "{err}");
    }

    #[test]
    fn a_file_without_certificates_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").expect("write");
        let err = outbound(&path).expect_err("no certificate");
        assert!(err.contains("EXTRA_CA_FILE"), "{err}");
        assert!(err.contains("holds no certificate"), "{err}");
    }

    #[test]
    fn a_certificate_block_of_garbage_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ca.pem");
        let garbage = "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----\n";
        std::fs::write(&path, garbage).expect("write");
        let err = outbound(&path).expect_err("garbage");
        assert!(err.contains("EXTRA_CA_FILE"), "{err}");
        assert!(err.contains("not usable"), "{err}");
    }
}
