//! Certificates made at test time (a CA, a server certificate for 127.0.0.1 and localhost,
//! a client certificate), written as PEM files for the variables that name them, and the
//! receiver's side of TLS.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::PathBuf;
use std::sync::Arc;

/// A CA and what it signed, as PEM text and as files in a folder of their own.
pub struct TestCertificates {
    pub dir: PathBuf,
    pub ca_pem: String,
    pub server_pem: String,
    pub server_key_pem: String,
    pub client_pem: String,
    pub client_key_pem: String,
}

impl TestCertificates {
    /// Makes them, under `name` in the temp folder.
    pub fn generate(name: &str) -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "wasmlens test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(names).unwrap();
            params.extended_key_usages = vec![usage];
            params.use_authority_key_identifier_extension = true;
            let cert = params.signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let (server_pem, server_key_pem) = leaf(names, ExtendedKeyUsagePurpose::ServerAuth);
        let client_names = vec!["wasmlens-client".to_owned()];
        let (client_pem, client_key_pem) = leaf(client_names, ExtendedKeyUsagePurpose::ClientAuth);
        let dir = std::env::temp_dir().join(format!("wasmlens-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let certificates = TestCertificates {
            dir,
            ca_pem: ca_cert.pem(),
            server_pem,
            server_key_pem,
            client_pem,
            client_key_pem,
        };
        for (file, text) in [
            ("ca.pem", &certificates.ca_pem),
            ("client.pem", &certificates.client_pem),
            ("client-key.pem", &certificates.client_key_pem),
        ] {
            std::fs::write(certificates.dir.join(file), text).unwrap();
        }
        certificates
    }

    /// The path of `ca.pem`, `client.pem` or `client-key.pem`.
    pub fn file(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }
}

impl Drop for TestCertificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The receiver's TLS: its certificate, and the CA whose clients it accepts, if it asks.
pub(crate) struct ServerTls {
    certificate_pem: String,
    key_pem: String,
    client_ca_pem: Option<String>,
}

impl ServerTls {
    pub fn new(certificates: &TestCertificates, client_auth: bool) -> Self {
        ServerTls {
            certificate_pem: certificates.server_pem.clone(),
            key_pem: certificates.server_key_pem.clone(),
            client_ca_pem: client_auth.then(|| certificates.ca_pem.clone()),
        }
    }

    pub fn grpc(&self) -> tonic::transport::ServerTlsConfig {
        use tonic::transport::{Certificate, Identity, ServerTlsConfig};
        let identity = Identity::from_pem(&self.certificate_pem, &self.key_pem);
        let mut config = ServerTlsConfig::new().identity(identity);
        if let Some(ca) = &self.client_ca_pem {
            config = config.client_ca_root(Certificate::from_pem(ca));
        }
        config
    }

    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = CertificateDer::pem_slice_iter(self.certificate_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).unwrap();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match &self.client_ca_pem {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for certificate in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                    roots.add(certificate.unwrap()).unwrap();
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    roots.into(),
                    provider,
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder.with_single_cert(chain, key).unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}
