//! TLS to collectors. An `https://` endpoint is verified against the system's roots (so a
//! corporate CA installed on the machine works) and, where one is named, the CA in
//! `OTEL_EXPORTER_OTLP_CERTIFICATE`; `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` and
//! `_CLIENT_KEY` give a client certificate for mutual TLS. Each has its
//! `_TRACES_`/`_METRICS_`/`_LOGS_` form, which wins. The files are read once, at startup;
//! one that cannot be read or parsed refuses the start, naming the variable and the file.
//! Everything uses rustls with the ring provider.

use crate::config::Signal;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::PathBuf;
use std::sync::Arc;

/// A file a variable names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedFile {
    pub variable: String,
    pub path: PathBuf,
}

/// The certificate files a signal's exporter is given, if any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// A PEM file of CA certificates to trust besides the system's.
    pub ca: Option<NamedFile>,
    /// A PEM client certificate (chain) and its key, for mutual TLS.
    pub client_certificate: Option<NamedFile>,
    pub client_key: Option<NamedFile>,
}

impl TlsFiles {
    /// Reads the variables for `signal` through `lookup`: the signal's own, else the
    /// general one.
    pub(crate) fn read(signal: Signal, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let named = |suffix: &str| {
            let own = format!(
                "OTEL_EXPORTER_OTLP_{}_{suffix}",
                signal.name().to_ascii_uppercase()
            );
            let general = format!("OTEL_EXPORTER_OTLP_{suffix}");
            [own, general].into_iter().find_map(|variable| {
                let value = lookup(&variable).filter(|v| !v.trim().is_empty())?;
                Some(NamedFile {
                    variable,
                    path: PathBuf::from(value.trim()),
                })
            })
        };
        TlsFiles {
            ca: named("CERTIFICATE"),
            client_certificate: named("CLIENT_CERTIFICATE"),
            client_key: named("CLIENT_KEY"),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self == &TlsFiles::default()
    }
}

/// The certificates read from the files, in the forms both transports need.
#[derive(Clone)]
pub(crate) struct TlsMaterial {
    ca_pem: Option<Vec<u8>>,
    ca: Vec<CertificateDer<'static>>,
    identity: Option<Identity>,
}

#[derive(Clone)]
struct Identity {
    certificate_pem: Vec<u8>,
    key_pem: Vec<u8>,
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

fn read(file: &NamedFile) -> anyhow::Result<Vec<u8>> {
    std::fs::read(&file.path).map_err(|err| {
        anyhow::anyhow!(
            "{}={}: cannot be read: {err}",
            file.variable,
            file.path.display()
        )
    })
}

fn certificates(file: &NamedFile, pem: &[u8]) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| anyhow::anyhow!("{}={}: {err}", file.variable, file.path.display()))?;
    if certificates.is_empty() {
        anyhow::bail!(
            "{}={}: no PEM certificate in it",
            file.variable,
            file.path.display()
        );
    }
    Ok(certificates)
}

impl TlsMaterial {
    /// Reads and checks the files.
    pub(crate) fn load(files: &TlsFiles) -> anyhow::Result<Self> {
        let (ca_pem, ca) = match &files.ca {
            Some(file) => {
                let pem = read(file)?;
                let certificates = certificates(file, &pem)?;
                (Some(pem), certificates)
            }
            None => (None, Vec::new()),
        };
        let identity = match (&files.client_certificate, &files.client_key) {
            (Some(certificate), Some(key)) => {
                let certificate_pem = read(certificate)?;
                let chain = certificates(certificate, &certificate_pem)?;
                let key_pem = read(key)?;
                let parsed = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| {
                    anyhow::anyhow!(
                        "{}={}: no private key: {err}",
                        key.variable,
                        key.path.display()
                    )
                })?;
                Some(Identity {
                    certificate_pem,
                    key_pem,
                    chain,
                    key: Arc::new(parsed),
                })
            }
            (Some(file), None) | (None, Some(file)) => anyhow::bail!(
                "{} is set but not its pair: mutual TLS needs both OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY",
                file.variable
            ),
            (None, None) => None,
        };
        Ok(TlsMaterial {
            ca_pem,
            ca,
            identity,
        })
    }

    /// What tonic needs for a gRPC endpoint over TLS.
    pub(crate) fn grpc(&self) -> opentelemetry_otlp::tonic_types::transport::ClientTlsConfig {
        use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig, Identity};
        let mut config = ClientTlsConfig::new().with_native_roots();
        if let Some(pem) = &self.ca_pem {
            config = config.ca_certificate(Certificate::from_pem(pem));
        }
        if let Some(identity) = &self.identity {
            let identity = Identity::from_pem(&identity.certificate_pem, &identity.key_pem);
            config = config.identity(identity);
        }
        config
    }

    /// rustls's configuration: the system's roots and the CA, and the client certificate.
    fn rustls_config(&self) -> anyhow::Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for certificate in rustls_native_certs::load_native_certs().certs {
            // A system certificate rustls cannot use is left out, as browsers do.
            let _ = roots.add(certificate);
        }
        for certificate in &self.ca {
            roots.add(certificate.clone())?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        Ok(match &self.identity {
            Some(identity) => {
                let key = identity.key.clone_key();
                builder.with_client_auth_cert(identity.chain.clone(), key)?
            }
            None => builder.with_no_client_auth(),
        })
    }
}

/// The HTTP exporters' client: with `tls`, trusting the system's roots and its CA and
/// presenting its client certificate. Built on a thread of its own: a blocking client may
/// not be made inside the async runtime.
pub(crate) fn http_client(
    tls: Option<&TlsMaterial>,
    timeout: std::time::Duration,
) -> anyhow::Result<reqwest::blocking::Client> {
    let config = tls.map(TlsMaterial::rustls_config).transpose()?;
    std::thread::spawn(move || {
        let builder = reqwest::blocking::Client::builder().timeout(timeout);
        match config {
            Some(config) => builder.tls_backend_preconfigured(config).build(),
            None => builder.build(),
        }
    })
    .join()
    .map_err(|_| anyhow::anyhow!("building the HTTP client panicked"))?
    .map_err(anyhow::Error::from)
}
