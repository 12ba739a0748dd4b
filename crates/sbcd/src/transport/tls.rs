//! TLS configuration from PEM files: the server side for `tls:` listeners, the client side for
//! outbound connections. rustls with the ring provider; TLS 1.2 and 1.3.
//!
//! Both functions read files: call them before starting the runtime or in `spawn_blocking`.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use sbc_config::TlsFiles;
use tracing::{debug, warn};

/// The CA bundle [`client_config`] uses when given none (Debian's `ca-certificates`).
pub const DEFAULT_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why a TLS configuration could not be built; says which file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// The file cannot be read.
    #[error("{}: cannot read: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// The file is not valid PEM.
    #[error("{}: invalid PEM: {error}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        error: pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{}: no certificate found (expected -----BEGIN CERTIFICATE-----)", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key.
    #[error("{}: no private key found (expected PEM PKCS#8, PKCS#1 or SEC1: -----BEGIN PRIVATE KEY-----)", path.display())]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the pair, e.g. the key does not belong to the certificate.
    #[error("{} with {}: {error}", cert.display(), key.display())]
    Rejected {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        error: rustls::Error,
    },
    /// The crypto provider supports none of the protocol versions (a build problem).
    #[error("TLS provider: {0}")]
    Provider(rustls::Error),
    /// The CA bundle holds no certificate rustls can use as a trust anchor.
    #[error("{}: no usable CA certificate found", path.display())]
    NoCaCertificate {
        /// The file.
        path: PathBuf,
    },
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsSetupError> {
    std::fs::read(path).map_err(|error| TlsSetupError::Read {
        path: path.to_owned(),
        error,
    })
}

/// Every certificate in a PEM file, in order; at least one.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let text = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsSetupError::Pem {
            path: path.to_owned(),
            error,
        })?;
    if certs.is_empty() {
        return Err(TlsSetupError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The server configuration of `tls:` listeners: the certificate chain (leaf first) and its
/// private key from PEM files; no client certificates are asked for.
pub fn load_server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let chain = certificates(&files.cert_file)?;
    let key_text = read(&files.key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&key_text).map_err(|error| match error {
        pem::Error::NoItemsFound => TlsSetupError::NoPrivateKey {
            path: files.key_file.clone(),
        },
        error => TlsSetupError::Pem {
            path: files.key_file.clone(),
            error,
        },
    })?;
    let rejected = |error| TlsSetupError::Rejected {
        cert: files.cert_file.clone(),
        key: files.key_file.clone(),
        error,
    };
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Provider)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(rejected)?;
    Ok(Arc::new(config))
}

/// The client configuration of outbound TLS: servers are verified against the PEM bundle
/// `ca_file`, or [`DEFAULT_CA_FILE`] when `None`. Without either, the trust store is empty
/// (every outbound TLS connection will fail verification) and a warning says so.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let default = Path::new(DEFAULT_CA_FILE);
    let bundle = match ca_file {
        Some(path) => Some(path),
        None if default.exists() => Some(default),
        None => {
            warn!(
                default = DEFAULT_CA_FILE,
                "no CA bundle: outbound TLS connections cannot verify any server"
            );
            None
        }
    };
    let mut roots = RootCertStore::empty();
    if let Some(path) = bundle {
        let (added, ignored) = roots.add_parsable_certificates(certificates(path)?);
        if added == 0 {
            return Err(TlsSetupError::NoCaCertificate {
                path: path.to_owned(),
            });
        }
        debug!(bundle = %path.display(), added, ignored, "CA certificates loaded");
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Provider)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
