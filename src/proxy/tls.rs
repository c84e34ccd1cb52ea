//! TLS for both legs, built from the configuration: the proxy's server config for its
//! clients (`[tls]`) and a client config per backend (`[blue]`/`[green]` `tls…` keys).
//! Files are read here, when the config is loaded or reloaded; a session keeps the
//! config it started with, so a reload changes what new sessions get and nothing else.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme, SupportedProtocolVersion};

use crate::config::{BackendConfig, TlsConfig};

/// Why TLS could not be set up from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("{what}: {source}")]
    Rustls {
        what: &'static str,
        source: rustls::Error,
    },
    #[error("`{0}` is not a valid TLS server name")]
    ServerName(String),
}

/// What a session needs to speak TLS to one backend.
pub struct BackendTls {
    pub connector: tokio_rustls::TlsConnector,
    pub server_name: ServerName<'static>,
}

impl std::fmt::Debug for BackendTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// The certificates of a PEM file, at least one.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// The private key of a PEM file. A key others may read is refused: it is as good as
/// published.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| file_error(path, e))?;
        if meta.permissions().mode() & 0o007 != 0 {
            return Err(file_error(
                path,
                "the private key is readable by others; chmod o-rwx (e.g. 600 or 640)",
            ));
        }
    }
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error(path, e))
}

static FROM_TLS12: [&SupportedProtocolVersion; 2] =
    [&rustls::version::TLS12, &rustls::version::TLS13];
static FROM_TLS13: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];

fn versions(min: &str) -> &'static [&'static SupportedProtocolVersion] {
    if min == "1.3" {
        &FROM_TLS13
    } else {
        &FROM_TLS12
    }
}

/// The proxy's TLS server config for clients.
pub fn server_config(config: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs = read_certs(&config.cert)?;
    let key = read_key(&config.key)?;
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(&config.min_version))
        .map_err(|source| TlsError::Rustls {
            what: "tls.min_version",
            source,
        })?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|source| TlsError::Rustls {
            what: "tls.cert/tls.key",
            source,
        })?;
    Ok(Arc::new(server))
}

/// The TLS client config for one backend, or `None` when it is reached in the clear.
pub fn backend_tls(backend: &BackendConfig) -> Result<Option<Arc<BackendTls>>, TlsError> {
    if !backend.tls {
        return Ok(None);
    }
    let name = backend
        .tls_server_name
        .clone()
        .unwrap_or_else(|| backend.host().to_owned());
    let server_name =
        ServerName::try_from(name.clone()).map_err(|_| TlsError::ServerName(name.clone()))?;
    let rustls_error = |source| TlsError::Rustls {
        what: "backend tls",
        source,
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(rustls_error)?;
    let builder = match (&backend.tls_ca, backend.tls_verify_server_cert) {
        (Some(ca), true) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs(ca)? {
                roots.add(cert).map_err(|e| file_error(ca, e))?;
            }
            builder.with_root_certificates(roots)
        }
        _ => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unverified(provider()))),
    };
    let client = match (&backend.tls_cert, &backend.tls_key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
            .map_err(rustls_error)?,
        _ => builder.with_no_client_auth(),
    };
    Ok(Some(Arc::new(BackendTls {
        connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
        server_name,
    })))
}

/// `tls_verify_server_cert = false`: encryption without knowing who is at the other
/// end. The handshake's signatures are still checked.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS in force: built from one config, swapped whole on reload.
#[derive(Default)]
pub struct TlsSetup {
    /// The client leg's acceptor, when `[tls]` is configured.
    pub acceptor: Option<tokio_rustls::TlsAcceptor>,
    /// `[tls] require_secure_transport`.
    pub require_secure_transport: bool,
    /// The backend leg, by server address, for servers reached over TLS.
    backends: Vec<(String, Arc<BackendTls>)>,
}

impl TlsSetup {
    /// Reads every certificate and key the config names.
    pub fn load(config: &crate::config::Config) -> Result<TlsSetup, TlsError> {
        let mut setup = TlsSetup::default();
        if let Some(tls) = &config.tls {
            setup.acceptor = Some(tokio_rustls::TlsAcceptor::from(server_config(tls)?));
            setup.require_secure_transport = tls.require_secure_transport;
        }
        for backend in std::iter::once(&config.blue).chain(config.green.as_ref()) {
            if let Some(tls) = backend_tls(backend)? {
                setup.backends.push((backend.address.clone(), tls));
            }
        }
        Ok(setup)
    }

    /// How to reach the server at `address`: over TLS when its config says so.
    pub fn backend(&self, address: &str) -> Option<Arc<BackendTls>> {
        self.backends
            .iter()
            .find(|(a, _)| a == address)
            .map(|(_, tls)| tls.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(unix)]
    fn a_key_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "not read").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_key(&key).unwrap_err().to_string();
        assert!(err.contains("readable by others"), "{err}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = read_key(&key).unwrap_err().to_string();
        assert!(!err.contains("readable by others"), "{err}");
    }

    #[test]
    fn a_file_without_certificates_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, "no PEM here\n").unwrap();
        let err = read_certs(&cert).unwrap_err().to_string();
        assert!(
            err.contains("cert.pem") && err.contains("no PEM certificate"),
            "{err}"
        );
    }
}
